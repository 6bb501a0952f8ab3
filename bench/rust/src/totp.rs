//! The `totp` workload: one TOTP sign-in check (SHA-1, 6 digits, ±1 step).
//!
//! twofa: `login_begin` + `login_verify` for a user whose secret was imported with the admin
//! capability; the clock moves to a fresh time step before each wrong/right pair, so neither
//! replay protection nor the lockout short-cuts anything (the wrong code is counted as a
//! failure, the right one resets the count). Peers verify the same alternation at a fixed time.

use std::hint::black_box;
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use totp_rs::{Secret, Totp};
use twofa_bench::fixture::Fixture;
use twofa_core::Proof;

use crate::case::Case;
use crate::subject::{Factory, StoreKind, Subject};

/// The TOTP time step, in seconds.
pub const PERIOD: u64 = 30;

/// Every `totp` case: each twofa surface over each store, then the peers.
pub fn cases(factory: &Factory, fixture: &Fixture) -> Vec<Box<dyn Case>> {
    let mut cases: Vec<Box<dyn Case>> = Vec::new();
    for surface in factory.surfaces() {
        for store in [StoreKind::Memory, StoreKind::Sqlite] {
            let subject = factory.subject(surface, store);
            let name = format!("{}/{}", surface.name(), store.name());
            cases.push(Box::new(TwofaTotp::new(subject, fixture, &fixture.user, &name)));
        }
    }
    cases.push(Box::new(TotpRs::new(fixture)));
    cases.push(Box::new(HmacSha1Floor::new(fixture)));
    cases
}

/// The fixture's authenticator app (SHA-1, 6 digits, 30 s, skew 1: totp-rs's defaults).
pub fn authenticator_app(fixture: &Fixture) -> Totp {
    let secret = Secret::try_from_base32(&fixture.totp_secret).expect("a base32 TOTP secret");
    totp_rs::Builder::new().with_secret(secret).build().expect("a valid TOTP secret")
}

/// The code at time `t`, and a well-formed wrong one that matches no step of the ±1 window.
pub fn codes(totp: &Totp, t: u64) -> (String, String) {
    let right = totp.generate(t).to_string();
    let window = [t - PERIOD, t, t + PERIOD].map(|t| totp.generate(t).to_string());
    let mut wrong: u32 = right.parse().expect("a numeric code");
    loop {
        wrong = (wrong + 1) % 1_000_000;
        let wrong = format!("{wrong:06}");
        if !window.contains(&wrong) {
            return (wrong, right);
        }
    }
}

/// twofa's sign-in check on one subject: `totp/<subject>`, `totp-begin/<subject>` and
/// `totp-verify/<subject>` from the same operations.
pub struct TwofaTotp {
    /// The surface and store.
    subject: Box<dyn Subject>,
    /// `<surface>/<store>`.
    name: String,
    /// The user signing in.
    user: String,
    /// The user's authenticator app.
    app: Totp,
    /// The right code of the current time step, once its wrong code was tried.
    right: Option<String>,
}

impl TwofaTotp {
    /// Imports the fixture's secret for `user` on `subject`; the case reports as `totp/<name>`
    /// (`<surface>/<store>`).
    pub fn new(mut subject: Box<dyn Subject>, fixture: &Fixture, user: &str, name: &str) -> TwofaTotp {
        subject.totp_import(user, &fixture.totp_secret);
        TwofaTotp { subject, name: name.into(), user: user.into(), app: authenticator_app(fixture), right: None }
    }

