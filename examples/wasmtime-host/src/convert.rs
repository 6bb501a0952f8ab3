//! WIT values → the core's types (and the two inputs the other way), so that both surfaces
//! answer with the same plain Rust structs.

use crate::host::{Message as WitMessage, wit};
use twofa_core::{
    CodeSent, DeviceToken, Error, EventKind, LoginChallenge, LoginSuccess, Message, MethodAdded, MethodInfo,
    MethodKind, Notices, PendingEnrollments, Proof, Recommendation, RecoveryCodes, RememberedDevice, ResetDone,
    ResetInfo, SecurityEvent, SecurityStatus, StepUpToken, TotpAlgorithm, TotpSetup, UserExport, UserImported, Warning,
    WebauthnRegistration,
};

/// The core error of a WIT error (same names and codes).
pub fn error(e: wit::Error) -> Error {
    match e {
        wit::Error::InvalidInput(m) => Error::InvalidInput(m),
        wit::Error::InvalidCode => Error::InvalidCode,
        wit::Error::Expired => Error::Expired,
        wit::Error::Replayed => Error::Replayed,
        wit::Error::RateLimited(retry_after) => Error::RateLimited { retry_after },
        wit::Error::LockedOut(retry_after) => Error::LockedOut { retry_after },
        wit::Error::NotEnrolled => Error::NotEnrolled,
        wit::Error::StepUpRequired => Error::StepUpRequired,
        wit::Error::PolicyViolation(m) => Error::PolicyViolation(m),
        wit::Error::NotFound(m) => Error::NotFound(m),
        wit::Error::WebauthnRejected(m) => Error::WebauthnRejected(m),
        wit::Error::Storage(m) => Error::Storage(m),
        wit::Error::Conflict => Error::Conflict,
        wit::Error::Mail(m) => Error::Mail(m),
        wit::Error::UnsupportedSchema => Error::UnsupportedSchema,
        wit::Error::Panic => Error::Panic,
        wit::Error::Internal(m) => Error::Internal(m),
        wit::Error::Forbidden(m) => Error::Forbidden(m),
    }
}

pub fn proof(p: Proof) -> wit::Proof {
    match p {
        Proof::Totp(c) => wit::Proof::Totp(c),
        Proof::Email(c) => wit::Proof::Email(c),
        Proof::Webauthn(j) => wit::Proof::Webauthn(j),
        Proof::Recovery(c) => wit::Proof::Recovery(c),
    }
}

pub fn algorithm(a: TotpAlgorithm) -> wit::TotpAlgorithm {
    match a {
        TotpAlgorithm::Sha1 => wit::TotpAlgorithm::Sha1,
        TotpAlgorithm::Sha256 => wit::TotpAlgorithm::Sha256,
        TotpAlgorithm::Sha512 => wit::TotpAlgorithm::Sha512,
    }
}

pub fn message(m: WitMessage) -> Message {
    Message { to: m.to, subject: m.subject, text: m.text, html: m.html }
}

fn kind(k: wit::MethodKind) -> MethodKind {
    match k {
        wit::MethodKind::Totp => MethodKind::Totp,
        wit::MethodKind::Email => MethodKind::Email,
        wit::MethodKind::Webauthn => MethodKind::Webauthn,
        wit::MethodKind::Recovery => MethodKind::Recovery,
    }
}

fn recommendation(r: wit::Recommendation) -> Recommendation {
    match r {
        wit::Recommendation::EnableTwoFactor => Recommendation::EnableTwoFactor,
        wit::Recommendation::AddSecondMethod => Recommendation::AddSecondMethod,
        wit::Recommendation::AddNonWebauthnMethod => Recommendation::AddNonWebauthnMethod,
        wit::Recommendation::AddStrongerMethod => Recommendation::AddStrongerMethod,
        wit::Recommendation::GenerateRecoveryCodes => Recommendation::GenerateRecoveryCodes,
    }
}

fn warning(w: wit::Warning) -> Warning {
    match w {
        wit::Warning::NoNoticeAddress => Warning::NoNoticeAddress,
        wit::Warning::DeviceFlagged => Warning::DeviceFlagged,
    }
}

pub fn method(m: wit::MethodInfo) -> MethodInfo {
    MethodInfo {
        id: m.id,
        kind: kind(m.kind),
        label: m.label,
        created: m.created,
        last_used: m.last_used,
        flagged: m.flagged,
    }
}

pub fn notices(n: wit::Notices) -> Notices {
    Notices { sent: n.sent, failed: n.failed }
}

