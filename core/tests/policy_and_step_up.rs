//! Policy, step-up tokens, recovery codes, notices and the attempt budget.

mod common;
use common::*;
use twofa_core::{Error, MethodKind, Proof, Recommendation};

#[test]
fn orders_make_two_factor_required_and_the_last_method_cannot_go() {
    let (engine, clock, outbox) = engine();
    engine.mark_order_created("u").unwrap();
    let s = engine.security_status("u").unwrap();
    assert!(s.two_factor_required && !s.compliant);
    assert_eq!(s.recommendations, vec![Recommendation::EnableTwoFactor]);
    let ch = engine.login_begin("u").unwrap();
    assert!(ch.enrollment_required && ch.challenge_id.is_none());

    let (secret, token) = enroll_totp(&engine, &clock, "u", None);
    let token = token.unwrap();
    let s = engine.security_status("u").unwrap();
    assert!(s.compliant);
    assert!(s.recommendations.contains(&Recommendation::AddSecondMethod));
    let id = s.methods[0].id.clone();
    assert!(matches!(engine.remove_method("u", &id, Some(&token)).unwrap_err(), Error::PolicyViolation(_)));
    assert_eq!(engine.security_status("u").unwrap().methods.len(), 1, "nothing changed");

    // With a second method, the first can go.
    engine.email_enroll_begin("u", "a@example.com", Some(&token)).unwrap();
    engine.email_enroll_confirm("u", &outbox.last_code("a@example.com"), Some(&token)).unwrap();
    let s = engine.security_status("u").unwrap();
    assert!(!s.recommendations.contains(&Recommendation::AddSecondMethod));
    engine.remove_method("u", &id, Some(&token)).unwrap();
    let s = engine.security_status("u").unwrap();
    assert!(s.compliant && s.recommendations.contains(&Recommendation::AddStrongerMethod));
    // The removed authenticator app no longer signs in.
    let ch = engine.login_begin("u").unwrap();
    assert_eq!(ch.methods, vec![MethodKind::Email]);
    clock.advance(30);
    let code = totp_code(&secret, clock.get());
    assert_eq!(engine.login_verify("u", &ch.challenge_id.unwrap(), Proof::Totp(code)).unwrap_err(), Error::NotEnrolled);
}

#[test]
fn management_needs_a_valid_step_up_token_once_a_method_exists() {
    let (engine, clock, outbox) = engine();
    let (secret, first_token) = enroll_totp(&engine, &clock, "u", None);
    let first_token = first_token.unwrap();
    for token in [None, Some("forged-token"), Some("")] {
        assert_eq!(engine.totp_enroll_begin("u", "x", token).unwrap_err(), Error::StepUpRequired);
        assert_eq!(engine.email_enroll_begin("u", "a@example.com", token).unwrap_err(), Error::StepUpRequired);
        assert_eq!(engine.recovery_codes_generate("u", token).unwrap_err(), Error::StepUpRequired);
        assert_eq!(engine.remove_method("u", "totp-1", token).unwrap_err(), Error::StepUpRequired);
        assert_eq!(engine.rename_method("u", "totp-1", "Phone", token).unwrap_err(), Error::StepUpRequired);
    }
    assert_eq!(outbox.count(), 0);
    // Another user's token is useless here.
    let (_, other) = enroll_totp(&engine, &clock, "v", None);
    assert_eq!(engine.recovery_codes_generate("u", other.as_deref()).unwrap_err(), Error::StepUpRequired);
    // The token of the first confirmation works, then expires after 10 minutes.
    engine.rename_method("u", "totp-1", "Phone", Some(&first_token)).unwrap();
    clock.advance(601);
    assert_eq!(engine.recovery_codes_generate("u", Some(&first_token)).unwrap_err(), Error::StepUpRequired);
    // A sign-in yields a fresh one.
    let token = sign_in_totp(&engine, &clock, "u", &secret);
    engine.recovery_codes_generate("u", Some(&token)).unwrap();
}

