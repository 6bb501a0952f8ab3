//! TEMPORARY placeholder so the crate compiles until the WebAuthn module lands (same API).
#![allow(missing_docs, dead_code, unused_variables)]
use crate::Error;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebauthnConfig {
    pub rp_id: String,
    pub rp_name: String,
    pub origins: Vec<String>,
}
pub(crate) struct RelyingParty;
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct RegistrationState(String);
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct AuthenticationChallenge(String);
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredCredential(String);
impl StoredCredential {
    pub(crate) fn id(&self) -> &str {
        &self.0
    }
}
pub(crate) enum AssertionOutcome {
    Verified { credential_id: String, updated: StoredCredential, user_verified: bool },
    CounterRegressed { credential_id: String },
}
fn no() -> Error {
    Error::Internal("x".into())
}
impl RelyingParty {
    pub(crate) fn new(cfg: &WebauthnConfig) -> Result<Self, Error> {
        Err(no())
    }
    pub(crate) fn register_begin(
        &self,
        h: &[u8],
        n: &str,
        d: &str,
        e: &[StoredCredential],
    ) -> Result<(String, RegistrationState), Error> {
        Err(no())
    }
    pub(crate) fn register_finish(&self, j: &str, s: &RegistrationState) -> Result<StoredCredential, Error> {
        Err(no())
    }
    pub(crate) fn authenticate_begin(
        &self,
        c: &[StoredCredential],
    ) -> Result<(String, AuthenticationChallenge), Error> {
        Err(no())
    }
    pub(crate) fn authenticate_finish(
        &self,
        j: &str,
        s: &AuthenticationChallenge,
        c: &[StoredCredential],
    ) -> Result<AssertionOutcome, Error> {
        Err(no())
    }
}
