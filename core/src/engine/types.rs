//! The inputs and outputs of the canonical operations.
//!
//! Every type here is serde-serialisable: surfaces pass them as JSON (C, async hosts) or map them
//! to native types. `Debug` never shows a code, secret or token.

use crate::Error;
use crate::config::TotpAlgorithm;
use crate::login::StepUpToken;
use crate::policy::{MethodKind, Recommendation, Warning};
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

/// The result of an operation; each operation answers with one variant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Outcome {
    /// From `security_status`.
    Status(SecurityStatus),
    /// From operations that change nothing visible but may send notices.
    Done(Notices),
    /// From `totp_enroll_begin`.
    TotpSetup(TotpSetup),
    /// From the confirmations and `webauthn_register_finish`.
    MethodAdded(MethodAdded),
    /// From `email_enroll_begin` and `login_send_email_code`.
    CodeSent(CodeSent),
    /// From `webauthn_register_begin`.
    WebauthnRegistration(WebauthnRegistration),
    /// From `rename_method`.
    Method(MethodInfo),
    /// From `recovery_codes_generate`.
    RecoveryCodes(RecoveryCodes),
    /// From `login_begin`.
    Challenge(LoginChallenge),
    /// From `login_verify`.
    LoginSuccess(LoginSuccess),
    /// From `admin.reset_user`.
    Reset(ResetDone),
    /// From `admin.export_user`.
    Exported(UserExport),
    /// From `admin.import_user`.
    Imported(UserImported),
}

impl Outcome {
    /// Where this outcome reports notices that failed to send.
    pub(crate) fn notices_mut(&mut self) -> Option<&mut Notices> {
        match self {
            Outcome::Done(n) => Some(n),
            Outcome::MethodAdded(m) => Some(&mut m.notices),
            Outcome::RecoveryCodes(r) => Some(&mut r.notices),
            Outcome::LoginSuccess(s) => Some(&mut s.notices),
            Outcome::Reset(r) => Some(&mut r.notices),
            _ => None,
        }
    }
}

/// Security notices sent by an operation; a notice that fails never undoes the change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notices {
    /// How many notices were delivered.
    pub sent: u32,
    /// `address: reason` for each notice that failed.
    pub failed: Vec<String>,
}

/// A confirmed method as the Security tab lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodInfo {
    /// Stable id (e.g. `webauthn-3`).
    pub id: String,
    /// Kind of method.
    pub kind: MethodKind,
    /// The friendly name (device name, email address, "Authenticator app").
    pub label: String,
    /// Unix time it was confirmed.
    pub created: u64,
    /// Unix time of the last sign-in with it.
    pub last_used: Option<u64>,
    /// A WebAuthn device refused after a counter regression (possible clone).
    pub flagged: bool,
}

/// Enrolments started but not confirmed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingEnrollments {
    /// An authenticator app awaits its first code.
    pub totp: bool,
    /// An email address awaits its code.
    pub email: Option<String>,
    /// A WebAuthn registration awaits the browser.
    pub webauthn: bool,
}

/// What the Security tab shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityStatus {
    /// Confirmed methods.
    pub methods: Vec<MethodInfo>,
    /// Unused recovery codes.
    pub recovery_codes_left: u32,
    /// Whether policy requires 2FA (the account has created orders).
    pub two_factor_required: bool,
    /// Whether the user meets the policy.
    pub compliant: bool,
    /// Advice, most important first.
    pub recommendations: Vec<Recommendation>,
    /// Problems to fix.
    pub warnings: Vec<Warning>,
    /// The address notices go to, if set.
    pub contact_email: Option<String>,
    /// Enrolments in progress.
    pub pending: PendingEnrollments,
    /// Unix time until which code attempts are refused.
    pub locked_until: Option<u64>,
    /// 2FA is required but not set up: until this Unix time the user may still sign in without
    /// it (the grace period); from then on sign-in answers `enrollment_required`.
    pub enrollment_deadline: Option<u64>,
    /// Browsers that skip the second factor ("Don't ask again"), oldest first.
    pub remembered_devices: Vec<RememberedDevice>,
    /// The last administrator reset, if any.
    pub last_reset: Option<ResetInfo>,
}

