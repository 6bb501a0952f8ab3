//! The WebAuthn relying party: a pure wrapper around `webauthn-rs-core`.
//!
//! Nothing here does I/O, reads a clock or touches storage. The engine calls
//! `RelyingParty` to start and finish the two ceremonies and stores what comes back
//! (`RegistrationState`, `AuthenticationChallenge`, `StoredCredential`) in the user's
//! record; all three serialise to deterministic JSON (no hash maps). Challenge expiry and
//! single use are the engine's job: it knows the time and deletes a challenge once used.
//!
//! What `webauthn-rs-core` checks, and what this module adds on top:
//!
//! * registration: client data type `webauthn.create`, challenge, origin (exact match with
//!   one of the configured origins, no subdomains, no other port), cross-origin flag, RP ID
//!   hash, user presence, user verification when the policy is `required`, the attestation
//!   statement's signature (no trust chain: attestation conveyance is `none`), the
//!   credential algorithm against the offered list, backup flags consistency. Added here:
//!   credential type `public-key`, `id` equal to the base64url of `rawId`, `rawId` equal to
//!   the attested credential id, credential id length, and refusal of a credential the user
//!   already has (the `exclude` list given at begin).
//! * authentication: the credential must be in the challenge's allow list AND among the
//!   user's credentials passed at finish (a device removed since begin is refused); client
//!   data `crossOrigin` not `true` (WebAuthn L3 §7.2: twofa's ceremonies never run in a
//!   cross-origin iframe; webauthn-rs-core checks this flag only at registration, so it is
//!   checked here, first, on both verification paths, with the registration's error); client
//!   data type `webauthn.get`, challenge, origin, RP ID hash, user presence, user
//!   verification (policy `required`, or the credential was registered under `required`, or
//!   it was registered with UV under `preferred`), backup eligibility unchanged, signature,
//!   then the signature counter against the credential's CURRENT counter.
//!
//! With the cargo feature `ring-es256` (default), ES256 assertions of the common shape are
//! verified by [`es256`]: the same checks in the same order, with ring's P-256 signature
//! verification, which is several times faster; a differential test keeps the two paths' verdicts
//! identical.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use url::Url;
use webauthn_rs_core::WebauthnCore;
use webauthn_rs_core::error::WebauthnError;
use webauthn_rs_core::proto as wa;

use crate::error::Error;

#[cfg(feature = "ring-es256")]
mod es256;

/// The longest ceremony timeout accepted, in seconds (a day; browsers clamp far lower).
const MAX_TIMEOUT_SECS: u64 = 86_400;
/// The longest user handle WebAuthn allows, in bytes.
const MAX_USER_HANDLE_LEN: usize = 64;
/// The longest credential id WebAuthn allows, in bytes.
const MAX_CREDENTIAL_ID_LEN: usize = 1023;

fn default_timeout_secs() -> u64 {
    300
}

/// Relying-party settings: the `"webauthn": {...}` part of the twofa configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebauthnConfig {
    /// The relying party id: the registrable domain the credentials are bound to, such as
    /// `example.com` or `localhost` (no scheme, port or path; never an IP address).
    pub rp_id: String,
    /// The relying party's name, shown by the browser.
    pub rp_name: String,
    /// The origins allowed to run the ceremonies, such as `https://login.example.com` or
    /// `http://localhost:8080`. Each host must be `rp_id` or a subdomain of it; plain
    /// `http` is accepted for `localhost` (and `*.localhost`) only, as in browsers.
    pub origins: Vec<String>,
    /// Whether the authenticator must verify the user (PIN, biometric). Default: preferred,
    /// since WebAuthn is a second factor here.
    #[serde(default)]
    pub user_verification: UserVerification,
    /// The ceremony timeout given to the browser, in seconds (1 to 86400). Default: 300.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

impl WebauthnConfig {
    /// Settings for `rp_id` and its allowed `origins`, with the default user-verification
    /// policy (preferred) and timeout (300 s).
    pub fn new(rp_id: impl Into<String>, rp_name: impl Into<String>, origins: Vec<String>) -> WebauthnConfig {
        WebauthnConfig {
            rp_id: rp_id.into(),
            rp_name: rp_name.into(),
            origins,
            user_verification: UserVerification::default(),
            timeout_secs: default_timeout_secs(),
        }
    }
}

