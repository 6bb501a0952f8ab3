//! Email one-time codes: expiry, single use, tries, cooldown, resend, purpose, delivery failure.

mod common;
use common::*;
use twofa_core::{Error, Proof};

const ADDR: &str = "alice@example.com";

/// A user with a confirmed email method and a sign-in challenge with a code sent.
fn signed_in_with_code() -> (twofa_core::Engine, TestClock, Outbox, String) {
    let (engine, clock, outbox) = engine();
    engine.email_enroll_begin("u", ADDR, None).unwrap();
    engine.email_enroll_confirm("u", &outbox.last_code(ADDR), None).unwrap();
    let ch = engine.login_begin("u").unwrap().challenge_id.unwrap();
    engine.login_send_email_code("u", &ch).unwrap();
    (engine, clock, outbox, ch)
}

fn wrong(code: &str) -> String {
    if code == "000000" { "111111".into() } else { "000000".into() }
}

#[test]
fn enrolment_and_sign_in() {
    let (engine, _clock, outbox, ch) = signed_in_with_code();
    let mail = outbox.last_to(ADDR);
    assert!(mail.subject.contains("sign-in code"));
    let code = outbox.last_code(ADDR);
    let ok = engine.login_verify("u", &ch, Proof::Email(code)).unwrap();
    assert_eq!(ok.method, twofa_core::MethodKind::Email);
}

#[test]
fn codes_are_single_use() {
    let (engine, _clock, outbox, ch) = signed_in_with_code();
    let code = outbox.last_code(ADDR);
    engine.login_verify("u", &ch, Proof::Email(code.clone())).unwrap();
    let ch2 = engine.login_begin("u").unwrap().challenge_id.unwrap();
    assert_eq!(engine.login_verify("u", &ch2, Proof::Email(code)).unwrap_err(), Error::Replayed);
}

#[test]
fn codes_expire() {
    let (engine, clock, outbox, _) = signed_in_with_code();
    clock.advance(601);
    let ch = engine.login_begin("u").unwrap().challenge_id.unwrap();
    let err = engine.login_verify("u", &ch, Proof::Email(outbox.last_code(ADDR))).unwrap_err();
    assert!(matches!(err, Error::Expired | Error::NotFound(_)), "{err:?}");
}

#[test]
fn a_code_dies_after_five_wrong_tries_without_touching_the_rest_of_the_budget() {
    let (engine, _clock, outbox, ch) = signed_in_with_code();
    let code = outbox.last_code(ADDR);
    for _ in 0..5 {
        assert_eq!(engine.login_verify("u", &ch, Proof::Email(wrong(&code))).unwrap_err(), Error::InvalidCode);
    }
    assert!(matches!(engine.login_verify("u", &ch, Proof::Email(code)).unwrap_err(), Error::NotFound(_)));
    assert_eq!(engine.security_status("u").unwrap().locked_until, None, "5 failures < threshold 10");
}

#[test]
fn resend_has_a_cooldown_invalidates_the_old_code_and_keeps_the_budget() {
    let (engine, clock, outbox, ch) = signed_in_with_code();
    let old = outbox.last_code(ADDR);
    match engine.login_send_email_code("u", &ch).unwrap_err() {
        Error::RateLimited { retry_after } => assert_eq!(retry_after, 60),
        e => panic!("{e:?}"),
    }
    for _ in 0..4 {
        engine.login_verify("u", &ch, Proof::Email(wrong(&old))).unwrap_err();
    }
    clock.advance(60);
    engine.login_send_email_code("u", &ch).unwrap();
    let new = outbox.last_code(ADDR);
    assert_ne!(new, old, "a fresh code (1 in a million: rerun)");
    // The old code died with the resend: it is one more wrong code (failure 5, try 1 of the new one).
    assert_eq!(engine.login_verify("u", &ch, Proof::Email(old)).unwrap_err(), Error::InvalidCode);
    // The budget survived the resend: 5 + 4 failures, and the new code died after its 5 tries.
    for _ in 0..4 {
        assert_eq!(engine.login_verify("u", &ch, Proof::Email(wrong(&new))).unwrap_err(), Error::InvalidCode);
    }
    assert!(engine.security_status("u").unwrap().locked_until.is_none(), "9 failures");
    clock.advance(60);
    engine.login_send_email_code("u", &ch).unwrap();
    let third = outbox.last_code(ADDR);
    assert_eq!(engine.login_verify("u", &ch, Proof::Email(wrong(&third))).unwrap_err(), Error::InvalidCode);
    assert!(engine.security_status("u").unwrap().locked_until.is_some(), "the 10th failure locks the user out");
    assert!(matches!(engine.login_verify("u", &ch, Proof::Email(third)).unwrap_err(), Error::LockedOut { .. }));
    assert!(matches!(engine.login_send_email_code("u", &ch).unwrap_err(), Error::LockedOut { .. }));
}

#[test]
fn a_code_is_bound_to_its_purpose_and_user() {
    let (engine, _clock, outbox) = engine();
    engine.email_enroll_begin("u", ADDR, None).unwrap();
    let enrol_code = outbox.last_code(ADDR);
    engine.email_enroll_begin("v", "v@example.com", None).unwrap();
    // u's enrolment code does not confirm v's address.
    let v_code = outbox.last_code("v@example.com");
    if v_code != enrol_code {
        assert_eq!(engine.email_enroll_confirm("v", &enrol_code, None).unwrap_err(), Error::InvalidCode);
    }
    engine.email_enroll_confirm("u", &enrol_code, None).unwrap();
    // The enrolment code is no sign-in code.
    let ch = engine.login_begin("u").unwrap().challenge_id.unwrap();
    assert!(matches!(engine.login_verify("u", &ch, Proof::Email(enrol_code)).unwrap_err(), Error::NotFound(_)));
}

#[test]
fn a_failed_delivery_leaves_no_usable_code() {
    let (engine, clock, outbox) = engine();
    engine.email_enroll_begin("u", ADDR, None).unwrap();
    engine.email_enroll_confirm("u", &outbox.last_code(ADDR), None).unwrap();
    let ch = engine.login_begin("u").unwrap().challenge_id.unwrap();
    outbox.fail(true);
    assert!(matches!(engine.login_send_email_code("u", &ch).unwrap_err(), Error::Mail(_)));
    outbox.fail(false);
    // Nothing was armed: no cooldown either, and nothing verifies.
    assert!(matches!(engine.login_verify("u", &ch, Proof::Email("123456".into())).unwrap_err(), Error::NotFound(_)));
    engine.login_send_email_code("u", &ch).unwrap();
    clock.advance(1);
    engine.login_verify("u", &ch, Proof::Email(outbox.last_code(ADDR))).unwrap();
}

#[test]
fn bad_addresses_are_refused() {
    let (engine, _clock, outbox) = engine();
    for bad in ["", "nobody", "a@b", "x\r\nBcc: e@vil.com@example.com", &format!("{}@example.com", "a".repeat(250))] {
        assert_eq!(engine.email_enroll_begin("u", bad, None).unwrap_err().name(), "invalid_input", "{bad:?}");
    }
    assert_eq!(outbox.count(), 0);
}