#[test]
fn an_enrolment_begun_without_methods_needs_a_token_once_a_method_appears() {
    let (engine, clock, outbox) = engine();
    // Begun while the user had no method: no token needed then.
    let pending = engine.totp_enroll_begin("u", "x", None).unwrap();
    // Meanwhile the user (or an attacker with the session) confirms an email method.
    engine.email_enroll_begin("u", "a@example.com", None).unwrap();
    engine.email_enroll_confirm("u", &outbox.last_code("a@example.com"), None).unwrap();
    // Now the TOTP enrolment cannot be confirmed without a step-up token.
    let code = totp_code(&pending.secret, clock.get());
    assert_eq!(engine.totp_enroll_confirm("u", &code, None).unwrap_err(), Error::StepUpRequired);
    assert_eq!(engine.security_status("u").unwrap().methods.len(), 1);
}

#[test]
fn unconfirmed_methods_neither_count_nor_sign_in() {
    let (engine, _clock, _outbox) = engine();
    engine.mark_order_created("u").unwrap();
    engine.totp_enroll_begin("u", "x", None).unwrap();
    engine.email_enroll_begin("u", "a@example.com", None).unwrap();
    let s = engine.security_status("u").unwrap();
    assert!(s.methods.is_empty() && !s.compliant && s.pending.totp);
    assert_eq!(s.pending.email.as_deref(), Some("a@example.com"));
    let ch = engine.login_begin("u").unwrap();
    assert!(ch.enrollment_required && ch.methods.is_empty());
}

#[test]
fn recovery_codes_work_once_in_any_format_and_do_not_count_for_policy() {
    let (engine, clock, outbox) = engine();
    engine.set_contact_email("u", "notices@example.com", None).unwrap();
    let (_, token) = enroll_totp(&engine, &clock, "u", None);
    let set = engine.recovery_codes_generate("u", token.as_deref()).unwrap();
    assert_eq!(set.codes.len(), 10);
    assert!(set.codes.iter().all(|c| c.len() == 11 && c.as_bytes()[5] == b'-'));
    assert_eq!(engine.security_status("u").unwrap().recovery_codes_left, 10);

    let ch = engine.login_begin("u").unwrap();
    assert!(ch.methods.contains(&MethodKind::Recovery));
    let ch = ch.challenge_id.unwrap();
    let messy = set.codes[3].to_uppercase().replace('-', " - ");
    let ok = engine.login_verify("u", &ch, Proof::Recovery(messy)).unwrap();
    assert_eq!(ok.recovery_codes_left, Some(9));
    assert!(outbox.last_to("notices@example.com").subject.contains("recovery code was used"));
    let ch = engine.login_begin("u").unwrap().challenge_id.unwrap();
    assert_eq!(engine.login_verify("u", &ch, Proof::Recovery(set.codes[3].clone())).unwrap_err(), Error::InvalidCode);
    engine.login_verify("u", &ch, Proof::Recovery(set.codes[9].clone())).unwrap();

    // A new set revokes the old one.
    let token = engine.login_begin("u").unwrap().challenge_id.unwrap();
    let token = engine.login_verify("u", &token, Proof::Recovery(set.codes[0].clone())).unwrap().step_up.token;
    let new = engine.recovery_codes_generate("u", Some(&token)).unwrap();
    let ch = engine.login_begin("u").unwrap().challenge_id.unwrap();
    assert_eq!(engine.login_verify("u", &ch, Proof::Recovery(set.codes[1].clone())).unwrap_err(), Error::InvalidCode);
    engine.login_verify("u", &ch, Proof::Recovery(new.codes[1].clone())).unwrap();
}

