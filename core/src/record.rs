//! The per-user record: everything about one user's second factors that changes together.
//!
//! It is stored as JSON under `user/{id}` with a schema version. A record written by a newer
//! schema is refused ([`Error::UnsupportedSchema`]), never rewritten. Expired challenges, codes,
//! enrolments and tokens are pruned on every write. Nothing in it is a secret in clear: TOTP seeds
//! are sealed, codes and tokens are keyed hashes.
//!
//! **Schemas and rolling upgrades.** Schema 2 adds fields that schema 1 engines would drop when
//! they rewrite a record (they ignore what they do not know). So an engine writes the schema of
//! `write_schema` (default 2), or the record's own schema when that is newer: with
//! `write_schema: 1` it writes exactly what a schema 1 engine writes ([`SCHEMA_2_ONLY`] is left
//! out), and a schema 2 record is never written back as schema 1. Every new field is listed there,
//! so later schemas extend one mechanism (docs/scaling.md gives the upgrade order).
//!
//! The stored types the API shows as they are ([`MethodKind`], [`TotpAlgorithm`], [`ResetInfo`])
//! live here too, and are re-exported where the API names them: the engine's outputs are built
//! from the record, never the reverse.

use crate::Error;
use crate::crypto::{Hashed, Sealed};
use crate::webauthn::{AuthenticationChallenge, RegistrationState, StoredCredential};
use serde::{Deserialize, Serialize};

/// The newest schema this engine reads and writes.
pub(crate) const SCHEMA: u32 = 2;
/// The oldest schema this engine can still write (`write_schema`).
pub(crate) const OLDEST_SCHEMA: u32 = 1;

/// Where schema 2 added fields, as (object path, field): what a schema 1 write leaves out.
/// `*` stands for every code of a slot (`pending`, `armed`).
const SCHEMA_2_ONLY: &[(&[&str], &str)] = &[
    (&[], "generation"),
    (&[], "contact_code"),
    (&["enroll_code"], "earlier"),
    (&["enroll_code"], "resend_at"),
    (&["login_code"], "earlier"),
    (&["login_code"], "resend_at"),
    (&["enroll_code", "*"], "challenge"),
    (&["login_code", "*"], "challenge"),
];

/// The store key of a user's record.
pub(crate) fn user_key(user: &str) -> String {
    format!("user/{user}")
}

/// The store key that claims a WebAuthn credential id for one user (ids are globally unique).
pub(crate) fn credential_key(credential_id: &str) -> String {
    format!("webauthn-credential/{credential_id}")
}

/// The store key of an address's code budget: `address_hash` is a keyed hash of the address, so
/// the store never holds it in clear.
pub(crate) fn address_budget_key(address_hash: &str) -> String {
    format!("email-address/{address_hash}")
}

/// How many codes one address received in the current window (stored under
/// [`address_budget_key`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct AddressBudget {
    /// When the window started.
    pub since: u64,
    /// Codes sent in it.
    pub sent: u32,
}

/// One user's second factors and their short-lived state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct UserRecord {
    pub schema: u32,
    /// A random id made with the record (schema 2) and never changed: every token is bound to
    /// it, so no token survives the deletion of the record it was made for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<String>,
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
    /// The sign-in codes, each bound to its challenge.
    #[serde(default, skip_serializing_if = "CodeSlot::is_empty")]
    pub login_code: CodeSlot,
    /// The code confirming a new contact address (schema 2).
    #[serde(default, skip_serializing_if = "CodeSlot::is_empty")]
    pub contact_code: CodeSlot,
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

/// Who reset the user's second factors, when and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetInfo {
    /// The administrator.
    pub actor: String,
    /// The reason given.
    pub reason: String,
    /// Unix time of the reset.
    pub at: u64,
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

impl Method {
    /// Whether it can sign in: every method but a WebAuthn device flagged as possibly cloned.
    pub(crate) fn usable(&self) -> bool {
        !matches!(self.data, MethodData::Webauthn { flagged: true, .. })
    }

    /// The WebAuthn credential id, for a WebAuthn device.
    pub(crate) fn credential_id(&self) -> Option<&str> {
        match &self.data {
            MethodData::Webauthn { credential, .. } => Some(credential.id()),
            _ => None,
        }
    }
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

impl MethodData {
    /// The kind of this method.
    pub(crate) fn kind(&self) -> MethodKind {
        match self {
            MethodData::Totp(_) => MethodKind::Totp,
            MethodData::Email { .. } => MethodKind::Email,
            MethodData::Webauthn { .. } => MethodKind::Webauthn,
        }
    }
}

/// The kinds of second factor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MethodKind {
    /// An authenticator app (TOTP).
    Totp,
    /// A code sent by email.
    Email,
    /// A WebAuthn device (security key, platform authenticator, passkey).
    Webauthn,
    /// A recovery code (a fallback, not a method for policy).
    Recovery,
}

impl MethodKind {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            MethodKind::Totp => "totp",
            MethodKind::Email => "email",
            MethodKind::Webauthn => "webauthn",
            MethodKind::Recovery => "recovery",
        }
    }

    /// How the method is called in mail.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            MethodKind::Totp => "authenticator app",
            MethodKind::Email => "email verification",
            MethodKind::Webauthn => "security device",
            MethodKind::Recovery => "recovery code",
        }
    }
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

