//! The canonical operations: pure decisions ([`decide`]), the driver state machine
//! ([`Operation`]), and the synchronous [`Engine`] that performs its actions with a [`Store`], a
//! [`Mailer`] and a [`Clock`].

mod context;
mod decide;
mod machine;
mod types;
mod validate;

pub use context::Core;
pub use machine::{Action, Feedback, Operation};
pub use types::*;

use crate::Error;
use crate::config::Config;
use crate::mail::Mailer;
use crate::record::TotpAlgorithm;
use crate::store::Store;
use context::admin_forbidden;
use std::sync::Arc;

/// Where the time comes from; tests set it exactly.
pub trait Clock: Send + Sync {
    /// Seconds since the Unix epoch.
    fn now(&self) -> u64;
}

/// The system clock (0 before the epoch, never a panic).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
    }
}

/// Where audit events go: the host's security log. Events arrive after the change they report
/// has committed, at most once; the handler cannot fail the operation (a panic is caught and
/// ignored), so a handler that must not lose events writes them durably itself.
pub trait EventHandler: Send + Sync {
    /// Receives one event (it never carries a secret, code or token).
    fn handle(&self, event: &SecurityEvent);
}

impl<F: Fn(&SecurityEvent) + Send + Sync> EventHandler for F {
    fn handle(&self, event: &SecurityEvent) {
        self(event)
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> u64 {
        (**self).now()
    }
}

/// The synchronous engine: every canonical operation, performed against the host's store and
/// mailer. Cheap to clone and safe to share between threads; it caches nothing between calls.
#[derive(Clone)]
pub struct Engine {
    core: Arc<Core>,
    store: Arc<dyn Store>,
    mailer: Arc<dyn Mailer>,
    clock: Arc<dyn Clock>,
    events: Option<Arc<dyn EventHandler>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("core", &self.core).finish_non_exhaustive()
    }
}

macro_rules! expect_outcome {
    ($result:expr, $variant:ident) => {
        match $result? {
            Outcome::$variant(v) => Ok(v),
            other => Err(Error::Internal(format!("unexpected outcome {other:?}"))),
        }
    };
}

impl Engine {
    /// An engine over `store` and `mailer` with the system clock. Fails on an invalid config.
    pub fn new(config: Config, store: impl Store + 'static, mailer: impl Mailer + 'static) -> Result<Engine, Error> {
        Ok(Engine {
            core: Core::new(config)?,
            store: Arc::new(store),
            mailer: Arc::new(mailer),
            clock: Arc::new(SystemClock),
            events: None,
        })
    }

    /// The same engine handing every audit event to `handler`.
    pub fn with_events(mut self, handler: impl EventHandler + 'static) -> Engine {
        self.events = Some(Arc::new(handler));
        self
    }

    /// The same engine reading time from `clock`.
    pub fn with_clock(mut self, clock: impl Clock + 'static) -> Engine {
        self.clock = Arc::new(clock);
        self
    }

    /// The decision context, for hosts that also drive [`Operation`]s themselves.
    pub fn core(&self) -> &Arc<Core> {
        &self.core
    }

    /// The clock's time; a clock that panics fails the operation (`internal`) instead.
    fn now(&self) -> Result<u64, Error> {
        machine::host_call("clock.now", Error::Internal, || Ok(self.clock.now()))
    }

    /// Performs every action of `op` until it is done.
    fn drive(&self, mut op: Operation) -> Result<Outcome, Error> {
        loop {
            op.run_store(self.store.as_ref());
            match op.action() {
                Action::Send { message } => {
                    let sent = machine::host_call("mailer.send", |reason| reason, || self.mailer.send(message));
                    op.feed(Feedback::Sent(sent));
                }
                Action::Emit { event } => {
                    if let Some(handler) = &self.events {
                        // A failing handler cannot undo what committed: its panic is dropped.
                        let _ = machine::host_call(
                            "events.handle",
                            |m| m,
                            || {
                                handler.handle(event);
                                Ok(())
                            },
                        );
                    }
                    op.feed(Feedback::Emitted);
                }
                _ => return op.finish(),
            }
        }
    }