pub fn status(s: wit::SecurityStatus) -> SecurityStatus {
    SecurityStatus {
        methods: s.methods.into_iter().map(method).collect(),
        recovery_codes_left: s.recovery_codes_left,
        two_factor_required: s.two_factor_required,
        compliant: s.compliant,
        recommendations: s.recommendations.into_iter().map(recommendation).collect(),
        warnings: s.warnings.into_iter().map(warning).collect(),
        contact_email: s.contact_email,
        pending: PendingEnrollments { totp: s.pending.totp, email: s.pending.email, webauthn: s.pending.webauthn },
        locked_until: s.locked_until,
        enrollment_deadline: s.enrollment_deadline,
        remembered_devices: s.remembered_devices.into_iter().map(remembered_device).collect(),
        last_reset: s.last_reset.map(|r| ResetInfo { actor: r.actor, reason: r.reason, at: r.at }),
    }
}

fn remembered_device(d: wit::RememberedDevice) -> RememberedDevice {
    RememberedDevice {
        id: d.id,
        method: kind(d.method),
        created: d.created,
        expires_at: d.expires_at,
        last_used: d.last_used,
    }
}

pub fn totp_setup(t: wit::TotpSetup) -> TotpSetup {
    TotpSetup { secret: t.secret, uri: t.uri, qr_svg: t.qr_svg, expires_at: t.expires_at }
}

fn step_up(t: wit::StepUpToken) -> StepUpToken {
    StepUpToken { token: t.token, expires_at: t.expires_at }
}

pub fn method_added(m: wit::MethodAdded) -> MethodAdded {
    MethodAdded { method: method(m.method), step_up: m.step_up.map(step_up), notices: notices(m.notices) }
}

pub fn code_sent(c: wit::CodeSent) -> CodeSent {
    CodeSent { sent_to: c.sent_to, expires_at: c.expires_at, resend_after: c.resend_after }
}

pub fn registration(r: wit::WebauthnRegistration) -> WebauthnRegistration {
    WebauthnRegistration { options_json: r.options_json, expires_at: r.expires_at }
}

pub fn recovery_codes(r: wit::RecoveryCodes) -> RecoveryCodes {
    RecoveryCodes { codes: r.codes, notices: notices(r.notices) }
}

pub fn challenge(c: wit::LoginChallenge) -> LoginChallenge {
    LoginChallenge {
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

pub fn login_success(s: wit::LoginSuccess) -> LoginSuccess {
    LoginSuccess {
        method: kind(s.method),
        method_id: s.method_id,
        step_up: step_up(s.step_up),
        recovery_codes_left: s.recovery_codes_left,
        device_token: s.device_token.map(|t| DeviceToken {
            token: t.token,
            device_id: t.device_id,
            expires_at: t.expires_at,
        }),
        notices: notices(s.notices),
    }
}

/// The core's outcome of an admin reset.
pub fn reset_done(r: wit::ResetDone) -> ResetDone {
    ResetDone { methods_removed: r.methods_removed, notices: notices(r.notices) }
}

/// The export outcome of the document `export-user` returns.
pub fn user_export(document: String) -> UserExport {
    UserExport { document }
}

/// The core's outcome of an import.
pub fn user_imported(i: wit::UserImported) -> UserImported {
    UserImported { methods: i.methods.into_iter().map(method).collect(), skipped: i.skipped }
}

fn event_kind(k: wit::EventKind) -> EventKind {
    match k {
        wit::EventKind::MethodAdded => EventKind::MethodAdded,
        wit::EventKind::MethodRenamed => EventKind::MethodRenamed,
        wit::EventKind::MethodRemoved => EventKind::MethodRemoved,
        wit::EventKind::LoginSucceeded => EventKind::LoginSucceeded,
        wit::EventKind::LoginFailed => EventKind::LoginFailed,
        wit::EventKind::LockedOut => EventKind::LockedOut,
        wit::EventKind::ReplayRefused => EventKind::ReplayRefused,
        wit::EventKind::CounterRegressed => EventKind::CounterRegressed,
        wit::EventKind::RecoveryCodeUsed => EventKind::RecoveryCodeUsed,
        wit::EventKind::RecoveryCodesGenerated => EventKind::RecoveryCodesGenerated,
        wit::EventKind::DeviceRemembered => EventKind::DeviceRemembered,
        wit::EventKind::RememberedDevicesRevoked => EventKind::RememberedDevicesRevoked,
        wit::EventKind::ContactEmailChanged => EventKind::ContactEmailChanged,
        wit::EventKind::TwoFactorRequired => EventKind::TwoFactorRequired,
        wit::EventKind::AdminReset => EventKind::AdminReset,
        wit::EventKind::UserExported => EventKind::UserExported,
        wit::EventKind::UserImported => EventKind::UserImported,
        wit::EventKind::UserDeleted => EventKind::UserDeleted,
    }
}

/// The core's event of an event the component emitted.
pub fn event(e: wit::SecurityEvent) -> SecurityEvent {
    SecurityEvent {
        kind: event_kind(e.kind),
        user: e.user,
        at: e.at,
        method: e.method.map(kind),
        method_id: e.method_id,
        reason: e.reason,
        actor: e.actor,
    }
}
