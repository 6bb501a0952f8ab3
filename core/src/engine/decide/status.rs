//! The Security tab: what it shows, and the order that makes 2FA required.

use super::decision::{Ctx, Decision};
use super::methods::method_info;
use crate::engine::types::*;
use crate::record::UserRecord;
use crate::{Error, policy};

/// `security_status`: the user's methods, policy state and advice.
pub(super) fn security_status(ctx: &Ctx<'_>, r: &UserRecord) -> SecurityStatus {
    let now = ctx.now;
    SecurityStatus {
        methods: r.methods.iter().map(method_info).collect(),
        recovery_codes_left: r.recovery.len() as u32,
        two_factor_required: policy::required(r),
        compliant: policy::complies(r),
        recommendations: policy::recommendations(r),
        warnings: policy::warnings(r),
        contact_email: r.contact_email.clone(),
        pending: PendingEnrollments {
            totp: r.pending_totp.as_ref().is_some_and(|p| p.expires > now),
            email: r.enroll_code.armed.as_ref().filter(|c| c.expires > now && !c.used).and_then(|c| c.address.clone()),
            webauthn: r.pending_webauthn.as_ref().is_some_and(|p| p.expires > now),
        },
        locked_until: r.locked_until.filter(|t| *t > now),
        enrollment_deadline: policy::enrollment_deadline(r, &ctx.core.config.policy),
        remembered_devices: r
            .remembered
            .iter()
            .filter(|d| d.expires > now)
            .map(|d| RememberedDevice {
                id: d.id.clone(),
                method: d.method,
                created: d.created,
                expires_at: d.expires,
                last_used: d.last_used,
            })
            .collect(),
        last_reset: r.last_reset.clone(),
    }
}

/// `mark_order_created`: the account has created orders, 2FA is required from now on.
pub(super) fn mark_order_created(ctx: &Ctx<'_>, mut r: UserRecord) -> Result<Decision, Error> {
    let now = ctx.now;
    if r.orders_created_at.is_some() {
        return Ok(Decision::report(Outcome::Done(Notices::default())));
    }
    r.orders_created_at = Some(now);
    Ok(ctx.put(r, Ok(Outcome::Done(Notices::default()))).with_event(ctx.event(EventKind::TwoFactorRequired)))
}
