//! What the fuzz targets share: a config, engines over the in-memory store with a settable
//! clock and an outbox, and the TOTP codes of the enrolled users.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use twofa_core::store::{MemoryStore, Store};
use twofa_core::webauthn::WebauthnConfig;
use twofa_core::{Clock, Config, Engine, Mailer, Message};

/// The soft WebAuthn authenticator of the core's tests.
#[path = "../../core/tests/support/webauthn.rs"]
pub mod webauthn_support;

/// The browser origin of the WebAuthn config.
pub const ORIGIN: &str = "http://localhost:8080";
/// The time the clocks start at.
pub const T0: u64 = 1_700_000_000;

/// A config with one key and WebAuthn for localhost.
pub fn config() -> Config {
    let mut config = Config::new("Fuzz", "k1", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=");
    config.webauthn = Some(WebauthnConfig::new("localhost", "Fuzz", vec![ORIGIN.into()]));
    config
}

/// A clock the harness sets.
#[derive(Clone, Default)]
pub struct TestClock(Arc<AtomicU64>);

impl TestClock {
    /// Moves the clock forward.
    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }

    /// The time now.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl Clock for TestClock {
    fn now(&self) -> u64 {
        self.get()
    }
}

/// Keeps every message.
#[derive(Clone, Default)]
pub struct Outbox(Arc<Mutex<Vec<Message>>>);

impl Mailer for Outbox {
    fn send(&self, message: &Message) -> Result<(), String> {
        self.0.lock().map_err(|_| "poisoned".to_string())?.push(message.clone());
        Ok(())
    }
}

/// An engine over a fresh in-memory store, with its clock (at [`T0`]) and outbox.
pub fn engine() -> (Engine, TestClock, Outbox) {
    let clock = TestClock::default();
    clock.advance(T0);
    let outbox = Outbox::default();
    let engine = Engine::new(config(), MemoryStore::new(), outbox.clone()).expect("config").with_clock(clock.clone());
    (engine, clock, outbox)
}

/// The TOTP code (SHA-1, 6 digits, 30 s) of a base32 secret at `t`.
pub fn totp_code(secret_b32: &str, t: u64) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret_b32).expect("base32").as_ref().to_vec();
    let totp = totp_rs::Builder::new().with_secret(secret).with_skew(0).build().expect("totp");
    totp.generate(t).to_string()
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
        let (engine, clock, store) = engine_on_store(Arc::new(MemoryStore::new()));
        let setup = engine.totp_enroll_begin(USER, "fuzz@example.com", None).expect("totp begin");
        let code = totp_code(&setup.secret, clock.get());
        let added = engine.totp_enroll_confirm(USER, &code, None).expect("totp confirm");
        let step_up = added.step_up.expect("a first method's token").token;
        engine.recovery_codes_generate(USER, Some(&step_up)).expect("recovery codes");
        let record = store.get("user/u").expect("get").expect("the record").bytes;
        Template { record, secret: setup.secret, step_up, now: clock.get() }
    })
}

fn engine_on_store(store: Arc<MemoryStore>) -> (Engine, TestClock, Arc<MemoryStore>) {
    let clock = TestClock::default();
    clock.advance(T0);
    let engine = Engine::new(config(), store.clone(), Outbox::default()).expect("config").with_clock(clock.clone());
    (engine, clock, store)
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
    let store = Arc::new(MemoryStore::new());
    store.put("user/u", &t.record, None).expect("put");
    let (engine, clock, _) = engine_on_store(store);
    clock.advance(t.now - T0);
    (engine, clock, t.secret.clone(), t.step_up.clone())
}
