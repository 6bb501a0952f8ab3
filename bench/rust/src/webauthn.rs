//! The `webauthn` workload: one ES256 assertion check.
//!
//! twofa: the fixture's credential is registered on a fresh user (`webauthn_register_begin`,
//! then `webauthn_register_finish` with the fixture's attestation object and client data over
//! the issued challenge); each operation is `login_begin` (timed), an assertion over the issued
//! challenge signed with the fixture's key (not timed), and `login_verify` (timed). Peers verify
//! the fixture's assertion, whose signature counter is 0, over and over, each time after the same
//! untimed work (signing an assertion), so both sides run with the same cache state; the floors
//! run hot, as floors.

use std::hint::black_box;
use std::time::{Duration, Instant};

use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{DerSignature, VerifyingKey};
use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use twofa_bench::authenticator::{Authenticator, sha256, unbase64};
use twofa_bench::fixture::Fixture;
use twofa_core::Proof;
use webauthn_rs_core::WebauthnCore;
use webauthn_rs_core::proto::{
    AttestationConveyancePreference, AuthenticationState, COSEAlgorithm, PublicKeyCredential,
    RegisterPublicKeyCredential, RegistrationState, UserVerificationPolicy,
};

use crate::case::Case;
use crate::subject::{Factory, StoreKind, Subject};

/// Every `webauthn` case: each twofa surface over each store, then the peers.
pub fn cases(factory: &Factory, fixture: &Fixture) -> Vec<Box<dyn Case>> {
    let mut cases: Vec<Box<dyn Case>> = Vec::new();
    for surface in factory.surfaces() {
        for store in [StoreKind::Memory, StoreKind::Sqlite] {
            let name = format!("{}/{}", surface.name(), store.name());
            cases.push(Box::new(TwofaWebauthn::new(factory.subject(surface, store), fixture, &name)));
        }
    }
    cases.push(Box::new(WebauthnRsCore::new(fixture)));
    let signed = SignedMessage::new(fixture);
    cases.push(Box::new(RingFloor(signed.clone())));
    cases.push(Box::new(P256Floor(signed)));
    cases
}

/// The string at `pointer` in a JSON document.
fn string_at(json: &Value, pointer: &str) -> String {
    json.pointer(pointer).and_then(Value::as_str).unwrap_or_else(|| panic!("{pointer} missing in {json}")).into()
}

/// twofa's assertion check on one subject: `webauthn/<subject>`.
struct TwofaWebauthn {
    /// The surface and store.
    subject: Box<dyn Subject>,
    /// `<surface>/<store>`.
    name: String,
    /// The user signing in.
    user: String,
    /// The fixture's authenticator, which signs each assertion.
    authenticator: Authenticator,
    /// The WebAuthn user handle twofa gave the user (sent back as `userHandle`).
    user_handle: Vec<u8>,
}

impl TwofaWebauthn {
    /// Registers the fixture's credential for the fixture's user on `subject`.
    fn new(mut subject: Box<dyn Subject>, fixture: &Fixture, name: &str) -> TwofaWebauthn {
        let authenticator = Authenticator::from_fixture(fixture).unwrap_or_else(|e| panic!("{e}"));
        let options: Value =
            serde_json::from_str(&subject.webauthn_register_begin(&fixture.user)).expect("creation options JSON");
        let challenge = string_at(&options, "/publicKey/challenge");
        let user_handle = unbase64(&string_at(&options, "/publicKey/user/id")).unwrap_or_else(|e| panic!("{e}"));
        let credential = serde_json::to_string(&authenticator.registration(&challenge)).expect("JSON");
        subject.webauthn_register_finish(&fixture.user, &credential);
        TwofaWebauthn { subject, name: name.into(), user: fixture.user.clone(), authenticator, user_handle }
    }
}

impl Case for TwofaWebauthn {
    fn ids(&self) -> Vec<String> {
        vec![format!("webauthn/{}", self.name)]
    }

    fn run(&mut self, ops: u64) -> Vec<Duration> {
        let mut spent = Duration::ZERO;
        for _ in 0..ops {
            let started = Instant::now();
            let challenge = self.subject.login_begin(&self.user);
            spent += started.elapsed();
            let options: Value =
                serde_json::from_str(&challenge.webauthn_options.expect("WebAuthn options")).expect("JSON");
            let assertion =
                self.authenticator.assertion(&string_at(&options, "/publicKey/challenge"), &self.user_handle);
            let proof = Proof::Webauthn(serde_json::to_string(&assertion).expect("JSON"));
            let started = Instant::now();
            let result = self.subject.login_verify(&self.user, &challenge.id, proof);
            spent += started.elapsed();
            if let Err(e) = result {
                panic!("webauthn/{}: login_verify failed: {e}", self.name);
            }
        }
        vec![spent]
    }
}

/// Serialises `value` and reads it back as `T` (the fixture's structs as webauthn-rs types).
fn convert<T: DeserializeOwned>(value: &impl Serialize) -> T {
    serde_json::from_value(serde_json::to_value(value).expect("JSON")).expect("a webauthn-rs value")
}

/// A ceremony state of webauthn-rs-core with its challenge replaced by `challenge`
/// (base64url), so that it matches the fixture's responses.
fn with_challenge<T: Serialize + DeserializeOwned>(state: &T, challenge: &str) -> T {
    let mut json = serde_json::to_value(state).expect("JSON");
    json["challenge"] = Value::String(challenge.into());
    serde_json::from_value(json).expect("a ceremony state")
}

