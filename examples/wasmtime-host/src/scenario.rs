//! One scenario, run against any [`Surface`]: it asserts every step and records each outcome
//! (kind and error name, never a random value) in a [`Transcript`], so the native core and the
//! component can be compared step by step.

use crate::surface::{R, Surface};
use crate::webauthn_support::SoftAuthenticator;
use std::fmt;
use twofa_core::webauthn::WebauthnConfig;
use twofa_core::{Config, Error, MethodKind, Proof, TotpAlgorithm};

/// The master key of the scenario config (32 bytes, base64).
pub const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
/// The browser origin of the WebAuthn ceremonies.
pub const ORIGIN: &str = "http://localhost:8080";
/// The time the scenario starts at (after the RFC vectors).
pub const T0: u64 = 1_700_000_000;

/// The scenario's config: defaults, one key, WebAuthn for `localhost`.
pub fn config() -> Config {
    let mut config = Config::new("Example Shop", "k1", KEY);
    config.webauthn = Some(WebauthnConfig::new("localhost", "Example Shop", vec![ORIGIN.into()]));
    config
}

/// What happened at each step: `"<step>: ok"` or `"<step>: <error name>[ retry_after=N]"`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transcript {
    pub steps: Vec<String>,
}

impl fmt::Display for Transcript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.steps.iter().enumerate() {
            writeln!(f, "{:>3}. {step}", i + 1)?;
        }
        Ok(())
    }
}

/// The name of an error as every surface reports it, with its retry delay if any.
pub fn error_name(e: &Error) -> String {
    match e.retry_after() {
        Some(secs) => format!("{} retry_after={secs}", e.name()),
        None => e.name().to_string(),
    }
}

/// The TOTP code of a base32 secret at `t`, computed independently with totp-rs.
pub fn totp_code(secret_b32: &str, t: u64, alg: totp_rs::Algorithm, digits: u8, period: u64) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret_b32).expect("base32 secret");
    totp_rs::Builder::new()
        .with_algorithm(alg)
        .with_digits(digits)
        .with_step_duration(period)
        .with_secret(secret.as_ref().to_vec())
        .build_noncompliant()
        .generate(t)
        .to_string()
}

/// The default authenticator-app code (SHA-1, 6 digits, 30 s).
fn code(secret: &str, t: u64) -> String {
    totp_code(secret, t, totp_rs::Algorithm::SHA1, 6, 30)
}

/// A well-formed code that is not valid for `secret` around `t` (skew ±1 step).
fn wrong_code(secret: &str, t: u64) -> String {
    let valid = [code(secret, t - 30), code(secret, t), code(secret, t + 30)];
    (0..).map(|n| format!("{n:06}")).find(|c| !valid.contains(c)).expect("a wrong code")
}

/// The first run of 6+ digits in the last message to `to`.
fn mailed_code(s: &mut dyn Surface, to: &str) -> String {
    let message = s.outbox().into_iter().rev().find(|m| m.to == to).unwrap_or_else(|| panic!("no mail to {to}"));
    let text = message.text;
    let code = text.split(|c: char| !c.is_ascii_digit()).find(|run| run.len() >= 6);
    code.unwrap_or_else(|| panic!("no code in the mail to {to}")).to_string()
}

struct Run<'a> {
    s: &'a mut dyn Surface,
    t: Transcript,
}

impl Run<'_> {
    /// Records a step that must succeed; returns its value.
    fn ok<T>(&mut self, step: &str, r: R<T>) -> T {
        match r {
            Ok(v) => {
                self.t.steps.push(format!("{step}: ok"));
                v
            }
            Err(e) => panic!("[{}] {step}: expected success, got {e}", self.s.name()),
        }
    }

    /// Records a step that must fail with the error named `expected`; returns the error.
    fn err<T>(&mut self, step: &str, r: R<T>, expected: &str) -> Error {
        match r {
            Ok(_) => panic!("[{}] {step}: expected {expected}, got success", self.s.name()),
            Err(e) => {
                assert_eq!(e.name(), expected, "[{}] {step}: {e}", self.s.name());
                self.t.steps.push(format!("{step}: {}", error_name(&e)));
                e
            }
        }
    }

    /// A fresh sign-in challenge id for `user`.
    fn challenge(&mut self, user: &str) -> String {
        let r = self.s.login_begin(user);
        let ch = self.ok(&format!("login_begin {user}"), r);
        assert!(ch.second_factor_required, "[{}] {user} must pass a second factor", self.s.name());
        ch.challenge_id.expect("a challenge id")
    }

    /// Enrols an authenticator app for `user` (first method); returns the secret and the step-up token.
    fn enroll_totp(&mut self, user: &str) -> (String, String) {
        let r = self.s.totp_enroll_begin(user, &format!("{user}@example.com"), None);
        let setup = self.ok(&format!("totp_enroll_begin {user}"), r);
        assert!(setup.uri.starts_with("otpauth://totp/"));
        let now = self.s.now();
        let r = self.s.totp_enroll_confirm(user, &code(&setup.secret, now), None);
        let added = self.ok(&format!("totp_enroll_confirm {user}"), r);
        assert_eq!(added.method.kind, MethodKind::Totp);
        (setup.secret, added.step_up.expect("a first method gives a step-up token").token)
    }
}

