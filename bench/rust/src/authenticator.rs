//! The fixture's authenticator: an ES256 key with one credential, a "none" attestation and a
//! signature counter that stays 0, speaking the browser's JSON (`PublicKeyCredential.toJSON()`).
//!
//! Signatures are RFC 6979 deterministic (RustCrypto `p256`), so the fixture file is the same
//! every time it is written, and a suite can sign fresh assertions for the challenges twofa
//! issues.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{DerSignature, SigningKey};
use p256::pkcs8::EncodePublicKey;

use crate::fixture::{
    AssertionCredential, AssertionResponse, AttestationResponse, Fixture, NoExtensions, RegistrationCredential,
};

/// The COSE algorithm id of ES256 (ECDSA P-256 with SHA-256).
pub const ES256: i64 = -7;

/// Authenticator data flags: user present.
const FLAG_UP: u8 = 0x01;
/// Authenticator data flags: user verified.
const FLAG_UV: u8 = 0x04;
/// Authenticator data flags: attested credential data follows.
const FLAG_AT: u8 = 0x40;

/// An authenticator holding one ES256 credential for one relying party, used from one origin.
pub struct Authenticator {
    /// The credential's private key.
    key: SigningKey,
    /// The credential id.
    credential_id: Vec<u8>,
    /// The origin written into client data.
    origin: String,
    /// The authenticator data of every assertion.
    authenticator_data: Vec<u8>,
}

impl Authenticator {
    /// The authenticator of `key` holding `credential_id` for `rp_id`, used from `origin`.
    pub fn new(key: SigningKey, credential_id: Vec<u8>, rp_id: &str, origin: &str) -> Authenticator {
        let mut authenticator_data = sha256(rp_id.as_bytes()).to_vec();
        authenticator_data.push(FLAG_UP | FLAG_UV);
        authenticator_data.extend_from_slice(&0u32.to_be_bytes());
        Authenticator { key, credential_id, origin: origin.into(), authenticator_data }
    }

    /// The fixture's authenticator; fails unless the file's attestation object and
    /// authenticator data are the ones this key and credential id give.
    pub fn from_fixture(fixture: &Fixture) -> Result<Authenticator, String> {
        let d = unbase64(&fixture.private_key_jwk.d)?;
        let key = SigningKey::from_slice(&d).map_err(|e| format!("private_key_jwk.d: {e}"))?;
        let credential_id = unbase64(&fixture.credential_id)?;
        let authenticator = Authenticator::new(key, credential_id, &fixture.rp_id, &fixture.origin);
        if base64(&authenticator.attestation_object()) != fixture.attestation_object
            || base64(&authenticator.authenticator_data) != fixture.authenticator_data
        {
            return Err("the fixture's attestation_object or authenticator_data does not match its key".into());
        }
        Ok(authenticator)
    }

    /// The private key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// The credential id.
    pub fn credential_id(&self) -> &[u8] {
        &self.credential_id
    }

    /// The public key as the SEC1 uncompressed point (`04 || x || y`).
    pub fn public_key_uncompressed(&self) -> Vec<u8> {
        self.key.verifying_key().to_sec1_point(false).as_bytes().to_vec()
    }

    /// The public key as SubjectPublicKeyInfo DER.
    pub fn public_key_spki(&self) -> Vec<u8> {
        match self.key.verifying_key().to_public_key_der() {
            Ok(der) => der.as_bytes().to_vec(),
            Err(e) => unreachable!("a P-256 public key always encodes as SPKI: {e}"),
        }
    }

