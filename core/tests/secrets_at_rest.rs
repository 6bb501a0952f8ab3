//! No secret at rest, none in `Debug`.
//!
//! On an SQLite file: an authenticator app, an email method, a WebAuthn device and recovery
//! codes are enrolled, sign-in codes are sent, sign-ins issue step-up tokens. Then the raw bytes
//! of the database (main file, `-wal` and `-shm`, while the engine is open and again after it
//! closed and checkpointed) must contain none of: the TOTP secret (base32 upper and lower case,
//! raw bytes, hex, base64), any emailed code, any recovery code (with and without the hyphen, both
//! cases), any step-up token. The `Debug` output of every value that carries one of them must not
//! show it either.
#![cfg(feature = "sqlite")]

mod common;

#[path = "support/webauthn.rs"]
mod webauthn_support;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{Outbox, T0, TestClock, totp_code};
use std::path::Path;
use twofa_core::store::{SqliteStore, Store};
use twofa_core::webauthn::{UserVerification, WebauthnConfig};
use twofa_core::{Action, AdminRequest, Config, Engine, Feedback, Operation, Outcome, Proof, Request, TotpAlgorithm};
use webauthn_support::SoftAuthenticator;

const USER: &str = "alice";
const CONTACT: &str = "alice@example.com";
const EMAIL: &str = "alice.mail@example.com";
const ORIGIN: &str = "http://localhost:8080";

/// Byte strings that must appear nowhere.
#[derive(Default)]
struct Needles(Vec<Needle>);

struct Needle {
    label: String,
    bytes: Vec<u8>,
    /// A run of digits: only a whole number counts (a 6-digit code is not found inside a
    /// 10-digit timestamp).
    number: bool,
}

impl Needles {
    fn add(&mut self, label: impl Into<String>, bytes: impl AsRef<[u8]>) {
        let bytes = bytes.as_ref().to_vec();
        assert!(bytes.len() >= 6, "needle too short to be meaningful");
        let number = bytes.iter().all(u8::is_ascii_digit);
        self.0.push(Needle { label: label.into(), bytes, number });
    }

    fn text(&mut self, label: &str, s: &str) {
        self.add(label, s);
    }

    /// The labels of every needle found in `hay`.
    fn found_in(&self, hay: &[u8]) -> Vec<String> {
        self.0.iter().filter(|n| contains(hay, &n.bytes, n.number)).map(|n| n.label.clone()).collect()
    }

    fn assert_absent(&self, what: &str, hay: impl AsRef<[u8]>) {
        let found = self.found_in(hay.as_ref());
        assert!(found.is_empty(), "{what} contains {found:?}");
    }
}

fn contains(hay: &[u8], needle: &[u8], whole_number: bool) -> bool {
    if needle.len() > hay.len() {
        return false;
    }
    (0..=hay.len() - needle.len()).any(|i| {
        hay[i..i + needle.len()] == *needle
            && (!whole_number
                || ((i == 0 || !hay[i - 1].is_ascii_digit())
                    && hay.get(i + needle.len()).is_none_or(|b| !b.is_ascii_digit())))
    })
}

fn hex(bytes: &[u8], upper: bool) -> String {
    bytes.iter().map(|b| if upper { format!("{b:02X}") } else { format!("{b:02x}") }).collect()
}

fn code_in(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit()).find(|s| s.len() >= 6).expect("no code in message").to_string()
}

/// Every file of the database: main, `-wal`, `-shm` (those that exist), with their names.
fn database_files(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let p = format!("{}{suffix}", path.display());
        if let Ok(bytes) = std::fs::read(&p) {
            out.push((p, bytes));
        }
    }
    out
}

fn webauthn_config() -> Config {
    let mut config = common::config();
    config.webauthn = Some(WebauthnConfig {
        rp_id: "localhost".into(),
        rp_name: "Example Shop".into(),
        origins: vec![ORIGIN.into()],
        user_verification: UserVerification::Preferred,
        timeout_secs: 300,
    });
    config
}

