//! Shared helpers of the integration tests: a settable clock, a recording mailer, configs.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use twofa_core::store::MemoryStore;
use twofa_core::webauthn::{UserVerification, WebauthnConfig};
use twofa_core::{Clock, Config, Engine, Mailer, Message, Proof};

/// A clock the test sets.
#[derive(Clone, Default)]
pub struct TestClock(pub Arc<AtomicU64>);

impl TestClock {
    pub fn at(t: u64) -> TestClock {
        TestClock(Arc::new(AtomicU64::new(t)))
    }
    pub fn set(&self, t: u64) {
        self.0.store(t, Ordering::SeqCst)
    }
    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl Clock for TestClock {
    fn now(&self) -> u64 {
        self.get()
    }
}

/// A mailer that keeps every message, and fails on demand.
#[derive(Clone, Default)]
pub struct Outbox {
    pub sent: Arc<Mutex<Vec<Message>>>,
    pub failing: Arc<AtomicBool>,
}

impl Outbox {
    pub fn fail(&self, on: bool) {
        self.failing.store(on, Ordering::SeqCst)
    }
    pub fn all(&self) -> Vec<Message> {
        self.sent.lock().unwrap().clone()
    }
    pub fn last_to(&self, to: &str) -> Message {
        self.all().into_iter().rev().find(|m| m.to == to).expect("no message to that address")
    }
    /// The code in the last message to `to` (the first run of 6+ digits in the text).
    pub fn last_code(&self, to: &str) -> String {
        let text = self.last_to(to).text;
        let digits: Vec<&str> = text.split(|c: char| !c.is_ascii_digit()).filter(|s| s.len() >= 6).collect();
        digits.first().expect("no code in message").to_string()
    }
    pub fn count(&self) -> usize {
        self.sent.lock().unwrap().len()
    }
}

impl Mailer for Outbox {
    fn send(&self, message: &Message) -> Result<(), String> {
        if self.failing.load(Ordering::SeqCst) {
            return Err("smtp down".into());
        }
        self.sent.lock().unwrap().push(message.clone());
        Ok(())
    }
}

pub const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
pub const T0: u64 = 1_700_000_000;

/// The test config; it grants the admin capability, which tests of admin calls need (engines
/// still cannot reach admin calls: only an `Admin` can).
pub fn config() -> Config {
    Config { admin: true, ..Config::new("Example Shop", "k1", KEY) }
}

/// An engine over an in-memory store with a test clock and outbox.
pub fn engine() -> (Engine, TestClock, Outbox) {
    engine_with(config(), MemoryStore::new())
}

pub fn engine_with(config: Config, store: impl twofa_core::store::Store + 'static) -> (Engine, TestClock, Outbox) {
    let clock = TestClock::at(T0);
    let outbox = Outbox::default();
    let engine = Engine::new(config, store, outbox.clone()).unwrap().with_clock(clock.clone());
    (engine, clock, outbox)
}

/// The TOTP code of a base32 secret at time `t` (SHA-1, 6 digits, 30 s), via totp-rs.
pub fn totp_code(secret_b32: &str, t: u64) -> String {
    totp_code_with(secret_b32, t, totp_rs::Algorithm::SHA1, 6, 30)
}

pub fn totp_code_with(secret_b32: &str, t: u64, alg: totp_rs::Algorithm, digits: u8, period: u64) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret_b32).unwrap();
    totp_rs::Builder::new()
        .with_algorithm(alg)
        .with_digits(digits)
        .with_step_duration(period)
        .with_secret(secret.as_ref().to_vec())
        .build_noncompliant()
        .generate(t)
        .to_string()
}

/// Enrols an authenticator app for `user` and returns (secret, step-up token of the first method).
pub fn enroll_totp(engine: &Engine, clock: &TestClock, user: &str, step_up: Option<&str>) -> (String, Option<String>) {
    let setup = engine.totp_enroll_begin(user, "user@example.com", step_up).unwrap();
    let added = engine.totp_enroll_confirm(user, &totp_code(&setup.secret, clock.get()), step_up).unwrap();
    (setup.secret, added.step_up.map(|s| s.token))
}

/// Signs in with TOTP after moving the clock one step ahead; returns the step-up token.
pub fn sign_in_totp(engine: &Engine, clock: &TestClock, user: &str, secret: &str) -> String {
    clock.advance(30);
    let ch = engine.login_begin(user).unwrap().challenge_id.unwrap();
    engine.login_verify(user, &ch, Proof::Totp(totp_code(secret, clock.get()))).unwrap().step_up.token
}

/// The browser origin of the WebAuthn tests.
pub const ORIGIN: &str = "http://localhost:8080";

/// [`config`] with WebAuthn for `localhost` at [`ORIGIN`] (user verification preferred).
pub fn webauthn_config() -> Config {
    let mut c = config();
    c.webauthn = Some(WebauthnConfig {
        rp_id: "localhost".into(),
        rp_name: "Example Shop".into(),
        origins: vec![ORIGIN.into()],
        user_verification: UserVerification::Preferred,
        timeout_secs: 300,
    });
    c
}

/// Runs `attempt(i)` on `threads` threads released together by a barrier; the answers in order.
pub fn race<T: Send>(threads: usize, attempt: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let barrier = Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let (barrier, attempt) = (&barrier, &attempt);
                s.spawn(move || {
                    barrier.wait();
                    attempt(i)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}