    /// The public key as a COSE_Key: `{1: 2 (EC2), 3: -7 (ES256), -1: 1 (P-256), -2: x, -3: y}`.
    pub fn public_key_cose(&self) -> Vec<u8> {
        let point = self.public_key_uncompressed();
        let mut cose = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20];
        cose.extend_from_slice(&point[1..33]);
        cose.extend_from_slice(&[0x22, 0x58, 0x20]);
        cose.extend_from_slice(&point[33..65]);
        cose
    }

    /// The credential's "none" attestation object,
    /// `{"fmt": "none", "attStmt": {}, "authData": h'…'}` in CTAP2 canonical CBOR (keys sorted
    /// by length, then bytes). It does not depend on any challenge.
    pub fn attestation_object(&self) -> Vec<u8> {
        let auth_data = self.registration_authenticator_data();
        let mut cbor = vec![0xa3];
        cbor_text(&mut cbor, "fmt");
        cbor_text(&mut cbor, "none");
        cbor_text(&mut cbor, "attStmt");
        cbor.push(0xa0);
        cbor_text(&mut cbor, "authData");
        cbor_header(&mut cbor, 2, auth_data.len());
        cbor.extend_from_slice(&auth_data);
        cbor
    }

    /// The authenticator data of every assertion: rpIdHash, flags UP and UV, counter 0.
    pub fn authenticator_data(&self) -> &[u8] {
        &self.authenticator_data
    }

    /// The registration's authenticator data: rpIdHash, flags UP, UV and AT, counter 0, a zero
    /// AAGUID, the credential id and the COSE key.
    fn registration_authenticator_data(&self) -> Vec<u8> {
        let mut data = self.authenticator_data[..32].to_vec();
        data.push(FLAG_UP | FLAG_UV | FLAG_AT);
        data.extend_from_slice(&0u32.to_be_bytes());
        data.extend_from_slice(&[0u8; 16]);
        let id_len = u16::try_from(self.credential_id.len()).unwrap_or_else(|_| unreachable!("ids are 32 bytes"));
        data.extend_from_slice(&id_len.to_be_bytes());
        data.extend_from_slice(&self.credential_id);
        data.extend_from_slice(&self.public_key_cose());
        data
    }

    /// The client data JSON of a ceremony (`webauthn.create` or `webauthn.get`), byte for byte
    /// as `bench/README.md` fixes it.
    pub fn client_data(&self, type_: &str, challenge: &str) -> String {
        format!(r#"{{"type":"{type_}","challenge":"{challenge}","origin":"{}","crossOrigin":false}}"#, self.origin)
    }

    /// The browser's registration response for `challenge` (base64url).
    pub fn registration(&self, challenge: &str) -> RegistrationCredential {
        let id = base64(&self.credential_id);
        RegistrationCredential {
            id: id.clone(),
            raw_id: id,
            response: AttestationResponse {
                client_data_json: base64(self.client_data("webauthn.create", challenge).as_bytes()),
                authenticator_data: base64(&self.registration_authenticator_data()),
                transports: vec!["internal".into()],
                public_key: base64(&self.public_key_spki()),
                public_key_algorithm: ES256,
                attestation_object: base64(&self.attestation_object()),
            },
            authenticator_attachment: "platform".into(),
            client_extension_results: NoExtensions {},
            type_: "public-key".into(),
        }
    }

    /// The browser's assertion for `challenge` (base64url), sent with `user_handle`: an
    /// RFC 6979 ECDSA signature over `authenticatorData || SHA-256(clientDataJSON)`.
    pub fn assertion(&self, challenge: &str, user_handle: &[u8]) -> AssertionCredential {
        let client_data = self.client_data("webauthn.get", challenge);
        let mut signed = self.authenticator_data.clone();
        signed.extend_from_slice(&sha256(client_data.as_bytes()));
        let signature: DerSignature = self.key.sign(&signed);
        let id = base64(&self.credential_id);
        AssertionCredential {
            id: id.clone(),
            raw_id: id,
            response: AssertionResponse {
                client_data_json: base64(client_data.as_bytes()),
                authenticator_data: base64(&self.authenticator_data),
                signature: base64(signature.as_bytes()),
                user_handle: base64(user_handle),
            },
            authenticator_attachment: "platform".into(),
            client_extension_results: NoExtensions {},
            type_: "public-key".into(),
        }
    }
}

/// Appends a CBOR text string.
fn cbor_text(out: &mut Vec<u8>, text: &str) {
    cbor_header(out, 3, text.len());
    out.extend_from_slice(text.as_bytes());
}

/// Appends the header of a CBOR item of `major` type and length `len` (below 65536).
fn cbor_header(out: &mut Vec<u8>, major: u8, len: usize) {
    let major = major << 5;
    match (u8::try_from(len), u16::try_from(len)) {
        (Ok(len @ 0..=23), _) => out.push(major | len),
        (Ok(len), _) => out.extend_from_slice(&[major | 24, len]),
        (_, Ok(len)) => {
            out.push(major | 25);
            out.extend_from_slice(&len.to_be_bytes());
        }
        _ => unreachable!("the fixture's CBOR items are short"),
    }
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// base64url without padding.
pub fn base64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding.
pub fn unbase64(text: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD.decode(text).map_err(|e| format!("not base64url ({e}): {text:?}"))
}