#[test]
fn no_secret_at_rest_or_in_debug() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("twofa.db");
    let clock = TestClock::at(T0);
    let outbox = Outbox::default();
    let engine = Engine::new(webauthn_config(), SqliteStore::open(&path).unwrap(), outbox.clone())
        .unwrap()
        .with_clock(clock.clone());
    let mut needles = Needles::default();
    // Debug output of every value that carries a secret.
    let mut debug: Vec<(String, String)> = Vec::new();
    let mut dbg = |what: &str, s: String| debug.push((what.to_string(), s));

    engine.set_contact_email(USER, CONTACT, None).unwrap();

    // Authenticator app.
    let setup = engine.totp_enroll_begin(USER, CONTACT, None).unwrap();
    let raw = totp_rs::Secret::try_from_base32(&setup.secret).unwrap().as_ref().to_vec();
    assert_eq!(raw.len(), 20);
    needles.text("TOTP secret (base32)", &setup.secret);
    needles.text("TOTP secret (lowercase base32)", &setup.secret.to_lowercase());
    needles.add("TOTP secret (raw bytes)", &raw);
    needles.text("TOTP secret (hex)", &hex(&raw, false));
    needles.text("TOTP secret (HEX)", &hex(&raw, true));
    needles.text("TOTP secret (base64)", &STANDARD.encode(&raw));
    needles.text("TOTP secret (base64url)", &URL_SAFE_NO_PAD.encode(&raw));
    dbg("TotpSetup", format!("{setup:?}"));
    dbg("Outcome::TotpSetup", format!("{:?}", Outcome::TotpSetup(setup.clone())));
    let totp_enrol_code = totp_code(&setup.secret, clock.get());
    let added = engine.totp_enroll_confirm(USER, &totp_enrol_code, None).unwrap();
    let step_up = added.step_up.clone().unwrap();
    needles.text("step-up token of the first method", &step_up.token);
    dbg("MethodAdded", format!("{added:?}"));
    dbg("StepUpToken", format!("{step_up:?}"));
    let su = Some(step_up.token.as_str());

    // Email method.
    engine.email_enroll_begin(USER, EMAIL, su).unwrap();
    let enrol_code = outbox.last_code(EMAIL);
    needles.text("email enrolment code", &enrol_code);
    dbg("Message (enrolment code)", format!("{:?}", outbox.last_to(EMAIL)));
    engine.email_enroll_confirm(USER, &enrol_code, su).unwrap();

    // WebAuthn device (twofa_core::webauthn is implemented: register one).
    let registration = engine.webauthn_register_begin(USER, "Security key", su).unwrap();
    let mut key = SoftAuthenticator::new();
    let credential = key.register(&registration.options_json, ORIGIN);
    let device = engine.webauthn_register_finish(USER, &credential, su).unwrap();
    assert_eq!(device.method.kind, twofa_core::MethodKind::Webauthn);

    // Recovery codes.
    let recovery = engine.recovery_codes_generate(USER, su).unwrap();
    assert_eq!(recovery.codes.len(), 10);
    for (i, code) in recovery.codes.iter().enumerate() {
        needles.text(&format!("recovery code {i}"), code);
        needles.text(&format!("recovery code {i} (no hyphen)"), &code.replace('-', ""));
        needles.text(&format!("recovery code {i} (upper case)"), &code.to_uppercase());
        needles.text(&format!("recovery code {i} (upper case, no hyphen)"), &code.replace('-', "").to_uppercase());
    }
    dbg("RecoveryCodes", format!("{recovery:?}"));
    dbg("Outcome::RecoveryCodes", format!("{:?}", Outcome::RecoveryCodes(recovery.clone())));

    // A sign-in: a code is emailed (and left unused).
    clock.advance(30);
    let challenge = engine.login_begin(USER).unwrap();
    assert!(challenge.webauthn_options.is_some());
    let ch = challenge.challenge_id.clone().unwrap();
    engine.login_send_email_code(USER, &ch).unwrap();
    let login_code = outbox.last_code(EMAIL);
    needles.text("email sign-in code", &login_code);
    dbg("Message (sign-in code)", format!("{:?}", outbox.last_to(EMAIL)));

    // Another sign-in with the app: a second step-up token.
    let totp_login_code = totp_code(&setup.secret, clock.get());
    let proof = Proof::Totp(totp_login_code.clone());
    dbg("Proof::Totp", format!("{proof:?}"));
    let request = Request::LoginVerify { challenge: ch.clone(), proof: proof.clone(), remember_device: false };
    dbg("Request::LoginVerify", format!("{request:?}"));
    let success = engine.login_verify(USER, &ch, proof).unwrap();
    needles.text("step-up token of a sign-in", &success.step_up.token);
    dbg("LoginSuccess", format!("{success:?}"));
    dbg("Outcome::LoginSuccess", format!("{:?}", Outcome::LoginSuccess(success.clone())));

    // A sign-in code sent by a host that drives the Operation itself (over a second connection):
    // neither the actions nor the operation show the code.
    clock.advance(61);
    let ch2 = engine.login_begin(USER).unwrap().challenge_id.unwrap();
    let side = SqliteStore::open(&path).unwrap();
    let mut op =
        Operation::new(engine.core().clone(), USER, Request::LoginSendEmailCode { challenge: ch2 }, clock.get());
    let mut driven_code = None;
    loop {
        dbg("Action", format!("{:?}", op.action()));
        dbg("Operation", format!("{op:?}"));
        let feedback = match op.action().clone() {
            Action::Load { key } => Feedback::Loaded(side.get(&key)),
            Action::Write { key, bytes, expected } => Feedback::Written(side.put(&key, &bytes, expected)),
            Action::Delete { key, expected } => Feedback::Deleted(side.delete(&key, expected)),
            Action::Send { message } => {
                driven_code = Some(code_in(&message.text));
                let feedback = Feedback::Sent(Ok(()));
                dbg("Feedback::Sent", format!("{feedback:?}"));
                feedback
            }
            Action::Emit { event } => {
                dbg("Action::Emit", serde_json::to_string(&event).unwrap());
                Feedback::Emitted
            }
            Action::Done => break,
        };
        dbg("Feedback", format!("{feedback:?}"));
        op.feed(feedback);
    }
    assert!(matches!(op.finish().unwrap(), Outcome::CodeSent(_)));
    let driven_code = driven_code.expect("the operation sent no code");
    needles.text("email sign-in code (host-driven operation)", &driven_code);
    drop(side);

    // Values that carry a secret but are not stored.
    for (what, p) in [
        ("Proof::Email", Proof::Email(login_code.clone())),
        ("Proof::Recovery", Proof::Recovery(recovery.codes[0].clone())),
        ("Proof::Totp (secret as code)", Proof::Totp(setup.secret.clone())),
    ] {
        dbg(what, format!("{p:?}"));
    }
    for (what, r) in [
        (
            "Request::TotpEnrollConfirm",
            Request::TotpEnrollConfirm { code: totp_login_code.clone(), step_up: su.map(Into::into) },
        ),
        (
            "Request::EmailEnrollConfirm",
            Request::EmailEnrollConfirm { code: enrol_code.clone(), step_up: su.map(Into::into) },
        ),
        (
            "Request::RecoveryCodesGenerate",
            Request::RecoveryCodesGenerate { step_up: Some(success.step_up.token.clone()) },
        ),
        ("Request::RemoveMethod", Request::RemoveMethod { method_id: "totp-1".into(), step_up: su.map(Into::into) }),
        (
            "Request::LoginVerify (recovery)",
            Request::LoginVerify {
                challenge: ch.clone(),
                proof: Proof::Recovery(recovery.codes[1].clone()),
                remember_device: false,
            },
        ),
    ] {
        dbg(what, format!("{r:?}"));
    }
    let import = AdminRequest::TotpImport {
        secret: setup.secret.clone(),
        algorithm: TotpAlgorithm::Sha1,
        digits: 6,
        period: 30,
    };
    dbg("AdminRequest::TotpImport", format!("{import:?}"));

    // Errors provoked with secrets as (wrong) inputs, Debug and Display.
    let ch3 = engine.login_begin(USER).unwrap().challenge_id.unwrap();
    let errors = [
        engine.login_verify(USER, &ch3, Proof::Totp(totp_login_code.clone())).unwrap_err(),
        engine.login_verify(USER, &ch3, Proof::Totp(setup.secret.clone())).unwrap_err(),
        engine.login_verify(USER, &ch3, Proof::Totp(format!("{totp_login_code}0"))).unwrap_err(),
        engine.login_verify(USER, &ch3, Proof::Email(format!("{login_code}x"))).unwrap_err(),
        engine.login_verify(USER, &ch3, Proof::Recovery(format!("{}x", recovery.codes[2]))).unwrap_err(),
        engine.login_verify(USER, &ch3, Proof::Recovery(format!("{}!", step_up.token))).unwrap_err(),
        engine.email_enroll_confirm(USER, &enrol_code, su).unwrap_err(),
        engine.recovery_codes_generate(USER, Some(&recovery.codes[3])).unwrap_err(),
        engine.recovery_codes_generate(USER, Some(&format!("{}x", success.step_up.token))).unwrap_err(),
        engine.totp_enroll_begin(USER, &format!("{}:{}", setup.secret, login_code), su).unwrap_err(),
        engine
            .set_contact_email(USER, &format!("{} {}@example.com", setup.secret, recovery.codes[4]), None)
            .unwrap_err(),
        engine.rename_method(USER, "totp-1", &format!("{}\n{}", setup.secret, "x".repeat(70)), su).unwrap_err(),
        twofa_core::Admin::new(engine.clone())
            .unwrap()
            .totp_import(USER, &setup.secret[..16], TotpAlgorithm::Sha1, 6, 30)
            .unwrap_err(),
        twofa_core::Admin::new(engine.clone())
            .unwrap()
            .totp_import(USER, &format!("{}!", setup.secret), TotpAlgorithm::Sha1, 6, 30)
            .unwrap_err(),
    ];
    for e in &errors {
        dbg(&format!("Error {}", e.name()), format!("{e:?}"));
        dbg(&format!("Error {} (Display)", e.name()), e.to_string());
    }
    // A failing delivery of a sign-in code.
    clock.advance(61);
    outbox.fail(true);
    let mail_error = engine.login_send_email_code(USER, &ch3).unwrap_err();
    outbox.fail(false);
    assert_eq!(mail_error.name(), "mail");
    dbg("Error mail", format!("{mail_error:?}"));
    dbg("Engine", format!("{engine:?}"));

    for (what, text) in &debug {
        needles.assert_absent(&format!("Debug of {what} ({text})"), text);
    }

    // At rest, with the engine open (the WAL holds every version written)...
    let open_files = database_files(&path);
    assert!(open_files.iter().any(|(name, _)| name.ends_with("-wal")), "expected a WAL file while open");
    for (name, bytes) in &open_files {
        eprintln!("{name}: {} bytes", bytes.len());
        needles.assert_absent(name, bytes);
    }
    // ...and after it closed and checkpointed.
    drop(engine);
    let closed_files = database_files(&path);
    for (name, bytes) in &closed_files {
        eprintln!("{name} (closed): {} bytes", bytes.len());
        needles.assert_absent(&format!("{name} (closed)"), bytes);
    }
    // The check itself works: the record is there, readable, and the needles are real.
    let reopened = SqliteStore::open(&path).unwrap();
    let record = reopened.get(&format!("user/{USER}")).unwrap().unwrap().bytes;
    let text = String::from_utf8(record.clone()).unwrap();
    assert!(text.contains("\"methods\""));
    assert!(text.contains(EMAIL));
    needles.assert_absent("the current record", &record);
    let mut probe = closed_files.iter().find(|(n, _)| !n.contains('-')).unwrap().1.clone();
    probe.extend_from_slice(login_code.as_bytes());
    assert!(needles.found_in(&probe).contains(&"email sign-in code".to_string()), "the search finds a planted code");
    eprintln!("{} needles, {} Debug strings checked", needles.0.len(), debug.len());
}
