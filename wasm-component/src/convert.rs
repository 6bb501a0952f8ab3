//! Core types → WIT types, field by field (and the algorithm enum the other way).

use crate::twofa::auth::types as wit;
use twofa_core::{Error, EventKind, MethodKind, Recommendation, TotpAlgorithm, Warning, engine as core};

/// The WIT error of a core error (same codes).
pub(crate) fn error(e: Error) -> wit::Error {
    match e {
        Error::InvalidInput(m) => wit::Error::InvalidInput(m),
        Error::InvalidCode => wit::Error::InvalidCode,
        Error::Expired => wit::Error::Expired,
        Error::Replayed => wit::Error::Replayed,
        Error::RateLimited { retry_after } => wit::Error::RateLimited(retry_after),
        Error::LockedOut { retry_after } => wit::Error::LockedOut(retry_after),
        Error::NotEnrolled => wit::Error::NotEnrolled,
        Error::StepUpRequired => wit::Error::StepUpRequired,
        Error::PolicyViolation(m) => wit::Error::PolicyViolation(m),
        Error::NotFound(m) => wit::Error::NotFound(m),
        Error::WebauthnRejected(m) => wit::Error::WebauthnRejected(m),
        Error::Storage(m) => wit::Error::Storage(m),
        Error::Conflict => wit::Error::Conflict,
        Error::Mail(m) => wit::Error::Mail(m),
        Error::UnsupportedSchema => wit::Error::UnsupportedSchema,
        Error::Panic => wit::Error::Panic,
        Error::Internal(m) => wit::Error::Internal(m),
        Error::Forbidden(m) => wit::Error::Forbidden(m),
        other => wit::Error::Internal(other.to_string()),
    }
}

pub(crate) fn kind_algorithm(a: wit::TotpAlgorithm) -> TotpAlgorithm {
    match a {
        wit::TotpAlgorithm::Sha1 => TotpAlgorithm::Sha1,
        wit::TotpAlgorithm::Sha256 => TotpAlgorithm::Sha256,
        wit::TotpAlgorithm::Sha512 => TotpAlgorithm::Sha512,
    }
}

fn kind(k: MethodKind) -> wit::MethodKind {
    match k {
        MethodKind::Totp => wit::MethodKind::Totp,
        MethodKind::Email => wit::MethodKind::Email,
        MethodKind::Webauthn => wit::MethodKind::Webauthn,
        MethodKind::Recovery => wit::MethodKind::Recovery,
    }
}

fn recommendation(r: Recommendation) -> wit::Recommendation {
    match r {
        Recommendation::EnableTwoFactor => wit::Recommendation::EnableTwoFactor,
        Recommendation::AddSecondMethod => wit::Recommendation::AddSecondMethod,
        Recommendation::AddNonWebauthnMethod => wit::Recommendation::AddNonWebauthnMethod,
        Recommendation::AddStrongerMethod => wit::Recommendation::AddStrongerMethod,
        Recommendation::GenerateRecoveryCodes => wit::Recommendation::GenerateRecoveryCodes,
    }
}

fn warning(w: Warning) -> wit::Warning {
    match w {
        Warning::NoNoticeAddress => wit::Warning::NoNoticeAddress,
        Warning::DeviceFlagged => wit::Warning::DeviceFlagged,
    }
}

pub(crate) fn method(m: core::MethodInfo) -> wit::MethodInfo {
    wit::MethodInfo {
        id: m.id,
        kind: kind(m.kind),
        label: m.label,
        created: m.created,
        last_used: m.last_used,
        flagged: m.flagged,
    }
}

pub(crate) fn notices(n: core::Notices) -> wit::Notices {
    wit::Notices { sent: n.sent, failed: n.failed }
}

pub(crate) fn status(s: core::SecurityStatus) -> wit::SecurityStatus {
    wit::SecurityStatus {
        methods: s.methods.into_iter().map(method).collect(),
        recovery_codes_left: s.recovery_codes_left,
        two_factor_required: s.two_factor_required,
        compliant: s.compliant,
        recommendations: s.recommendations.into_iter().map(recommendation).collect(),
        warnings: s.warnings.into_iter().map(warning).collect(),
        contact_email: s.contact_email,
        pending: wit::PendingEnrollments { totp: s.pending.totp, email: s.pending.email, webauthn: s.pending.webauthn },
        locked_until: s.locked_until,
        enrollment_deadline: s.enrollment_deadline,
        remembered_devices: s.remembered_devices.into_iter().map(remembered_device).collect(),
        last_reset: s.last_reset.map(|r| wit::ResetInfo { actor: r.actor, reason: r.reason, at: r.at }),
    }
}

