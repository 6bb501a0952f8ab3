//! What the fuzz targets share: the core tests' clock, outbox and TOTP helpers, a config with
//! WebAuthn, and a user with an authenticator app enrolled once per process.

use std::sync::{Arc, OnceLock};

use twofa_core::store::{MemoryStore, Store};
use twofa_core::webauthn::WebauthnConfig;
use twofa_core::{Config, Engine};

/// The core tests' helpers: the settable clock, the outbox, the test key and TOTP codes.
#[path = "../../core/tests/common/mod.rs"]
pub mod common;
/// The soft WebAuthn authenticator of the core's tests.
#[path = "../../core/tests/support/webauthn.rs"]
pub mod webauthn_support;

pub use common::{Outbox, T0, TestClock, totp_code};

/// The browser origin of the WebAuthn config.
pub const ORIGIN: &str = "http://localhost:8080";

/// The core tests' config, with WebAuthn for localhost.
pub fn config() -> Config {
    let mut config = common::config();
    config.webauthn = Some(WebauthnConfig::new("localhost", "Fuzz", vec![ORIGIN.into()]));
    config
}

/// An engine over a fresh in-memory store, with its clock (at [`T0`]) and outbox.
pub fn engine() -> (Engine, TestClock, Outbox) {
    common::engine_with(config(), MemoryStore::new())
}

/// The user every run of [`enrolled`] starts from.
pub const USER: &str = "u";

/// User [`USER`] with an authenticator app and recovery codes: enrolled once per process (the
/// QR code makes enrolment slow) and copied into each run's store.
struct Template {
    record: Vec<u8>,
    secret: String,
    step_up: String,
    now: u64,
}

fn template() -> &'static Template {
    static TEMPLATE: OnceLock<Template> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let store = Arc::new(MemoryStore::new());
        let (engine, clock, _) = common::engine_with(config(), store.clone());
        let setup = engine.totp_enroll_begin(USER, "fuzz@example.com", None).expect("totp begin");
        let code = totp_code(&setup.secret, clock.get());
        let added = engine.totp_enroll_confirm(USER, &code, None).expect("totp confirm");
        let step_up = added.step_up.expect("a first method's token").token;
        engine.recovery_codes_generate(USER, Some(&step_up)).expect("recovery codes");
        let record = store.get("user/u").expect("get").expect("the record").bytes;
        Template { record, secret: setup.secret, step_up, now: clock.get() }
    })
}

/// The stored record of [`USER`] with an authenticator app and recovery codes, the app's base32
/// secret, a step-up token, and the time it was enrolled at (that step is used).
pub fn enrolled_record() -> (&'static [u8], &'static str, &'static str, u64) {
    let t = template();
    (&t.record, &t.secret, &t.step_up, t.now)
}

/// A fresh engine and store in which [`USER`] has an authenticator app (whose base32 secret is
/// returned, with a valid step-up token) and recovery codes; the clock is where the enrolment
/// left it.
pub fn enrolled() -> (Engine, TestClock, String, String) {
    let t = template();
    let store = MemoryStore::new();
    store.put("user/u", &t.record, None).expect("put");
    let (engine, clock, _) = common::engine_with(config(), store);
    clock.set(t.now);
    (engine, clock, t.secret.clone(), t.step_up.clone())
}