    /// Runs any user-facing request (the operations below are shorthands for this).
    pub fn run(&self, user: &str, request: Request) -> Result<Outcome, Error> {
        self.run_at(user, request, self.now()?)
    }

    /// Runs a request at Unix time `now`, for hosts whose clock can fail (read it first).
    pub fn run_at(&self, user: &str, request: Request, now: u64) -> Result<Outcome, Error> {
        self.drive(Operation::new(self.core.clone(), user, request, now))
    }

    /// The user's methods, policy state and advice.
    pub fn security_status(&self, user: &str) -> Result<SecurityStatus, Error> {
        expect_outcome!(self.run(user, Request::SecurityStatus), Status)
    }

    /// Sets where security notices go, for an address the host has already proved (at sign-up,
    /// say); the previous and the new address are told. [`Engine::contact_email_begin`] proves
    /// the address instead.
    ///
    /// # Errors
    /// `step_up_required` when the user has a method and `step_up` is not a valid token.
    pub fn set_contact_email(&self, user: &str, address: &str, step_up: Option<&str>) -> Result<Notices, Error> {
        let request = Request::SetContactEmail { address: address.into(), step_up: step_up.map(Into::into) };
        expect_outcome!(self.run(user, request), Done)
    }

    /// Sends a code to a new notice address; [`Engine::contact_email_confirm`] makes it the
    /// notice address.
    ///
    /// # Errors
    /// `rate_limited` within the resend cooldown or over the address's budget; `mail` when
    /// delivery failed; `step_up_required`.
    pub fn contact_email_begin(&self, user: &str, address: &str, step_up: Option<&str>) -> Result<CodeSent, Error> {
        let request = Request::ContactEmailBegin { address: address.into(), step_up: step_up.map(Into::into) };
        expect_outcome!(self.run(user, request), CodeSent)
    }

    /// Confirms the address of [`Engine::contact_email_begin`] with the code sent to it; the
    /// previous and the new address are told.
    ///
    /// # Errors
    /// `invalid_code` (counted against the attempt budget), `expired`, `not_found` (no code),
    /// `step_up_required`.
    pub fn contact_email_confirm(&self, user: &str, code: &str, step_up: Option<&str>) -> Result<Notices, Error> {
        let request = Request::ContactEmailConfirm { code: code.into(), step_up: step_up.map(Into::into) };
        expect_outcome!(self.run(user, request), Done)
    }

    /// Records that the account has created orders: 2FA is required from now on.
    pub fn mark_order_created(&self, user: &str) -> Result<(), Error> {
        expect_outcome!(self.run(user, Request::MarkOrderCreated), Done).map(|_| ())
    }

    /// Starts an authenticator-app enrolment: a new secret, its otpauth URI and QR code.
    /// Nothing is active until [`Engine::totp_enroll_confirm`].
    ///
    /// # Errors
    /// `step_up_required` when the user has a method and `step_up` is not a valid token.
    pub fn totp_enroll_begin(&self, user: &str, account_name: &str, step_up: Option<&str>) -> Result<TotpSetup, Error> {
        let request = Request::TotpEnrollBegin { account_name: account_name.into(), step_up: step_up.map(Into::into) };
        expect_outcome!(self.run(user, request), TotpSetup)
    }

    /// Confirms the pending authenticator app with a code from it.
    ///
    /// # Errors
    /// `invalid_code` (the caller MUST let the user retry), `expired` (start again),
    /// `step_up_required`.
    pub fn totp_enroll_confirm(&self, user: &str, code: &str, step_up: Option<&str>) -> Result<MethodAdded, Error> {
        let request = Request::TotpEnrollConfirm { code: code.into(), step_up: step_up.map(Into::into) };
        expect_outcome!(self.run(user, request), MethodAdded)
    }

    /// Sends a confirmation code to a new email address.
    ///
    /// # Errors
    /// `rate_limited` within the resend cooldown; `mail` when delivery failed (no code is usable).
    pub fn email_enroll_begin(&self, user: &str, address: &str, step_up: Option<&str>) -> Result<CodeSent, Error> {
        let request = Request::EmailEnrollBegin { address: address.into(), step_up: step_up.map(Into::into) };
        expect_outcome!(self.run(user, request), CodeSent)
    }

