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
mod tests {
    use super::test_support::SoftAuthenticator;

    /// The WebAuthn user handle the tests register with.
    const HANDLE: &[u8] = b"h";
    use super::*;

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
        let ids: Vec<&str> =
            pk["allowCredentials"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
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
        let (cred1, _) =
            verified(rp.authenticate_finish(&response2, &challenge2, std::slice::from_ref(&cred0), HANDLE));
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
        rejected_with(
            rp.authenticate_finish(&wrong_type, &challenge, &creds, HANDLE),
            "credential type is not public-key",
        );
        let wrong_id = edit_json(&response, |v| v["id"] = "AAAA".into());
        rejected_with(rp.authenticate_finish(&wrong_id, &challenge, &creds, HANDLE), "id does not match rawId");
        // A registration response is not an assertion, and vice versa.
        let (reg_options, state) = rp.register_begin(HANDLE, "alice", "Alice", &[]).unwrap();
        let registration = auth.register(&reg_options, ORIGIN);
        assert!(matches!(
            rp.authenticate_finish(&registration, &challenge, &creds, HANDLE),
            Err(Error::InvalidInput(_))
        ));
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
}
