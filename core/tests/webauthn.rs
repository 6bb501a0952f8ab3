//! WebAuthn through the engine, with soft authenticators (webauthn-authenticator-rs and a
//! counter-0 authenticator) as the independent other side.

mod common;
#[path = "support/webauthn.rs"]
mod webauthn_support;

use common::*;
use twofa_core::store::{MemoryStore, Store};
use twofa_core::webauthn::{UserVerification, WebauthnConfig};
use twofa_core::{Engine, Error, MethodKind, Proof};
use webauthn_support::SoftAuthenticator;

const ORIGIN: &str = "http://localhost:8080";

fn webauthn_engine(uv: UserVerification) -> (Engine, TestClock, Outbox, std::sync::Arc<MemoryStore>) {
    let mut c = config();
    c.webauthn = Some(WebauthnConfig {
        rp_id: "localhost".into(),
        rp_name: "Example Shop".into(),
        origins: vec![ORIGIN.into()],
        user_verification: uv,
        timeout_secs: 300,
    });
    let store = std::sync::Arc::new(MemoryStore::new());
    let (engine, clock, outbox) = engine_with(c, store.clone());
    (engine, clock, outbox, store)
}

fn record(store: &MemoryStore, user: &str) -> Option<Vec<u8>> {
    store.get(&format!("user/{user}")).unwrap().map(|v| v.bytes)
}

/// Registers `auth` for `user` (first method: no token needed) and returns the step-up token.
fn register(
    engine: &Engine,
    auth: &mut SoftAuthenticator,
    user: &str,
    name: &str,
    token: Option<&str>,
) -> Option<String> {
    let reg = engine.webauthn_register_begin(user, name, token).unwrap();
    let response = auth.register(&reg.options_json, ORIGIN);
    engine.webauthn_register_finish(user, &response, token).unwrap().step_up.map(|t| t.token)
}

fn sign_in(engine: &Engine, auth: &mut SoftAuthenticator, user: &str) -> Result<twofa_core::LoginSuccess, Error> {
    let ch = engine.login_begin(user).unwrap();
    let options = ch.webauthn_options.expect("webauthn options");
    let response = auth.authenticate(&options, ORIGIN);
    engine.login_verify(user, &ch.challenge_id.unwrap(), Proof::Webauthn(response))
}

#[test]
fn register_list_sign_in_rename_remove() {
    let (engine, _clock, outbox, _) = webauthn_engine(UserVerification::Preferred);
    engine.set_contact_email("u", "u@example.com", None).unwrap();
    let mut key = SoftAuthenticator::new();
    let reg = engine.webauthn_register_begin("u", "YubiKey", None).unwrap();
    let options: serde_json::Value = serde_json::from_str(&reg.options_json).unwrap();
    let handle = options["publicKey"]["user"]["id"].as_str().unwrap();
    assert!(!handle.contains('u') || handle.len() > 20, "a random handle, not the user id");
    let added = engine.webauthn_register_finish("u", &key.register(&reg.options_json, ORIGIN), None).unwrap();
    assert_eq!(added.method.kind, MethodKind::Webauthn);
    assert_eq!(added.method.label, "YubiKey");
    let mail = outbox.last_to("u@example.com");
    assert!(mail.subject.contains("method was added") && mail.text.contains("YubiKey"));
    let token = added.step_up.unwrap().token;

    // A second registration excludes the first device.
    let reg2 = engine.webauthn_register_begin("u", "Laptop", Some(&token)).unwrap();
    let options: serde_json::Value = serde_json::from_str(&reg2.options_json).unwrap();
    assert_eq!(options["publicKey"]["excludeCredentials"].as_array().unwrap().len(), 1);

    let ok = sign_in(&engine, &mut key, "u").unwrap();
    assert_eq!(ok.method, MethodKind::Webauthn);
    let s = engine.security_status("u").unwrap();
    assert!(s.methods[0].last_used.is_some());
    assert!(s.recommendations.contains(&twofa_core::Recommendation::AddNonWebauthnMethod));
    let id = s.methods[0].id.clone();
    assert_eq!(engine.rename_method("u", &id, "Blue key", Some(&ok.step_up.token)).unwrap().label, "Blue key");
    engine.remove_method("u", &id, Some(&ok.step_up.token)).unwrap();
    assert!(engine.security_status("u").unwrap().methods.is_empty());
}

