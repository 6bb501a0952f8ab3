//! twofa as a WASI component: the `twofa:auth/engine` exports, translated to and from the core.
//!
//! Nothing is decided here: every call becomes one `twofa_core::Engine` (or `Admin`) call whose
//! store, mailer and event handler are the host's imports and whose clock and randomness are
//! WASI's.

mod convert;

use convert::{error, kind_algorithm};
use exports::twofa::auth::engine::{Guest, GuestAdmin, GuestEngine};
use twofa::auth::types as wit;
use twofa_core::store::{Store, StoreError, Version, Versioned};
use twofa_core::{Config, EventHandler, Mailer, Message, Proof, SecurityEvent};

wit_bindgen::generate!({ world: "plugin", path: "../wit" });

/// The host's `store` import as a core `Store`.
struct HostStore;

fn store_error(e: twofa::auth::store::StoreError) -> StoreError {
    match e {
        twofa::auth::store::StoreError::CasFailed => StoreError::Conflict,
        twofa::auth::store::StoreError::Failed(m) => StoreError::Failed(m),
    }
}

impl Store for HostStore {
    fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        twofa::auth::store::get(key)
            .map(|found| found.map(|v| Versioned { bytes: v.value, version: v.version }))
            .map_err(store_error)
    }

    fn put(&self, key: &str, bytes: &[u8], expected: Option<Version>) -> Result<Version, StoreError> {
        twofa::auth::store::put(key, bytes, expected).map_err(store_error)
    }

    fn delete(&self, key: &str, expected: Version) -> Result<(), StoreError> {
        twofa::auth::store::delete(key, expected).map_err(store_error)
    }
}

/// The host's `mailer` import as a core `Mailer`.
struct HostMailer;

impl Mailer for HostMailer {
    fn send(&self, m: &Message) -> Result<(), String> {
        twofa::auth::mailer::send(&twofa::auth::mailer::Message {
            to: m.to.clone(),
            subject: m.subject.clone(),
            text: m.text.clone(),
            html: m.html.clone(),
        })
    }
}

/// The host's `events` import as a core `EventHandler`.
struct HostEvents;

impl EventHandler for HostEvents {
    fn handle(&self, event: &SecurityEvent) {
        twofa::auth::events::emit(&convert::event(event));
    }
}

fn open(config_json: &str) -> Result<twofa_core::Engine, wit::Error> {
    let config = Config::from_json(config_json).map_err(error)?;
    Ok(twofa_core::Engine::new(config, HostStore, HostMailer).map_err(error)?.with_events(HostEvents))
}

/// The exported `engine` resource.
pub struct EngineResource(twofa_core::Engine);

/// The exported `admin` resource.
pub struct AdminResource(twofa_core::Admin);

struct Component;

impl Guest for Component {
    type Engine = EngineResource;
    type Admin = AdminResource;
}

type R<T> = Result<T, wit::Error>;

impl GuestEngine for EngineResource {
    fn open(config_json: String) -> R<exports::twofa::auth::engine::Engine> {
        Ok(exports::twofa::auth::engine::Engine::new(EngineResource(open(&config_json)?)))
    }

    fn security_status(&self, user: String) -> R<wit::SecurityStatus> {
        self.0.security_status(&user).map(convert::status).map_err(error)
    }

    fn set_contact_email(&self, user: String, address: String, step_up: Option<String>) -> R<wit::Notices> {
        self.0.set_contact_email(&user, &address, step_up.as_deref()).map(convert::notices).map_err(error)
    }

    fn contact_email_begin(&self, user: String, address: String, step_up: Option<String>) -> R<wit::CodeSent> {
        self.0.contact_email_begin(&user, &address, step_up.as_deref()).map(convert::code_sent).map_err(error)
    }

    fn contact_email_confirm(&self, user: String, code: String, step_up: Option<String>) -> R<wit::Notices> {
        self.0.contact_email_confirm(&user, &code, step_up.as_deref()).map(convert::notices).map_err(error)
    }

    fn mark_order_created(&self, user: String) -> R<()> {
        self.0.mark_order_created(&user).map_err(error)
    }

    fn totp_enroll_begin(&self, user: String, account_name: String, step_up: Option<String>) -> R<wit::TotpSetup> {
        self.0.totp_enroll_begin(&user, &account_name, step_up.as_deref()).map(convert::totp_setup).map_err(error)
    }

    fn totp_enroll_confirm(&self, user: String, code: String, step_up: Option<String>) -> R<wit::MethodAdded> {
        self.0.totp_enroll_confirm(&user, &code, step_up.as_deref()).map(convert::method_added).map_err(error)
    }

