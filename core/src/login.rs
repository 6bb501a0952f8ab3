//! Sign-in machinery: code parsing, the per-user attempt budget and lockout, step-up tokens.
//!
//! **Code format rules** (every surface reports them the same way): a submitted numeric code is
//! at most 64 bytes; ASCII spaces anywhere are ignored ("123 456"); what is left must be exactly
//! the expected number of ASCII digits. Anything else (wrong length, non-ASCII digits, letters,
//! control characters) is `invalid_input`, which is never counted as an attempt.
//!
//! **Attempt budget**: each wrong TOTP, email or recovery code adds one failure for the user
//! (not per challenge; a new challenge does not reset it). At `threshold` failures the user is
//! locked out for `base_delay_secs`, doubling with every further failure up to `max_delay_secs`.
//! During a lockout, attempts are refused with `locked_out` (carrying the seconds left) and are
//! neither verified nor counted. A success resets the budget. WebAuthn assertions, which cannot
//! be guessed, neither count nor are blocked.

use crate::Error;
use crate::config::{Config, LockoutConfig};
use crate::crypto::{Keyring, random_token};
use crate::record::{StepUpEntry, UserRecord};
use ring::rand::SecureRandom;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Validates a numeric code of `digits` digits (see the module rules); returns it without spaces.
pub(crate) fn parse_digits(input: &str, digits: u8) -> Result<String, Error> {
    if input.len() > 64 {
        return Err(Error::invalid("code: too long"));
    }
    let code: String = input.chars().filter(|c| *c != ' ').collect();
    if code.len() != usize::from(digits) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::invalid(format!("code: expected {digits} digits")));
    }
    Ok(code)
}

/// Refuses attempts while the user is locked out.
pub(crate) fn check_lockout(record: &UserRecord, now: u64) -> Result<(), Error> {
    match record.locked_until {
        Some(until) if until > now => Err(Error::LockedOut { retry_after: until - now }),
        _ => Ok(()),
    }
}

/// Counts one failed attempt, locking the user out at the threshold.
pub(crate) fn record_failure(record: &mut UserRecord, cfg: &LockoutConfig, now: u64) {
    record.failures = record.failures.saturating_add(1);
    if record.failures >= cfg.threshold {
        let doublings = (record.failures - cfg.threshold).min(32);
        let delay = cfg.base_delay_secs.saturating_mul(1u64 << doublings).min(cfg.max_delay_secs);
        record.locked_until = Some(now.saturating_add(delay));
    }
}

/// A success resets the budget.
pub(crate) fn record_success(record: &mut UserRecord) {
    record.failures = 0;
    record.locked_until = None;
}

const STEP_UP_DOMAIN: &str = "twofa/step-up";

/// A step-up token: proof of a recent second factor, needed to change second factors.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepUpToken {
    /// The token to pass back to management operations (128 random bits, base64url).
    pub token: String,
    /// Unix time at which it stops working.
    pub expires_at: u64,
}

impl fmt::Debug for StepUpToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StepUpToken {{ token: <redacted>, expires_at: {} }}", self.expires_at)
    }
}

/// Issues a step-up token and stores its hash in the record.
pub(crate) fn issue_step_up(
    record: &mut UserRecord,
    keyring: &Keyring,
    rng: &dyn SecureRandom,
    config: &Config,
    user: &str,
    now: u64,
) -> Result<StepUpToken, Error> {
    let token = random_token(rng)?;
    let expires_at = now.saturating_add(config.lifetimes.step_up_secs);
    record
        .step_up
        .push(StepUpEntry { hash: keyring.hash(STEP_UP_DOMAIN, user, token.as_bytes())?, expires: expires_at });
    // A user cannot need more than a handful at once; keep the record small.
    if record.step_up.len() > 16 {
        record.step_up.remove(0);
    }
    Ok(StepUpToken { token, expires_at })
}

/// Requires a valid step-up token whenever the user has a confirmed method.
pub(crate) fn require_step_up(
    record: &UserRecord,
    keyring: &Keyring,
    user: &str,
    token: Option<&str>,
    now: u64,
) -> Result<(), Error> {
    if record.methods.is_empty() {
        return Ok(());
    }
    let Some(token) = token else { return Err(Error::StepUpRequired) };
    if token.len() > 128 {
        return Err(Error::StepUpRequired);
    }
    let valid = record
        .step_up
        .iter()
        .filter(|e| e.expires > now)
        .fold(false, |acc, e| keyring.verify(&e.hash, STEP_UP_DOMAIN, user, token.as_bytes()) | acc);
    if valid { Ok(()) } else { Err(Error::StepUpRequired) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_rules() {
        assert_eq!(parse_digits("123 456", 6).unwrap(), "123456");
        assert_eq!(parse_digits(" 12345678 ", 8).unwrap(), "12345678");
        for bad in ["12345", "1234567", "12345a", "١٢٣٤٥٦", "123\t456", "123\n456", "+12345", "-12345", ""] {
            assert_eq!(parse_digits(bad, 6).unwrap_err().code(), 1, "{bad:?}");
        }
        assert!(parse_digits(&" ".repeat(65), 6).is_err());
    }

    #[test]
    fn lockout_grows_and_caps() {
        let cfg = LockoutConfig { threshold: 3, base_delay_secs: 10, max_delay_secs: 25 };
        let mut r = UserRecord::default();
        record_failure(&mut r, &cfg, 100);
        record_failure(&mut r, &cfg, 100);
        assert!(check_lockout(&r, 100).is_ok());
        record_failure(&mut r, &cfg, 100);
        assert_eq!(check_lockout(&r, 100), Err(Error::LockedOut { retry_after: 10 }));
        assert!(check_lockout(&r, 110).is_ok());
        record_failure(&mut r, &cfg, 110);
        assert_eq!(r.locked_until, Some(130));
        record_failure(&mut r, &cfg, 130);
        assert_eq!(r.locked_until, Some(155), "capped at max_delay_secs");
        record_success(&mut r);
        assert!(check_lockout(&r, 131).is_ok());
    }
}
