//! The outcomes: what each operation answers.

use crate::login::StepUpToken;
use crate::policy::{Recommendation, Warning};
use crate::record::MethodKind;
use serde::{Deserialize, Serialize};
use std::fmt;

pub use crate::record::ResetInfo;

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