    /// Confirms the pending email address with the emailed code.
    pub fn email_enroll_confirm(&self, user: &str, code: &str, step_up: Option<&str>) -> Result<MethodAdded, Error> {
        let request = Request::EmailEnrollConfirm { code: code.into(), step_up: step_up.map(Into::into) };
        expect_outcome!(self.run(user, request), MethodAdded)
    }

    /// Starts registering a WebAuthn device; pass `options_json` to `navigator.credentials.create`.
    pub fn webauthn_register_begin(
        &self,
        user: &str,
        friendly_name: &str,
        step_up: Option<&str>,
    ) -> Result<WebauthnRegistration, Error> {
        let request =
            Request::WebauthnRegisterBegin { friendly_name: friendly_name.into(), step_up: step_up.map(Into::into) };
        expect_outcome!(self.run(user, request), WebauthnRegistration)
    }

    /// Verifies the browser's registration response and stores the device.
    ///
    /// # Errors
    /// `webauthn_rejected` when any check of the ceremony fails (nothing is stored).
    pub fn webauthn_register_finish(
        &self,
        user: &str,
        credential_json: &str,
        step_up: Option<&str>,
    ) -> Result<MethodAdded, Error> {
        let request = Request::WebauthnRegisterFinish {
            credential_json: credential_json.into(),
            step_up: step_up.map(Into::into),
        };
        expect_outcome!(self.run(user, request), MethodAdded)
    }

    /// Renames a method.
    pub fn rename_method(
        &self,
        user: &str,
        method_id: &str,
        label: &str,
        step_up: Option<&str>,
    ) -> Result<MethodInfo, Error> {
        let request = Request::RenameMethod {
            method_id: method_id.into(),
            label: label.into(),
            step_up: step_up.map(Into::into),
        };
        expect_outcome!(self.run(user, request), Method)
    }

    /// Removes a method; refused when it would leave a user who must have 2FA with none.
    pub fn remove_method(&self, user: &str, method_id: &str, step_up: Option<&str>) -> Result<Notices, Error> {
        let request = Request::RemoveMethod { method_id: method_id.into(), step_up: step_up.map(Into::into) };
        expect_outcome!(self.run(user, request), Done)
    }

    /// Replaces the recovery codes with a fresh set, shown once.
    pub fn recovery_codes_generate(&self, user: &str, step_up: Option<&str>) -> Result<RecoveryCodes, Error> {
        let request = Request::RecoveryCodesGenerate { step_up: step_up.map(Into::into) };
        expect_outcome!(self.run(user, request), RecoveryCodes)
    }

    /// Starts a sign-in after the host has checked the password.
    pub fn login_begin(&self, user: &str) -> Result<LoginChallenge, Error> {
        self.login_begin_remembered(user, None)
    }

    /// Starts a sign-in with the device token of a remembered browser, if the host has one: when
    /// it is valid (this user's, not expired or revoked) no second factor is asked.
    pub fn login_begin_remembered(&self, user: &str, device_token: Option<&str>) -> Result<LoginChallenge, Error> {
        expect_outcome!(self.run(user, Request::LoginBegin { device_token: device_token.map(Into::into) }), Challenge)
    }

    /// Emails a fresh sign-in code for `challenge`.
    pub fn login_send_email_code(&self, user: &str, challenge: &str) -> Result<CodeSent, Error> {
        expect_outcome!(self.run(user, Request::LoginSendEmailCode { challenge: challenge.into() }), CodeSent)
    }

    /// Verifies a second factor.
    ///
    /// # Errors
    /// `invalid_code` (counted), `replayed`, `expired`, `locked_out` (with retry-after),
    /// `webauthn_rejected`, `not_found` (unknown challenge), `conflict` (retry).
    pub fn login_verify(&self, user: &str, challenge: &str, proof: Proof) -> Result<LoginSuccess, Error> {
        self.login_verify_remembering(user, challenge, proof, false)
    }

