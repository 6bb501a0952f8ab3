//! The one error type of twofa.
//!
//! Every variant has a stable numeric [`Error::code`] and a snake_case [`Error::name`] that every
//! surface (C, WIT, Python, Node) exposes unchanged. Codes are never reused: a retired variant
//! leaves its number behind as a comment.
//!
//! Messages never contain a secret, a code, an otpauth URI or a key.

use std::fmt;

/// Everything that can go wrong in a twofa operation.
#[non_exhaustive]
#[derive(Clone, PartialEq, Eq)]
pub enum Error {
    /// The caller passed something malformed: an empty user id, a code of the wrong shape, an
    /// invalid address, a bad configuration. The message says which input and why.
    InvalidInput(String),
    /// A well-formed code that does not match. Counted in the user's attempt budget.
    InvalidCode,
    /// The code, challenge, enrolment or token has expired: start again.
    Expired,
    /// The code was already used (or matches only TOTP steps at or below the last accepted one).
    Replayed,
    /// Too soon: a new code can be sent only after a cooldown.
    RateLimited {
        /// Seconds until the action is allowed again.
        retry_after: u64,
    },
    /// Too many failed attempts: the user cannot try a code until the lockout ends.
    LockedOut {
        /// Seconds until attempts are accepted again.
        retry_after: u64,
    },
    /// The user has no such method, pending enrolment or code.
    NotEnrolled,
    /// The operation changes the user's second factors and needs a valid step-up token.
    StepUpRequired,
    /// The policy forbids it (e.g. removing the last method of a user who must have 2FA).
    PolicyViolation(String),
    /// The named thing (challenge, method, user) does not exist.
    NotFound(String),
    /// The browser's WebAuthn response failed a check of the ceremony.
    WebauthnRejected(String),
    /// The host's store failed (or returned a record that cannot be read).
    Storage(String),
    /// Concurrent writers kept winning: nothing was decided; the caller may retry.
    Conflict,
    /// Mail delivery failed for a message the operation depends on (a one-time code).
    Mail(String),
    /// The stored record was written by a newer twofa: it is refused, never rewritten.
    UnsupportedSchema,
    /// A panic was caught at a surface boundary. The call may have stopped before or after its
    /// write: treat the outcome as unknown and read the state again.
    Panic,
    /// A bug or an impossible state inside twofa.
    Internal(String),
    /// The call needs a capability this handle does not hold (the admin capability is granted
    /// only by `"admin": true` in the config).
    Forbidden(String),
}

impl Error {
    /// The stable numeric code of this error (0 is reserved for success on every surface).
    pub fn code(&self) -> u32 {
        match self {
            Error::InvalidInput(_) => 1,
            Error::InvalidCode => 2,
            Error::Expired => 3,
            Error::Replayed => 4,
            Error::RateLimited { .. } => 5,
            Error::LockedOut { .. } => 6,
            Error::NotEnrolled => 7,
            Error::StepUpRequired => 8,
            Error::PolicyViolation(_) => 9,
            Error::NotFound(_) => 10,
            Error::WebauthnRejected(_) => 11,
            Error::Storage(_) => 12,
            Error::Conflict => 13,
            Error::Mail(_) => 14,
            Error::UnsupportedSchema => 15,
            Error::Panic => 16,
            Error::Internal(_) => 17,
            Error::Forbidden(_) => 18,
        }
    }

    /// The stable snake_case name of this error.
    pub fn name(&self) -> &'static str {
        match self {
            Error::InvalidInput(_) => "invalid_input",
            Error::InvalidCode => "invalid_code",
            Error::Expired => "expired",
            Error::Replayed => "replayed",
            Error::RateLimited { .. } => "rate_limited",
            Error::LockedOut { .. } => "locked_out",
            Error::NotEnrolled => "not_enrolled",
            Error::StepUpRequired => "step_up_required",
            Error::PolicyViolation(_) => "policy_violation",
            Error::NotFound(_) => "not_found",
            Error::WebauthnRejected(_) => "webauthn_rejected",
            Error::Storage(_) => "storage",
            Error::Conflict => "conflict",
            Error::Mail(_) => "mail",
            Error::UnsupportedSchema => "unsupported_schema",
            Error::Panic => "panic",
            Error::Internal(_) => "internal",
            Error::Forbidden(_) => "forbidden",
        }
    }

    /// Seconds to wait before retrying, for `rate_limited` and `locked_out`.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Error::RateLimited { retry_after } | Error::LockedOut { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    /// Every error name with its code, in code order (for surfaces that generate their tables).
    pub const ALL: [(u32, &'static str); 18] = [
        (1, "invalid_input"),
        (2, "invalid_code"),
        (3, "expired"),
        (4, "replayed"),
        (5, "rate_limited"),
        (6, "locked_out"),
        (7, "not_enrolled"),
        (8, "step_up_required"),
        (9, "policy_violation"),
        (10, "not_found"),
        (11, "webauthn_rejected"),
        (12, "storage"),
        (13, "conflict"),
        (14, "mail"),
        (15, "unsupported_schema"),
        (16, "panic"),
        (17, "internal"),
        (18, "forbidden"),
    ];

    pub(crate) fn invalid(what: impl Into<String>) -> Self {
        Error::InvalidInput(what.into())
    }

    /// `invalid_input` for JSON that does not parse, naming what was wrong but never the value
    /// serde would quote (a misplaced key or code must not reach a log).
    pub(crate) fn invalid_json(context: &str, e: &serde_json::Error) -> Self {
        Error::InvalidInput(format!("{context}: {}", redacted_json_message(e)))
    }
}

