//! Unit tests of the relying party: each ceremony with a software authenticator, and each
//! way a response is refused.

use super::test_support::SoftAuthenticator;
use super::*;

/// The WebAuthn user handle the tests register with.
const HANDLE: &[u8] = b"h";

const ORIGIN: &str = "http://localhost:8080";

fn config() -> WebauthnConfig {
    WebauthnConfig {
        rp_id: "localhost".to_string(),
        rp_name: "twofa test".to_string(),
        origins: vec![ORIGIN.to_string()],
        user_verification: UserVerification::Preferred,
        timeout_secs: 300,
    }
}

fn rp() -> RelyingParty {
    RelyingParty::new(&config()).unwrap()
}

fn rp_with(uv: UserVerification) -> RelyingParty {
    RelyingParty::new(&WebauthnConfig { user_verification: uv, ..config() }).unwrap()
}

/// Registers a new credential of `auth` for the user with handle `handle`.
fn enrol(rp: &RelyingParty, auth: &mut SoftAuthenticator, existing: &[StoredCredential]) -> StoredCredential {
    let (options, state) = rp.register_begin(HANDLE, "alice", "Alice", existing).unwrap();
    let response = auth.register(&options, ORIGIN);
    rp.register_finish(&response, &state).unwrap()
}

fn sign_in(
    rp: &RelyingParty,
    auth: &mut SoftAuthenticator,
    creds: &[StoredCredential],
) -> Result<AssertionOutcome, Error> {
    let (options, challenge) = rp.authenticate_begin(creds).unwrap();
    let response = auth.authenticate(&options, ORIGIN);
    rp.authenticate_finish(&response, &challenge, creds, HANDLE)
}

fn verified(outcome: Result<AssertionOutcome, Error>) -> (StoredCredential, bool) {
    match outcome {
        Ok(AssertionOutcome::Verified { credential_id, updated, user_verified }) => {
            assert_eq!(credential_id, updated.id());
            (updated, user_verified)
        }
        other => panic!("expected a verified assertion, got {other:?}"),
    }
}

fn rejected_with(result: Result<impl fmt::Debug, Error>, why: &str) {
    match result {
        Err(Error::WebauthnRejected(reason)) => assert_eq!(reason, why),
        other => panic!("expected WebauthnRejected({why:?}), got {other:?}"),
    }
}

/// Edits a response JSON: `edit` gets the parsed value.
fn edit_json(json: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut value: serde_json::Value = serde_json::from_str(json).unwrap();
    edit(&mut value);
    value.to_string()
}

fn b64_field(value: &serde_json::Value, pointer: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(value.pointer(pointer).unwrap().as_str().unwrap()).unwrap()
}

fn set_b64_field(value: &mut serde_json::Value, pointer: &str, bytes: &[u8]) {
    *value.pointer_mut(pointer).unwrap() = URL_SAFE_NO_PAD.encode(bytes).into();
}

// ---- configuration ----

#[test]
fn config_defaults_and_unknown_fields() {
    let cfg: WebauthnConfig =
        serde_json::from_str(r#"{"rp_id":"example.com","rp_name":"Example","origins":["https://example.com"]}"#)
            .unwrap();
    assert_eq!(cfg.user_verification, UserVerification::Preferred);
    assert_eq!(cfg.timeout_secs, 300);
    let cfg: WebauthnConfig = serde_json::from_str(
        r#"{"rp_id":"example.com","rp_name":"Example","origins":["https://example.com"],
            "user_verification":"discouraged","timeout_secs":60}"#,
    )
    .unwrap();
    assert_eq!(cfg.user_verification, UserVerification::Discouraged);
    assert_eq!(serde_json::to_value(UserVerification::Required).unwrap(), serde_json::json!("required"));
    assert!(
        serde_json::from_str::<WebauthnConfig>(
            r#"{"rp_id":"example.com","rp_name":"Example","origins":[],"rp_origin":"x"}"#,
        )
        .is_err()
    );
    assert!(
        serde_json::from_str::<WebauthnConfig>(
            r#"{"rp_id":"example.com","rp_name":"Example","origins":[],
                "user_verification":"always"}"#,
        )
        .is_err()
    );
}

