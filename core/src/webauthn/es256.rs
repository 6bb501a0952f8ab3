//! ES256 assertions verified with ring (cargo feature `ring-es256`, on by default).
//!
//! webauthn-rs-core verifies assertion signatures with RustCrypto's `p256`, about 4.5 times
//! slower than ring's P-256 ECDSA, and the signature is nearly all of a WebAuthn sign-in's cost.
//! This module repeats webauthn-rs-core 0.6's assertion checks (`authenticate_single_credential`
//! and `verify_credential_internal`) in the same order and with the same errors, and verifies
//! the signature with ring. Both paths first refuse client data with `crossOrigin: true`
//! (`super::refuse_cross_origin`), which webauthn-rs-core checks only at registration. It takes
//! only the common shape:
//!
//! * the credential is ES256 on P-256 (32-byte coordinates);
//! * the authenticator data carries neither attested credential data nor extensions;
//! * the challenge state has no AppID and no backup-eligibility upgrade (twofa sets neither).
//!
//! Anything else returns `None` and goes through webauthn-rs-core, as does every registration.
//! The differential test below feeds both paths thousands of valid and mutated assertions and
//! requires the same verdict each time, so an upgrade of webauthn-rs-core that changes a check
//! fails `make test` until this module follows it.
//!
//! One difference is left on purpose: a stored public key that is not a point on the curve fails
//! here as a bad signature rather than as an invalid key. Stored keys come from registrations
//! that webauthn-rs-core validated.

use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use url::Url;
use webauthn_rs_core::error::WebauthnError;
use webauthn_rs_core::proto as wa;
use webauthn_rs_core::proto::origin::origins_match;

use super::{AuthState, Verified};

/// Authenticator data flag bits (WebAuthn §6.1).
const USER_PRESENT: u8 = 0x01;
const USER_VERIFIED: u8 = 0x04;
const BACKUP_ELIGIBLE: u8 = 0x08;
const BACKUP_STATE: u8 = 0x10;
const ATTESTED_DATA: u8 = 0x40;
const EXTENSIONS: u8 = 0x80;

/// rpIdHash (32), flags (1), signCount (4).
const AUTH_DATA_MIN_LEN: usize = 37;

/// The relying party settings the checks need (webauthn-rs-core keeps its own copies private).
#[derive(Clone, Debug)]
pub(super) struct Settings {
    /// The allowed origins, matched exactly (no subdomains, no other port).
    pub origins: Vec<Url>,
    /// SHA-256 of the RP ID.
    pub rp_id_hash: [u8; 32],
}

/// The uncompressed SEC1 point of an ES256 P-256 credential, or `None` for any other key.
fn es256_point(cred: &wa::Credential) -> Option<[u8; 65]> {
    if cred.cred.type_ != wa::COSEAlgorithm::ES256 {
        return None;
    }
    let wa::COSEKeyType::EC_EC2(key) = &cred.cred.key else { return None };
    if key.curve != wa::ECDSACurve::SECP256R1 || key.x.len() != 32 || key.y.len() != 32 {
        return None;
    }
    let mut point = [4u8; 65];
    point[1..33].copy_from_slice(&key.x);
    point[33..].copy_from_slice(&key.y);
    Some(point)
}

/// Verifies `rsp` for `cred` under `state` when the assertion has the common shape (see the
/// module notes); `None` hands it to webauthn-rs-core.
pub(super) fn verify(
    settings: &Settings,
    rsp: &wa::PublicKeyCredential,
    state: &AuthState,
    cred: &wa::Credential,
) -> Option<Result<Verified, WebauthnError>> {
    let point = es256_point(cred)?;
    if state.appid.is_some() || state.allow_backup_eligible_upgrade {
        return None;
    }
    // First, as in `RelyingParty::verify_with_core`.
    if let Err(e) = super::refuse_cross_origin(rsp) {
        return Some(Err(e));
    }
    if cred.cred_id != rsp.raw_id {
        return Some(Err(WebauthnError::CredentialNotFound));
    }
    let auth_data = &rsp.response.authenticator_data;
    if auth_data.len() < AUTH_DATA_MIN_LEN {
        return Some(Err(WebauthnError::ParseNOMFailure));
    }
    if auth_data[32] & (ATTESTED_DATA | EXTENSIONS) != 0 {
        return None;
    }
    Some(check(settings, rsp, state, cred, &point))
}

/// The checks of `verify_credential_internal` and the counter rule of
/// `authenticate_single_credential`, in their order.
fn check(
    settings: &Settings,
    rsp: &wa::PublicKeyCredential,
    state: &AuthState,
    cred: &wa::Credential,
    point: &[u8; 65],
) -> Result<Verified, WebauthnError> {
    let auth_data = &rsp.response.authenticator_data;
    let flags = auth_data[32];
    let has = |bit: u8| flags & bit != 0;
    let client: wa::CollectedClientData =
        serde_json::from_slice(&rsp.response.client_data_json).map_err(WebauthnError::ParseJSONFailure)?;
    if client.type_ != "webauthn.get" {
        return Err(WebauthnError::InvalidClientDataType);
    }
    if client.challenge != state.challenge.as_slice() {
        return Err(WebauthnError::MismatchedChallenge);
    }
    if !settings.origins.iter().any(|allowed| origins_match(false, false, &client.origin, allowed)) {
        return Err(WebauthnError::InvalidRPOrigin);
    }
    if auth_data[..32] != settings.rp_id_hash {
        return Err(WebauthnError::InvalidRPIDHash);
    }
    if !has(USER_PRESENT) {
        return Err(WebauthnError::UserNotPresent);
    }
    use wa::UserVerificationPolicy::{Preferred, Required};
    let verified = has(USER_VERIFIED);
    let uv_required = state.policy == Required
        || cred.registration_policy == Required
        || (cred.registration_policy == Preferred && cred.user_verified);
    if uv_required && !verified {
        return Err(WebauthnError::UserNotVerified);
    }
    if cred.backup_eligible != has(BACKUP_ELIGIBLE) {
        return Err(WebauthnError::CredentialBackupEligibilityInconsistent);
    }
    if has(BACKUP_STATE) && !cred.backup_eligible {
        return Err(WebauthnError::CredentialMayNotBeHardwareBound);
    }
    let client_hash = ring::digest::digest(&ring::digest::SHA256, &rsp.response.client_data_json);
    let signed = [auth_data.as_slice(), client_hash.as_ref()].concat();
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point)
        .verify(&signed, &rsp.response.signature)
        .map_err(|_| WebauthnError::AuthenticationFailure)?;
    let counter = u32::from_be_bytes([auth_data[33], auth_data[34], auth_data[35], auth_data[36]]);
    if (counter > 0 || cred.counter > 0) && counter <= cred.counter {
        return Err(WebauthnError::CredentialPossibleCompromise);
    }
    Ok(Verified {
        counter,
        user_verified: verified,
        backup_eligible: has(BACKUP_ELIGIBLE),
        backup_state: has(BACKUP_STATE),
    })
}
