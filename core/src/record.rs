//! The per-user record: everything about one user's second factors that changes together.
//!
//! It is stored as JSON under `user/{id}` with a schema version. A record written by a newer
//! schema is refused ([`Error::UnsupportedSchema`]), never rewritten. Expired challenges, codes,
//! enrolments and tokens are pruned on every write. Nothing in it is a secret in clear: TOTP seeds
//! are sealed, codes and tokens are keyed hashes.

use crate::Error;
use crate::config::TotpAlgorithm;
use crate::crypto::{Hashed, Sealed};
use crate::engine::ResetInfo;
use crate::policy::MethodKind;
use crate::webauthn::{AuthenticationChallenge, RegistrationState, StoredCredential};
use serde::{Deserialize, Serialize};

/// The schema version this engine writes.
pub(crate) const SCHEMA: u32 = 1;

/// The store key of a user's record.
pub(crate) fn user_key(user: &str) -> String {
    format!("user/{user}")
}

/// The store key that claims a WebAuthn credential id for one user (ids are globally unique).
pub(crate) fn credential_key(credential_id: &str) -> String {
    format!("webauthn-credential/{credential_id}")
}

/// Checks a host user id: 1 to 256 bytes, no control characters.
pub(crate) fn validate_user(user: &str) -> Result<(), Error> {
    if user.is_empty() || user.len() > 256 || user.chars().any(char::is_control) {
        return Err(Error::invalid("user id: 1 to 256 bytes without control characters"));
    }
    Ok(())
}

/// One user's second factors and their short-lived state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct UserRecord {
    pub schema: u32,
    /// Confirmed methods, in the order they were added.
    #[serde(default)]
    pub methods: Vec<Method>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_totp: Option<PendingTotp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_webauthn: Option<PendingWebauthn>,
    /// The code confirming a new email address.
    #[serde(default, skip_serializing_if = "CodeSlot::is_empty")]
    pub enroll_code: CodeSlot,
    /// The sign-in code.
    #[serde(default, skip_serializing_if = "CodeSlot::is_empty")]
    pub login_code: CodeSlot,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub challenges: Vec<Challenge>,
    /// Bumped to revoke every step-up token issued before (tokens are stateless, see
    /// `login::issue_step_up`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub step_up_epoch: u64,
    /// Hashes of the unused recovery codes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recovery: Vec<Hashed>,
    /// Consecutive failed code attempts (the attempt budget).
    #[serde(default)]
    pub failures: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<u64>,
    /// When the account first created an order (2FA is required from then on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orders_created_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_email: Option<String>,
    /// The random WebAuthn user handle (base64url), made at the first registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webauthn_user_handle: Option<String>,
    /// Counter for method ids.
    #[serde(default)]
    pub next_id: u64,
    /// Remembered browsers (device tokens as keyed hashes), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remembered: Vec<Remembered>,
    /// The last administrator reset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reset: Option<ResetInfo>,
}

/// A remembered browser: the keyed hash of its device token.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Remembered {
    pub id: String,
    pub hash: Hashed,
    /// The kind of second factor passed when it was remembered.
    pub method: MethodKind,
    pub created: u64,
    pub expires: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used: Option<u64>,
}

/// A confirmed second factor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Method {
    pub id: String,
    pub label: String,
    pub created: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used: Option<u64>,
    pub data: MethodData,
}

/// What a method stores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum MethodData {
    /// An authenticator app.
    Totp(TotpSeed),
    /// A confirmed email address.
    Email { address: String },
    /// A WebAuthn credential; `flagged` after a counter regression (a possible clone).
    Webauthn {
        credential: Box<StoredCredential>,
        #[serde(default)]
        flagged: bool,
    },
}

/// A sealed TOTP seed with its parameters and replay guard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct TotpSeed {
    pub sealed: Sealed,
    pub algorithm: TotpAlgorithm,
    pub digits: u8,
    pub period: u64,
    /// The last accepted time step: any step at or below it is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_step: Option<u64>,
}

/// A TOTP enrolment awaiting its first code.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct PendingTotp {
    pub seed: TotpSeed,
    pub expires: u64,
}

/// A WebAuthn registration awaiting the browser's response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct PendingWebauthn {
    pub state: RegistrationState,
    pub friendly_name: String,
    pub expires: u64,
}

/// An emailed one-time code, stored as a keyed hash.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct EmailCode {
    /// Distinguishes this code from a later one (arming checks it).
    pub id: String,
    pub hash: Hashed,
    /// For enrolment codes: the address being confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    pub expires: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub armed_at: Option<u64>,
    #[serde(default)]
    pub tries: u32,
    /// Kept after use until it expires, so a second use is reported as `replayed`.
    #[serde(default)]
    pub used: bool,
}