#[test]
fn config_validation() {
    let invalid = |cfg: WebauthnConfig, needle: &str| match RelyingParty::new(&cfg) {
        Err(Error::InvalidInput(m)) => assert!(m.contains(needle), "{m:?} lacks {needle:?}"),
        other => panic!("expected InvalidInput({needle}), got {other:?}"),
    };
    let base = WebauthnConfig {
        rp_id: "example.com".to_string(),
        rp_name: "Example".to_string(),
        origins: vec!["https://example.com".to_string(), "https://login.example.com:8443".to_string()],
        user_verification: UserVerification::Required,
        timeout_secs: 120,
    };
    RelyingParty::new(&base).unwrap();
    RelyingParty::new(&config()).unwrap();
    let with_rp_id = |rp_id: &str| WebauthnConfig { rp_id: rp_id.to_string(), ..base.clone() };
    invalid(with_rp_id(""), "webauthn.rp_id");
    invalid(with_rp_id("192.0.2.1"), "IP address");
    invalid(with_rp_id("[::1]"), "IP address");
    invalid(with_rp_id("https://example.com"), "webauthn.rp_id");
    invalid(with_rp_id("example.com:443"), "webauthn.rp_id");
    invalid(with_rp_id("Example.com"), "webauthn.rp_id");
    invalid(with_rp_id("example.com."), "webauthn.rp_id");
    invalid(WebauthnConfig { rp_name: " ".to_string(), ..base.clone() }, "webauthn.rp_name");
    invalid(WebauthnConfig { timeout_secs: 0, ..base.clone() }, "webauthn.timeout_secs");
    invalid(WebauthnConfig { timeout_secs: 10_000_000, ..base.clone() }, "webauthn.timeout_secs");
    let with_origin = |origin: &str| WebauthnConfig {
        origins: vec!["https://example.com".to_string(), origin.to_string()],
        ..base.clone()
    };
    invalid(WebauthnConfig { origins: vec![], ..base.clone() }, "webauthn.origins");
    invalid(with_origin("not a url"), "webauthn.origins[1]: not a valid URL");
    invalid(with_origin("https://evil.com"), "webauthn.origins[1]: the host evil.com");
    invalid(with_origin("https://badexample.com"), "webauthn.origins[1]");
    invalid(with_origin("https://example.com.evil.com"), "webauthn.origins[1]");
    invalid(with_origin("http://example.com"), "plain http");
    invalid(with_origin("ftp://example.com"), "https");
    invalid(with_origin("https://192.0.2.1"), "IP address");
    invalid(with_origin("https://example.com/login"), "without path");
    invalid(with_origin("https://example.com?x=1"), "without path");
    invalid(with_origin("https://user@example.com"), "credentials");
}

// ---- options JSON ----

