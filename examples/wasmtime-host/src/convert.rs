//! WIT values → the core's types (and the two inputs the other way), so that both surfaces
//! answer with the same plain Rust structs.

use crate::host::{Message as WitMessage, wit};
use twofa_core::{
    CodeSent, Error, LoginChallenge, LoginSuccess, Message, MethodAdded, MethodInfo, MethodKind, Notices,
    PendingEnrollments, Proof, Recommendation, RecoveryCodes, SecurityStatus, StepUpToken, TotpAlgorithm, TotpSetup,
    Warning, WebauthnRegistration,
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
    }
}

pub fn login_success(s: wit::LoginSuccess) -> LoginSuccess {
    LoginSuccess {
        method: kind(s.method),
        method_id: s.method_id,
        step_up: step_up(s.step_up),
        recovery_codes_left: s.recovery_codes_left,
        notices: notices(s.notices),
    }
}
