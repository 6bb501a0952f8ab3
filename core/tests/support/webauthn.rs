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
//! [`SoftAuthenticator::set_cross_origin`] makes a counter-zero authenticator's client data say
//! `crossOrigin: true` (a ceremony inside a cross-origin iframe).
//!
//! [`SoftAuthenticator::clone_device`] copies an authenticator with its keys and counter,
//! as an attacker who extracted them would.
//!
//! [`SoftAuthenticator::try_register_same_credential`] registers the authenticator's first
//! credential again (same id and key, "none" attestation) for new creation options, and
//! [`SoftAuthenticator::try_authenticate_with_sign_count`] signs an assertion carrying a chosen
//! signature counter (later assertions continue from it): the shared scenario's
//! `same_credential` and `sign_count` (tests/scenarios/README.md). For a `SoftToken` both read
//! its keys and set its counter through its CBOR state (`to_cbor` / `from_cbor`).
//!
//! Used by core/tests/*.rs (`#[path = "support/webauthn.rs"] mod webauthn_support;` or from
//! a `support/mod.rs`) and by the unit tests of src/webauthn.rs (as
//! `crate::webauthn::test_support`). Uses only public crates: webauthn-authenticator-rs,
//! serde_json, url, ring and base64 (the little CBOR it needs is written here).
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
    /// The token, and the ids of the credentials it created, oldest first.
    Token(Box<SoftToken>, Vec<Vec<u8>>),
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
        SoftAuthenticator { kind: Kind::Token(Box::new(token), Vec::new()) }
    }

    /// An authenticator whose signature counter is always 0, without user verification.
    pub fn counter_zero() -> Self {
        SoftAuthenticator { kind: Kind::Simple(SimpleAuthenticator::default()) }
    }

    /// A copy with the same keys and counter (a cloned authenticator).
    pub fn clone_device(&self) -> Self {
        let kind = match &self.kind {
            Kind::Token(token, ids) => {
                let bytes = token.to_cbor().expect("SoftToken::to_cbor");
                Kind::Token(Box::new(SoftToken::from_cbor(&bytes).expect("SoftToken::from_cbor")), ids.clone())
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
            Kind::Token(..) => panic!("set_user_verification: counter_zero() authenticators only"),
        }
    }

    /// Counter-zero authenticators only: register its first credential again instead of a
    /// new one, ignoring `excludeCredentials` (a misbehaving authenticator).
    pub fn set_reuse_credential(&mut self, reuse: bool) {
        match &mut self.kind {
            Kind::Simple(simple) => simple.reuse_credential = reuse,
            Kind::Token(..) => panic!("set_reuse_credential: counter_zero() authenticators only"),
        }
    }

    /// Counter-zero authenticators only: whether its client data says `crossOrigin: true`, as a
    /// browser reports a ceremony run inside a cross-origin iframe.
    pub fn set_cross_origin(&mut self, cross_origin: bool) {
        match &mut self.kind {
            Kind::Simple(simple) => simple.cross_origin = cross_origin,
            Kind::Token(..) => panic!("set_cross_origin: counter_zero() authenticators only"),
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
            Kind::Token(token, ids) => {
                let options: CreationChallengeResponse =
                    serde_json::from_str(options_json).map_err(|e| format!("options: {e}"))?;
                let origin = Url::parse(origin).map_err(|e| format!("origin: {e}"))?;
                let response =
                    AuthenticatorBackend::perform_register(token.as_mut(), origin, options.public_key, 60_000)
                        .map_err(|e| format!("{e:?}"))?;
                ids.push(response.raw_id.to_vec());
                let value = serde_json::to_value(&response).map_err(|e| e.to_string())?;
                Ok(browser_shape(value))
            }
            Kind::Simple(simple) => simple.register(options_json, origin),
        }
    }

    /// [`Self::authenticate`] returning the failure instead of panicking.
    pub fn try_authenticate(&mut self, options_json: &str, origin: &str) -> Result<String, String> {
        match &mut self.kind {
            Kind::Token(token, _) => {
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

impl SoftAuthenticator {
    /// Registers the authenticator's first credential again (same credential id and key)
    /// for `options_json` as seen from `origin`, instead of creating a new one, ignoring
    /// `excludeCredentials`: the response reports that credential with "none" attestation and
    /// a signature counter of 0. Fails when the authenticator holds no credential.
    pub fn try_register_same_credential(&mut self, options_json: &str, origin: &str) -> Result<String, String> {
        let options: Value = serde_json::from_str(options_json).map_err(|e| format!("options: {e}"))?;
        match &mut self.kind {
            Kind::Simple(simple) => {
                let first = simple.credentials.first().ok_or("the authenticator holds no credential")?.clone();
                simple.register_credential(&options, origin, &first)
            }
            Kind::Token(token, ids) => {
                let id = ids.first().ok_or("the authenticator holds no credential")?;
                let state = TokenState::of(token)?;
                let key = state.key(id)?;
                let uv = options.pointer("/publicKey/authenticatorSelection/userVerification").and_then(Value::as_str)
                    == Some("required");
                if uv && !state.falsify_uv()? {
                    return Err("user verification is not supported by this authenticator".into());
                }
                let flags = 0x41 | if uv { 0x04 } else { 0 };
                registration_json(&options, origin, id, &key, flags, false, "cross-platform")
            }
        }
    }

    /// Signs an assertion for `options_json` as seen from `origin` that carries the signature
    /// counter `sign_count`; later assertions continue from it (a `SoftToken`'s next one
    /// carries `sign_count + 1`, a counter-zero authenticator's credential keeps reporting it).
    pub fn try_authenticate_with_sign_count(
        &mut self,
        options_json: &str,
        origin: &str,
        sign_count: u32,
    ) -> Result<String, String> {
        match &mut self.kind {
            Kind::Simple(simple) => simple.authenticate_counted(options_json, origin, Some(sign_count)),
            Kind::Token(token, _) => {
                let options: Value = serde_json::from_str(options_json).map_err(|e| format!("options: {e}"))?;
                let mut state = TokenState::of(token)?;
                let id = allowed_ids(&options)
                    .into_iter()
                    .find(|id| state.key(id).is_ok())
                    .ok_or("none of the allowed credentials is on this authenticator")?;
                let key = state.key(&id)?;
                let uv = options.pointer("/publicKey/userVerification").and_then(Value::as_str) == Some("required")
                    && state.falsify_uv()?;
                let flags = 0x01 | if uv { 0x04 } else { 0 };
                let response =
                    assertion_json(&options, origin, &id, &key, flags, sign_count, false, None, "cross-platform")?;
                state.set_counter(sign_count)?;
                **token = state.into_token()?;
                Ok(response)
            }
        }
    }
}

/// The credential ids of request options' `allowCredentials`, in order.
fn allowed_ids(options: &Value) -> Vec<Vec<u8>> {
    (options.pointer("/publicKey/allowCredentials").and_then(Value::as_array).into_iter().flatten())
        .filter_map(|c| c["id"].as_str())
        .filter_map(|id| URL_SAFE_NO_PAD.decode(id).ok())
        .collect()
}

/// A registration response (`PublicKeyCredential.toJSON()`) with "none" attestation for
/// `credential_id` and `key`, the authenticator data flags `flags` (AT included) and counter 0.
fn registration_json(
    options: &Value,
    origin: &str,
    credential_id: &[u8],
    key: &EcdsaKeyPair,
    flags: u8,
    cross_origin: bool,
    attachment: &str,
) -> Result<String, String> {
    let challenge = str_at(options, "/publicKey/challenge")?;
    let rp_id = str_at(options, "/publicKey/rp/id")?;
    let point = key.public_key().as_ref(); // 0x04 || x || y
    let mut cose_key = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20];
    cose_key.extend_from_slice(&point[1..33]);
    cose_key.extend_from_slice(&[0x22, 0x58, 0x20]);
    cose_key.extend_from_slice(&point[33..65]);

    let mut auth_data = sha256(rp_id.as_bytes());
    auth_data.push(flags);
    auth_data.extend_from_slice(&0u32.to_be_bytes());
    auth_data.extend_from_slice(&[0u8; 16]); // AAGUID
    let id_len = u16::try_from(credential_id.len()).map_err(|_| "id length")?;
    auth_data.extend_from_slice(&id_len.to_be_bytes());
    auth_data.extend_from_slice(credential_id);
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

    let client_data = client_data("webauthn.create", challenge, origin, cross_origin);
    let id = URL_SAFE_NO_PAD.encode(credential_id);
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
        "authenticatorAttachment": attachment,
    })
    .to_string())
}