#[test]
fn wrong_origin_and_wrong_rp_id_are_refused_with_nothing_stored() {
    let (engine, _clock, _, store) = webauthn_engine(UserVerification::Preferred);
    let mut key = SoftAuthenticator::new();
    let reg = engine.webauthn_register_begin("u", "Key", None).unwrap();
    let before = record(&store, "u");
    let phished = key.register(&reg.options_json, "http://evil.localhost:8080");
    assert!(matches!(engine.webauthn_register_finish("u", &phished, None).unwrap_err(), Error::WebauthnRejected(_)));
    let other_rp = reg.options_json.replace("\"id\":\"localhost\"", "\"id\":\"evil.localhost\"");
    assert_ne!(other_rp, reg.options_json);
    let wrong_rp = key.register(&other_rp, ORIGIN);
    assert!(matches!(engine.webauthn_register_finish("u", &wrong_rp, None).unwrap_err(), Error::WebauthnRejected(_)));
    assert_eq!(record(&store, "u"), before, "nothing stored");

    register(&engine, &mut key, "u", "Key", None);
    let ch = engine.login_begin("u").unwrap();
    let before = record(&store, "u");
    let phished = key.authenticate(ch.webauthn_options.as_ref().unwrap(), "http://localhost:9999");
    let err = engine.login_verify("u", ch.challenge_id.as_ref().unwrap(), Proof::Webauthn(phished)).unwrap_err();
    assert!(matches!(err, Error::WebauthnRejected(_)));
    assert_eq!(record(&store, "u"), before);
}

#[test]
fn replayed_and_tampered_assertions_are_refused() {
    let (engine, _clock, _, store) = webauthn_engine(UserVerification::Preferred);
    let mut key = SoftAuthenticator::new();
    register(&engine, &mut key, "u", "Key", None);
    let ch = engine.login_begin("u").unwrap();
    let response = key.authenticate(ch.webauthn_options.as_ref().unwrap(), ORIGIN);
    let challenge = ch.challenge_id.unwrap();
    engine.login_verify("u", &challenge, Proof::Webauthn(response.clone())).unwrap();
    // The challenge is single-use ...
    assert!(matches!(
        engine.login_verify("u", &challenge, Proof::Webauthn(response.clone())).unwrap_err(),
        Error::NotFound(_)
    ));
    // ... and the response is bound to it.
    let ch2 = engine.login_begin("u").unwrap().challenge_id.unwrap();
    let before = record(&store, "u");
    assert!(matches!(
        engine.login_verify("u", &ch2, Proof::Webauthn(response)).unwrap_err(),
        Error::WebauthnRejected(_)
    ));
    assert_eq!(record(&store, "u"), before);

    // A flipped signature byte.
    let ch = engine.login_begin("u").unwrap();
    let response = key.authenticate(ch.webauthn_options.as_ref().unwrap(), ORIGIN);
    let mut v: serde_json::Value = serde_json::from_str(&response).unwrap();
    // The second-to-last base64url character always carries six data bits (the last one may
    // carry padding bits, which a strict decoder refuses when set): changing it changes a byte
    // of the signature, never its encoding's validity.
    let sig = v["response"]["signature"].as_str().unwrap().to_string();
    let at = sig.len() - 2;
    let replacement = if &sig[at..at + 1] == "A" { "B" } else { "A" };
    let flipped = format!("{}{}{}", &sig[..at], replacement, &sig[at + 1..]);
    v["response"]["signature"] = serde_json::Value::String(flipped);
    let before = record(&store, "u");
    let err = engine.login_verify("u", ch.challenge_id.as_ref().unwrap(), Proof::Webauthn(v.to_string())).unwrap_err();
    assert!(matches!(err, Error::WebauthnRejected(_)), "{err:?}");
    assert_eq!(record(&store, "u"), before);
    assert_eq!(engine.login_verify("u", "x", Proof::Webauthn("{not json".into())).unwrap_err().name(), "not_found");
    let ch = engine.login_begin("u").unwrap().challenge_id.unwrap();
    assert!(matches!(
        engine.login_verify("u", &ch, Proof::Webauthn("{not json".into())).unwrap_err(),
        Error::InvalidInput(_)
    ));
}