/// serde_json's message with the offending value removed: `invalid type: string "s3cr3t",
/// expected a sequence at line 1 column 9` becomes `invalid type: string, expected a sequence at
/// line 1 column 9`. Field names (`unknown field`, `duplicate field`) are kept.
pub(crate) fn redacted_json_message(e: &serde_json::Error) -> String {
    let message = e.to_string();
    match message.split_once(": ") {
        Some((kind @ ("invalid type" | "invalid value"), rest)) => {
            let unexpected = rest.split([' ', ',']).next().unwrap_or("value");
            let expected = rest.find(", expected").map_or("", |i| &rest[i..]);
            format!("{kind}: {unexpected}{expected}")
        }
        _ => message,
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidInput(m) => write!(f, "invalid input: {m}"),
            Error::InvalidCode => f.write_str("the code is not valid"),
            Error::Expired => f.write_str("expired: start again"),
            Error::Replayed => f.write_str("this code was already used"),
            Error::RateLimited { retry_after } => {
                write!(f, "too soon: retry in {retry_after} s")
            }
            Error::LockedOut { retry_after } => {
                write!(f, "too many failed attempts: retry in {retry_after} s")
            }
            Error::NotEnrolled => f.write_str("no such method or pending enrolment"),
            Error::StepUpRequired => f.write_str("a valid step-up token is required"),
            Error::PolicyViolation(m) => write!(f, "refused by policy: {m}"),
            Error::NotFound(m) => write!(f, "not found: {m}"),
            Error::WebauthnRejected(m) => write!(f, "WebAuthn response rejected: {m}"),
            Error::Storage(m) => write!(f, "storage failed: {m}"),
            Error::Conflict => f.write_str("concurrent updates kept conflicting: retry"),
            Error::Mail(m) => write!(f, "mail delivery failed: {m}"),
            Error::UnsupportedSchema => f.write_str("the stored record comes from a newer twofa version"),
            Error::Panic => f.write_str("internal panic caught at the boundary"),
            Error::Internal(m) => write!(f, "internal error: {m}"),
            Error::Forbidden(m) => write!(f, "forbidden: {m}"),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error({} {}: {self})", self.code(), self.name())
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_never_quote_the_value() {
        let e = serde_json::from_str::<Vec<u8>>(r#""s3cr3t-key""#).unwrap_err();
        let m = redacted_json_message(&e);
        assert!(!m.contains("s3cr3t") && m.starts_with("invalid type: string, expected"), "{m}");
        let e = serde_json::from_str::<String>("918273").unwrap_err();
        assert!(!redacted_json_message(&e).contains("918273"));
    }

    #[test]
    fn table_matches_variants() {
        let samples = [
            Error::InvalidInput(String::new()),
            Error::InvalidCode,
            Error::Expired,
            Error::Replayed,
            Error::RateLimited { retry_after: 1 },
            Error::LockedOut { retry_after: 1 },
            Error::NotEnrolled,
            Error::StepUpRequired,
            Error::PolicyViolation(String::new()),
            Error::NotFound(String::new()),
            Error::WebauthnRejected(String::new()),
            Error::Storage(String::new()),
            Error::Conflict,
            Error::Mail(String::new()),
            Error::UnsupportedSchema,
            Error::Panic,
            Error::Internal(String::new()),
            Error::Forbidden(String::new()),
        ];
        for (e, (code, name)) in samples.iter().zip(Error::ALL) {
            assert_eq!((e.code(), e.name()), (code, name));
        }
    }
}