/// The user-verification policy of the relying party.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserVerification {
    /// The authenticator must verify the user; a response without the UV flag is refused.
    Required,
    /// Verify the user if the authenticator can. A credential that did verify the user at
    /// registration must keep doing so (a `webauthn-rs-core` rule).
    #[default]
    Preferred,
    /// Ask the authenticator not to verify the user (presence only).
    Discouraged,
}

impl UserVerification {
    fn policy(self) -> wa::UserVerificationPolicy {
        match self {
            UserVerification::Required => wa::UserVerificationPolicy::Required,
            UserVerification::Preferred => wa::UserVerificationPolicy::Preferred,
            UserVerification::Discouraged => wa::UserVerificationPolicy::Discouraged_DO_NOT_USE,
        }
    }
}

/// The state of a registration between `register_begin` and `register_finish`.
///
/// Opaque: store it as it is (serde), hand it back unchanged. Its `Debug` hides the
/// challenge.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct RegistrationState {
    /// The `webauthn-rs-core` state (challenge, policy, algorithms).
    state: wa::RegistrationState,
    /// Ids (base64url) of the credentials the user already has: registering one again is
    /// refused.
    exclude: Vec<String>,
}

impl PartialEq for RegistrationState {
    fn eq(&self, other: &Self) -> bool {
        same_json(self, other)
    }
}

impl fmt::Debug for RegistrationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistrationState").field("exclude", &self.exclude).finish_non_exhaustive()
    }
}

/// The state of an authentication between `authenticate_begin` and `authenticate_finish`.
///
/// Opaque: store it as it is (serde), hand it back unchanged. Its `Debug` hides the
/// challenge. It does not copy the credentials (their counters would go stale): only their
/// ids, the allow list.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct AuthenticationChallenge {
    /// The `webauthn-rs-core` state (challenge, policy), with its credential list emptied.
    state: AuthState,
    /// Ids (base64url) of the credentials offered to the browser.
    allowed: Vec<String>,
}

impl PartialEq for AuthenticationChallenge {
    fn eq(&self, other: &Self) -> bool {
        same_json(self, other)
    }
}

impl fmt::Debug for AuthenticationChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticationChallenge").field("allowed", &self.allowed).finish_non_exhaustive()
    }
}

/// `webauthn-rs-core`'s `AuthenticationState` with readable fields: the same JSON, converted to
/// the real type (by serde) only when webauthn-rs-core verifies.
#[derive(Clone, Serialize, Deserialize)]
struct AuthState {
    /// Always empty: the credentials are looked up afresh at finish.
    credentials: Vec<wa::Credential>,
    policy: wa::UserVerificationPolicy,
    #[serde(with = "base64url")]
    challenge: Vec<u8>,
    appid: Option<String>,
    allow_backup_eligible_upgrade: bool,
}

impl AuthState {
    fn from_core(state: &wa::AuthenticationState) -> Result<AuthState, Error> {
        serde_json::to_value(state)
            .and_then(serde_json::from_value)
            .map_err(|_| Error::Internal("webauthn authenticate_begin: state did not convert".into()))
    }

    fn to_core(&self) -> Result<wa::AuthenticationState, Error> {
        serde_json::to_value(self)
            .and_then(serde_json::from_value)
            .map_err(|_| Error::Storage("stored WebAuthn challenge state is malformed".into()))
    }
}

/// Bytes as base64url without padding, as webauthn-rs-core writes challenges.
mod base64url {
    use super::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&URL_SAFE_NO_PAD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        URL_SAFE_NO_PAD.decode(String::deserialize(d)?).map_err(D::Error::custom)
    }
}

/// What a valid assertion said (both verification paths give this).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Verified {
    counter: u32,
    user_verified: bool,
    backup_eligible: bool,
    backup_state: bool,
}

/// A registered credential as stored in the user record.
///
/// It serialises exactly as `webauthn-rs-core`'s `Credential` (id, COSE public key, counter,
/// flags, registration policy...); the attestation statement is not kept (twofa asks for
/// none and does not use it), only its format.
#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "wa::Credential", into = "wa::Credential")]
pub(crate) struct StoredCredential {
    /// `credential.cred_id` as base64url without padding.
    id: String,
    /// The `webauthn-rs-core` credential (boxed: it is large).
    credential: Box<wa::Credential>,
}