/// The RFC 6238 appendix B secrets and 8-digit codes.
const RFC_SECRETS: [(TotpAlgorithm, totp_rs::Algorithm, &[u8]); 3] = [
    (TotpAlgorithm::Sha1, totp_rs::Algorithm::SHA1, b"12345678901234567890"),
    (TotpAlgorithm::Sha256, totp_rs::Algorithm::SHA256, b"12345678901234567890123456789012"),
    (
        TotpAlgorithm::Sha512,
        totp_rs::Algorithm::SHA512,
        b"1234567890123456789012345678901234567890123456789012345678901234",
    ),
];
const RFC_VECTORS: [(u64, [&str; 3]); 4] = [
    (59, ["94287082", "46119246", "90693936"]),
    (1_111_111_109, ["07081804", "68084774", "25091201"]),
    (1_234_567_890, ["89005924", "91819424", "93441116"]),
    (2_000_000_000, ["69279037", "90698825", "38618901"]),
];

/// Runs the scenario; panics at the first step that does not go as expected.
pub fn run_scenario(s: &mut dyn Surface) -> Transcript {
    let mut run = Run { s, t: Transcript::default() };
    rfc_vectors(&mut run);
    run.s.set_time(T0);
    let alice = totp_and_recovery(&mut run);
    email(&mut run);
    webauthn(&mut run);
    policy(&mut run);
    lockout(&mut run);
    let r = run.s.delete_user(&alice);
    run.ok("delete_user alice", r);
    run.t
}

/// RFC 6238 known answers: imported with the admin capability, verified through sign-in.
fn rfc_vectors(run: &mut Run) {
    for (i, (alg, rs_alg, secret)) in RFC_SECRETS.into_iter().enumerate() {
        let user = format!("rfc-{}", alg.as_str());
        let b32 = totp_rs::Secret::from(secret.to_vec()).to_base32();
        run.s.set_time(1);
        let r = run.s.totp_import(&user, &b32, alg, 8, 30);
        run.ok(&format!("totp_import {user}"), r);
        for (t, codes) in RFC_VECTORS {
            assert_eq!(totp_code(&b32, t, rs_alg, 8, 30), codes[i], "totp-rs agrees with RFC 6238");
            run.s.set_time(t);
            let ch = run.challenge(&user);
            let r = run.s.login_verify(&user, &ch, Proof::Totp(codes[i].into()));
            let success = run.ok(&format!("login_verify {user} t={t}"), r);
            assert_eq!(success.method, MethodKind::Totp);
        }
    }
}

/// TOTP enrolment, sign-in one step later, replay, recovery codes. Returns the user.
fn totp_and_recovery(run: &mut Run) -> String {
    let user = "alice";
    let (secret, _) = run.enroll_totp(user);
    run.s.set_time(T0 + 30);
    let good = code(&secret, T0 + 30);
    let ch = run.challenge(user);
    let r = run.s.login_verify(user, &ch, Proof::Totp(good.clone()));
    let token = run.ok("login_verify alice totp (one step later)", r).step_up.token;
    let ch = run.challenge(user);
    let r = run.s.login_verify(user, &ch, Proof::Totp(good));
    run.err("login_verify alice totp (same code again)", r, "replayed");

    let r = run.s.recovery_codes_generate(user, Some(&token));
    let codes = run.ok("recovery_codes_generate alice", r).codes;
    assert_eq!(codes.len(), 10);
    let ch = run.challenge(user);
    let r = run.s.login_verify(user, &ch, Proof::Recovery(codes[0].clone()));
    let success = run.ok("login_verify alice recovery", r);
    assert_eq!((success.method, success.recovery_codes_left), (MethodKind::Recovery, Some(9)));
    let ch = run.challenge(user);
    let r = run.s.login_verify(user, &ch, Proof::Recovery(codes[0].clone()));
    run.err("login_verify alice recovery (used code)", r, "invalid_code");
    let r = run.s.security_status(user);
    assert_eq!(run.ok("security_status alice", r).recovery_codes_left, 9);
    user.to_string()
}