#[test]
fn a_cloned_authenticator_is_caught_and_the_device_flagged() {
    let (engine, _clock, _, _) = webauthn_engine(UserVerification::Preferred);
    let mut key = SoftAuthenticator::new();
    register(&engine, &mut key, "u", "Key", None);
    let mut clone = key.clone_device();
    sign_in(&engine, &mut key, "u").unwrap();
    sign_in(&engine, &mut key, "u").unwrap();
    let err = sign_in(&engine, &mut clone, "u").unwrap_err();
    assert!(matches!(err, Error::WebauthnRejected(_)), "{err:?}");
    let s = engine.security_status("u").unwrap();
    assert!(s.methods[0].flagged);
    assert!(s.warnings.contains(&twofa_core::Warning::DeviceFlagged));
    // A flagged device is offered no more.
    assert!(engine.login_begin("u").unwrap().webauthn_options.is_none());
}

#[test]
fn a_credential_of_another_user_is_refused_and_ids_are_unique() {
    let (engine, _clock, _, store) = webauthn_engine(UserVerification::Preferred);
    let mut alice_key = SoftAuthenticator::new();
    let mut bob_key = SoftAuthenticator::new();
    register(&engine, &mut alice_key, "alice", "A", None);
    register(&engine, &mut bob_key, "bob", "B", None);
    // Bob's authenticator answers Alice's challenge (a client that ignores allowCredentials).
    let ch = engine.login_begin("alice").unwrap();
    let options = ch.webauthn_options.unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&options).unwrap();
    v["publicKey"]["allowCredentials"] = serde_json::json!([]);
    let before = record(&store, "alice");
    if let Ok(response) = bob_key.try_authenticate(&v.to_string(), ORIGIN) {
        let err =
            engine.login_verify("alice", ch.challenge_id.as_ref().unwrap(), Proof::Webauthn(response)).unwrap_err();
        assert!(matches!(err, Error::WebauthnRejected(_)), "{err:?}");
    }
    assert_eq!(record(&store, "alice"), before);

    // The same credential cannot be registered to a second account.
    let mut shared = SoftAuthenticator::counter_zero();
    shared.set_reuse_credential(true);
    register(&engine, &mut shared, "carol", "C", None);
    let reg = engine.webauthn_register_begin("dave", "D", None).unwrap();
    let response = shared.register(&reg.options_json, ORIGIN);
    let err = engine.webauthn_register_finish("dave", &response, None).unwrap_err();
    assert!(matches!(err, Error::WebauthnRejected(_)), "{err:?}");
    assert!(engine.security_status("dave").unwrap().methods.is_empty());
}

#[test]
fn a_device_removed_after_login_begin_cannot_sign_in() {
    let (engine, _clock, _, _) = webauthn_engine(UserVerification::Preferred);
    let mut key = SoftAuthenticator::new();
    let mut laptop = SoftAuthenticator::new();
    let token = register(&engine, &mut key, "u", "Key", None).unwrap();
    register(&engine, &mut laptop, "u", "Laptop", Some(&token));
    let ch = engine.login_begin("u").unwrap();
    let response = key.authenticate(ch.webauthn_options.as_ref().unwrap(), ORIGIN);
    let id = engine.security_status("u").unwrap().methods[0].id.clone();
    engine.remove_method("u", &id, Some(&token)).unwrap();
    let err = engine.login_verify("u", ch.challenge_id.as_ref().unwrap(), Proof::Webauthn(response)).unwrap_err();
    assert!(matches!(err, Error::WebauthnRejected(_)), "{err:?}");
}