/// A remembered browser, as the Security tab lists it (the token itself is never shown again).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RememberedDevice {
    /// Stable id, for `revoke_remembered_device`.
    pub id: String,
    /// The kind of second factor passed when it was remembered.
    pub method: MethodKind,
    /// Unix time it was remembered.
    pub created: u64,
    /// Unix time it stops working.
    pub expires_at: u64,
    /// Unix time of the last sign-in it allowed.
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

/// A new authenticator-app enrolment: shown once, until confirmed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpSetup {
    /// The secret in base32 (for manual entry).
    pub secret: String,
    /// The `otpauth://totp/...` URI.
    pub uri: String,
    /// The URI as an SVG QR code.
    pub qr_svg: String,
    /// Unix time at which the pending enrolment lapses.
    pub expires_at: u64,
}

impl fmt::Debug for TotpSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TotpSetup {{ secret: <redacted>, uri: <redacted>, expires_at: {} }}", self.expires_at)
    }
}

/// A method was added.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodAdded {
    /// The new method.
    pub method: MethodInfo,
    /// A step-up token when this was the user's first method.
    pub step_up: Option<StepUpToken>,
    /// Notices about the change.
    pub notices: Notices,
}

/// A one-time code was delivered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeSent {
    /// Where it went (masked at sign-in: `j***@example.com`).
    pub sent_to: Vec<String>,
    /// Unix time at which the code expires.
    pub expires_at: u64,
    /// Unix time from which another code may be requested.
    pub resend_after: u64,
}

/// Options for `navigator.credentials.create`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebauthnRegistration {
    /// PublicKeyCredentialCreationOptions JSON (`{"publicKey": {...}}`).
    pub options_json: String,
    /// Unix time at which the pending registration lapses.
    pub expires_at: u64,
}

/// A fresh set of recovery codes, shown once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryCodes {
    /// The codes (`xxxxx-xxxxx`).
    pub codes: Vec<String>,
    /// Notices about the change.
    pub notices: Notices,
}

impl fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecoveryCodes {{ {} codes: <redacted>, notices: {:?} }}", self.codes.len(), self.notices)
    }
}

/// A sign-in challenge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginChallenge {
    /// Pass to `login_verify`; `None` when no second factor is needed or possible.
    pub challenge_id: Option<String>,
    /// Whether the user must pass a second factor now.
    pub second_factor_required: bool,
    /// Policy demands 2FA the user has not set up: send them to the Security tab first.
    pub enrollment_required: bool,
    /// The kinds the user can use.
    pub methods: Vec<MethodKind>,
    /// PublicKeyCredentialRequestOptions JSON when a WebAuthn device is registered.
    pub webauthn_options: Option<String>,
    /// Unix time at which the challenge lapses.
    pub expires_at: Option<u64>,
    /// 2FA is required but not set up and the grace period runs until this Unix time (sign-in
    /// goes on without a second factor until then; show the deadline).
    pub enrollment_deadline: Option<u64>,
    /// The id of the remembered device whose token let this sign-in skip the second factor.
    pub remembered_device: Option<String>,
}

/// A second factor was verified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginSuccess {
    /// The kind of factor used.
    pub method: MethodKind,
    /// The method used (none for recovery codes).
    pub method_id: Option<String>,
    /// Proof of a recent second factor, for management operations.
    pub step_up: StepUpToken,
    /// Recovery codes left, after a recovery code was used.
    pub recovery_codes_left: Option<u32>,
    /// The device token, when `remember_device` was asked: keep it on this browser only (an
    /// HttpOnly, Secure cookie) and pass it to `login_begin`.
    pub device_token: Option<DeviceToken>,
    /// Notices (a recovery code was used).
    pub notices: Notices,
}

