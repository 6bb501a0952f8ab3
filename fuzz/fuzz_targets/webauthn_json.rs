//! The browser JSON of both WebAuthn ceremonies: a registration response for a pending
//! registration, and an assertion for a sign-in challenge of a user with a registered device.
//! Either may be refused; neither may panic or change what a later valid sign-in gets.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twofa_core::Proof;
use twofa_fuzz::ORIGIN;
use twofa_fuzz::webauthn_support::SoftAuthenticator;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (engine, _clock, _outbox) = twofa_fuzz::engine();
    let mut device = SoftAuthenticator::counter_zero();
    let options = engine.webauthn_register_begin("w", "Key", None).expect("register begin").options_json;
    let response = device.register(&options, ORIGIN);
    let token = engine.webauthn_register_finish("w", &response, None).expect("register finish").step_up;
    let token = token.expect("a first method's token").token;

    let _ = engine.webauthn_register_begin("w", "Second key", Some(&token));
    let _ = engine.webauthn_register_finish("w", text, Some(&token));

    let challenge = engine.login_begin("w").expect("login begin");
    let id = challenge.challenge_id.expect("a challenge");
    let _ = engine.login_verify("w", &id, Proof::Webauthn(text.to_string()));
    // Whatever that was, the real device still signs in.
    let options = challenge.webauthn_options.expect("options");
    let assertion = device.authenticate(&options, ORIGIN);
    engine.login_verify("w", &id, Proof::Webauthn(assertion)).expect("the device still signs in");
});