#[test]
fn user_verification_required_refuses_an_authenticator_that_did_not_verify() {
    let (engine, _clock, _, store) = webauthn_engine(UserVerification::Required);
    let mut key = SoftAuthenticator::counter_zero();
    key.set_user_verification(false);
    let reg = engine.webauthn_register_begin("u", "Key", None).unwrap();
    let response = key.register(&reg.options_json, ORIGIN);
    let before = record(&store, "u");
    assert!(matches!(engine.webauthn_register_finish("u", &response, None).unwrap_err(), Error::WebauthnRejected(_)));
    assert_eq!(record(&store, "u"), before);
    key.set_user_verification(true);
    let reg = engine.webauthn_register_begin("u", "Key", None).unwrap();
    engine.webauthn_register_finish("u", &key.register(&reg.options_json, ORIGIN), None).unwrap();
    key.set_user_verification(false);
    assert!(matches!(sign_in(&engine, &mut key, "u").unwrap_err(), Error::WebauthnRejected(_)));
    key.set_user_verification(true);
    sign_in(&engine, &mut key, "u").unwrap();
}

#[test]
fn an_authenticator_reporting_counter_zero_signs_in_three_times() {
    let (engine, _clock, _, _) = webauthn_engine(UserVerification::Preferred);
    let mut passkey = SoftAuthenticator::counter_zero();
    register(&engine, &mut passkey, "u", "Phone", None);
    for _ in 0..3 {
        sign_in(&engine, &mut passkey, "u").unwrap();
    }
    assert!(!engine.security_status("u").unwrap().methods[0].flagged);
}

#[test]
fn webauthn_neither_counts_nor_is_blocked_by_the_lockout() {
    let (engine, clock, _, _) = webauthn_engine(UserVerification::Preferred);
    let mut key = SoftAuthenticator::new();
    let token = register(&engine, &mut key, "u", "Key", None).unwrap();
    let setup = engine.totp_enroll_begin("u", "u", Some(&token)).unwrap();
    engine.totp_enroll_confirm("u", &totp_code(&setup.secret, clock.get()), Some(&token)).unwrap();
    clock.advance(30);
    let good = totp_code(&setup.secret, clock.get());
    let bad = if good == "000000" { "111111" } else { "000000" };
    let ch = engine.login_begin("u").unwrap().challenge_id.unwrap();
    for _ in 0..10 {
        engine.login_verify("u", &ch, Proof::Totp(bad.into())).unwrap_err();
    }
    assert!(matches!(engine.login_verify("u", &ch, Proof::Totp(good)).unwrap_err(), Error::LockedOut { .. }));
    sign_in(&engine, &mut key, "u").unwrap();
    assert_eq!(engine.security_status("u").unwrap().locked_until, None, "a success resets the budget");
}

#[test]
fn expired_registrations_and_challenges() {
    let (engine, clock, _, _) = webauthn_engine(UserVerification::Preferred);
    let mut key = SoftAuthenticator::new();
    let reg = engine.webauthn_register_begin("u", "Key", None).unwrap();
    let response = key.register(&reg.options_json, ORIGIN);
    clock.advance(901);
    assert_eq!(engine.webauthn_register_finish("u", &response, None).unwrap_err(), Error::Expired);
    register(&engine, &mut key, "u", "Key", None);
    let ch = engine.login_begin("u").unwrap();
    let response = key.authenticate(ch.webauthn_options.as_ref().unwrap(), ORIGIN);
    clock.advance(301);
    let err = engine.login_verify("u", ch.challenge_id.as_ref().unwrap(), Proof::Webauthn(response)).unwrap_err();
    assert!(matches!(err, Error::Expired | Error::NotFound(_)), "{err:?}");
}
