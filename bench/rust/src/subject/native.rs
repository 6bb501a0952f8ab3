//! The native surface: `twofa_core::Engine` (and `Admin`) called directly.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use twofa_core::store::{SqliteStore, Store};
use twofa_core::{Admin, Config, Engine, Mailer, Message, Proof, TotpAlgorithm};
use twofa_wasmtime_host::VirtualClock;

use super::{Challenge, Mail, Subject};

/// An engine over its own store, with a settable clock and an in-process mailbox.
pub struct Native {
    /// The engine.
    engine: Engine,
    /// The clock it reads.
    clock: VirtualClock,
    /// Its mailer.
    mailbox: Mailbox,
}

/// Keeps the plain-text body of the last message sent.
#[derive(Clone, Default)]
struct Mailbox(Arc<Mutex<Option<String>>>);

impl Mailer for Mailbox {
    fn send(&self, message: &Message) -> Result<(), String> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(message.text.clone());
        Ok(())
    }
}

/// Opens (creating) the SQLite store at `path`.
pub fn open_sqlite(path: &Path) -> SqliteStore {
    SqliteStore::open(path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()))
}

impl Native {
    /// An engine of `config` over `store`, reading time from `clock`.
    pub fn new(config: &Config, store: impl Store + 'static, clock: VirtualClock) -> Native {
        let mailbox = Mailbox::default();
        let engine =
            Engine::new(config.clone(), store, mailbox.clone()).expect("a valid config").with_clock(clock.clone());
        Native { engine, clock, mailbox }
    }
}

impl Subject for Native {
    fn clock(&self) -> &VirtualClock {
        &self.clock
    }

    fn totp_import(&mut self, user: &str, secret: &str) {
        Admin::new(self.engine.clone())
            .expect("the bench config grants the admin capability")
            .totp_import(user, secret, TotpAlgorithm::Sha1, 6, 30)
            .expect("totp_import");
    }

    fn webauthn_register_begin(&mut self, user: &str) -> String {
        self.engine.webauthn_register_begin(user, "fixture key", None).expect("webauthn_register_begin").options_json
    }

    fn webauthn_register_finish(&mut self, user: &str, credential_json: &str) {
        self.engine.webauthn_register_finish(user, credential_json, None).expect("webauthn_register_finish");
    }

    fn login_begin(&mut self, user: &str) -> Challenge {
        let challenge = self.engine.login_begin(user).expect("login_begin");
        Challenge {
            id: challenge.challenge_id.expect("a challenge for a user with a second factor"),
            webauthn_options: challenge.webauthn_options,
        }
    }

    fn login_verify(&mut self, user: &str, challenge: &str, proof: Proof) -> Result<(), &'static str> {
        self.engine.login_verify(user, challenge, proof).map(drop).map_err(|e| e.name())
    }
}

impl Mail for Native {
    fn email_enroll_begin(&mut self, user: &str, address: &str) {
        self.engine.email_enroll_begin(user, address, None).expect("email_enroll_begin");
    }

    fn email_enroll_confirm(&mut self, user: &str, code: &str) {
        self.engine.email_enroll_confirm(user, code, None).expect("email_enroll_confirm");
    }

    fn login_send_email_code(&mut self, user: &str, challenge: &str) {
        self.engine.login_send_email_code(user, challenge).expect("login_send_email_code");
    }

    fn take_mail(&mut self) -> String {
        self.mailbox.0.lock().unwrap_or_else(PoisonError::into_inner).take().expect("a message was sent")
    }
}