impl From<wa::Credential> for StoredCredential {
    fn from(credential: wa::Credential) -> Self {
        StoredCredential { id: URL_SAFE_NO_PAD.encode(&credential.cred_id), credential: Box::new(credential) }
    }
}

impl From<StoredCredential> for wa::Credential {
    fn from(stored: StoredCredential) -> Self {
        *stored.credential
    }
}

impl PartialEq for StoredCredential {
    fn eq(&self, other: &Self) -> bool {
        same_json(self, other)
    }
}

impl fmt::Debug for StoredCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredCredential")
            .field("id", &self.id)
            .field("alg", &self.credential.cred.type_)
            .field("counter", &self.credential.counter)
            .field("user_verified", &self.credential.user_verified)
            .field("backup_eligible", &self.credential.backup_eligible)
            .field("backup_state", &self.credential.backup_state)
            .finish_non_exhaustive()
    }
}

impl StoredCredential {
    /// The credential id, base64url without padding (as in the browser's `id`).
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// The last signature counter accepted for this credential (0 if it never counts).
    #[allow(dead_code)] // for the engine's device listings; the tests use it
    pub(crate) fn counter(&self) -> u32 {
        self.credential.counter
    }

    /// Whether the authenticator said the key may be synced or backed up (a passkey).
    #[allow(dead_code)] // for the engine's device listings; the tests use it
    pub(crate) fn backup_eligible(&self) -> bool {
        self.credential.backup_eligible
    }
}

/// What a cryptographically valid assertion amounts to.
#[derive(Clone, Debug)]
pub(crate) enum AssertionOutcome {
    /// Every check passed: the sign-in succeeds. Store `updated` in place of the
    /// credential (new counter, backup state).
    Verified {
        /// The id of the credential that signed.
        credential_id: String,
        /// The credential with its counter and backup state updated.
        updated: StoredCredential,
        /// Whether the authenticator verified the user.
        #[allow(dead_code)] // informational: the engine may report or log it
        user_verified: bool,
    },
    /// The signature is valid but the counter did not increase (asserted <= stored, one of
    /// them non-zero): the authenticator may have been cloned. The sign-in fails and the
    /// engine flags the credential; nothing is to be stored for it.
    CounterRegressed {
        /// The id of the credential that signed.
        credential_id: String,
    },
}

/// The WebAuthn relying party: validated settings and the `webauthn-rs-core` handler.
#[derive(Clone, Debug)]
pub(crate) struct RelyingParty {
    core: WebauthnCore,
    user_verification: UserVerification,
    /// What the ring path checks against (webauthn-rs-core keeps its copies private).
    #[cfg(feature = "ring-es256")]
    settings: es256::Settings,
}

