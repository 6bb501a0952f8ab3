//! Regression tests of the second security audit (issue 17), items 7, 8 and 9, through the
//! engine: cross-origin WebAuthn assertions, invisible and bidirectional characters in addresses
//! and subjects, and TOTP step arithmetic at the top of the clock range.

mod common;
#[path = "support/webauthn.rs"]
mod webauthn_support;

use common::*;
use twofa_core::mail::{Template, validate_address};
use twofa_core::store::{MemoryStore, Store};
use twofa_core::{Admin, Engine, Error, Proof, TotpAlgorithm};
use webauthn_support::SoftAuthenticator;

// ---- item 7: crossOrigin in assertions ----

#[test]
fn cross_origin_assertion_refused_at_sign_in() {
    let (engine, _clock, _outbox) = engine_with(webauthn_config(), MemoryStore::new());
    let mut key = SoftAuthenticator::counter_zero();
    let reg = engine.webauthn_register_begin("u", "Phone", None).unwrap();
    engine.webauthn_register_finish("u", &key.register(&reg.options_json, ORIGIN), None).unwrap();

    // A valid, properly signed assertion whose client data says crossOrigin: true.
    key.set_cross_origin(true);
    let ch = engine.login_begin("u").unwrap();
    let response = key.authenticate(&ch.webauthn_options.unwrap(), ORIGIN);
    let refused = engine.login_verify("u", &ch.challenge_id.unwrap(), Proof::Webauthn(response));
    assert_eq!(refused.unwrap_err(), Error::WebauthnRejected("cross-origin request not allowed".into()));

    // Registration refuses it with the same error.
    let reg = engine.webauthn_register_begin("v", "Phone", None).unwrap();
    let refused = engine.webauthn_register_finish("v", &key.register(&reg.options_json, ORIGIN), None);
    assert_eq!(refused.unwrap_err(), Error::WebauthnRejected("cross-origin request not allowed".into()));

    // The same device signs in from the relying party's own page.
    key.set_cross_origin(false);
    let ch = engine.login_begin("u").unwrap();
    let response = key.authenticate(&ch.webauthn_options.unwrap(), ORIGIN);
    engine.login_verify("u", &ch.challenge_id.unwrap(), Proof::Webauthn(response)).unwrap();
}

// ---- item 8: invisible and bidirectional characters ----

const INVISIBLE: [char; 8] =
    ['\u{202E}', '\u{200B}', '\u{FEFF}', '\u{2028}', '\u{2029}', '\u{00AD}', '\u{2066}', '\u{E0041}'];

#[test]
fn addresses_with_invisible_or_bidirectional_characters_refused() {
    let (engine, _clock, outbox) = engine();
    for c in INVISIBLE {
        for address in [format!("ev{c}il@example.com"), format!("a@example.com{c}"), format!("{c}a@example.com")] {
            let why = Error::InvalidInput("email address: no invisible or bidirectional characters".into());
            assert_eq!(validate_address(&address), Err(why.clone()), "{address:?}");
            assert_eq!(engine.email_enroll_begin("u", &address, None).unwrap_err(), why, "{address:?}");
        }
    }
    assert_eq!(outbox.count(), 0);
    assert!(validate_address("ok@example.com").is_ok());
}

#[test]
fn labels_with_separators_never_reach_a_subject() {
    // A host template that puts the label in the subject.
    let mut c = webauthn_config();
    c.templates.method_added.subject = "{issuer}: {label} was added".into();
    let (engine, _clock, outbox) = engine_with(c, MemoryStore::new());
    engine.set_contact_email("u", "u@example.com", None).unwrap();
    let mut key = SoftAuthenticator::counter_zero();
    let mut token = None;
    for (i, c) in INVISIBLE.into_iter().enumerate() {
        let label = format!("Key {i}{c}Bcc: x@evil.example");
        // Either the label is refused, or the notice's subject holds no such character.
        let reg = match engine.webauthn_register_begin("u", &label, token.as_deref()) {
            Ok(reg) => reg,
            Err(Error::InvalidInput(_)) => continue,
            Err(e) => panic!("{label:?}: {e:?}"),
        };
        let added = engine.webauthn_register_finish("u", &key.register(&reg.options_json, ORIGIN), token.as_deref());
        let added = match added {
            Ok(added) => added,
            Err(Error::InvalidInput(_)) => continue,
            Err(e) => panic!("{label:?}: {e:?}"),
        };
        token = token.or(added.step_up.map(|s| s.token));
        let subject = outbox.last_to("u@example.com").subject;
        assert!(subject.contains(&format!("Key {i}")), "{subject:?}");
        assert!(!subject.chars().any(|c| c.is_control() || INVISIBLE.contains(&c)), "{subject:?}");
    }
    for m in outbox.all() {
        assert!(!m.subject.chars().any(|c| c.is_control() || INVISIBLE.contains(&c)), "{:?}", m.subject);
    }
}