fn remembered_device(d: core::RememberedDevice) -> wit::RememberedDevice {
    wit::RememberedDevice {
        id: d.id,
        method: kind(d.method),
        created: d.created,
        expires_at: d.expires_at,
        last_used: d.last_used,
    }
}

pub(crate) fn totp_setup(t: core::TotpSetup) -> wit::TotpSetup {
    wit::TotpSetup { secret: t.secret, uri: t.uri, qr_svg: t.qr_svg, expires_at: t.expires_at }
}

fn step_up(t: twofa_core::StepUpToken) -> wit::StepUpToken {
    wit::StepUpToken { token: t.token, expires_at: t.expires_at }
}

pub(crate) fn method_added(m: core::MethodAdded) -> wit::MethodAdded {
    wit::MethodAdded { method: method(m.method), step_up: m.step_up.map(step_up), notices: notices(m.notices) }
}

pub(crate) fn code_sent(c: core::CodeSent) -> wit::CodeSent {
    wit::CodeSent { sent_to: c.sent_to, expires_at: c.expires_at, resend_after: c.resend_after }
}

pub(crate) fn challenge(c: core::LoginChallenge) -> wit::LoginChallenge {
    wit::LoginChallenge {
        challenge_id: c.challenge_id,
        second_factor_required: c.second_factor_required,
        enrollment_required: c.enrollment_required,
        methods: c.methods.into_iter().map(kind).collect(),
        webauthn_options: c.webauthn_options,
        expires_at: c.expires_at,
        enrollment_deadline: c.enrollment_deadline,
        remembered_device: c.remembered_device,
    }
}

pub(crate) fn login_success(s: core::LoginSuccess) -> wit::LoginSuccess {
    wit::LoginSuccess {
        method: kind(s.method),
        method_id: s.method_id,
        step_up: step_up(s.step_up),
        recovery_codes_left: s.recovery_codes_left,
        device_token: s.device_token.map(|t| wit::DeviceToken {
            token: t.token,
            device_id: t.device_id,
            expires_at: t.expires_at,
        }),
        notices: notices(s.notices),
    }
}

pub(crate) fn reset_done(r: core::ResetDone) -> wit::ResetDone {
    wit::ResetDone { methods_removed: r.methods_removed, notices: notices(r.notices) }
}

pub(crate) fn user_imported(i: core::UserImported) -> wit::UserImported {
    wit::UserImported { methods: i.methods.into_iter().map(method).collect(), skipped: i.skipped }
}

fn event_kind(k: EventKind) -> wit::EventKind {
    match k {
        EventKind::MethodAdded => wit::EventKind::MethodAdded,
        EventKind::MethodRenamed => wit::EventKind::MethodRenamed,
        EventKind::MethodRemoved => wit::EventKind::MethodRemoved,
        EventKind::LoginSucceeded => wit::EventKind::LoginSucceeded,
        EventKind::LoginFailed => wit::EventKind::LoginFailed,
        EventKind::LockedOut => wit::EventKind::LockedOut,
        EventKind::ReplayRefused => wit::EventKind::ReplayRefused,
        EventKind::CounterRegressed => wit::EventKind::CounterRegressed,
        EventKind::RecoveryCodeUsed => wit::EventKind::RecoveryCodeUsed,
        EventKind::RecoveryCodesGenerated => wit::EventKind::RecoveryCodesGenerated,
        EventKind::DeviceRemembered => wit::EventKind::DeviceRemembered,
        EventKind::RememberedDevicesRevoked => wit::EventKind::RememberedDevicesRevoked,
        EventKind::ContactEmailChanged => wit::EventKind::ContactEmailChanged,
        EventKind::TwoFactorRequired => wit::EventKind::TwoFactorRequired,
        EventKind::AdminReset => wit::EventKind::AdminReset,
        EventKind::UserExported => wit::EventKind::UserExported,
        EventKind::UserImported => wit::EventKind::UserImported,
        EventKind::UserDeleted => wit::EventKind::UserDeleted,
    }
}

pub(crate) fn event(e: &core::SecurityEvent) -> wit::SecurityEvent {
    wit::SecurityEvent {
        kind: event_kind(e.kind),
        user: e.user.clone(),
        at: e.at,
        method: e.method.map(kind),
        method_id: e.method_id.clone(),
        reason: e.reason.clone(),
        actor: e.actor.clone(),
    }
}
