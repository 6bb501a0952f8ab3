//! Soft WebAuthn authenticators for twofa's tests: the "browser + authenticator" side of
//! the ceremonies, speaking only JSON.
//!
//! [`SoftAuthenticator::register`] takes the creation options JSON the relying party
//! produced (`{"publicKey": {...}}`) and an origin, and returns the response JSON as a
//! browser's `PublicKeyCredential.toJSON()` gives it; [`SoftAuthenticator::authenticate`]
//! does the same for assertions. The client part does NO checks of its own (a real browser
//! refuses an origin outside the RP id): tests can therefore play a phishing page or a
//! tampering client and see the relying party refuse.
//!
//! Two kinds of authenticator:
//! * [`SoftAuthenticator::new`] / [`SoftAuthenticator::with_user_verification`]:
//!   `webauthn-authenticator-rs`'s `SoftToken` (ES256, packed attestation; one signature
//!   counter for the whole token, +1 per assertion; the user-verified flag only when the RP
//!   requires UV, and only for `with_user_verification`, which claims the capability).
//! * [`SoftAuthenticator::counter_zero`]: a minimal ES256 authenticator written here with
//!   `ring` ("none" attestation), whose signature counter is always 0, like many platform
//!   authenticators and passkeys; its user-verified flag is switchable.
//!
//! [`SoftAuthenticator::clone_device`] copies an authenticator with its keys and counter,
//! as an attacker who extracted them would.
//!
//! Used by core/tests/*.rs (`#[path = "support/webauthn.rs"] mod webauthn_support;` or from
//! a `support/mod.rs`) and by the unit tests of src/webauthn.rs (as
//! `crate::webauthn::test_support`). Uses only public crates: webauthn-authenticator-rs,
//! serde_json, url, ring and base64.
#![allow(dead_code)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};
use url::Url;
use webauthn_authenticator_rs::AuthenticatorBackend;
use webauthn_authenticator_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse};
use webauthn_authenticator_rs::softtoken::SoftToken;

/// A software authenticator plus a check-free client; see the module docs.
pub struct SoftAuthenticator {
    kind: Kind,
}

enum Kind {
    Token(Box<SoftToken>),
    Simple(SimpleAuthenticator),
}

impl Default for SoftAuthenticator {
    fn default() -> Self {
        Self::new()
    }
}

impl SoftAuthenticator {
    /// A `SoftToken` without user verification; its counter goes 1, 2, 3... per assertion.
    pub fn new() -> Self {
        Self::token(false)
    }

    /// A `SoftToken` claiming user verification: it can register and sign when the RP
    /// requires UV (setting the UV flag then; under `preferred` it does not set it).
    pub fn with_user_verification() -> Self {
        Self::token(true)
    }

    fn token(falsify_uv: bool) -> Self {
        let (token, _ca) = SoftToken::new(falsify_uv).expect("SoftToken::new");
        SoftAuthenticator { kind: Kind::Token(Box::new(token)) }
    }

    /// An authenticator whose signature counter is always 0, without user verification.
    pub fn counter_zero() -> Self {
        SoftAuthenticator { kind: Kind::Simple(SimpleAuthenticator::default()) }
    }

    /// A copy with the same keys and counter (a cloned authenticator).
    pub fn clone_device(&self) -> Self {
        let kind = match &self.kind {
            Kind::Token(token) => {
                let bytes = token.to_cbor().expect("SoftToken::to_cbor");
                Kind::Token(Box::new(SoftToken::from_cbor(&bytes).expect("SoftToken::from_cbor")))
            }
            Kind::Simple(simple) => Kind::Simple(simple.clone()),
        };
        SoftAuthenticator { kind }
    }

    /// Counter-zero authenticators only: whether it sets the user-verified flag (unless
    /// the RP discourages UV).
    pub fn set_user_verification(&mut self, verified: bool) {
        match &mut self.kind {
            Kind::Simple(simple) => simple.user_verification = verified,
            Kind::Token(_) => panic!("set_user_verification: counter_zero() authenticators only"),
        }
    }

    /// Counter-zero authenticators only: register its first credential again instead of a
    /// new one, ignoring `excludeCredentials` (a misbehaving authenticator).
    pub fn set_reuse_credential(&mut self, reuse: bool) {
        match &mut self.kind {
            Kind::Simple(simple) => simple.reuse_credential = reuse,
            Kind::Token(_) => panic!("set_reuse_credential: counter_zero() authenticators only"),
        }
    }

    /// Creates a credential for `options_json` (the RP's `{"publicKey": ...}` creation
    /// options) as seen from `origin`; returns the browser-style response JSON.
    /// Panics if the authenticator refuses (e.g. UV required but not supported).
    pub fn register(&mut self, options_json: &str, origin: &str) -> String {
        self.try_register(options_json, origin)
            .unwrap_or_else(|e| panic!("soft authenticator registration failed: {e}"))
    }

