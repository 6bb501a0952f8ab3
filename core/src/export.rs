//! Portable export documents: a user's second factors moved between deployments (and between
//! hosts in different languages), sealed under a key the caller provides. The format is
//! documented in `docs/export.md`; this module is its one implementation.
//!
//! A document is a JSON envelope whose readable fields say what it is and for whom; everything
//! else (TOTP secrets included) is one AES-256-GCM payload. The envelope's format, version,
//! user id and export time are its associated data, so a document opens only for the user id it
//! was exported for, and any changed byte makes it refuse to open.

use crate::Error;
use crate::crypto::ExportKey;
use crate::record::TotpAlgorithm;
use crate::webauthn::StoredCredential;
use ring::rand::SecureRandom;
use serde::{Deserialize, Serialize};

/// The `format` of every export document.
const FORMAT: &str = "twofa-user-export";
/// The document version this engine writes and reads.
const VERSION: u32 = 1;
/// The payload cipher.
const CIPHER: &str = "AES-256-GCM";
/// The largest document accepted (a record holds few methods).
const MAX_DOCUMENT: usize = 1 << 20;

/// The readable part of a document.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    format: String,
    version: u32,
    user: String,
    exported_at: u64,
    cipher: String,
    nonce: String,
    sealed: String,
}

/// What the sealed payload holds: the durable part of a user's record, secrets in clear.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Payload {
    pub methods: Vec<ExportedMethod>,
    #[serde(default)]
    pub contact_email: Option<String>,
    #[serde(default)]
    pub orders_created_at: Option<u64>,
    #[serde(default)]
    pub webauthn_user_handle: Option<String>,
    #[serde(default)]
    pub next_id: u64,
}

/// One confirmed method.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExportedMethod {
    pub id: String,
    pub label: String,
    pub created: u64,
    #[serde(default)]
    pub last_used: Option<u64>,
    pub data: ExportedData,
}

/// What a method needs to keep working elsewhere.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum ExportedData {
    /// The authenticator app's secret (base32) and parameters; `last_step` keeps replay
    /// protection across the move.
    Totp {
        secret: String,
        algorithm: TotpAlgorithm,
        digits: u8,
        period: u64,
        #[serde(default)]
        last_step: Option<u64>,
    },
    /// A confirmed address.
    Email { address: String },
    /// A WebAuthn credential, usable only where the relying party id is `rp_id`.
    Webauthn {
        rp_id: String,
        credential: Box<StoredCredential>,
        #[serde(default)]
        flagged: bool,
    },
}

/// The associated data: format, version, length-prefixed user id, export time.
fn aad(user: &str, exported_at: u64) -> Vec<u8> {
    let mut out = format!("{FORMAT}/{VERSION}/").into_bytes();
    out.extend_from_slice(&(user.len() as u64).to_be_bytes());
    out.extend_from_slice(user.as_bytes());
    out.extend_from_slice(&exported_at.to_be_bytes());
    out
}

/// Seals `payload` for `user` under `key` (standard base64): the document's JSON text.
pub(crate) fn seal(
    rng: &dyn SecureRandom,
    key: &str,
    user: &str,
    payload: &Payload,
    now: u64,
) -> Result<String, Error> {
    let key = ExportKey::new(key)?;
    let plain = serde_json::to_vec(payload).map_err(|e| Error::Internal(format!("export serialisation: {e}")))?;
    let (nonce, sealed) = key.seal(rng, &aad(user, now), &plain)?;
    let envelope = Envelope {
        format: FORMAT.into(),
        version: VERSION,
        user: user.into(),
        exported_at: now,
        cipher: CIPHER.into(),
        nonce,
        sealed,
    };
    serde_json::to_string(&envelope).map_err(|e| Error::Internal(format!("export serialisation: {e}")))
}

/// Opens a document for `user` with `key`. Every failure is `invalid_input` naming what is
/// wrong (never a value): not a document, another version, another user, a wrong key or a
/// changed byte, a payload that does not parse.
pub(crate) fn open(key: &str, user: &str, document: &str) -> Result<Payload, Error> {
    if document.len() > MAX_DOCUMENT {
        return Err(Error::invalid("document: larger than 1 MiB"));
    }
    let envelope: Envelope = serde_json::from_str(document).map_err(|e| Error::invalid_json("document", &e))?;
    if envelope.format != FORMAT {
        return Err(Error::invalid(format!("document: format is not {FORMAT}")));
    }
    if envelope.version != VERSION || envelope.cipher != CIPHER {
        return Err(Error::invalid(format!("document: version {} is not supported", envelope.version)));
    }
    if envelope.user != user {
        return Err(Error::invalid("document: exported for another user id"));
    }
    let plain = ExportKey::new(key)?.open(&envelope.nonce, &envelope.sealed, &aad(user, envelope.exported_at))?;
    serde_json::from_slice(&plain).map_err(|e| Error::invalid_json("document payload", &e))
}