/// An assertion response (`PublicKeyCredential.toJSON()`) by `credential_id` and `key` with
/// the authenticator data flags `flags` and signature counter `counter`.
#[allow(clippy::too_many_arguments)]
fn assertion_json(
    options: &Value,
    origin: &str,
    credential_id: &[u8],
    key: &EcdsaKeyPair,
    flags: u8,
    counter: u32,
    cross_origin: bool,
    user_handle: Option<&[u8]>,
    attachment: &str,
) -> Result<String, String> {
    let challenge = str_at(options, "/publicKey/challenge")?;
    let rp_id = str_at(options, "/publicKey/rpId")?;
    let mut auth_data = sha256(rp_id.as_bytes());
    auth_data.push(flags);
    auth_data.extend_from_slice(&counter.to_be_bytes());
    let client_data = client_data("webauthn.get", challenge, origin, cross_origin);
    let mut signed = auth_data.clone();
    signed.extend_from_slice(&sha256(client_data.as_bytes()));
    let signature = key.sign(&SystemRandom::new(), &signed).map_err(|_| "signing")?;
    let id = URL_SAFE_NO_PAD.encode(credential_id);
    let mut response = json!({
        "clientDataJSON": URL_SAFE_NO_PAD.encode(client_data.as_bytes()),
        "authenticatorData": URL_SAFE_NO_PAD.encode(&auth_data),
        "signature": URL_SAFE_NO_PAD.encode(signature.as_ref()),
    });
    if let Some(handle) = user_handle {
        response["userHandle"] = json!(URL_SAFE_NO_PAD.encode(handle));
    }
    Ok(json!({
        "id": id,
        "rawId": id,
        "type": "public-key",
        "response": response,
        "clientExtensionResults": {},
        "authenticatorAttachment": attachment,
    })
    .to_string())
}