/// A device token: shown once, stored only as a keyed hash.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceToken {
    /// The opaque token (`id.secret`, base64url).
    pub token: String,
    /// The remembered device's id (as `security_status` lists it).
    pub device_id: String,
    /// Unix time it stops working.
    pub expires_at: u64,
}

impl fmt::Debug for DeviceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DeviceToken {{ token: <redacted>, device_id: {:?}, expires_at: {} }}",
            self.device_id, self.expires_at
        )
    }
}

/// An administrator reset the user's second factors.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetDone {
    /// How many confirmed methods were removed.
    pub methods_removed: u32,
    /// The notices telling the user.
    pub notices: Notices,
}

/// A user's exported second factors.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserExport {
    /// The sealed export document (JSON text, docs/export.md).
    pub document: String,
}

impl fmt::Debug for UserExport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UserExport { document: <sealed> }")
    }
}

/// What an import restored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserImported {
    /// The methods the user now has.
    pub methods: Vec<MethodInfo>,
    /// Methods of the document that were not imported, with the reason (a WebAuthn device
    /// registered for another relying party id).
    pub skipped: Vec<String>,
}

/// What happened, in an audit event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A method was confirmed and is now usable (confirmation, registration, TOTP import).
    MethodAdded,
    /// A method was renamed.
    MethodRenamed,
    /// A method was removed.
    MethodRemoved,
    /// A second factor (or a remembered device) completed a sign-in.
    LoginSucceeded,
    /// A sign-in attempt was refused (`reason`: the error name).
    LoginFailed,
    /// Failed attempts reached the threshold: the user is locked out (`reason`: seconds).
    LockedOut,
    /// A code that was already used was submitted again.
    ReplayRefused,
    /// A WebAuthn device's signature counter went backwards: it is flagged as possibly cloned.
    CounterRegressed,
    /// A recovery code was used (`reason`: how many are left).
    RecoveryCodeUsed,
    /// A fresh set of recovery codes replaced the old one.
    RecoveryCodesGenerated,
    /// A browser was remembered.
    DeviceRemembered,
    /// Remembered devices were revoked (`reason`: why; `method_id`: the device, when one).
    RememberedDevicesRevoked,
    /// The notice address changed.
    ContactEmailChanged,
    /// The account became subject to the 2FA requirement.
    TwoFactorRequired,
    /// An administrator removed every second factor (`actor`, `reason`).
    AdminReset,
    /// An administrator exported the user's second factors.
    UserExported,
    /// An administrator imported the user's second factors.
    UserImported,
    /// An administrator deleted the user's twofa data.
    UserDeleted,
}

/// A security-relevant outcome, delivered to the host's event handler after the change it
/// reports has committed. It never carries a secret, code or token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityEvent {
    /// What happened.
    pub kind: EventKind,
    /// The host's user id.
    pub user: String,
    /// Unix time.
    pub at: u64,
    /// The kind of method concerned, if one.
    pub method: Option<MethodKind>,
    /// The method (or remembered device) concerned, if one.
    pub method_id: Option<String>,
    /// Why, or a detail (an error name, a count, an administrator's reason).
    pub reason: Option<String>,
    /// The administrator who acted, for admin operations that name one.
    pub actor: Option<String>,
}

impl SecurityEvent {
    /// The same event about a method of `kind` (and id, when one).
    pub(crate) fn about(mut self, kind: MethodKind, id: Option<String>) -> SecurityEvent {
        self.method = Some(kind);
        self.method_id = id;
        self
    }

    /// The same event about a remembered device (its id in `method_id`).
    pub(crate) fn device(mut self, id: &str) -> SecurityEvent {
        self.method_id = Some(id.to_string());
        self
    }

    /// The same event with a reason.
    pub(crate) fn because(mut self, reason: &str) -> SecurityEvent {
        self.reason = Some(reason.to_string());
        self
    }
}