/// `webauthn/webauthn-rs-core`: `WebauthnCore::authenticate_credential` on the fixture's
/// assertion. The credential comes from `register_credential` on the fixture's registration,
/// against a registration state whose challenge is the fixture's.
struct WebauthnRsCore {
    /// The relying party.
    core: WebauthnCore,
    /// The authentication state: the fixture's challenge and the registered credential.
    state: AuthenticationState,
    /// The fixture's assertion.
    assertion: PublicKeyCredential,
    /// Signs the untimed assertion before each verification, as twofa's cases do.
    authenticator: Authenticator,
    /// The challenge it signs over.
    challenge: String,
}

impl WebauthnRsCore {
    /// Registers the fixture's credential and prepares the authentication state.
    fn new(fixture: &Fixture) -> WebauthnRsCore {
        let origin = url::Url::parse(&fixture.origin).expect("an origin URL");
        let core = WebauthnCore::new_unsafe_experts_only(
            "twofa bench",
            &fixture.rp_id,
            vec![origin],
            Duration::from_secs(300),
            Some(false),
            Some(false),
        );
        let user_handle = unbase64(&fixture.user_handle).unwrap_or_else(|e| panic!("{e}"));
        let builder = core
            .new_challenge_register_builder(&user_handle, &fixture.user, &fixture.user)
            .expect("a register builder")
            .attestation(AttestationConveyancePreference::None)
            .credential_algorithms(vec![COSEAlgorithm::ES256]);
        let (_, state) = core.generate_challenge_register(builder).expect("a registration challenge");
        let state: RegistrationState = with_challenge(&state, &fixture.registration.challenge);
        let registration: RegisterPublicKeyCredential = convert(&fixture.registration.response);
        let credential = core.register_credential(&registration, &state, None).expect("the fixture registers");
        let builder = core
            .new_challenge_authenticate_builder(vec![credential], Some(UserVerificationPolicy::Preferred))
            .expect("an authenticate builder");
        let (_, state) = core.generate_challenge_authenticate(builder).expect("an authentication challenge");
        let state = with_challenge(&state, &fixture.assertion.challenge);
        let assertion = convert(&fixture.assertion.response);
        core.authenticate_credential(&assertion, &state).expect("the fixture's assertion verifies");
        let authenticator = Authenticator::from_fixture(fixture).unwrap_or_else(|e| panic!("{e}"));
        WebauthnRsCore { core, state, assertion, authenticator, challenge: fixture.assertion.challenge.clone() }
    }
}

impl Case for WebauthnRsCore {
    fn ids(&self) -> Vec<String> {
        vec!["webauthn/webauthn-rs-core".into()]
    }

    fn run(&mut self, ops: u64) -> Vec<Duration> {
        let mut spent = Duration::ZERO;
        for _ in 0..ops {
            black_box(self.authenticator.assertion(&self.challenge, &[]));
            let started = Instant::now();
            let result = self.core.authenticate_credential(black_box(&self.assertion), &self.state);
            spent += started.elapsed();
            black_box(result.expect("the fixture's assertion verifies"));
        }
        vec![spent]
    }
}

/// What the floors verify: the public key as the uncompressed point, the signed message
/// (`authenticatorData || SHA-256(clientDataJSON)`) and the DER signature. Each floor parses
/// the point and the signature on every call, as ring's `UnparsedPublicKey::verify` does.
#[derive(Clone)]
struct SignedMessage {
    /// The SEC1 uncompressed public key.
    point: Vec<u8>,
    /// `authenticatorData || SHA-256(clientDataJSON)`.
    message: Vec<u8>,
    /// The DER signature.
    signature: Vec<u8>,
}

impl SignedMessage {
    /// The fixture assertion's signed message.
    fn new(fixture: &Fixture) -> SignedMessage {
        let decode = |b64: &str| unbase64(b64).unwrap_or_else(|e| panic!("{e}"));
        let response = &fixture.assertion.response.response;
        let mut message = decode(&response.authenticator_data);
        message.extend_from_slice(&sha256(&decode(&response.client_data_json)));
        SignedMessage {
            point: decode(&fixture.public_key_uncompressed),
            message,
            signature: decode(&response.signature),
        }
    }
}

/// `webauthn/floor-ring-p256`: ring's P-256 ECDSA verify of the signed message.
struct RingFloor(SignedMessage);

impl Case for RingFloor {
    fn ids(&self) -> Vec<String> {
        vec!["webauthn/floor-ring-p256".into()]
    }

    fn run(&mut self, ops: u64) -> Vec<Duration> {
        let m = &self.0;
        let started = Instant::now();
        for _ in 0..ops {
            let key = UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, black_box(&m.point));
            key.verify(black_box(&m.message), black_box(&m.signature)).expect("the fixture's signature verifies");
        }
        vec![started.elapsed()]
    }
}

/// `webauthn/floor-p256`: RustCrypto `p256`'s ECDSA verify of the signed message.
struct P256Floor(SignedMessage);

impl Case for P256Floor {
    fn ids(&self) -> Vec<String> {
        vec!["webauthn/floor-p256".into()]
    }

    fn run(&mut self, ops: u64) -> Vec<Duration> {
        let m = &self.0;
        let started = Instant::now();
        for _ in 0..ops {
            let key = VerifyingKey::from_sec1_bytes(black_box(&m.point)).expect("a P-256 point");
            let signature = DerSignature::try_from(black_box(m.signature.as_slice())).expect("a DER signature");
            key.verify(black_box(&m.message), &signature).expect("the fixture's signature verifies");
        }
        vec![started.elapsed()]
    }
}