#[test]
fn lockout_refuses_without_counting_and_a_new_challenge_does_not_reset_it() {
    let (engine, clock, _) = engine();
    let (secret, _) = enroll_totp(&engine, &clock, "u", None);
    clock.advance(30);
    let good = totp_code(&secret, clock.get());
    let bad = if good == "000000" { "111111" } else { "000000" };
    for i in 0..10 {
        let ch = engine.login_begin("u").unwrap().challenge_id.unwrap();
        assert_eq!(engine.login_verify("u", &ch, Proof::Totp(bad.into())).unwrap_err(), Error::InvalidCode, "try {i}");
    }
    let ch = engine.login_begin("u").unwrap().challenge_id.unwrap();
    assert_eq!(
        engine.login_verify("u", &ch, Proof::Totp(good.clone())).unwrap_err(),
        Error::LockedOut { retry_after: 60 }
    );
    clock.advance(20);
    assert_eq!(
        engine.login_verify("u", &ch, Proof::Totp(bad.into())).unwrap_err(),
        Error::LockedOut { retry_after: 40 }
    );
    clock.advance(40);
    // The lockout is over; the next failure locks for twice as long.
    let ch = engine.login_begin("u").unwrap().challenge_id.unwrap();
    let next = totp_code(&secret, clock.get());
    let bad = if next == "000000" { "111111" } else { "000000" };
    assert_eq!(engine.login_verify("u", &ch, Proof::Totp(bad.into())).unwrap_err(), Error::InvalidCode);
    assert_eq!(
        engine.login_verify("u", &ch, Proof::Totp(next.clone())).unwrap_err(),
        Error::LockedOut { retry_after: 120 }
    );
    clock.advance(120);
    engine.login_verify("u", &ch, Proof::Totp(totp_code(&secret, clock.get()))).unwrap();
    assert_eq!(engine.security_status("u").unwrap().locked_until, None);
}

#[test]
fn notices_go_to_the_contact_and_every_email_method_and_failures_do_not_undo() {
    let (engine, clock, outbox) = engine();
    assert!(engine.security_status("u").unwrap().warnings.contains(&twofa_core::Warning::NoNoticeAddress));
    engine.set_contact_email("u", "old@example.com", None).unwrap();
    engine.set_contact_email("u", "contact@example.com", None).unwrap();
    assert!(outbox.last_to("old@example.com").text.contains("contact@example.com"), "the previous address is told");
    let (_, token) = enroll_totp(&engine, &clock, "u", None);
    assert!(outbox.last_to("contact@example.com").subject.contains("method was added"));
    engine.email_enroll_begin("u", "second@example.com", token.as_deref()).unwrap();
    engine.email_enroll_confirm("u", &outbox.last_code("second@example.com"), token.as_deref()).unwrap();
    let before = outbox.count();
    outbox.fail(true);
    let r = engine.rename_method("u", "totp-1", "Work phone", token.as_deref());
    assert!(r.is_ok());
    let codes = engine.recovery_codes_generate("u", token.as_deref()).unwrap();
    assert_eq!(codes.notices.failed.len(), 2, "contact and the email method: {:?}", codes.notices);
    assert_eq!(engine.security_status("u").unwrap().recovery_codes_left, 10, "the change stands");
    outbox.fail(false);
    let removed = engine.remove_method("u", "totp-1", token.as_deref()).unwrap();
    assert_eq!(removed.sent, 2);
    assert_eq!(outbox.count(), before + 2);
    let m = outbox.last_to("second@example.com");
    assert!(m.subject.contains("removed") && m.text.contains("Work phone"));
    // Removal revoked the step-up token.
    assert_eq!(engine.recovery_codes_generate("u", token.as_deref()).unwrap_err(), Error::StepUpRequired);
}

#[test]
fn labels_are_bounded_and_plain() {
    let (engine, clock, _) = engine();
    let (_, token) = enroll_totp(&engine, &clock, "u", None);
    for bad in ["", "   ", "a\nb", "x\u{7}", &"x".repeat(65)] {
        assert_eq!(engine.rename_method("u", "totp-1", bad, token.as_deref()).unwrap_err().name(), "invalid_input");
    }
    assert!(matches!(engine.rename_method("u", "nope", "x", token.as_deref()).unwrap_err(), Error::NotFound(_)));
    assert_eq!(engine.rename_method("u", "totp-1", " Phone ", token.as_deref()).unwrap().label, "Phone");
}