/// A `SoftToken`'s state as its CBOR serialisation holds it (a map from field names: `tokens`
/// maps credential ids to SEC1 DER private keys, `counter` is the signature counter of the
/// whole token, `falsify_uv` whether it claims user verification).
struct TokenState(Vec<(Cbor, Cbor)>);

impl TokenState {
    fn of(token: &SoftToken) -> Result<TokenState, String> {
        let bytes = token.to_cbor().map_err(|e| format!("SoftToken::to_cbor: {e:?}"))?;
        let mut input = bytes.as_slice();
        match Cbor::decode(&mut input)? {
            Cbor::Map(fields) if input.is_empty() => Ok(TokenState(fields)),
            _ => Err("a SoftToken's CBOR is not one map".into()),
        }
    }

    fn field(&self, name: &str) -> Result<&Cbor, String> {
        (self.0.iter().find(|(k, _)| matches!(k, Cbor::Text(t) if t == name)).map(|(_, v)| v))
            .ok_or_else(|| format!("a SoftToken's CBOR has no `{name}`"))
    }

    fn falsify_uv(&self) -> Result<bool, String> {
        match self.field("falsify_uv")? {
            Cbor::Simple(20) => Ok(false),
            Cbor::Simple(21) => Ok(true),
            other => Err(format!("falsify_uv: {other:?}")),
        }
    }

    /// The key of credential `id`.
    fn key(&self, id: &[u8]) -> Result<EcdsaKeyPair, String> {
        let Cbor::Map(tokens) = self.field("tokens")? else { return Err("tokens: not a map".into()) };
        let der = (tokens.iter().find(|(k, _)| k.bytes().as_deref() == Some(id)).and_then(|(_, v)| v.bytes()))
            .ok_or("the credential is not on this authenticator")?;
        sec1_p256_key(&der)
    }

    fn set_counter(&mut self, counter: u32) -> Result<(), String> {
        let field = self.0.iter_mut().find(|(k, _)| matches!(k, Cbor::Text(t) if t == "counter"));
        field.ok_or("a SoftToken's CBOR has no `counter`")?.1 = Cbor::Uint(counter.into());
        Ok(())
    }

    fn into_token(self) -> Result<SoftToken, String> {
        let mut bytes = Vec::new();
        Cbor::Map(self.0).encode(&mut bytes);
        SoftToken::from_cbor(&bytes).map_err(|e| format!("SoftToken::from_cbor: {e:?}"))
    }
}