    /// Signs an assertion for `options_json` (the RP's `{"publicKey": ...}` request
    /// options) as seen from `origin`; returns the browser-style response JSON.
    /// Panics if the authenticator refuses (e.g. it holds none of the allowed credentials).
    pub fn authenticate(&mut self, options_json: &str, origin: &str) -> String {
        self.try_authenticate(options_json, origin)
            .unwrap_or_else(|e| panic!("soft authenticator assertion failed: {e}"))
    }

    /// [`Self::register`] returning the failure instead of panicking.
    pub fn try_register(&mut self, options_json: &str, origin: &str) -> Result<String, String> {
        match &mut self.kind {
            Kind::Token(token) => {
                let options: CreationChallengeResponse =
                    serde_json::from_str(options_json).map_err(|e| format!("options: {e}"))?;
                let origin = Url::parse(origin).map_err(|e| format!("origin: {e}"))?;
                let response =
                    AuthenticatorBackend::perform_register(token.as_mut(), origin, options.public_key, 60_000)
                        .map_err(|e| format!("{e:?}"))?;
                let value = serde_json::to_value(&response).map_err(|e| e.to_string())?;
                Ok(browser_shape(value))
            }
            Kind::Simple(simple) => simple.register(options_json, origin),
        }
    }

    /// [`Self::authenticate`] returning the failure instead of panicking.
    pub fn try_authenticate(&mut self, options_json: &str, origin: &str) -> Result<String, String> {
        match &mut self.kind {
            Kind::Token(token) => {
                let options: RequestChallengeResponse =
                    serde_json::from_str(options_json).map_err(|e| format!("options: {e}"))?;
                let origin = Url::parse(origin).map_err(|e| format!("origin: {e}"))?;
                let response = AuthenticatorBackend::perform_auth(token.as_mut(), origin, options.public_key, 60_000)
                    .map_err(|e| format!("{e:?}"))?;
                let value = serde_json::to_value(&response).map_err(|e| e.to_string())?;
                Ok(browser_shape(value))
            }
            Kind::Simple(simple) => simple.authenticate(options_json, origin),
        }
    }
}

/// Rewrites webauthn-rs-proto's serialisation into what `PublicKeyCredential.toJSON()`
/// gives: `clientExtensionResults` instead of `extensions`, `authenticatorAttachment`,
/// no null members.
fn browser_shape(mut value: Value) -> String {
    if let Some(object) = value.as_object_mut() {
        let extensions = object.remove("extensions").unwrap_or(Value::Null);
        let extensions = match extensions {
            Value::Object(map) => Value::Object(map.into_iter().filter(|(_, v)| !v.is_null()).collect()),
            _ => json!({}),
        };
        object.insert("clientExtensionResults".to_string(), extensions);
        object.insert("authenticatorAttachment".to_string(), json!("cross-platform"));
        if let Some(Value::Object(response)) = object.get_mut("response") {
            response.retain(|_, v| !v.is_null());
        }
    }
    value.to_string()
}

/// The counter-zero authenticator: ES256 keys from ring, "none" attestation.
#[derive(Clone, Default)]
struct SimpleAuthenticator {
    /// (credential id, PKCS#8 private key, user handle) per credential.
    credentials: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)>,
    user_verification: bool,
    reuse_credential: bool,
}

impl SimpleAuthenticator {
    fn flags(&self, options: &Value) -> u8 {
        let uv = self.user_verification
            && options
                .pointer("/publicKey/authenticatorSelection/userVerification")
                .or_else(|| options.pointer("/publicKey/userVerification"))
                .and_then(Value::as_str)
                != Some("discouraged");
        0x01 | if uv { 0x04 } else { 0 }
    }