    /// [`Engine::login_verify`]; with `remember_device` (and `remember_device.enabled` in the
    /// config) the success carries a device token for this browser.
    pub fn login_verify_remembering(
        &self,
        user: &str,
        challenge: &str,
        proof: Proof,
        remember_device: bool,
    ) -> Result<LoginSuccess, Error> {
        let request = Request::LoginVerify { challenge: challenge.into(), proof, remember_device };
        expect_outcome!(self.run(user, request), LoginSuccess)
    }

    /// Revokes one remembered browser.
    pub fn revoke_remembered_device(&self, user: &str, device_id: &str) -> Result<(), Error> {
        let request = Request::RevokeRememberedDevice { device_id: device_id.into() };
        expect_outcome!(self.run(user, request), Done).map(|_| ())
    }

    /// Revokes every remembered browser of the user.
    pub fn revoke_remembered_devices(&self, user: &str) -> Result<(), Error> {
        expect_outcome!(self.run(user, Request::RevokeRememberedDevices), Done).map(|_| ())
    }
}

/// The admin capability: operations no user-facing surface can reach. Build one only where an
/// administrator acts (a back office, a migration job), from a config with `"admin": true`.
#[derive(Clone, Debug)]
pub struct Admin {
    engine: Engine,
}

impl Admin {
    /// The admin capability over an engine's store, mailer, clock and event handler.
    ///
    /// # Errors
    /// `forbidden` unless the engine's config grants the admin capability (`"admin": true`).
    pub fn new(engine: Engine) -> Result<Admin, Error> {
        if !engine.core.config.admin {
            return Err(admin_forbidden());
        }
        Ok(Admin { engine })
    }

    fn run(&self, user: &str, request: AdminRequest) -> Result<Outcome, Error> {
        self.run_at(user, request, self.engine.now()?)
    }

    /// Runs an admin request at Unix time `now`.
    pub fn run_at(&self, user: &str, request: AdminRequest, now: u64) -> Result<Outcome, Error> {
        let e = &self.engine;
        e.drive(Operation::admin(e.core.clone(), user, request, now))
    }

    /// Imports a confirmed TOTP secret (base32), replacing any authenticator app of the user.
    pub fn totp_import(
        &self,
        user: &str,
        secret: &str,
        algorithm: TotpAlgorithm,
        digits: u8,
        period: u64,
    ) -> Result<MethodAdded, Error> {
        let request = AdminRequest::TotpImport { secret: secret.into(), algorithm, digits, period };
        expect_outcome!(self.run(user, request), MethodAdded)
    }

    /// Deletes everything twofa stores about the user.
    pub fn delete_user(&self, user: &str) -> Result<(), Error> {
        expect_outcome!(self.run(user, AdminRequest::DeleteUser), Done).map(|_| ())
    }

    /// Removes every method, recovery code and remembered device of a user who lost access,
    /// records `actor` and `reason`, and mails the user at every known address. If policy
    /// requires 2FA, the next sign-in answers `enrollment_required`.
    ///
    /// # Errors
    /// `not_found` when twofa knows nothing of the user; `invalid_input` for an empty actor or
    /// reason.
    pub fn reset_user(&self, user: &str, actor: &str, reason: &str) -> Result<ResetDone, Error> {
        let request = AdminRequest::ResetUser { actor: actor.into(), reason: reason.into() };
        expect_outcome!(self.run(user, request), Reset)
    }

    /// Exports the user's second factors as a document sealed under `key` (standard base64, at
    /// least 32 bytes) and bound to the user id (docs/export.md).
    pub fn export_user(&self, user: &str, key: &str) -> Result<UserExport, Error> {
        expect_outcome!(self.run(user, AdminRequest::ExportUser { key: key.into() }), Exported)
    }

    /// Imports a document from `export_user` for the same user id, which must have no second
    /// factor yet. WebAuthn devices come along only when the relying party id is the same.
    ///
    /// # Errors
    /// `invalid_input` for a malformed document, another user's, a wrong key or any change.
    pub fn import_user(&self, user: &str, document: &str, key: &str) -> Result<UserImported, Error> {
        let request = AdminRequest::ImportUser { document: document.into(), key: key.into() };
        expect_outcome!(self.run(user, request), Imported)
    }
}