/// Email enrolment and sign-in with the codes read from the outbox.
fn email(run: &mut Run) {
    let (user, address) = ("bob", "bob@example.com");
    run.s.set_time(T0 + 100);
    let r = run.s.email_enroll_begin(user, address, None);
    run.ok("email_enroll_begin bob", r);
    let emailed = mailed_code(run.s, address);
    let r = run.s.email_enroll_confirm(user, &emailed, None);
    let added = run.ok("email_enroll_confirm bob", r);
    assert_eq!(added.method.kind, MethodKind::Email);
    run.s.set_time(T0 + 200);
    let ch = run.challenge(user);
    let r = run.s.login_send_email_code(user, &ch);
    let sent = run.ok("login_send_email_code bob", r);
    assert_eq!(sent.sent_to.len(), 1);
    let r = run.s.login_verify(user, &ch, Proof::Email("000000".into()));
    if emailed != "000000" {
        run.err("login_verify bob email (wrong code)", r, "invalid_code");
    }
    let emailed = mailed_code(run.s, address);
    let r = run.s.login_verify(user, &ch, Proof::Email(emailed));
    assert_eq!(run.ok("login_verify bob email", r).method, MethodKind::Email);
}

/// WebAuthn registration and sign-in with a soft authenticator.
fn webauthn(run: &mut Run) {
    let user = "carol";
    run.s.set_time(T0 + 300);
    let mut key = SoftAuthenticator::new();
    let r = run.s.webauthn_register_begin(user, "Soft key", None);
    let registration = run.ok("webauthn_register_begin carol", r);
    let response = key.register(&registration.options_json, ORIGIN);
    let r = run.s.webauthn_register_finish(user, &response, None);
    let added = run.ok("webauthn_register_finish carol", r);
    assert_eq!((added.method.kind, added.method.label.as_str()), (MethodKind::Webauthn, "Soft key"));
    run.s.set_time(T0 + 330);
    let r = run.s.login_begin(user);
    let ch = run.ok("login_begin carol", r);
    let options = ch.webauthn_options.expect("webauthn options");
    let assertion = key.authenticate(&options, ORIGIN);
    let id = ch.challenge_id.expect("a challenge id");
    let r = run.s.login_verify(user, &id, Proof::Webauthn(assertion.clone()));
    assert_eq!(run.ok("login_verify carol webauthn", r).method, MethodKind::Webauthn);
    let id = run.challenge(user);
    let r = run.s.login_verify(user, &id, Proof::Webauthn(assertion));
    run.err("login_verify carol webauthn (old assertion)", r, "webauthn_rejected");
}

/// 2FA becomes required after an order; the last method cannot be removed.
fn policy(run: &mut Run) {
    let user = "dave";
    run.s.set_time(T0 + 400);
    let r = run.s.mark_order_created(user);
    run.ok("mark_order_created dave (no method yet)", r);
    let r = run.s.login_begin(user);
    let ch = run.ok("login_begin dave", r);
    assert!(ch.enrollment_required && ch.challenge_id.is_none());
    let r = run.s.security_status(user);
    let status = run.ok("security_status dave", r);
    assert!(status.two_factor_required && !status.compliant);
    let (_, token) = run.enroll_totp(user);
    let r = run.s.security_status(user);
    let status = run.ok("security_status dave (enrolled)", r);
    assert!(status.two_factor_required && status.compliant);
    let id = status.methods[0].id.clone();
    let r = run.s.remove_method(user, &id, Some(&token));
    run.err("remove_method dave (last method)", r, "policy_violation");
    let r = run.s.remove_method(user, &id, None);
    run.err("remove_method dave (no step-up)", r, "step_up_required");
}

/// Ten wrong codes lock the user out, even for the right code.
fn lockout(run: &mut Run) {
    let user = "erin";
    run.s.set_time(T0 + 500);
    let (secret, _) = run.enroll_totp(user);
    run.s.set_time(T0 + 530);
    let bad = wrong_code(&secret, T0 + 530);
    for i in 1..=10 {
        let ch = run.challenge(user);
        let r = run.s.login_verify(user, &ch, Proof::Totp(bad.clone()));
        run.err(&format!("login_verify erin wrong code #{i}"), r, "invalid_code");
    }
    let ch = run.challenge(user);
    let r = run.s.login_verify(user, &ch, Proof::Totp(code(&secret, T0 + 530)));
    let e = run.err("login_verify erin right code while locked", r, "locked_out");
    assert!(e.retry_after().is_some_and(|s| s > 0));
    let r = run.s.security_status(user);
    assert!(run.ok("security_status erin", r).locked_until.is_some());
}
