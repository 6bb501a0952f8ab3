//! Authenticator apps: replay, windows, enrolment, clocks.

mod common;
use common::*;
use twofa_core::{Admin, Error, Proof, TotpAlgorithm};

fn verify(engine: &twofa_core::Engine, user: &str, code: String) -> Result<(), Error> {
    let ch = engine.login_begin(user).unwrap().challenge_id.unwrap();
    engine.login_verify(user, &ch, Proof::Totp(code)).map(|_| ())
}

#[test]
fn enrolment_code_is_refused_at_sign_in_and_replays_are_refused() {
    let (engine, clock, _) = engine();
    let (secret, token) = enroll_totp(&engine, &clock, "u", None);
    assert!(token.is_some(), "the first method yields a step-up token");
    // Same step as the confirmation: replayed.
    assert_eq!(verify(&engine, "u", totp_code(&secret, clock.get())), Err(Error::Replayed));
    clock.advance(30);
    let code = totp_code(&secret, clock.get());
    verify(&engine, "u", code.clone()).unwrap();
    assert_eq!(verify(&engine, "u", code), Err(Error::Replayed), "through a fresh challenge");
}

#[test]
fn a_later_step_accepted_early_burns_the_current_one() {
    let (engine, clock, _) = engine();
    let (secret, _) = enroll_totp(&engine, &clock, "u", None);
    clock.advance(300);
    let t = clock.get();
    verify(&engine, "u", totp_code(&secret, t + 30)).unwrap();
    assert_eq!(verify(&engine, "u", totp_code(&secret, t + 30)), Err(Error::Replayed));
    assert_eq!(verify(&engine, "u", totp_code(&secret, t)), Err(Error::Replayed));
}

#[test]
fn a_code_shared_by_a_used_step_and_a_fresh_one_is_accepted_for_the_fresh_one() {
    // Steps 56668234 and 56668235 of this secret share the code 065554 (found by searching with
    // pyotp): two steps can have the same code, one time in a million.
    const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    const STEP: u64 = 56_668_234;
    let (engine, clock, _) = engine();
    clock.set(STEP * 30);
    Admin::new(engine.clone()).unwrap().totp_import("u", SECRET, TotpAlgorithm::Sha1, 6, 30).unwrap();
    assert_eq!(totp_code(SECRET, STEP * 30), "065554");
    assert_eq!(totp_code(SECRET, (STEP + 1) * 30), "065554");
    verify(&engine, "u", "065554".into()).unwrap();
    // One step later the app shows 065554 again: it is the new step's code, not a replay.
    clock.set((STEP + 1) * 30);
    verify(&engine, "u", "065554".into()).unwrap();
    assert_eq!(verify(&engine, "u", "065554".into()), Err(Error::Replayed));
}

#[test]
fn window_is_one_step_either_side_at_the_boundaries() {
    let (engine, clock, _) = engine();
    let (secret, _) = enroll_totp(&engine, &clock, "u", None);
    // Start of a step: t = 30k. Codes for k-2 and k+2 are refused, k-1 and k+1 accepted.
    let k = (clock.get() / 30) + 100;
    clock.set(30 * k);
    assert_eq!(verify(&engine, "u", totp_code(&secret, 30 * (k - 2))), Err(Error::InvalidCode));
    verify(&engine, "u", totp_code(&secret, 30 * (k - 1))).unwrap();
    // Last second of step k: k+1 accepted, k+2 refused.
    clock.set(30 * k + 29);
    assert_eq!(verify(&engine, "u", totp_code(&secret, 30 * (k + 2))), Err(Error::InvalidCode));
    verify(&engine, "u", totp_code(&secret, 30 * (k + 1))).unwrap();
}