#[test]
fn user_ids_and_configs_are_validated() {
    let (engine, _, _) = engine();
    for bad in ["", "a\nb", &"u".repeat(257)] {
        assert_eq!(engine.security_status(bad).unwrap_err().name(), "invalid_input");
    }
    let mut c = config();
    c.keys.clear();
    assert!(twofa_core::Engine::new(c, twofa_core::store::MemoryStore::new(), Outbox::default()).is_err());
}

#[test]
fn admin_delete_user_removes_everything() {
    let (engine, clock, _) = engine();
    enroll_totp(&engine, &clock, "u", None);
    let admin = twofa_core::Admin::new(engine.clone()).unwrap();
    admin.delete_user("u").unwrap();
    assert!(engine.security_status("u").unwrap().methods.is_empty());
    assert!(matches!(admin.delete_user("u").unwrap_err(), Error::NotFound(_)));
}

#[test]
fn step_up_tokens_are_stateless_bound_revocable_and_survive_key_rotation() {
    use std::sync::Arc;
    use twofa_core::store::{MemoryStore, Store};
    let store = Arc::new(MemoryStore::new());
    let (engine, clock, outbox) = engine_with(config(), store.clone());
    let (secret, token) = enroll_totp(&engine, &clock, "u", None);
    let token = token.unwrap();
    engine.rename_method("u", "totp-1", "Phone", Some(&token)).unwrap();

    // Any change to the token (expiry, nonce or tag) makes it worthless.
    for i in 0..token.len() {
        let mut forged = token.clone().into_bytes();
        forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        assert_eq!(engine.rename_method("u", "totp-1", "x", Some(&forged)).unwrap_err(), Error::StepUpRequired);
    }

    // Issuing tokens writes nothing: the record does not grow with sign-ins.
    let size = || store.get("user/u").unwrap().unwrap().bytes.len();
    let first = sign_in_totp(&engine, &clock, "u", &secret);
    let before = size();
    for _ in 0..5 {
        sign_in_totp(&engine, &clock, "u", &secret);
    }
    assert_eq!(size(), before);

    // A rotated key set still accepts tokens made under the old active key.
    let mut rotated = config();
    rotated.keys.push(twofa_core::config::MasterKey {
        id: "k2".into(),
        secret: "MjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjI=".into(),
    });
    rotated.active_key = Some("k2".into());
    let (engine2, clock2, _) = engine_with(rotated, store.clone());
    clock2.set(clock.get());
    engine2.rename_method("u", "totp-1", "Phone 2", Some(&first)).unwrap();

    // Removing a method revokes every token issued before, on every engine.
    engine.email_enroll_begin("u", "a@example.com", Some(&first)).unwrap();
    engine.email_enroll_confirm("u", &outbox.last_code("a@example.com"), Some(&first)).unwrap();
    let late = sign_in_totp(&engine, &clock, "u", &secret);
    engine.remove_method("u", "email-2", Some(&first)).unwrap();
    for t in [&first, &late, &token] {
        assert_eq!(engine.recovery_codes_generate("u", Some(t)).unwrap_err(), Error::StepUpRequired);
        assert_eq!(engine2.recovery_codes_generate("u", Some(t)).unwrap_err(), Error::StepUpRequired);
    }
    let fresh = sign_in_totp(&engine, &clock, "u", &secret);
    engine2.recovery_codes_generate("u", Some(&fresh)).unwrap();

    // An administrator's import of a new authenticator app revokes them too.
    twofa_core::Admin::new(engine.clone())
        .unwrap()
        .totp_import("u", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", twofa_core::TotpAlgorithm::Sha1, 6, 30)
        .unwrap();
    assert_eq!(engine.recovery_codes_generate("u", Some(&fresh)).unwrap_err(), Error::StepUpRequired);
}
