//! Policy: when 2FA is required, whether a user complies, what may be removed, what to recommend.
//!
//! 2FA is required once the account has created orders (`mark_order_created`). Only confirmed,
//! usable methods count: recovery codes never do, and neither does a WebAuthn device flagged as
//! possibly cloned (it cannot sign in). A user whose only methods are flagged devices is a user
//! without methods here: the grace period and `enrollment_required` apply, recovery codes still
//! sign in, and an administrator can reset the user; nothing is a dead end.

use crate::config::PolicyConfig;
use crate::record::{MethodData, UserRecord};
use serde::{Deserialize, Serialize};

pub use crate::record::MethodKind;

/// Advice shown in the Security tab.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recommendation {
    /// 2FA is required and the user has no method: set one up now.
    EnableTwoFactor,
    /// Only one method: add a second so losing one does not lock the user out.
    AddSecondMethod,
    /// Only WebAuthn devices, which work only where they were registered: add another kind.
    AddNonWebauthnMethod,
    /// Only email codes: add a stronger method (authenticator app or WebAuthn).
    AddStrongerMethod,
    /// Methods but no recovery codes left: generate a set.
    GenerateRecoveryCodes,
}

/// Problems the user should fix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Warning {
    /// No contact address and no email method: security notices cannot be delivered.
    NoNoticeAddress,
    /// A WebAuthn device was flagged after a counter regression (possible clone).
    DeviceFlagged,
}

/// Whether the user must have 2FA.
pub(crate) fn required(record: &UserRecord) -> bool {
    record.orders_created_at.is_some()
}

/// While 2FA is required but not set up: the Unix time from which sign-in is blocked until the
/// user enrols (the first order plus the grace period).
pub(crate) fn enrollment_deadline(record: &UserRecord, cfg: &PolicyConfig) -> Option<u64> {
    let since = record.orders_created_at.filter(|_| !record.has_usable_method())?;
    Some(since.saturating_add(cfg.grace_period_secs))
}

/// Whether the user meets the policy.
pub(crate) fn complies(record: &UserRecord) -> bool {
    !required(record) || record.has_usable_method()
}

/// Whether removing the method `id` would leave a user who must have 2FA without a usable one
/// (a flagged device may always go: it does not count).
pub(crate) fn may_remove(record: &UserRecord, id: &str) -> bool {
    let counts = record.methods.iter().any(|m| m.id == id && m.usable());
    !required(record) || !counts || record.methods.iter().any(|m| m.id != id && m.usable())
}

/// What to recommend, most important first.
pub(crate) fn recommendations(record: &UserRecord) -> Vec<Recommendation> {
    let kinds: Vec<MethodKind> = record.methods.iter().filter(|m| m.usable()).map(|m| m.data.kind()).collect();
    let mut out = Vec::new();
    if kinds.is_empty() {
        if required(record) {
            out.push(Recommendation::EnableTwoFactor);
        }
        return out;
    }
    if kinds.len() == 1 {
        out.push(Recommendation::AddSecondMethod);
    }
    if kinds.iter().all(|k| *k == MethodKind::Webauthn) {
        out.push(Recommendation::AddNonWebauthnMethod);
    }
    if kinds.iter().all(|k| *k == MethodKind::Email) {
        out.push(Recommendation::AddStrongerMethod);
    }
    if record.recovery.is_empty() {
        out.push(Recommendation::GenerateRecoveryCodes);
    }
    out
}

/// What is wrong.
pub(crate) fn warnings(record: &UserRecord) -> Vec<Warning> {
    let mut out = Vec::new();
    if record.notice_addresses().is_empty() {
        out.push(Warning::NoNoticeAddress);
    }
    if record.methods.iter().any(|m| matches!(m.data, MethodData::Webauthn { flagged: true, .. })) {
        out.push(Warning::DeviceFlagged);
    }
    out
}
