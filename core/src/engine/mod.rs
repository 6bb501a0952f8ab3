//! The canonical operations: pure decisions ([`decide`]), the driver state machine
//! ([`Operation`]), and the synchronous [`Engine`] that performs its actions with a [`Store`], a
//! [`Mailer`] and a [`Clock`].

mod decide;
mod machine;
mod types;

pub use machine::{Action, Feedback, Operation};
pub use types::*;

use crate::Error;
use crate::config::{Config, TotpAlgorithm};
use crate::crypto::Keyring;
use crate::mail::Mailer;
use crate::store::Store;
use crate::webauthn::RelyingParty;
use ring::rand::{SecureRandom, SystemRandom};
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

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> u64 {
        (**self).now()
    }
}

/// The validated configuration with its derived keys: the context of every decision.
pub struct Core {
    pub(crate) config: Config,
    pub(crate) keyring: Keyring,
    pub(crate) rp: Option<RelyingParty>,
    pub(crate) rng: Box<dyn SecureRandom + Send + Sync>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core").field("config", &self.config).field("keyring", &self.keyring).finish_non_exhaustive()
    }
}

impl Core {
    /// Validates `config` and derives its keys; randomness comes from ring's system CSPRNG.
    pub fn new(config: Config) -> Result<Arc<Core>, Error> {
        config.validate()?;
        Ok(Arc::new(Core {
            keyring: Keyring::new(&config)?,
            rp: config.webauthn.as_ref().map(RelyingParty::new).transpose()?,
            rng: Box::new(SystemRandom::new()),
            config,
        }))
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
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
        })
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
            let Action::Send { message } = op.action() else { return op.finish() };
            let sent = machine::host_call("mailer.send", |reason| reason, || self.mailer.send(message));
            op.feed(Feedback::Sent(sent));
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

    /// Sets where security notices go; the previous address is told.
    pub fn set_contact_email(&self, user: &str, address: &str) -> Result<Notices, Error> {
        expect_outcome!(self.run(user, Request::SetContactEmail { address: address.into() }), Done)
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
        expect_outcome!(self.run(user, Request::LoginBegin), Challenge)
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
        expect_outcome!(self.run(user, Request::LoginVerify { challenge: challenge.into(), proof }), LoginSuccess)
    }
}

/// The admin capability: operations no user-facing surface can reach. Build one only where an
/// administrator acts (a back office, a migration job).
#[derive(Clone, Debug)]
pub struct Admin {
    engine: Engine,
}

impl Admin {
    /// The admin capability over an engine's store, mailer and clock.
    pub fn new(engine: Engine) -> Admin {
        Admin { engine }
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
}
