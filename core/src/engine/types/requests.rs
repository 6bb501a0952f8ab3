//! The requests: what a user (or sign-in) and the admin capability ask for, and the proof a
//! sign-in submits.

use crate::Error;
use crate::record::{MethodKind, TotpAlgorithm};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A canonical operation of a signed-in user (or of sign-in), with its arguments.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// The user's methods, policy state and advice.
    SecurityStatus,
    /// Sets where security notices go, for an address the host has already proved (step-up);
    /// the previous and the new address are told. `contact_email_begin` proves it instead.
    SetContactEmail {
        /// The new notice address.
        address: String,
        /// A step-up token, needed when the user has a method.
        #[serde(default)]
        step_up: Option<String>,
    },
    /// Sends a code to a new notice address, to prove it (step-up).
    ContactEmailBegin {
        /// The new notice address.
        address: String,
        /// A step-up token, needed when the user has a method.
        #[serde(default)]
        step_up: Option<String>,
    },
    /// Makes the address of `contact_email_begin` the notice address with the code sent to it
    /// (step-up); the previous and the new address are told.
    ContactEmailConfirm {
        /// The emailed code.
        code: String,
        /// A step-up token, needed when the user has a method.
        #[serde(default)]
        step_up: Option<String>,
    },
    /// The account has created orders: 2FA is required from now on.
    MarkOrderCreated,
    /// Starts an authenticator-app enrolment (step-up).
    TotpEnrollBegin {
        /// The account label shown in the app (e.g. the user's email).
        account_name: String,
        /// A step-up token, needed when the user already has a method.
        #[serde(default)]
        step_up: Option<String>,
    },
    /// Confirms the pending authenticator app with a code (step-up).
    TotpEnrollConfirm {
        /// A code from the app.
        code: String,
        /// A step-up token, needed when the user already has a method.
        #[serde(default)]
        step_up: Option<String>,
    },
    /// Sends a code to a new email address (step-up).
    EmailEnrollBegin {
        /// The address to confirm.
        address: String,
        /// A step-up token, needed when the user already has a method.
        #[serde(default)]
        step_up: Option<String>,
    },
    /// Confirms the pending email address with the code sent to it (step-up).
    EmailEnrollConfirm {
        /// The emailed code.
        code: String,
        /// A step-up token, needed when the user already has a method.
        #[serde(default)]
        step_up: Option<String>,
    },
    /// Starts registering a WebAuthn device (step-up).
    WebauthnRegisterBegin {
        /// The name the user gives the device.
        friendly_name: String,
        /// A step-up token, needed when the user already has a method.
        #[serde(default)]
        step_up: Option<String>,
    },
    /// Finishes the registration with the browser's response (step-up).
    WebauthnRegisterFinish {
        /// `PublicKeyCredential.toJSON()` of `navigator.credentials.create`.
        credential_json: String,
        /// A step-up token, needed when the user already has a method.
        #[serde(default)]
        step_up: Option<String>,
    },
    /// Renames a method (step-up).
    RenameMethod {
        /// The method's id.
        method_id: String,
        /// The new label.
        label: String,
        /// A step-up token.
        #[serde(default)]
        step_up: Option<String>,
    },
    /// Removes a method, unless policy forbids it (step-up).
    RemoveMethod {
        /// The method's id.
        method_id: String,
        /// A step-up token.
        #[serde(default)]
        step_up: Option<String>,
    },
    /// Replaces the recovery codes with a fresh set (step-up).
    RecoveryCodesGenerate {
        /// A step-up token.
        #[serde(default)]
        step_up: Option<String>,
    },
    /// Starts a sign-in (after the host checked the password).
    LoginBegin {
        /// A device token from an earlier `login_verify` with `remember_device`: when it is
        /// valid, no second factor is asked (never when enrolment is required). An invalid,
        /// expired or revoked token is ignored: the challenge is the usual one.
        #[serde(default)]
        device_token: Option<String>,
    },
    /// Emails a fresh sign-in code.
    LoginSendEmailCode {
        /// The challenge from `login_begin`.
        challenge: String,
    },
    /// Verifies a second factor for a challenge.
    LoginVerify {
        /// The challenge from `login_begin`.
        challenge: String,
        /// The second factor.
        proof: Proof,
        /// Issue a device token so this browser skips the second factor next time (needs
        /// `remember_device.enabled` in the config).
        #[serde(default)]
        remember_device: bool,
    },
    /// Revokes one remembered device.
    RevokeRememberedDevice {
        /// The device's id (from `security_status`).
        device_id: String,
    },
    /// Revokes every remembered device of the user.
    RevokeRememberedDevices,
}

/// Parses a tagged request, refusing malformed JSON, duplicate keys and unknown fields (serde
/// would ignore extra keys beside the tag of a variant without fields: those are refused here).
fn from_tagged_json<T: serde::de::DeserializeOwned>(json: &str, has_fields: impl Fn(&T) -> bool) -> Result<T, Error> {
    let request: T = serde_json::from_str(json).map_err(|e| Error::invalid_json("request", &e))?;
    if !has_fields(&request) {
        let object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(json).map_err(|e| Error::invalid_json("request", &e))?;
        if let Some(extra) = object.keys().find(|k| *k != "op") {
            return Err(Error::InvalidInput(format!("request: unknown field `{extra}`")));
        }
    }
    Ok(request)
}