#[test]
fn creation_options_shape() {
    let rp = rp();
    let mut auth = SoftAuthenticator::new();
    let existing = enrol(&rp, &mut auth, &[]);
    let (options, _state) =
        rp.register_begin(&[7u8; 16], "alice@example.com", "", std::slice::from_ref(&existing)).unwrap();
    let v: serde_json::Value = serde_json::from_str(&options).unwrap();
    let pk = &v["publicKey"];
    assert_eq!(pk["rp"], serde_json::json!({"name": "twofa test", "id": "localhost"}));
    assert_eq!(pk["user"]["id"], URL_SAFE_NO_PAD.encode([7u8; 16]));
    assert_eq!(pk["user"]["name"], "alice@example.com");
    assert_eq!(pk["user"]["displayName"], "alice@example.com");
    assert_eq!(b64_field(&v, "/publicKey/challenge").len(), 32);
    let algs: Vec<i64> = pk["pubKeyCredParams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert_eq!(p["type"], "public-key");
            p["alg"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(algs, vec![-7, -35, -257]);
    assert_eq!(pk["timeout"], 300_000);
    assert_eq!(pk["attestation"], "none");
    assert_eq!(pk["authenticatorSelection"]["userVerification"], "preferred");
    assert_eq!(pk["authenticatorSelection"]["residentKey"], "discouraged");
    assert_eq!(pk["authenticatorSelection"]["requireResidentKey"], false);
    assert_eq!(pk["excludeCredentials"][0]["id"], existing.id());
    assert_eq!(pk["excludeCredentials"][0]["type"], "public-key");
    assert!(pk.get("extensions").is_none() && pk.get("hints").is_none());

    let (options, _) = rp.register_begin(&[7u8; 16], "alice", "Alice", &[]).unwrap();
    let v: serde_json::Value = serde_json::from_str(&options).unwrap();
    assert!(v["publicKey"].get("excludeCredentials").is_none());

    for (handle, name) in [(&[][..], "alice"), (&[1u8; 65][..], "alice"), (&[1u8][..], " ")] {
        assert!(matches!(rp.register_begin(handle, name, "x", &[]), Err(Error::InvalidInput(_))));
    }
}

#[test]
fn request_options_shape() {
    let rp = rp_with(UserVerification::Discouraged);
    let mut auth = SoftAuthenticator::new();
    let a = enrol(&rp, &mut auth, &[]);
    let b = enrol(&rp, &mut auth, std::slice::from_ref(&a));
    let (options, challenge) = rp.authenticate_begin(&[a.clone(), b.clone()]).unwrap();
    let v: serde_json::Value = serde_json::from_str(&options).unwrap();
    let pk = &v["publicKey"];
    assert_eq!(pk["rpId"], "localhost");
    assert_eq!(pk["userVerification"], "discouraged");
    assert_eq!(pk["timeout"], 300_000);
    assert_eq!(b64_field(&v, "/publicKey/challenge").len(), 32);
    let ids: Vec<&str> = pk["allowCredentials"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![a.id(), b.id()]);
    assert!(v.get("mediation").is_none());
    assert_eq!(challenge.allowed, vec![a.id().to_string(), b.id().to_string()]);
    assert!(matches!(rp.authenticate_begin(&[]), Err(Error::NotEnrolled)));
}

// ---- serialisation ----

#[test]
fn states_and_credentials_serialise_deterministically() {
    let rp = rp();
    let mut auth = SoftAuthenticator::new();
    let (options, state) = rp.register_begin(HANDLE, "alice", "Alice", &[]).unwrap();
    let state_json = serde_json::to_string(&state).unwrap();
    assert_eq!(state_json, serde_json::to_string(&state).unwrap());
    let back_state: RegistrationState = serde_json::from_str(&state_json).unwrap();
    assert_eq!(back_state, state);
    assert_ne!(back_state, rp.register_begin(HANDLE, "alice", "Alice", &[]).unwrap().1);
    let state = back_state;
    assert_eq!(serde_json::to_string(&state).unwrap(), state_json);
    let chal = URL_SAFE_NO_PAD.encode(b64_field(&serde_json::from_str(&options).unwrap(), "/publicKey/challenge"));
    assert!(state_json.contains(&chal), "the challenge is in the stored state");
    assert!(!format!("{state:?}").contains(&chal), "but not in its Debug");

    let cred = rp.register_finish(&auth.register(&options, ORIGIN), &state).unwrap();
    let cred_json = serde_json::to_string(&cred).unwrap();
    assert_eq!(cred_json, serde_json::to_string(&cred).unwrap());
    let back: StoredCredential = serde_json::from_str(&cred_json).unwrap();
    assert_eq!(serde_json::to_string(&back).unwrap(), cred_json);
    assert_eq!(back.id(), cred.id());
    assert_eq!(back, cred);
    let mut other = cred.clone();
    other.credential.counter += 1;
    assert_ne!(other, cred);
    // Stored exactly as webauthn-rs-core's Credential, attestation dropped.
    let v: serde_json::Value = serde_json::from_str(&cred_json).unwrap();
    assert_eq!(v["cred_id"], cred.id());
    assert_eq!(v["attestation"]["data"], "None");
    assert_eq!(v["attestation_format"], "packed");

    let (options, challenge) = rp.authenticate_begin(std::slice::from_ref(&back)).unwrap();
    let ch_json = serde_json::to_string(&challenge).unwrap();
    assert_eq!(ch_json, serde_json::to_string(&challenge).unwrap());
    let back_challenge: AuthenticationChallenge = serde_json::from_str(&ch_json).unwrap();
    assert_eq!(back_challenge, challenge);
    assert_ne!(back_challenge, rp.authenticate_begin(std::slice::from_ref(&back)).unwrap().1);
    let challenge = back_challenge;
    assert_eq!(serde_json::to_string(&challenge).unwrap(), ch_json);
    let chal = URL_SAFE_NO_PAD.encode(b64_field(&serde_json::from_str(&options).unwrap(), "/publicKey/challenge"));
    assert!(ch_json.contains(&chal), "the challenge is in the stored state");
    assert!(!format!("{challenge:?}").contains(&chal), "but not in its Debug");
    assert!(!ch_json.contains("\"cred\""), "no credential copies in the challenge");
    // The stored forms still work after a round trip.
    let response = auth.authenticate(&options, ORIGIN);
    verified(rp.authenticate_finish(&response, &challenge, &[back], HANDLE));
}

// ---- ceremonies ----

#[test]
fn full_registration_and_authentication() {
    let rp = rp();
    let mut auth = SoftAuthenticator::new();
    let cred = enrol(&rp, &mut auth, &[]);
    assert_eq!(cred.counter(), 0);
    assert!(!cred.backup_eligible());
    let (cred, uv) = verified(sign_in(&rp, &mut auth, std::slice::from_ref(&cred)));
    assert!(!uv);
    assert_eq!(cred.counter(), 1);
    let (cred, _) = verified(sign_in(&rp, &mut auth, std::slice::from_ref(&cred)));
    assert_eq!(cred.counter(), 2);

    // A second device of the same user; either signs in.
    let mut phone = SoftAuthenticator::counter_zero();
    let second = enrol(&rp, &mut phone, std::slice::from_ref(&cred));
    assert_ne!(second.id(), cred.id());
    let creds = [cred.clone(), second.clone()];
    let (updated, _) = verified(sign_in(&rp, &mut phone, &creds));
    assert_eq!(updated.id(), second.id());
    let (updated, _) = verified(sign_in(&rp, &mut auth, &creds));
    assert_eq!(updated.id(), cred.id());
}

#[test]
fn every_configured_origin_accepted() {
    let rp = RelyingParty::new(&WebauthnConfig {
        origins: vec![ORIGIN.to_string(), "https://app.localhost".to_string()],
        ..config()
    })
    .unwrap();
    let mut auth = SoftAuthenticator::new();
    let (options, state) = rp.register_begin(HANDLE, "alice", "Alice", &[]).unwrap();
    let response = auth.register(&options, "https://app.localhost");
    let creds = [rp.register_finish(&response, &state).unwrap()];
    let (options, challenge) = rp.authenticate_begin(&creds).unwrap();
    let response = auth.authenticate(&options, ORIGIN);
    verified(rp.authenticate_finish(&response, &challenge, &creds, HANDLE));
    // Same host, other port: refused.
    let response = auth.authenticate(&options, "https://app.localhost:8443");
    rejected_with(rp.authenticate_finish(&response, &challenge, &creds, HANDLE), "origin not allowed");
}

#[test]
fn user_verification_required_flow() {
    let rp = rp_with(UserVerification::Required);
    // SoftToken(falsify_uv = true) claims UV when the RP requires it.
    let mut auth = SoftAuthenticator::with_user_verification();
    let cred = enrol(&rp, &mut auth, &[]);
    let (_, uv) = verified(sign_in(&rp, &mut auth, &[cred]));
    assert!(uv);
    // An authenticator that cannot verify the user cannot even register.
    let (options, _) = rp.register_begin(HANDLE, "alice", "Alice", &[]).unwrap();
    assert!(SoftAuthenticator::new().try_register(&options, ORIGIN).is_err());
}

#[test]
fn registration_from_wrong_origin_refused() {
    let rp = rp();
    for origin in
        ["http://localhost:8081", "https://localhost:8080", "http://evil.localhost:8080", "https://evil.example"]
    {
        let (options, state) = rp.register_begin(HANDLE, "alice", "Alice", &[]).unwrap();
        let response = SoftAuthenticator::new().register(&options, origin);
        rejected_with(rp.register_finish(&response, &state), "origin not allowed");
    }
}

#[test]
fn registration_for_wrong_rp_id_refused() {
    let rp = rp();
    let (options, state) = rp.register_begin(HANDLE, "alice", "Alice", &[]).unwrap();
    // A phishing page relays our challenge but the authenticator scopes the credential
    // to its own RP id.
    let options = edit_json(&options, |v| v["publicKey"]["rp"]["id"] = "evil.localhost".into());
    let response = SoftAuthenticator::new().register(&options, ORIGIN);
    rejected_with(rp.register_finish(&response, &state), "rp id hash mismatch");
    // Same with the counter-0 authenticator ("none" attestation).
    let response = SoftAuthenticator::counter_zero().register(&options, ORIGIN);
    rejected_with(rp.register_finish(&response, &state), "rp id hash mismatch");
}

#[test]
fn authentication_from_wrong_origin_or_rp_id_refused() {
    let rp = rp();
    let mut auth = SoftAuthenticator::new();
    let creds = [enrol(&rp, &mut auth, &[])];
    let (options, challenge) = rp.authenticate_begin(&creds).unwrap();
    let response = auth.authenticate(&options, "http://localhost:9999");
    rejected_with(rp.authenticate_finish(&response, &challenge, &creds, HANDLE), "origin not allowed");
    let evil = edit_json(&options, |v| v["publicKey"]["rpId"] = "evil.localhost".into());
    let response = auth.authenticate(&evil, ORIGIN);
    rejected_with(rp.authenticate_finish(&response, &challenge, &creds, HANDLE), "rp id hash mismatch");
}

#[test]
fn replayed_registration_response_refused() {
    let rp = rp();
    let mut auth = SoftAuthenticator::new();
    let (options, state1) = rp.register_begin(HANDLE, "alice", "Alice", &[]).unwrap();
    let response = auth.register(&options, ORIGIN);
    rp.register_finish(&response, &state1).unwrap();
    let (_, state2) = rp.register_begin(HANDLE, "alice", "Alice", &[]).unwrap();
    rejected_with(rp.register_finish(&response, &state2), "challenge mismatch");
}

#[test]
fn registration_of_an_excluded_credential_refused() {
    let rp = rp();
    // An authenticator that ignores excludeCredentials and re-registers its key.
    let mut auth = SoftAuthenticator::counter_zero();
    let first = enrol(&rp, &mut auth, &[]);
    auth.set_reuse_credential(true);
    let (options, state) = rp.register_begin(HANDLE, "alice", "Alice", std::slice::from_ref(&first)).unwrap();
    let response = auth.register(&options, ORIGIN);
    rejected_with(rp.register_finish(&response, &state), "credential already registered");
    // Without the exclusion the same response would have passed.
    let (options, state) = rp.register_begin(HANDLE, "alice", "Alice", &[]).unwrap();
    let again = rp.register_finish(&auth.register(&options, ORIGIN), &state).unwrap();
    assert_eq!(again.id(), first.id());
}

#[test]
fn replayed_assertion_refused() {
    let rp = rp();
    let mut auth = SoftAuthenticator::new();
    let creds = vec![enrol(&rp, &mut auth, &[])];
    let (options, challenge1) = rp.authenticate_begin(&creds).unwrap();
    let response = auth.authenticate(&options, ORIGIN);
    let (updated, _) = verified(rp.authenticate_finish(&response, &challenge1, &creds, HANDLE));
    let creds = vec![updated];
    let (_, challenge2) = rp.authenticate_begin(&creds).unwrap();
    rejected_with(rp.authenticate_finish(&response, &challenge2, &creds, HANDLE), "challenge mismatch");
    // Against the same challenge again (the engine deletes used challenges; if it did
    // not), the counter catches it for a counting authenticator.
    assert!(matches!(
        rp.authenticate_finish(&response, &challenge1, &creds, HANDLE),
        Ok(AssertionOutcome::CounterRegressed { .. })
    ));
}

#[test]
fn tampered_signature_refused() {
    let rp = rp();
    let mut auth = SoftAuthenticator::new();
    let creds = [enrol(&rp, &mut auth, &[])];
    let (options, challenge) = rp.authenticate_begin(&creds).unwrap();
    let response = auth.authenticate(&options, ORIGIN);
    // Flip the last byte: the DER stays well-formed, the ECDSA check fails.
    let tampered = edit_json(&response, |v| {
        let mut sig = b64_field(v, "/response/signature");
        let last = sig.len() - 1;
        sig[last] ^= 0x01;
        set_b64_field(v, "/response/signature", &sig);
    });
    rejected_with(rp.authenticate_finish(&tampered, &challenge, &creds, HANDLE), "signature invalid");
    // Break the DER itself.
    let garbled = edit_json(&response, |v| {
        let mut sig = b64_field(v, "/response/signature");
        sig[0] ^= 0xff;
        set_b64_field(v, "/response/signature", &sig);
    });
    rejected_with(rp.authenticate_finish(&garbled, &challenge, &creds, HANDLE), "signature invalid");
    // Tampered authenticator data (counter bumped) and client data are signed too.
    let bumped = edit_json(&response, |v| {
        let mut data = b64_field(v, "/response/authenticatorData");
        data[36] = data[36].wrapping_add(5);
        set_b64_field(v, "/response/authenticatorData", &data);
    });
    rejected_with(rp.authenticate_finish(&bumped, &challenge, &creds, HANDLE), "signature invalid");
    let client_data = edit_json(&response, |v| {
        let data = b64_field(v, "/response/clientDataJSON");
        let mut cd: serde_json::Value = serde_json::from_slice(&data).unwrap();
        cd["extra"] = "x".into();
        set_b64_field(v, "/response/clientDataJSON", cd.to_string().as_bytes());
    });
    rejected_with(rp.authenticate_finish(&client_data, &challenge, &creds, HANDLE), "signature invalid");
    // The genuine response still passes.
    verified(rp.authenticate_finish(&response, &challenge, &creds, HANDLE));
}

#[test]
fn cloned_authenticator_detected() {
    let rp = rp();
    let mut original = SoftAuthenticator::new();
    let cred = enrol(&rp, &mut original, &[]);
    // Copy the soft token's whole state (keys and counter) right after registration.
    let mut clone = original.clone_device();
    let (cred, _) = verified(sign_in(&rp, &mut original, &[cred]));
    let (cred, _) = verified(sign_in(&rp, &mut original, &[cred]));
    assert_eq!(cred.counter(), 2);
    // The clone signs validly, but with counter 1 <= 2.
    match sign_in(&rp, &mut clone, std::slice::from_ref(&cred)) {
        Ok(AssertionOutcome::CounterRegressed { credential_id }) => {
            assert_eq!(credential_id, cred.id());
        }
        other => panic!("expected CounterRegressed, got {other:?}"),
    }
    // Equal counters count as a regression too (clone's 2nd use: 2 <= 2).
    assert!(matches!(
        sign_in(&rp, &mut clone, std::slice::from_ref(&cred)),
        Ok(AssertionOutcome::CounterRegressed { .. })
    ));
    // The clone catches up (3 > 2): indistinguishable from the original from now on.
    verified(sign_in(&rp, &mut clone, &[cred]));
}

#[test]
fn counter_compared_with_current_not_begin_time_value() {
    let rp = rp();
    let mut original = SoftAuthenticator::new();
    let cred0 = enrol(&rp, &mut original, &[]);
    let mut clone = original.clone_device();
    // Two sign-ins start with the credential at counter 0.
    let (options1, challenge1) = rp.authenticate_begin(std::slice::from_ref(&cred0)).unwrap();
    let (options2, challenge2) = rp.authenticate_begin(std::slice::from_ref(&cred0)).unwrap();
    // The original finishes the second one first: counter 0 -> 1.
    let response2 = original.authenticate(&options2, ORIGIN);
    let (cred1, _) = verified(rp.authenticate_finish(&response2, &challenge2, std::slice::from_ref(&cred0), HANDLE));
    // The clone answers the first with counter 1: > 0 (begin-time) but <= 1 (current).
    let response1 = clone.authenticate(&options1, ORIGIN);
    assert!(matches!(
        rp.authenticate_finish(&response1, &challenge1, &[cred1], HANDLE),
        Ok(AssertionOutcome::CounterRegressed { .. })
    ));
    // Out-of-order assertions of ONE authenticator look the same: verify the later
    // one first, the earlier one then regresses.
    let cred = enrol(&rp, &mut original, &[]);
    let (o1, c1) = rp.authenticate_begin(std::slice::from_ref(&cred)).unwrap();
    let (o2, c2) = rp.authenticate_begin(std::slice::from_ref(&cred)).unwrap();
    let first = original.authenticate(&o1, ORIGIN);
    let second = original.authenticate(&o2, ORIGIN);
    let (cred, _) = verified(rp.authenticate_finish(&second, &c2, &[cred], HANDLE));
    assert!(matches!(
        rp.authenticate_finish(&first, &c1, &[cred], HANDLE),
        Ok(AssertionOutcome::CounterRegressed { .. })
    ));
}

#[test]
fn counter_zero_authenticator_keeps_working() {
    let rp = rp();
    let mut auth = SoftAuthenticator::counter_zero();
    let mut cred = enrol(&rp, &mut auth, &[]);
    assert_eq!(cred.counter(), 0);
    for _ in 0..3 {
        let (updated, uv) = verified(sign_in(&rp, &mut auth, std::slice::from_ref(&cred)));
        assert!(!uv);
        assert_eq!(updated.counter(), 0);
        cred = updated;
    }
    // But once a credential has counted, reporting 0 is a regression.
    cred.credential.counter = 4;
    assert!(matches!(sign_in(&rp, &mut auth, &[cred]), Ok(AssertionOutcome::CounterRegressed { .. })));
}

#[test]
fn credential_not_in_creds_refused() {
    let rp = rp();
    let mut alice_key = SoftAuthenticator::new();
    let mut alice_phone = SoftAuthenticator::counter_zero();
    let key = enrol(&rp, &mut alice_key, &[]);
    let phone = enrol(&rp, &mut alice_phone, std::slice::from_ref(&key));
    // A device removed between begin and finish.
    let (options, challenge) = rp.authenticate_begin(&[key.clone(), phone.clone()]).unwrap();
    let response = alice_phone.authenticate(&options, ORIGIN);
    rejected_with(
        rp.authenticate_finish(&response, &challenge, std::slice::from_ref(&key), HANDLE),
        "credential not registered",
    );
    // Still fine with the device present.
    verified(rp.authenticate_finish(&response, &challenge, &[key.clone(), phone.clone()], HANDLE));

    // Another user's credential, presented by a client that rewrote allowCredentials.
    let mut bob_key = SoftAuthenticator::new();
    let bob = enrol(&rp, &mut bob_key, &[]);
    let (options, challenge) = rp.authenticate_begin(std::slice::from_ref(&key)).unwrap();
    let forged = edit_json(&options, |v| {
        v["publicKey"]["allowCredentials"][0]["id"] = bob.id().into();
    });
    let response = bob_key.authenticate(&forged, ORIGIN);
    rejected_with(
        rp.authenticate_finish(&response, &challenge, std::slice::from_ref(&key), HANDLE),
        "credential not allowed for this challenge",
    );
    // Even if the engine passed a wrong credential list, the allow list holds.
    rejected_with(
        rp.authenticate_finish(&response, &challenge, &[key.clone(), bob.clone()], HANDLE),
        "credential not allowed for this challenge",
    );
    // A credential added after begin is not accepted for that challenge either.
    let mut new_key = SoftAuthenticator::counter_zero();
    let added = enrol(&rp, &mut new_key, std::slice::from_ref(&key));
    let forged = edit_json(&options, |v| {
        v["publicKey"]["allowCredentials"][0]["id"] = added.id().into();
    });
    let response = new_key.authenticate(&forged, ORIGIN);
    rejected_with(
        rp.authenticate_finish(&response, &challenge, &[key, added], HANDLE),
        "credential not allowed for this challenge",
    );
}

#[test]
fn user_verification_required_but_not_performed_refused() {
    // 1. A credential registered under "preferred" without UV; the RP now requires
    //    UV. SoftToken (no UV capability) answers with UV=0: refused.
    let preferred = rp();
    let mut auth = SoftAuthenticator::new();
    let creds = [enrol(&preferred, &mut auth, &[])];
    verified(sign_in(&preferred, &mut auth, &creds));
    let required = rp_with(UserVerification::Required);
    rejected_with(sign_in(&required, &mut auth, &creds), "user verification required but not performed");

    // 2. A credential registered WITH UV under "required", then a correctly signed
    //    assertion without UV (counter-0 authenticator whose UV we switch off): refused
    //    by the UV check, even if the RP were later relaxed to "preferred" (the
    //    credential keeps its registration policy).
    let mut auth = SoftAuthenticator::counter_zero();
    auth.set_user_verification(true);
    let creds = [enrol(&required, &mut auth, &[])];
    let (_, uv) = verified(sign_in(&required, &mut auth, &creds));
    assert!(uv);
    auth.set_user_verification(false);
    for rp in [&required, &preferred] {
        rejected_with(sign_in(rp, &mut auth, &creds), "user verification required but not performed");
    }

    // 3. Registration without UV under "required" (an authenticator that lies about
    //    its capability but does not set the flag) is refused too.
    let (options, state) = required.register_begin(HANDLE, "alice", "Alice", &[]).unwrap();
    let response = auth.register(&options, ORIGIN);
    rejected_with(required.register_finish(&response, &state), "user verification required but not performed");

    // 4. Forging the flags byte of a genuine UV assertion: clearing UV is refused by
    //    the UV check (it runs before the signature check); setting UV on a non-UV
    //    assertion is refused by the signature check.
    auth.set_user_verification(true);
    let (options, challenge) = required.authenticate_begin(&creds).unwrap();
    let response = auth.authenticate(&options, ORIGIN);
    let cleared = edit_json(&response, |v| {
        let mut data = b64_field(v, "/response/authenticatorData");
        data[32] &= !0x04;
        set_b64_field(v, "/response/authenticatorData", &data);
    });
    rejected_with(
        required.authenticate_finish(&cleared, &challenge, &creds, HANDLE),
        "user verification required but not performed",
    );
    auth.set_user_verification(false);
    let response = auth.authenticate(&options, ORIGIN);
    let set = edit_json(&response, |v| {
        let mut data = b64_field(v, "/response/authenticatorData");
        data[32] |= 0x04;
        set_b64_field(v, "/response/authenticatorData", &data);
    });
    rejected_with(required.authenticate_finish(&set, &challenge, &creds, HANDLE), "signature invalid");
}

#[test]
fn user_presence_required() {
    let rp = rp();
    let mut auth = SoftAuthenticator::counter_zero();
    let creds = [enrol(&rp, &mut auth, &[])];
    let (options, challenge) = rp.authenticate_begin(&creds).unwrap();
    let response = auth.authenticate(&options, ORIGIN);
    let no_up = edit_json(&response, |v| {
        let mut data = b64_field(v, "/response/authenticatorData");
        data[32] &= !0x01;
        set_b64_field(v, "/response/authenticatorData", &data);
    });
    rejected_with(rp.authenticate_finish(&no_up, &challenge, &creds, HANDLE), "user presence flag not set");
}

#[test]
fn envelope_and_client_data_type_checks() {
    let rp = rp();
    let mut auth = SoftAuthenticator::new();
    let creds = [enrol(&rp, &mut auth, &[])];
    let (options, challenge) = rp.authenticate_begin(&creds).unwrap();
    let response = auth.authenticate(&options, ORIGIN);
    let wrong_type = edit_json(&response, |v| v["type"] = "password".into());
    rejected_with(rp.authenticate_finish(&wrong_type, &challenge, &creds, HANDLE), "credential type is not public-key");
    let wrong_id = edit_json(&response, |v| v["id"] = "AAAA".into());
    rejected_with(rp.authenticate_finish(&wrong_id, &challenge, &creds, HANDLE), "id does not match rawId");
    // A registration response is not an assertion, and vice versa.
    let (reg_options, state) = rp.register_begin(HANDLE, "alice", "Alice", &[]).unwrap();
    let registration = auth.register(&reg_options, ORIGIN);
    assert!(matches!(rp.authenticate_finish(&registration, &challenge, &creds, HANDLE), Err(Error::InvalidInput(_))));
    assert!(matches!(rp.register_finish(&response, &state), Err(Error::InvalidInput(_))));
    // clientData.type must be webauthn.get (a create-type client data signed by the
    // key cannot be produced by a real authenticator; the type check comes first).
    let create_type = edit_json(&response, |v| {
        let data = b64_field(v, "/response/clientDataJSON");
        let mut cd: serde_json::Value = serde_json::from_slice(&data).unwrap();
        cd["type"] = "webauthn.create".into();
        set_b64_field(v, "/response/clientDataJSON", cd.to_string().as_bytes());
    });
    rejected_with(rp.authenticate_finish(&create_type, &challenge, &creds, HANDLE), "client data type mismatch");
    for junk in ["", "{}", "null", "{\"id\":1}", "not json"] {
        assert!(matches!(rp.register_finish(junk, &state), Err(Error::InvalidInput(_))));
        assert!(matches!(rp.authenticate_finish(junk, &challenge, &creds, HANDLE), Err(Error::InvalidInput(_))));
    }
}

#[test]
fn cross_origin_ceremonies_refused() {
    // WebAuthn L3 §7.2: `crossOrigin: true` is refused at registration (webauthn-rs-core) and
    // at authentication (here), with the same error.
    let rp = rp();
    let mut auth = SoftAuthenticator::counter_zero();
    auth.set_cross_origin(true);
    let (options, state) = rp.register_begin(HANDLE, "alice", "Alice", &[]).unwrap();
    let response = auth.register(&options, ORIGIN);
    rejected_with(rp.register_finish(&response, &state), "cross-origin request not allowed");
    auth.set_cross_origin(false);
    let creds = [enrol(&rp, &mut auth, &[])];
    auth.set_cross_origin(true);
    rejected_with(sign_in(&rp, &mut auth, &creds), "cross-origin request not allowed");
    auth.set_cross_origin(false);
    verified(sign_in(&rp, &mut auth, &creds));
}

#[test]
fn browser_json_extras_accepted() {
    let rp = rp();
    let mut auth = SoftAuthenticator::new();
    let (options, state) = rp.register_begin(HANDLE, "alice", "Alice", &[]).unwrap();
    let response = auth.register(&options, ORIGIN);
    // Fields browsers add to toJSON() that webauthn-rs-proto does not model.
    let response = edit_json(&response, |v| {
        v["response"]["publicKeyAlgorithm"] = (-7).into();
        v["response"]["publicKey"] = "MFkw".into();
        v["response"]["authenticatorData"] = "AAAA".into();
        v["response"]["transports"] = serde_json::json!(["usb", "smart-card"]);
        v["clientExtensionResults"] = serde_json::json!({"credProps": {"rk": false}});
    });
    let cred = rp.register_finish(&response, &state).unwrap();
    assert!(cred.credential.transports.as_ref().is_none_or(|t| !t.contains(&wa::AuthenticatorTransport::Unknown)));
    let (options, challenge) = rp.authenticate_begin(std::slice::from_ref(&cred)).unwrap();
    let response = auth.authenticate(&options, ORIGIN);
    let response = edit_json(&response, |v| {
        v["response"]["userHandle"] = URL_SAFE_NO_PAD.encode(b"h").into();
        v["clientExtensionResults"] = serde_json::json!({});
        v["authenticatorAttachment"] = "platform".into();
    });
    verified(rp.authenticate_finish(&response, &challenge, std::slice::from_ref(&cred), HANDLE));
    // Another user's handle is refused (WebAuthn §7.2 step 6).
    let (options, challenge) = rp.authenticate_begin(std::slice::from_ref(&cred)).unwrap();
    let response = auth.authenticate(&options, ORIGIN);
    let other = edit_json(&response, |v| v["response"]["userHandle"] = URL_SAFE_NO_PAD.encode(b"mallory").into());
    rejected_with(
        rp.authenticate_finish(&other, &challenge, &[cred], HANDLE),
        "the user handle is not the credential owner's",
    );
}
