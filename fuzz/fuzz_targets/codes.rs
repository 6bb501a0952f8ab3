//! Code parsing: any text submitted as a TOTP, email or recovery code (or a step-up token) is
//! refused or checked, never a panic, and a wrong one never signs in.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twofa_core::{Error, Proof};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let (engine, clock, secret, _token) = twofa_fuzz::enrolled();
    clock.advance(30);
    // Codes of the window (the step before was used by the enrolment: a replay).
    let window: Vec<String> = [0, 30].iter().map(|d| twofa_fuzz::totp_code(&secret, clock.get() + d)).collect();
    let id = engine.login_begin("u").expect("login begin").challenge_id.expect("a challenge");
    let proof = match selector % 4 {
        0 => Proof::Totp(text.into()),
        1 => Proof::Email(text.into()),
        2 => Proof::Recovery(text.into()),
        _ => {
            let step_up = engine.rename_method("u", "totp-1", "x", Some(text));
            assert!(step_up.is_err(), "a made-up step-up token was accepted: {text:?}");
            return;
        }
    };
    let digits: String = text.chars().filter(|c| *c != ' ').collect();
    match engine.login_verify("u", &id, proof) {
        Ok(_) => assert!(selector % 4 == 0 && window.contains(&digits), "a wrong code signed in: {text:?}"),
        Err(Error::Internal(m)) => panic!("internal error: {m}"),
        Err(_) => {}
    }
});