    fn email_enroll_begin(&self, user: String, address: String, step_up: Option<String>) -> R<wit::CodeSent> {
        self.0.email_enroll_begin(&user, &address, step_up.as_deref()).map(convert::code_sent).map_err(error)
    }

    fn email_enroll_confirm(&self, user: String, code: String, step_up: Option<String>) -> R<wit::MethodAdded> {
        self.0.email_enroll_confirm(&user, &code, step_up.as_deref()).map(convert::method_added).map_err(error)
    }

    fn webauthn_register_begin(
        &self,
        user: String,
        friendly_name: String,
        step_up: Option<String>,
    ) -> R<wit::WebauthnRegistration> {
        self.0
            .webauthn_register_begin(&user, &friendly_name, step_up.as_deref())
            .map(|r| wit::WebauthnRegistration { options_json: r.options_json, expires_at: r.expires_at })
            .map_err(error)
    }

    fn webauthn_register_finish(
        &self,
        user: String,
        credential_json: String,
        step_up: Option<String>,
    ) -> R<wit::MethodAdded> {
        self.0
            .webauthn_register_finish(&user, &credential_json, step_up.as_deref())
            .map(convert::method_added)
            .map_err(error)
    }

    fn rename_method(
        &self,
        user: String,
        method_id: String,
        label: String,
        step_up: Option<String>,
    ) -> R<wit::MethodInfo> {
        self.0.rename_method(&user, &method_id, &label, step_up.as_deref()).map(convert::method).map_err(error)
    }

    fn remove_method(&self, user: String, method_id: String, step_up: Option<String>) -> R<wit::Notices> {
        self.0.remove_method(&user, &method_id, step_up.as_deref()).map(convert::notices).map_err(error)
    }

    fn recovery_codes_generate(&self, user: String, step_up: Option<String>) -> R<wit::RecoveryCodes> {
        self.0
            .recovery_codes_generate(&user, step_up.as_deref())
            .map(|r| wit::RecoveryCodes { codes: r.codes, notices: convert::notices(r.notices) })
            .map_err(error)
    }

    fn login_begin(&self, user: String, device_token: Option<String>) -> R<wit::LoginChallenge> {
        self.0.login_begin_remembered(&user, device_token.as_deref()).map(convert::challenge).map_err(error)
    }

    fn login_send_email_code(&self, user: String, challenge: String) -> R<wit::CodeSent> {
        self.0.login_send_email_code(&user, &challenge).map(convert::code_sent).map_err(error)
    }

    fn login_verify(
        &self,
        user: String,
        challenge: String,
        proof: wit::Proof,
        remember_device: bool,
    ) -> R<wit::LoginSuccess> {
        let proof = match proof {
            wit::Proof::Totp(c) => Proof::Totp(c),
            wit::Proof::Email(c) => Proof::Email(c),
            wit::Proof::Webauthn(j) => Proof::Webauthn(j),
            wit::Proof::Recovery(c) => Proof::Recovery(c),
        };
        self.0
            .login_verify_remembering(&user, &challenge, proof, remember_device)
            .map(convert::login_success)
            .map_err(error)
    }

    fn revoke_remembered_device(&self, user: String, device_id: String) -> R<()> {
        self.0.revoke_remembered_device(&user, &device_id).map_err(error)
    }

    fn revoke_remembered_devices(&self, user: String) -> R<()> {
        self.0.revoke_remembered_devices(&user).map_err(error)
    }
}

impl GuestAdmin for AdminResource {
    fn open(config_json: String) -> R<exports::twofa::auth::engine::Admin> {
        let admin = twofa_core::Admin::new(open(&config_json)?).map_err(error)?;
        Ok(exports::twofa::auth::engine::Admin::new(AdminResource(admin)))
    }

    fn totp_import(
        &self,
        user: String,
        secret: String,
        algorithm: wit::TotpAlgorithm,
        digits: u8,
        period: u64,
    ) -> R<wit::MethodAdded> {
        self.0
            .totp_import(&user, &secret, kind_algorithm(algorithm), digits, period)
            .map(convert::method_added)
            .map_err(error)
    }

    fn delete_user(&self, user: String) -> R<()> {
        self.0.delete_user(&user).map_err(error)
    }

    fn reset_user(&self, user: String, actor: String, reason: String) -> R<wit::ResetDone> {
        self.0.reset_user(&user, &actor, &reason).map(convert::reset_done).map_err(error)
    }

    fn export_user(&self, user: String, key: String) -> R<String> {
        self.0.export_user(&user, &key).map(|e| e.document).map_err(error)
    }

    fn import_user(&self, user: String, document: String, key: String) -> R<wit::UserImported> {
        self.0.import_user(&user, &document, &key).map(convert::user_imported).map_err(error)
    }
}

export!(Component);