impl RelyingParty {
    /// Validates the settings and builds the relying party.
    ///
    /// Errors with [`Error::InvalidInput`] naming the field (`webauthn.rp_id`,
    /// `webauthn.origins[1]`, ...) when the RP id is empty, an IP address or not a plain
    /// lowercase domain; the name is empty; there is no origin; an origin is not an
    /// `https` (or `http` on localhost) origin whose host is the RP id or a subdomain of
    /// it; or the timeout is not between 1 and 86400 seconds.
    pub(crate) fn new(cfg: &WebauthnConfig) -> Result<Self, Error> {
        let rp_id = validate_rp_id(&cfg.rp_id)?;
        if cfg.rp_name.trim().is_empty() {
            return Err(Error::invalid("webauthn.rp_name: must not be empty"));
        }
        if cfg.origins.is_empty() {
            return Err(Error::invalid("webauthn.origins: at least one origin is required"));
        }
        let origins = cfg
            .origins
            .iter()
            .enumerate()
            .map(|(i, origin)| {
                validate_origin(origin, &rp_id).map_err(|why| Error::invalid(format!("webauthn.origins[{i}]: {why}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if cfg.timeout_secs == 0 || cfg.timeout_secs > MAX_TIMEOUT_SECS {
            return Err(Error::invalid(format!("webauthn.timeout_secs: must be between 1 and {MAX_TIMEOUT_SECS}")));
        }
        #[cfg(feature = "ring-es256")]
        let settings = es256::Settings {
            origins: origins.clone(),
            rp_id_hash: ring::digest::digest(&ring::digest::SHA256, rp_id.as_bytes())
                .as_ref()
                .try_into()
                .map_err(|_| Error::Internal("SHA-256 is 32 bytes".into()))?,
        };
        let core = WebauthnCore::new_unsafe_experts_only(
            &cfg.rp_name,
            &rp_id,
            origins,
            Duration::from_secs(cfg.timeout_secs),
            Some(false),
            Some(false),
        );
        Ok(RelyingParty {
            core,
            user_verification: cfg.user_verification,
            #[cfg(feature = "ring-es256")]
            settings,
        })
    }

    /// Starts a registration: the options for `navigator.credentials.create` as JSON
    /// (`{"publicKey": {...}}`, the shape `PublicKeyCredential.parseCreationOptionsFromJSON`
    /// takes for its `publicKey` member) and the state to keep until `register_finish`.
    ///
    /// `user_handle` is the WebAuthn user id (1 to 64 random bytes chosen by the engine,
    /// the same for every registration of the user); `display_name` falls back to
    /// `user_name` when empty. The user's existing credentials go in `exclude`, so the
    /// browser refuses to register the same authenticator twice (and `register_finish`
    /// too). Attestation conveyance is `none`; algorithms ES256, ES384 and RS256.
    pub(crate) fn register_begin(
        &self,
        user_handle: &[u8],
        user_name: &str,
        display_name: &str,
        exclude: &[StoredCredential],
    ) -> Result<(String, RegistrationState), Error> {
        if user_handle.is_empty() || user_handle.len() > MAX_USER_HANDLE_LEN {
            return Err(Error::invalid(format!("user handle: must be 1 to {MAX_USER_HANDLE_LEN} bytes")));
        }
        if user_name.trim().is_empty() {
            return Err(Error::invalid("user name: must not be empty"));
        }
        let display_name = if display_name.trim().is_empty() { user_name } else { display_name };
        let builder = self
            .core
            .new_challenge_register_builder(user_handle, user_name, display_name)
            .map_err(|e| Error::invalid(format!("user name: {}", reason(&e))))?
            .attestation(wa::AttestationConveyancePreference::None)
            .user_verification_policy(self.user_verification.policy())
            .credential_algorithms(wa::COSEAlgorithm::secure_algs())
            .require_resident_key(false)
            .reject_synchronised_authenticators(false)
            // The exclusion is done here, not by webauthn-rs-core (which reports it as an
            // "altered algorithm"): options below, check in register_finish.
            .exclude_credentials(None);
        let (mut options, state) = self
            .core
            .generate_challenge_register(builder)
            .map_err(|e| Error::Internal(format!("webauthn register_begin: {}", reason(&e))))?;
        if !exclude.is_empty() {
            options.public_key.exclude_credentials = Some(
                exclude
                    .iter()
                    .map(|c| wa::PublicKeyCredentialDescriptor {
                        type_: "public-key".to_string(),
                        id: c.credential.cred_id.clone(),
                        transports: c.credential.transports.clone(),
                    })
                    .collect(),
            );
        }
        let json = to_json(&options)?;
        let state = RegistrationState { state, exclude: exclude.iter().map(|c| c.id.clone()).collect() };
        Ok((json, state))
    }

    /// Verifies the browser's registration response (`PublicKeyCredential.toJSON()` of the
    /// created credential) against the state and returns the credential to store.
    ///
    /// Malformed JSON → [`Error::InvalidInput`]; a failed check of the ceremony →
    /// [`Error::WebauthnRejected`] with a short reason naming the check.
    pub(crate) fn register_finish(
        &self,
        response_json: &str,
        state: &RegistrationState,
    ) -> Result<StoredCredential, Error> {
        let response: wa::RegisterPublicKeyCredential = serde_json::from_str(response_json)
            .map_err(|_| Error::invalid("webauthn response: not a registration PublicKeyCredential JSON"))?;
        check_envelope(&response.type_, &response.id, &response.raw_id)?;
        let mut credential = self.core.register_credential(&response, &state.state, None).map_err(|e| rejected(&e))?;
        if credential.cred_id != response.raw_id {
            return Err(rejected_because("rawId differs from the attested credential id"));
        }
        if credential.cred_id.is_empty() || credential.cred_id.len() > MAX_CREDENTIAL_ID_LEN {
            return Err(rejected_because("credential id length out of range"));
        }
        let stored_id = URL_SAFE_NO_PAD.encode(&credential.cred_id);
        if state.exclude.contains(&stored_id) {
            return Err(rejected_because("credential already registered"));
        }
        // twofa asks for no attestation and never checks one: keep only its format.
        credential.attestation = wa::ParsedAttestation::default();
        if let Some(transports) = credential.transports.as_mut() {
            transports.retain(|t| *t != wa::AuthenticatorTransport::Unknown);
        }
        Ok(StoredCredential::from(credential))
    }

    /// Starts an authentication: the options for `navigator.credentials.get` as JSON
    /// (`{"publicKey": {...}}`) allowing `creds`, and the challenge to keep until
    /// `authenticate_finish`. [`Error::NotEnrolled`] when `creds` is empty.
    pub(crate) fn authenticate_begin(
        &self,
        creds: &[StoredCredential],
    ) -> Result<(String, AuthenticationChallenge), Error> {
        if creds.is_empty() {
            return Err(Error::NotEnrolled);
        }
        let builder = self
            .core
            .new_challenge_authenticate_builder(
                creds.iter().map(|c| (*c.credential).clone()).collect(),
                Some(self.user_verification.policy()),
            )
            .map_err(|e| Error::Internal(format!("webauthn authenticate_begin: {}", reason(&e))))?;
        let (options, mut state) = self
            .core
            .generate_challenge_authenticate(builder)
            .map_err(|e| Error::Internal(format!("webauthn authenticate_begin: {}", reason(&e))))?;
        // The credentials are looked up afresh at finish: don't keep stale copies.
        state.set_allowed_credentials(Vec::new());
        let json = to_json(&options)?;
        let state = AuthState::from_core(&state)?;
        let challenge = AuthenticationChallenge { state, allowed: creds.iter().map(|c| c.id.clone()).collect() };
        Ok((json, challenge))
    }

    /// Verifies an assertion (`PublicKeyCredential.toJSON()` of `navigator.credentials.get`)
    /// against the challenge and the user's credentials AS THEY ARE NOW.
    ///
    /// The signing credential must be both in the challenge's allow list and in `creds`
    /// (so a device removed since begin is refused), and its counter is compared with the
    /// current one in `creds`. A valid signature whose counter did not increase gives
    /// [`AssertionOutcome::CounterRegressed`]; authenticators that always report 0 keep
    /// working. A `userHandle` in the response must be `user_handle`, the user's WebAuthn
    /// handle (WebAuthn §7.2 step 6: the credential's owner). Malformed JSON →
    /// [`Error::InvalidInput`]; any other failed check → [`Error::WebauthnRejected`].
    pub(crate) fn authenticate_finish(
        &self,
        response_json: &str,
        challenge: &AuthenticationChallenge,
        creds: &[StoredCredential],
        user_handle: &[u8],
    ) -> Result<AssertionOutcome, Error> {
        let response: wa::PublicKeyCredential = serde_json::from_str(response_json)
            .map_err(|_| Error::invalid("webauthn response: not an assertion PublicKeyCredential JSON"))?;
        check_envelope(&response.type_, &response.id, &response.raw_id)?;
        let credential_id = URL_SAFE_NO_PAD.encode(&response.raw_id);
        if !challenge.allowed.contains(&credential_id) {
            return Err(rejected_because("credential not allowed for this challenge"));
        }
        let stored = creds
            .iter()
            .find(|c| c.id == credential_id)
            .ok_or_else(|| rejected_because("credential not registered"))?;
        if response.get_user_unique_id().is_some_and(|h| h != user_handle) {
            return Err(rejected_because("the user handle is not the credential owner's"));
        }
        match self.verify_assertion(&response, &challenge.state, &stored.credential)? {
            Ok(result) => {
                let mut updated = stored.clone();
                if result.counter > updated.credential.counter {
                    updated.credential.counter = result.counter;
                }
                updated.credential.backup_state = result.backup_state;
                updated.credential.backup_eligible = result.backup_eligible;
                Ok(AssertionOutcome::Verified { credential_id, updated, user_verified: result.user_verified })
            }
            // Both paths return this only after every other check (signature included)
            // passed, when asserted <= stored with one of them non-zero.
            Err(WebauthnError::CredentialPossibleCompromise) => {
                Ok(AssertionOutcome::CounterRegressed { credential_id })
            }
            Err(e) => Err(rejected(&e)),
        }
    }

    /// The verdict on an assertion: ring's ES256 path where it applies, webauthn-rs-core's
    /// otherwise. The outer error is a stored state that does not convert.
    fn verify_assertion(
        &self,
        response: &wa::PublicKeyCredential,
        state: &AuthState,
        cred: &wa::Credential,
    ) -> Result<Result<Verified, WebauthnError>, Error> {
        #[cfg(feature = "ring-es256")]
        if let Some(verdict) = es256::verify(&self.settings, response, state, cred) {
            return Ok(verdict);
        }
        self.verify_with_core(response, state, cred)
    }

    /// The verdict of webauthn-rs-core alone.
    fn verify_with_core(
        &self,
        response: &wa::PublicKeyCredential,
        state: &AuthState,
        cred: &wa::Credential,
    ) -> Result<Result<Verified, WebauthnError>, Error> {
        let state = state.to_core()?;
        if let Err(e) = refuse_cross_origin(response) {
            return Ok(Err(e));
        }
        Ok(self.core.authenticate_single_credential(response, &state, cred).map(|r| Verified {
            counter: r.counter(),
            user_verified: r.user_verified(),
            backup_eligible: r.backup_eligible(),
            backup_state: r.backup_state(),
        }))
    }
}

/// Refuses an assertion whose client data says `crossOrigin: true` (WebAuthn L3 §7.2), with the
/// error webauthn-rs-core gives a cross-origin registration. The first check of both assertion
/// paths (`RelyingParty::verify_with_core` and `es256::verify`), so their verdicts stay equal;
/// client data that does not parse is left to them (both refuse it as malformed).
fn refuse_cross_origin(response: &wa::PublicKeyCredential) -> Result<(), WebauthnError> {
    let client = serde_json::from_slice::<wa::CollectedClientData>(&response.response.client_data_json);
    if client.is_ok_and(|c| c.cross_origin == Some(true)) {
        return Err(WebauthnError::CredentialCrossOrigin);
    }
    Ok(())
}

/// The RP id as webauthn-rs-core and browsers need it: a lowercase ASCII domain.
fn validate_rp_id(rp_id: &str) -> Result<String, Error> {
    if rp_id.is_empty() {
        return Err(Error::invalid("webauthn.rp_id: must not be empty"));
    }
    match url::Host::parse(rp_id) {
        Ok(url::Host::Domain(domain)) if domain == rp_id && !domain.ends_with('.') => Ok(domain),
        Ok(url::Host::Domain(_)) => Err(Error::invalid(
            "webauthn.rp_id: must be a lowercase ASCII domain such as example.com \
             (no scheme, port, path or trailing dot)",
        )),
        Ok(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => {
            Err(Error::invalid("webauthn.rp_id: must be a domain, not an IP address"))
        }
        Err(_) => Err(Error::invalid("webauthn.rp_id: must be a domain such as example.com (no scheme, port or path)")),
    }
}

/// One configured origin: `https://host[:port]` (or `http` for localhost) whose host is
/// the RP id or a subdomain of it. Returns it as a URL with an empty path.
fn validate_origin(origin: &str, rp_id: &str) -> Result<Url, String> {
    let url = Url::parse(origin).map_err(|_| "not a valid URL".to_string())?;
    let scheme = url.scheme();
    if scheme != "https" && scheme != "http" {
        return Err("must use https (or http on localhost)".to_string());
    }
    let host = match url.host() {
        Some(url::Host::Domain(host)) => host.to_string(),
        Some(_) => return Err("the host must be a domain, not an IP address".to_string()),
        None => return Err("has no host".to_string()),
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials".to_string());
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err("must be an origin (scheme://host[:port]) without path, query or fragment".to_string());
    }
    let localhost = host == "localhost" || host.ends_with(".localhost");
    if scheme == "http" && !localhost {
        return Err("plain http is only allowed on localhost: use https".to_string());
    }
    let within_rp_id = host == rp_id || host.strip_suffix(rp_id).is_some_and(|prefix| prefix.ends_with('.'));
    if !within_rp_id {
        return Err(format!("the host {host} is neither the rp_id {rp_id} nor a subdomain of it"));
    }
    Ok(url)
}

/// The checks on the PublicKeyCredential wrapper that webauthn-rs-core leaves out.
fn check_envelope(type_: &str, id: &str, raw_id: &[u8]) -> Result<(), Error> {
    if type_ != "public-key" {
        return Err(rejected_because("credential type is not public-key"));
    }
    if raw_id.is_empty() || id != URL_SAFE_NO_PAD.encode(raw_id) {
        return Err(rejected_because("id does not match rawId"));
    }
    Ok(())
}

/// Equality for the types wrapping `webauthn-rs-core` values, which implement no
/// `PartialEq`: their serialisation is deterministic, so equal JSON means equal values.
fn same_json<T: Serialize>(a: &T, b: &T) -> bool {
    match (serde_json::to_value(a), serde_json::to_value(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|_| Error::Internal("webauthn options did not serialise".to_string()))
}

fn rejected_because(why: &str) -> Error {
    Error::WebauthnRejected(why.to_string())
}

fn rejected(e: &WebauthnError) -> Error {
    Error::WebauthnRejected(reason(e).to_string())
}

/// A short, secret-free name for the check that failed.
fn reason(e: &WebauthnError) -> &'static str {
    use WebauthnError as E;
    match e {
        E::InvalidClientDataType => "client data type mismatch",
        E::MismatchedChallenge => "challenge mismatch",
        E::InvalidRPOrigin => "origin not allowed",
        E::CredentialCrossOrigin => "cross-origin request not allowed",
        E::InvalidRPIDHash => "rp id hash mismatch",
        E::UserNotPresent => "user presence flag not set",
        E::UserNotVerified => "user verification required but not performed",
        // One reason for both: ring does not tell a malformed signature from a wrong one.
        E::AuthenticationFailure | E::SignatureInvalid => "signature invalid",
        E::CredentialNotFound => "credential not allowed",
        E::CredentialAlteredAlgFromRequest => "credential algorithm not allowed",
        E::CredentialExcludedFromRequest | E::CredentialAlreadyExists => "credential already registered",
        E::CredentialPossibleCompromise => "signature counter did not increase",
        E::CredentialBackupEligibilityInconsistent => "backup eligibility changed",
        E::CredentialMayNotBeHardwareBound => "inconsistent backup flags",
        E::MissingAttestationCredentialData => "attested credential data missing",
        E::AttestationNotSupported => "attestation format not supported",
        E::InvalidUsername => "user name or handle empty",
        E::ParseBase64Failure(_)
        | E::ParseCBORFailure(_)
        | E::ParseJSONFailure(_)
        | E::ParseNOMFailure
        | E::ParseInsufficientBytesAvailable => "malformed authenticator or client data",
        E::COSEKeyInvalidCBORValue
        | E::COSEKeyInvalidType
        | E::COSEKeyEDUnsupported
        | E::COSEKeyECDSAXYInvalid
        | E::COSEKeyRSANEInvalid
        | E::COSEKeyECDSAInvalidCurve
        | E::COSEKeyEDDSAXInvalid
        | E::COSEKeyEDDSAInvalidCurve
        | E::COSEKeyInvalidAlgorithm
        | E::EcdsaPointInvalid
        | E::RsaParametersInvalid
        | E::SshPublicKeyEDUnsupported
        | E::CredentialInsecureCryptography => "credential public key invalid or unsupported",
        E::AttestationStatementMapInvalid
        | E::AttestationStatementResponseMissing
        | E::AttestationStatementResponseInvalid
        | E::AttestationStatementSigMissing
        | E::AttestationStatementSigInvalid
        | E::AttestationStatementVerMissing
        | E::AttestationStatementVerInvalid
        | E::AttestationStatementVerUnsupported
        | E::AttestationStatementX5CMissing
        | E::AttestationStatementX5CInvalid
        | E::AttestationStatementAlgMissing
        | E::AttestationStatementCertInfoMissing
        | E::AttestationStatementMissingExtension
        | E::AttestationStatementPubAreaMissing
        | E::AttestationStatementAlgMismatch
        | E::AttestationStatementAlgInvalid
        | E::AttestationCertificateAAGUIDMismatch
        | E::AttestationCertificateNonceMismatch
        | E::AttestationCertificateRequirementsNotMet
        | E::AttestationCredentialSubjectKeyMismatch
        | E::CertificatePublicKeyInvalid
        | E::CertificatePublicKeyAlgorthimMismatch
        | E::X509DerInvalid => "attestation statement invalid",
        _ => "verification failed",
    }
}

#[cfg(all(test, feature = "ring-es256"))]
mod differential_tests;

#[cfg(test)]
#[path = "../../tests/support/webauthn.rs"]
pub(crate) mod test_support;

#[cfg(test)]
mod tests;