    /// One sign-in check: a wrong code at a fresh time step, or that step's right code.
    /// Returns the time `login_begin` and `login_verify` took.
    pub fn sign_in(&mut self) -> (Duration, Duration) {
        let (code, expect_success) = match self.right.take() {
            Some(right) => (right, true),
            None => {
                let clock = self.subject.clock();
                clock.advance(PERIOD);
                let (wrong, right) = codes(&self.app, clock.get());
                self.right = Some(right);
                (wrong, false)
            }
        };
        let proof = Proof::Totp(code);
        let started = Instant::now();
        let challenge = self.subject.login_begin(&self.user);
        let begun = Instant::now();
        let result = self.subject.login_verify(&self.user, &challenge.id, proof);
        let verified = Instant::now();
        match (result, expect_success) {
            (Ok(()), true) | (Err("invalid_code"), false) => {}
            (result, _) => panic!("totp/{}: expected success {expect_success}, got {result:?}", self.name),
        }
        (begun - started, verified - begun)
    }
}

impl Case for TwofaTotp {
    fn ids(&self) -> Vec<String> {
        ["totp", "totp-begin", "totp-verify"].map(|w| format!("{w}/{}", self.name)).to_vec()
    }

    fn run(&mut self, ops: u64) -> Vec<Duration> {
        let (mut begin, mut verify) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..ops {
            let (b, v) = self.sign_in();
            begin += b;
            verify += v;
        }
        vec![begin + verify, begin, verify]
    }
}

/// `totp/totp-rs`: `Totp::check` (skew 1) at a fixed time, alternating a wrong and the right
/// code.
struct TotpRs {
    /// The fixture's TOTP.
    totp: Totp,
    /// The fixed time of every check.
    t: u64,
    /// The wrong code, then the right one.
    codes: [String; 2],
}

impl TotpRs {
    /// The fixture's TOTP with a wrong and the right code at the fixture's `t0`.
    fn new(fixture: &Fixture) -> TotpRs {
        let totp = authenticator_app(fixture);
        let (wrong, right) = codes(&totp, fixture.t0);
        assert!(totp.check(&wrong, fixture.t0).is_none() && totp.check(&right, fixture.t0).is_some());
        TotpRs { totp, t: fixture.t0, codes: [wrong, right] }
    }
}

impl Case for TotpRs {
    fn ids(&self) -> Vec<String> {
        vec!["totp/totp-rs".into()]
    }

    fn run(&mut self, ops: u64) -> Vec<Duration> {
        let started = Instant::now();
        for i in 0..ops {
            let code = &self.codes[(i % 2) as usize];
            black_box(self.totp.check(black_box(code), black_box(self.t)));
        }
        vec![started.elapsed()]
    }
}

/// `totp/floor-hmac-sha1x3`: the least a ±1 check must compute, three HMAC-SHA1 of the 8-byte
/// counters around now (RustCrypto `hmac` + `sha1`, which use the CPU's SHA instructions). The
/// key is set up once per check (the secret could not be kept keyed between sign-ins without
/// holding it in the clear), then cloned for each counter.
struct HmacSha1Floor {
    /// The fixture's TOTP secret.
    key: Vec<u8>,
    /// The time step of the fixture's `t0`.
    counter: u64,
}

impl HmacSha1Floor {
    /// The fixture's secret and time step.
    fn new(fixture: &Fixture) -> HmacSha1Floor {
        let key = Secret::try_from_base32(&fixture.totp_secret).expect("a base32 TOTP secret");
        HmacSha1Floor { key: key.to_vec(), counter: fixture.t0 / PERIOD }
    }
}

impl Case for HmacSha1Floor {
    fn ids(&self) -> Vec<String> {
        vec!["totp/floor-hmac-sha1x3".into()]
    }

    fn run(&mut self, ops: u64) -> Vec<Duration> {
        let started = Instant::now();
        for _ in 0..ops {
            let keyed = Hmac::<Sha1>::new_from_slice(black_box(&self.key)).expect("HMAC takes any key length");
            for counter in [self.counter - 1, self.counter, self.counter + 1] {
                let mut mac = keyed.clone();
                mac.update(&counter.to_be_bytes());
                black_box(mac.finalize().into_bytes());
            }
        }
        vec![started.elapsed()]
    }
}