#[test]
fn clocks_at_the_epoch_and_going_backwards_give_clean_errors() {
    let (engine, clock, _) = engine();
    clock.set(0);
    let (secret, _) = enroll_totp(&engine, &clock, "u", None);
    clock.set(1);
    assert_eq!(verify(&engine, "u", totp_code(&secret, 0)), Err(Error::Replayed));
    clock.set(31);
    verify(&engine, "u", totp_code(&secret, 31)).unwrap();
    // The clock jumps back an hour: old steps are replays, never a panic.
    clock.set(T0 + 3600);
    verify(&engine, "u", totp_code(&secret, T0 + 3600)).unwrap();
    clock.set(T0);
    assert_eq!(verify(&engine, "u", totp_code(&secret, T0)), Err(Error::Replayed));
    clock.set(0);
    assert_eq!(verify(&engine, "u", totp_code(&secret, 0)), Err(Error::Replayed));
}

#[test]
fn re_enrolment_keeps_the_old_secret_until_the_new_one_is_confirmed() {
    let (engine, clock, _) = engine();
    let (old, token) = enroll_totp(&engine, &clock, "u", None);
    let token = token.unwrap();
    let new = engine.totp_enroll_begin("u", "user@example.com", Some(&token)).unwrap();
    assert_ne!(new.secret, old);
    clock.advance(30);
    verify(&engine, "u", totp_code(&old, clock.get())).unwrap();
    clock.advance(30);
    engine.totp_enroll_confirm("u", &totp_code(&new.secret, clock.get()), Some(&token)).unwrap();
    clock.advance(30);
    assert_eq!(verify(&engine, "u", totp_code(&old, clock.get())), Err(Error::InvalidCode));
    verify(&engine, "u", totp_code(&new.secret, clock.get() + 30)).unwrap();
    let status = engine.security_status("u").unwrap();
    assert_eq!(status.methods.len(), 1);
    assert!(!format!("{status:?}").contains(&new.secret));
}

#[test]
fn nothing_is_active_before_confirmation() {
    let (engine, clock, _) = engine();
    let setup = engine.totp_enroll_begin("u", "a@b.com", None).unwrap();
    assert!(setup.uri.starts_with("otpauth://totp/Example%20Shop:a%40b.com?secret="));
    assert!(setup.qr_svg.contains("<svg"));
    assert_eq!(setup.secret.len(), 32, "160 bits in base32");
    let ch = engine.login_begin("u").unwrap();
    assert!(!ch.second_factor_required && ch.challenge_id.is_none());
    let wrong = if totp_code(&setup.secret, clock.get()) == "000000" { "111111" } else { "000000" };
    assert_eq!(engine.totp_enroll_confirm("u", wrong, None).unwrap_err(), Error::InvalidCode);
    clock.advance(901);
    let late = totp_code(&setup.secret, clock.get());
    assert_eq!(engine.totp_enroll_confirm("u", &late, None).unwrap_err(), Error::Expired);
    assert!(engine.security_status("u").unwrap().methods.is_empty());
}

#[test]
fn malformed_codes_are_invalid_input_and_not_counted() {
    let (engine, clock, _) = engine();
    enroll_totp(&engine, &clock, "u", None);
    for bad in ["12345", "1234567", "12a456", "١٢٣٤٥٦", "12\u{0}456", &"1".repeat(100)] {
        assert_eq!(verify(&engine, "u", bad.to_string()).unwrap_err().name(), "invalid_input", "{bad:?}");
    }
    let json = engine.security_status("u").unwrap();
    assert_eq!(json.locked_until, None);
}

#[test]
fn sha256_and_eight_digits_are_configurable() {
    let mut config = config();
    config.totp.algorithm = twofa_core::TotpAlgorithm::Sha256;
    config.totp.digits = 8;
    config.totp.period = 60;
    let (engine, clock, _) = engine_with(config, twofa_core::store::MemoryStore::new());
    let setup = engine.totp_enroll_begin("u", "a@b.com", None).unwrap();
    assert!(setup.uri.contains("algorithm=SHA256&digits=8&period=60"));
    assert_eq!(setup.secret.len(), 52, "256 bits in base32");
    let code = totp_code_with(&setup.secret, clock.get(), totp_rs::Algorithm::SHA256, 8, 60);
    engine.totp_enroll_confirm("u", &code, None).unwrap();
}