impl Request {
    /// Parses the JSON form (`{"op":"login_begin"}`, ...), as strictly as the config.
    pub fn from_json(json: &str) -> Result<Request, Error> {
        from_tagged_json(json, |r| {
            !matches!(r, Request::SecurityStatus | Request::MarkOrderCreated | Request::RevokeRememberedDevices)
        })
    }

    /// The canonical snake_case name of the operation.
    pub fn name(&self) -> &'static str {
        match self {
            Request::SecurityStatus => "security_status",
            Request::SetContactEmail { .. } => "set_contact_email",
            Request::ContactEmailBegin { .. } => "contact_email_begin",
            Request::ContactEmailConfirm { .. } => "contact_email_confirm",
            Request::MarkOrderCreated => "mark_order_created",
            Request::TotpEnrollBegin { .. } => "totp_enroll_begin",
            Request::TotpEnrollConfirm { .. } => "totp_enroll_confirm",
            Request::EmailEnrollBegin { .. } => "email_enroll_begin",
            Request::EmailEnrollConfirm { .. } => "email_enroll_confirm",
            Request::WebauthnRegisterBegin { .. } => "webauthn_register_begin",
            Request::WebauthnRegisterFinish { .. } => "webauthn_register_finish",
            Request::RenameMethod { .. } => "rename_method",
            Request::RemoveMethod { .. } => "remove_method",
            Request::RecoveryCodesGenerate { .. } => "recovery_codes_generate",
            Request::LoginBegin { .. } => "login_begin",
            Request::LoginSendEmailCode { .. } => "login_send_email_code",
            Request::LoginVerify { .. } => "login_verify",
            Request::RevokeRememberedDevice { .. } => "revoke_remembered_device",
            Request::RevokeRememberedDevices => "revoke_remembered_devices",
        }
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Request::{}", self.name())
    }
}

/// An operation of the admin capability (never reachable from user-facing calls).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum AdminRequest {
    /// Imports a confirmed TOTP secret (migration from another system, known-answer tests).
    TotpImport {
        /// The secret in base32.
        secret: String,
        /// Its HMAC algorithm.
        algorithm: TotpAlgorithm,
        /// 6 to 8 digits.
        digits: u8,
        /// Time step in seconds.
        period: u64,
    },
    /// Deletes everything twofa stores about the user.
    DeleteUser,
    /// Removes every method, recovery code and remembered device of a user who lost access,
    /// records who did it and why, and tells the user at every known address.
    ResetUser {
        /// Who acts (an administrator's name or id), 1 to 128 characters.
        actor: String,
        /// Why, 1 to 512 characters (it is mailed to the user and kept in the record).
        reason: String,
    },
    /// Exports the user's second factors as a sealed, versioned document (docs/export.md).
    ExportUser {
        /// The export key: at least 32 bytes, standard base64 (like a master key).
        key: String,
    },
    /// Imports a document made by `export_user` for this same user id.
    ImportUser {
        /// The document, as `export_user` returned it.
        document: String,
        /// The key it was exported with.
        key: String,
    },
}

impl AdminRequest {
    /// Parses the JSON form (`{"op":"delete_user"}`, ...), as strictly as the config.
    pub fn from_json(json: &str) -> Result<AdminRequest, Error> {
        from_tagged_json(json, |r| !matches!(r, AdminRequest::DeleteUser))
    }

    /// The canonical snake_case name of the operation.
    pub fn name(&self) -> &'static str {
        match self {
            AdminRequest::TotpImport { .. } => "totp_import",
            AdminRequest::DeleteUser => "delete_user",
            AdminRequest::ResetUser { .. } => "reset_user",
            AdminRequest::ExportUser { .. } => "export_user",
            AdminRequest::ImportUser { .. } => "import_user",
        }
    }
}

impl fmt::Debug for AdminRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AdminRequest::{}", self.name())
    }
}

/// A second factor submitted at sign-in.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case", deny_unknown_fields)]
pub enum Proof {
    /// A code from the authenticator app.
    Totp(String),
    /// The emailed sign-in code.
    Email(String),
    /// `PublicKeyCredential.toJSON()` of `navigator.credentials.get`.
    Webauthn(String),
    /// A recovery code.
    Recovery(String),
}

impl Proof {
    /// The kind of factor.
    pub fn kind(&self) -> MethodKind {
        match self {
            Proof::Totp(_) => MethodKind::Totp,
            Proof::Email(_) => MethodKind::Email,
            Proof::Webauthn(_) => MethodKind::Webauthn,
            Proof::Recovery(_) => MethodKind::Recovery,
        }
    }
}

impl fmt::Debug for Proof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Proof::{}(<redacted>)", self.kind().as_str())
    }
}
