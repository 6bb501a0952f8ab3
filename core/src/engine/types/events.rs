//! The audit events: what the host's security log receives once a change has committed.

use crate::record::MethodKind;
use serde::{Deserialize, Serialize};

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