/// A purpose's codes: one written but not yet delivered, one delivered and usable.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct CodeSlot {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<EmailCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub armed: Option<EmailCode>,
}

impl CodeSlot {
    fn is_empty(&self) -> bool {
        self.pending.is_none() && self.armed.is_none()
    }
}

/// A sign-in challenge.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Challenge {
    pub id: String,
    pub expires: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webauthn: Option<Box<AuthenticationChallenge>>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Default for UserRecord {
    /// A new, empty record of the current schema.
    fn default() -> UserRecord {
        UserRecord {
            schema: SCHEMA,
            methods: Vec::new(),
            pending_totp: None,
            pending_webauthn: None,
            enroll_code: CodeSlot::default(),
            login_code: CodeSlot::default(),
            challenges: Vec::new(),
            step_up_epoch: 0,
            recovery: Vec::new(),
            failures: 0,
            locked_until: None,
            orders_created_at: None,
            contact_email: None,
            webauthn_user_handle: None,
            next_id: 0,
            remembered: Vec::new(),
            last_reset: None,
        }
    }
}

impl UserRecord {
    /// Reads stored bytes, refusing newer schemas (even when this version cannot parse them).
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<UserRecord, Error> {
        #[derive(Deserialize)]
        struct Head {
            schema: u32,
        }
        match serde_json::from_slice::<UserRecord>(bytes) {
            Ok(record) if record.schema <= SCHEMA => Ok(record),
            Ok(_) => Err(Error::UnsupportedSchema),
            // Only a failed parse pays for a second look at the schema.
            Err(e) => match serde_json::from_slice::<Head>(bytes) {
                Ok(head) if head.schema > SCHEMA => Err(Error::UnsupportedSchema),
                Ok(_) => Err(Error::Storage(format!(
                    "stored user record is malformed: {}",
                    crate::error::redacted_json_message(&e)
                ))),
                Err(_) => Err(Error::Storage("stored user record is not a twofa record".into())),
            },
        }
    }

    /// The bytes to store.
    pub(crate) fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        serde_json::to_vec(self).map_err(|e| Error::Internal(format!("record serialisation: {e}")))
    }

    /// A fresh method id such as `totp-3`.
    pub(crate) fn new_method_id(&mut self, kind: &str) -> String {
        self.next_id += 1;
        format!("{kind}-{}", self.next_id)
    }

    /// Drops everything that has expired by `now`.
    pub(crate) fn prune(&mut self, now: u64) {
        self.challenges.retain(|c| c.expires > now);
        if self.pending_totp.as_ref().is_some_and(|p| p.expires <= now) {
            self.pending_totp = None;
        }
        if self.pending_webauthn.as_ref().is_some_and(|p| p.expires <= now) {
            self.pending_webauthn = None;
        }
        for slot in [&mut self.enroll_code, &mut self.login_code] {
            for code in [&mut slot.pending, &mut slot.armed] {
                if code.as_ref().is_some_and(|c| c.expires <= now) {
                    *code = None;
                }
            }
        }
        if self.locked_until.is_some_and(|t| t <= now) {
            self.locked_until = None;
        }
        self.remembered.retain(|d| d.expires > now);
    }

    /// The user's WebAuthn credentials: all of them (to exclude at registration), or with
    /// `usable_only` those that may sign in (flagged devices may not).
    pub(crate) fn credentials(&self, usable_only: bool) -> Vec<StoredCredential> {
        self.methods
            .iter()
            .filter_map(|m| match &m.data {
                MethodData::Webauthn { credential, flagged } if !(usable_only && *flagged) => {
                    Some((**credential).clone())
                }
                _ => None,
            })
            .collect()
    }

    /// The position of the user's confirmed TOTP method.
    pub(crate) fn totp_index(&self) -> Option<usize> {
        self.methods.iter().position(|m| matches!(m.data, MethodData::Totp(_)))
    }

    /// Addresses of confirmed email methods.
    pub(crate) fn email_addresses(&self) -> Vec<String> {
        self.methods
            .iter()
            .filter_map(|m| match &m.data {
                MethodData::Email { address } => Some(address.clone()),
                _ => None,
            })
            .collect()
    }

    /// Where security notices go: the contact address and every confirmed email method,
    /// without duplicates.
    pub(crate) fn notice_addresses(&self) -> Vec<String> {
        let mut out: Vec<String> = self.contact_email.iter().cloned().collect();
        for a in self.email_addresses() {
            if !out.iter().any(|o| o.eq_ignore_ascii_case(&a)) {
                out.push(a);
            }
        }
        out
    }
}