/// The HMAC algorithm of TOTP codes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TotpAlgorithm {
    /// HMAC-SHA-1 (what every authenticator app supports; the default).
    #[default]
    #[serde(rename = "SHA1")]
    Sha1,
    /// HMAC-SHA-256.
    #[serde(rename = "SHA256")]
    Sha256,
    /// HMAC-SHA-512.
    #[serde(rename = "SHA512")]
    Sha512,
}

impl TotpAlgorithm {
    /// Secret length for new enrolments: 160 bits for SHA-1, 256 for SHA-256, 512 for SHA-512.
    pub fn secret_len(self) -> usize {
        match self {
            TotpAlgorithm::Sha1 => 20,
            TotpAlgorithm::Sha256 => 32,
            TotpAlgorithm::Sha512 => 64,
        }
    }

    /// The name used in otpauth:// URIs.
    pub fn as_str(self) -> &'static str {
        match self {
            TotpAlgorithm::Sha1 => "SHA1",
            TotpAlgorithm::Sha256 => "SHA256",
            TotpAlgorithm::Sha512 => "SHA512",
        }
    }
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
    /// For sign-in codes: the challenge it was sent for, the only one it completes (schema 2;
    /// a code without one, written by a schema 1 engine, completes any of the user's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge: Option<String>,
}

/// A purpose's codes: one written but not yet delivered, the newest delivered one, and (sign-in
/// codes only) those delivered for other live challenges.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct CodeSlot {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<EmailCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub armed: Option<EmailCode>,
    /// Armed sign-in codes of other live challenges, oldest first (schema 2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier: Vec<EmailCode>,
    /// No new code before this time, though no live code says so: set when a code dies of
    /// `max_tries` (schema 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resend_at: Option<u64>,
}

impl CodeSlot {
    fn is_empty(&self) -> bool {
        self.pending.is_none() && self.armed.is_none() && self.earlier.is_empty() && self.resend_at.is_none()
    }

    /// Drops every code and the cooldown.
    pub(crate) fn clear(&mut self) {
        *self = CodeSlot::default();
    }

    fn prune(&mut self, now: u64) {
        for code in [&mut self.pending, &mut self.armed] {
            if code.as_ref().is_some_and(|c| c.expires <= now) {
                *code = None;
            }
        }
        self.earlier.retain(|c| c.expires > now);
        if self.resend_at.is_some_and(|t| t <= now) {
            self.resend_at = None;
        }
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
            generation: None,
            methods: Vec::new(),
            pending_totp: None,
            pending_webauthn: None,
            enroll_code: CodeSlot::default(),
            login_code: CodeSlot::default(),
            contact_code: CodeSlot::default(),
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

    /// The bytes to store, in the record's schema (see the module documentation).
    pub(crate) fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let failed = |e: serde_json::Error| Error::Internal(format!("record serialisation: {e}"));
        if self.schema >= SCHEMA {
            return serde_json::to_vec(self).map_err(failed);
        }
        let mut value = serde_json::to_value(self).map_err(failed)?;
        for (path, field) in SCHEMA_2_ONLY {
            for object in objects_at(&mut value, path) {
                object.remove(*field);
            }
        }
        serde_json::to_vec(&value).map_err(failed)
    }

    /// A fresh method id such as `totp-3`.
    pub(crate) fn new_method_id(&mut self, kind: &str) -> String {
        self.next_id += 1;
        format!("{kind}-{}", self.next_id)
    }

    /// Drops everything that has expired by `now`.
    pub(crate) fn prune(&mut self, now: u64) {
        self.challenges.retain(|c| c.expires > now);
        for slot in [&mut self.enroll_code, &mut self.login_code, &mut self.contact_code] {
            slot.prune(now);
        }
        if self.pending_totp.as_ref().is_some_and(|p| p.expires <= now) {
            self.pending_totp = None;
        }
        if self.pending_webauthn.as_ref().is_some_and(|p| p.expires <= now) {
            self.pending_webauthn = None;
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

    /// Whether the user has a method that can sign in: any but a flagged WebAuthn device. A user
    /// whose only methods are flagged devices meets the rules of a user without methods.
    pub(crate) fn has_usable_method(&self) -> bool {
        self.methods.iter().any(Method::usable)
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

/// The JSON objects at `path` under `value` (`*`: each code of a slot).
fn objects_at<'v>(
    value: &'v mut serde_json::Value,
    path: &[&str],
) -> Vec<&'v mut serde_json::Map<String, serde_json::Value>> {
    match path.split_first() {
        None => value.as_object_mut().into_iter().collect(),
        Some((&"*", rest)) => match value.as_object_mut() {
            Some(slot) => slot
                .iter_mut()
                .filter(|(k, _)| k.as_str() == "pending" || k.as_str() == "armed")
                .flat_map(|(_, v)| objects_at(v, rest))
                .collect(),
            None => Vec::new(),
        },
        Some((key, rest)) => match value.get_mut(*key) {
            Some(v) => objects_at(v, rest),
            None => Vec::new(),
        },
    }
}
