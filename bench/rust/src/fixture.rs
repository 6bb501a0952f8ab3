//! The shape of `bench/fixture.json` (see `bench/README.md`, "The fixture").
//!
//! Serialising these structs gives the file's key order (struct field order), so the output does
//! not depend on serde_json's map features. Binary values are base64url without padding.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// `bench/fixture.json` in the workspace, wherever the program runs from.
pub fn default_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new("bench")).join("fixture.json")
}

/// Everything every suite needs to sign in with TOTP and WebAuthn, and to feed the peers.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Fixture {
    /// The WebAuthn relying party id (`localhost`).
    pub rp_id: String,
    /// The browser origin (`http://localhost:8080`).
    pub origin: String,
    /// The user id to sign in as.
    pub user: String,
    /// The TOTP secret (base32, SHA-1, 6 digits, 30 s).
    pub totp_secret: String,
    /// The Unix time the suites start their clocks at.
    pub t0: u64,
    /// The P-256 private key as a JWK.
    pub private_key_jwk: Jwk,
    /// The same key as PKCS#8 DER.
    pub private_key_pkcs8: String,
    /// The public key as a COSE_Key (ES256).
    pub public_key_cose: String,
    /// The public key as SubjectPublicKeyInfo DER.
    pub public_key_spki: String,
    /// The public key as the SEC1 uncompressed point (65 bytes).
    pub public_key_uncompressed: String,
    /// The credential id (32 bytes).
    pub credential_id: String,
    /// The WebAuthn user handle of `assertion`.
    pub user_handle: String,
    /// The "none" attestation object of the credential (independent of any challenge).
    pub attestation_object: String,
    /// The assertion's authenticator data: rpIdHash, flags UP and UV, counter 0.
    pub authenticator_data: String,
    /// A registration of the credential for a fixed challenge.
    pub registration: Ceremony<RegistrationCredential>,
    /// An assertion for a fixed challenge.
    pub assertion: Ceremony<AssertionCredential>,
}

impl Fixture {
    /// Reads and parses the fixture file at `path`.
    pub fn load(path: &Path) -> Result<Fixture, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{} is not a fixture: {e}", path.display()))
    }
}

/// An EC private key as a JSON Web Key.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Jwk {
    /// `EC`.
    pub kty: String,
    /// `P-256`.
    pub crv: String,
    /// The public point's x coordinate.
    pub x: String,
    /// The public point's y coordinate.
    pub y: String,
    /// The private scalar.
    pub d: String,
}

/// A ceremony's challenge with the browser's response to it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ceremony<T> {
    /// The challenge (base64url).
    pub challenge: String,
    /// `PublicKeyCredential.toJSON()` of the response.
    pub response: T,
}

/// `PublicKeyCredential.toJSON()` of `navigator.credentials.create` (WebAuthn L3
/// `RegistrationResponseJSON`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationCredential {
    /// The credential id (base64url).
    pub id: String,
    /// The same id.
    pub raw_id: String,
    /// The authenticator's response.
    pub response: AttestationResponse,
    /// `platform`.
    pub authenticator_attachment: String,
    /// No extensions: `{}`.
    pub client_extension_results: NoExtensions,
    /// `public-key`.
    #[serde(rename = "type")]
    pub type_: String,
}

/// `AuthenticatorAttestationResponseJSON`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttestationResponse {
    /// The client data JSON bytes.
    #[serde(rename = "clientDataJSON")]
    pub client_data_json: String,
    /// The authenticator data inside the attestation object.
    pub authenticator_data: String,
    /// `["internal"]`.
    pub transports: Vec<String>,
    /// The public key as SubjectPublicKeyInfo DER.
    pub public_key: String,
    /// The COSE algorithm: -7 (ES256).
    pub public_key_algorithm: i64,
    /// The attestation object.
    pub attestation_object: String,
}

/// `PublicKeyCredential.toJSON()` of `navigator.credentials.get` (WebAuthn L3
/// `AuthenticationResponseJSON`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssertionCredential {
    /// The credential id (base64url).
    pub id: String,
    /// The same id.
    pub raw_id: String,
    /// The authenticator's response.
    pub response: AssertionResponse,
    /// `platform`.
    pub authenticator_attachment: String,
    /// No extensions: `{}`.
    pub client_extension_results: NoExtensions,
    /// `public-key`.
    #[serde(rename = "type")]
    pub type_: String,
}

/// `AuthenticatorAssertionResponseJSON`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssertionResponse {
    /// The client data JSON bytes.
    #[serde(rename = "clientDataJSON")]
    pub client_data_json: String,
    /// The authenticator data.
    pub authenticator_data: String,
    /// The ECDSA signature (DER) over `authenticatorData || SHA-256(clientDataJSON)`.
    pub signature: String,
    /// The WebAuthn user handle.
    pub user_handle: String,
}

/// An empty `clientExtensionResults` object.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NoExtensions {}