/// A ring key pair of a SEC1 DER P-256 private key (`ECPrivateKey`, RFC 5915) that includes
/// its public key.
fn sec1_p256_key(der: &[u8]) -> Result<EcdsaKeyPair, String> {
    /// One DER item at the start of `input`: (tag, contents), and the rest.
    fn item(input: &[u8]) -> Result<(u8, &[u8], &[u8]), String> {
        let (&tag, rest) = input.split_first().ok_or("DER: truncated")?;
        let (&first, rest) = rest.split_first().ok_or("DER: truncated")?;
        let (len, rest) = match first {
            0..=0x7f => (usize::from(first), rest),
            0x81 => (usize::from(*rest.first().ok_or("DER: truncated")?), &rest[1..]),
            0x82 if rest.len() >= 2 => (usize::from(u16::from_be_bytes([rest[0], rest[1]])), &rest[2..]),
            _ => return Err("DER: unsupported length".into()),
        };
        if rest.len() < len {
            return Err("DER: truncated".into());
        }
        Ok((tag, &rest[..len], &rest[len..]))
    }
    let (tag, mut fields, _) = item(der)?;
    if tag != 0x30 {
        return Err("SEC1: not a SEQUENCE".into());
    }
    let (mut private, mut public) = (None, None);
    while !fields.is_empty() {
        let (tag, contents, rest) = item(fields)?;
        match tag {
            0x04 => private = Some(contents),
            // [1] { BIT STRING: 0 unused bits, the point }
            0xa1 => public = item(contents)?.1.get(1..),
            _ => {}
        }
        fields = rest;
    }
    let (private, public) = private.zip(public).ok_or("SEC1: the private or the public key is missing")?;
    EcdsaKeyPair::from_private_key_and_public_key(
        &ECDSA_P256_SHA256_ASN1_SIGNING,
        private,
        public,
        &SystemRandom::new(),
    )
    .map_err(|e| format!("SEC1 key: {e}"))
}

/// The CBOR data items a `SoftToken`'s state uses (definite lengths, no tags or floats).
#[derive(Clone, Debug, PartialEq)]
enum Cbor {
    Uint(u64),
    Negative(u64),
    Bytes(Vec<u8>),
    Text(String),
    Array(Vec<Cbor>),
    Map(Vec<(Cbor, Cbor)>),
    /// false (20), true (21), null (22), undefined (23), ...
    Simple(u8),
}