    fn register(&mut self, options_json: &str, origin: &str) -> Result<String, String> {
        let options: Value = serde_json::from_str(options_json).map_err(|e| e.to_string())?;
        let challenge = str_at(&options, "/publicKey/challenge")?;
        let rp_id = str_at(&options, "/publicKey/rp/id")?;
        let user_handle = URL_SAFE_NO_PAD.decode(str_at(&options, "/publicKey/user/id")?).map_err(|e| e.to_string())?;
        let rng = SystemRandom::new();
        let (credential_id, pkcs8) = match self.credentials.first() {
            Some((id, pkcs8, _)) if self.reuse_credential => (id.clone(), pkcs8.clone()),
            _ => {
                let mut id = vec![0u8; 32];
                rng.fill(&mut id).map_err(|_| "rng")?;
                let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
                    .map_err(|_| "key generation")?;
                let pkcs8 = pkcs8.as_ref().to_vec();
                self.credentials.push((id.clone(), pkcs8.clone(), user_handle));
                (id, pkcs8)
            }
        };
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8, &rng).map_err(|_| "key")?;
        let point = key.public_key().as_ref(); // 0x04 || x || y
        let mut cose_key = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20];
        cose_key.extend_from_slice(&point[1..33]);
        cose_key.extend_from_slice(&[0x22, 0x58, 0x20]);
        cose_key.extend_from_slice(&point[33..65]);

        let mut auth_data = sha256(rp_id.as_bytes());
        auth_data.push(self.flags(&options) | 0x40); // AT: attested credential data
        auth_data.extend_from_slice(&0u32.to_be_bytes());
        auth_data.extend_from_slice(&[0u8; 16]); // AAGUID
        let id_len = u16::try_from(credential_id.len()).map_err(|_| "id length")?;
        auth_data.extend_from_slice(&id_len.to_be_bytes());
        auth_data.extend_from_slice(&credential_id);
        auth_data.extend_from_slice(&cose_key);

        // {"fmt": "none", "attStmt": {}, "authData": h'...'}
        let mut attestation_object = vec![0xa3, 0x63];
        attestation_object.extend_from_slice(b"fmt");
        attestation_object.push(0x64);
        attestation_object.extend_from_slice(b"none");
        attestation_object.push(0x67);
        attestation_object.extend_from_slice(b"attStmt");
        attestation_object.push(0xa0);
        attestation_object.push(0x68);
        attestation_object.extend_from_slice(b"authData");
        cbor_bytes_header(&mut attestation_object, auth_data.len());
        attestation_object.extend_from_slice(&auth_data);

        let client_data = client_data("webauthn.create", challenge, origin);
        let id = URL_SAFE_NO_PAD.encode(&credential_id);
        Ok(json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "response": {
                "clientDataJSON": URL_SAFE_NO_PAD.encode(client_data.as_bytes()),
                "attestationObject": URL_SAFE_NO_PAD.encode(&attestation_object),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        })
        .to_string())
    }

    fn authenticate(&mut self, options_json: &str, origin: &str) -> Result<String, String> {
        let options: Value = serde_json::from_str(options_json).map_err(|e| e.to_string())?;
        let challenge = str_at(&options, "/publicKey/challenge")?;
        let rp_id = str_at(&options, "/publicKey/rpId")?;
        let allowed: Vec<Vec<u8>> = options
            .pointer("/publicKey/allowCredentials")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter().filter_map(|c| c["id"].as_str()).filter_map(|id| URL_SAFE_NO_PAD.decode(id).ok()).collect()
            })
            .unwrap_or_default();
        let (credential_id, pkcs8, user_handle) = self
            .credentials
            .iter()
            .find(|(id, _, _)| allowed.contains(id))
            .ok_or("none of the allowed credentials is on this authenticator")?;
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8, &rng).map_err(|_| "key")?;
        let mut auth_data = sha256(rp_id.as_bytes());
        auth_data.push(self.flags(&options));
        auth_data.extend_from_slice(&0u32.to_be_bytes()); // the counter: always 0
        let client_data = client_data("webauthn.get", challenge, origin);
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&sha256(client_data.as_bytes()));
        let signature = key.sign(&rng, &signed).map_err(|_| "signing")?;
        let id = URL_SAFE_NO_PAD.encode(credential_id);
        Ok(json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "response": {
                "clientDataJSON": URL_SAFE_NO_PAD.encode(client_data.as_bytes()),
                "authenticatorData": URL_SAFE_NO_PAD.encode(&auth_data),
                "signature": URL_SAFE_NO_PAD.encode(signature.as_ref()),
                "userHandle": URL_SAFE_NO_PAD.encode(user_handle),
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        })
        .to_string())
    }
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> Result<&'a str, String> {
    value.pointer(pointer).and_then(Value::as_str).ok_or_else(|| format!("options: {pointer} missing"))
}

/// The client data JSON as browsers write it (origin without a trailing slash).
fn client_data(type_: &str, challenge: &str, origin: &str) -> String {
    json!({"type": type_, "challenge": challenge, "origin": origin, "crossOrigin": false}).to_string()
}

fn sha256(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, data).as_ref().to_vec()
}

/// The CBOR header of a byte string of `len` bytes.
fn cbor_bytes_header(out: &mut Vec<u8>, len: usize) {
    match len {
        0..=23 => out.push(0x40 | len as u8),
        24..=255 => out.extend_from_slice(&[0x58, len as u8]),
        _ => {
            out.push(0x59);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
    }
}