#[test]
fn a_label_stored_before_the_fix_never_reaches_a_subject() {
    // A record written by an engine that accepted U+2028 and U+202E in labels.
    let mut c = webauthn_config();
    c.templates.method_removed.subject = "{issuer}: {label} was removed".into();
    let store = std::sync::Arc::new(MemoryStore::new());
    let (engine, _clock, outbox) = engine_with(c, store.clone());
    engine.set_contact_email("u", "u@example.com", None).unwrap();
    let mut key = SoftAuthenticator::counter_zero();
    let reg = engine.webauthn_register_begin("u", "OldKey", None).unwrap();
    let added = engine.webauthn_register_finish("u", &key.register(&reg.options_json, ORIGIN), None).unwrap();
    let token = added.step_up.unwrap().token;
    let stored = store.get("user/u").unwrap().unwrap();
    let text = String::from_utf8(stored.bytes.clone()).unwrap();
    assert_eq!(text.matches("\"OldKey\"").count(), 1, "{text}");
    let edited = text.replace("\"OldKey\"", "\"Old\\u2028Bcc: x@evil.example\\u2029\\u202eKey\\u200b\\ufeff\"");
    store.put("user/u", edited.as_bytes(), Some(stored.version)).unwrap();

    let method = engine.security_status("u").unwrap().methods[0].id.clone();
    engine.remove_method("u", &method, Some(&token)).unwrap();
    let subject = outbox.last_to("u@example.com").subject;
    assert_eq!(subject, "Example Shop: Old Bcc: x@evil.example Key was removed");
}

#[test]
fn template_subjects_with_invisible_characters_refused() {
    for c in ['\u{202E}', '\u{200B}', '\u{FEFF}', '\u{2028}', '\u{2029}'] {
        let mut config = config();
        config.templates.login_code =
            Template { subject: format!("{{issuer}}{c}: your code"), ..config.templates.login_code.clone() };
        let e = Engine::new(config, MemoryStore::new(), Outbox::default()).expect_err("refused");
        assert!(matches!(&e, Error::InvalidInput(m) if m.contains("templates.login_code.subject")), "{c:?}: {e:?}");
    }
}

// ---- item 9: TOTP step arithmetic at the top of the clock range ----

/// The largest Unix time twofa accepts (9999-12-31T23:59:59Z).
const MAX_CLOCK: u64 = 253_402_300_799;
const SEED: &[u8] = b"12345678901234567890";

fn seed_b32() -> String {
    totp_rs::Secret::from(SEED.to_vec()).to_base32()
}

/// The code of time step `step` (30 s), computed without a step-to-time multiplication.
fn code_of_step(step: u64) -> String {
    totp_rs::Builder::new()
        .with_digits(6)
        .with_step_duration(1)
        .with_skew(0)
        .with_secret(SEED.to_vec())
        .build_noncompliant()
        .generate(step)
        .to_string()
}

/// One sign-in attempt with `code` at `now`.
fn attempt(engine: &Engine, clock: &TestClock, user: &str, code: &str, now: u64) -> Result<(), Error> {
    clock.set(now);
    let ch = engine.login_begin(user)?.challenge_id.expect("a challenge");
    engine.login_verify(user, &ch, Proof::Totp(code.into())).map(|_| ())
}

fn totp_user(user: &str) -> (Engine, TestClock) {
    let (engine, clock, _) = engine();
    Admin::new(engine.clone()).unwrap().totp_import(user, &seed_b32(), TotpAlgorithm::Sha1, 6, 30).unwrap();
    (engine, clock)
}

#[test]
fn a_totp_code_counts_once_at_the_top_of_the_clock_range() {
    // The last step before 2^64 (times 18446744073709551600..=u64::MAX): step s+1 used to
    // saturate onto step s's time, so the same code was accepted a second time.
    let top = u64::MAX / 30;
    let (engine, clock) = totp_user("top");
    let code = code_of_step(top);
    let results: Vec<(u64, Result<(), Error>)> = [top * 30, top * 30 + 7, top * 30 + 14, u64::MAX]
        .into_iter()
        .map(|now| (now, attempt(&engine, &clock, "top", &code, now)))
        .collect();
    let accepted = results.iter().filter(|(_, r)| r.is_ok()).count();
    assert!(accepted <= 1, "one code counted {accepted} times: {results:?}");
    for (now, result) in results {
        // Clocks beyond MAX_CLOCK are refused as invalid clocks.
        assert!(matches!(&result, Err(Error::Internal(m)) if m.starts_with("clock: ")), "at {now}: {result:?}");
    }

    // At the top of the accepted range, a code counts for its own step only, once.
    let (engine, clock) = totp_user("max");
    let s = MAX_CLOCK / 30 - 1;
    attempt(&engine, &clock, "max", &code_of_step(s), s * 30).unwrap();
    for now in [s * 30 + 29, (s + 1) * 30, MAX_CLOCK] {
        let again = attempt(&engine, &clock, "max", &code_of_step(s), now).unwrap_err();
        assert!(matches!(again, Error::Replayed | Error::InvalidCode), "at {now}: {again:?}");
    }
    attempt(&engine, &clock, "max", &code_of_step(s + 1), MAX_CLOCK).unwrap();
    let beyond = attempt(&engine, &clock, "max", &code_of_step(s + 2), MAX_CLOCK + 1).unwrap_err();
    assert!(matches!(&beyond, Error::Internal(m) if m.starts_with("clock: ")), "{beyond:?}");
}