impl Cbor {
    fn decode(input: &mut &[u8]) -> Result<Cbor, String> {
        let (&initial, rest) = input.split_first().ok_or("CBOR: truncated")?;
        *input = rest;
        let (major, info) = (initial >> 5, initial & 0x1f);
        let mut take = |n: usize| -> Result<&[u8], String> {
            if input.len() < n {
                return Err("CBOR: truncated".into());
            }
            let (head, rest) = input.split_at(n);
            *input = rest;
            Ok(head)
        };
        let argument = match info {
            0..=23 => u64::from(info),
            24..=27 => take(1 << (info - 24))?.iter().fold(0u64, |n, &b| n << 8 | u64::from(b)),
            _ => return Err(format!("CBOR: unsupported initial byte {initial:#04x}")),
        };
        let length = || usize::try_from(argument).map_err(|_| "CBOR: length".to_string());
        Ok(match major {
            0 => Cbor::Uint(argument),
            1 => Cbor::Negative(argument),
            2 => Cbor::Bytes(take(length()?)?.to_vec()),
            3 => Cbor::Text(String::from_utf8(take(length()?)?.to_vec()).map_err(|e| e.to_string())?),
            4 => Cbor::Array((0..argument).map(|_| Cbor::decode(input)).collect::<Result<_, _>>()?),
            5 => Cbor::Map(
                (0..argument)
                    .map(|_| Ok((Cbor::decode(input)?, Cbor::decode(input)?)))
                    .collect::<Result<_, String>>()?,
            ),
            7 if info < 24 => Cbor::Simple(info),
            _ => return Err(format!("CBOR: unsupported initial byte {initial:#04x}")),
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        fn head(out: &mut Vec<u8>, major: u8, n: u64) {
            let m = major << 5;
            match n {
                0..=23 => out.push(m | n as u8),
                24..=0xff => out.extend_from_slice(&[m | 24, n as u8]),
                0x100..=0xffff => {
                    out.push(m | 25);
                    out.extend_from_slice(&(n as u16).to_be_bytes());
                }
                0x1_0000..=0xffff_ffff => {
                    out.push(m | 26);
                    out.extend_from_slice(&(n as u32).to_be_bytes());
                }
                _ => {
                    out.push(m | 27);
                    out.extend_from_slice(&n.to_be_bytes());
                }
            }
        }
        match self {
            Cbor::Uint(n) => head(out, 0, *n),
            Cbor::Negative(n) => head(out, 1, *n),
            Cbor::Bytes(b) => {
                head(out, 2, b.len() as u64);
                out.extend_from_slice(b);
            }
            Cbor::Text(t) => {
                head(out, 3, t.len() as u64);
                out.extend_from_slice(t.as_bytes());
            }
            Cbor::Array(items) => {
                head(out, 4, items.len() as u64);
                items.iter().for_each(|item| item.encode(out));
            }
            Cbor::Map(fields) => {
                head(out, 5, fields.len() as u64);
                for (k, v) in fields {
                    k.encode(out);
                    v.encode(out);
                }
            }
            Cbor::Simple(n) => out.push(0xe0 | n),
        }
    }

    /// A byte string, or an array of bytes (how serde writes a `Vec<u8>`).
    fn bytes(&self) -> Option<Vec<u8>> {
        match self {
            Cbor::Bytes(b) => Some(b.clone()),
            Cbor::Array(items) => items
                .iter()
                .map(|item| match item {
                    Cbor::Uint(n) => u8::try_from(*n).ok(),
                    _ => None,
                })
                .collect(),
            _ => None,
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
    credentials: Vec<SimpleCredential>,
    user_verification: bool,
    reuse_credential: bool,
    cross_origin: bool,
}

/// A credential of the counter-zero authenticator.
#[derive(Clone)]
struct SimpleCredential {
    id: Vec<u8>,
    /// The PKCS#8 private key.
    pkcs8: Vec<u8>,
    user_handle: Vec<u8>,
    /// The signature counter its assertions report: 0 unless a sign count was chosen.
    counter: u32,
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
        let user_handle = URL_SAFE_NO_PAD.decode(str_at(&options, "/publicKey/user/id")?).map_err(|e| e.to_string())?;
        let credential = match self.credentials.first() {
            Some(first) if self.reuse_credential => first.clone(),
            _ => {
                let rng = SystemRandom::new();
                let mut id = vec![0u8; 32];
                rng.fill(&mut id).map_err(|_| "rng")?;
                let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
                    .map_err(|_| "key generation")?;
                let credential = SimpleCredential { id, pkcs8: pkcs8.as_ref().to_vec(), user_handle, counter: 0 };
                self.credentials.push(credential.clone());
                credential
            }
        };
        self.register_credential(&options, origin, &credential)
    }

    /// The registration response for `credential` (new or held).
    fn register_credential(
        &self,
        options: &Value,
        origin: &str,
        credential: &SimpleCredential,
    ) -> Result<String, String> {
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &credential.pkcs8, &SystemRandom::new())
            .map_err(|_| "key")?;
        let flags = self.flags(options) | 0x40; // AT: attested credential data
        registration_json(options, origin, &credential.id, &key, flags, self.cross_origin, "platform")
    }

    fn authenticate(&mut self, options_json: &str, origin: &str) -> Result<String, String> {
        self.authenticate_counted(options_json, origin, None)
    }

    /// An assertion by the first allowed credential held; with `sign_count`, that credential
    /// reports it from now on.
    fn authenticate_counted(
        &mut self,
        options_json: &str,
        origin: &str,
        sign_count: Option<u32>,
    ) -> Result<String, String> {
        let options: Value = serde_json::from_str(options_json).map_err(|e| e.to_string())?;
        let allowed = allowed_ids(&options);
        let flags = self.flags(&options);
        let credential = (self.credentials.iter_mut())
            .find(|c| allowed.contains(&c.id))
            .ok_or("none of the allowed credentials is on this authenticator")?;
        if let Some(n) = sign_count {
            credential.counter = n;
        }
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &credential.pkcs8, &SystemRandom::new())
            .map_err(|_| "key")?;
        let user_handle = Some(credential.user_handle.as_slice());
        let (id, counter) = (&credential.id, credential.counter);
        assertion_json(&options, origin, id, &key, flags, counter, self.cross_origin, user_handle, "platform")
    }
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> Result<&'a str, String> {
    value.pointer(pointer).and_then(Value::as_str).ok_or_else(|| format!("options: {pointer} missing"))
}

/// The client data JSON as browsers write it (origin without a trailing slash).
fn client_data(type_: &str, challenge: &str, origin: &str, cross_origin: bool) -> String {
    json!({"type": type_, "challenge": challenge, "origin": origin, "crossOrigin": cross_origin}).to_string()
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
