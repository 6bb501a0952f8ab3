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
//!
//! **Step-up tokens** are stateless, so issuing one writes nothing and the record does not grow
//! with sign-ins: a token is `expires ‖ nonce ‖ tag` (base64url), the tag an HMAC under the
//! active key over the user, the record's `generation` and `step_up_epoch`, the expiry and the
//! nonce. A token verifies until it expires, under any configured key (so keys can rotate), and
//! only while the epoch it was made for is current (bumping the epoch revokes every token issued
//! before) in the record it was made for (a deleted and recreated record has a new generation).
//!
//! **Who needs one**: a user with a usable method (flagged WebAuthn devices do not count) or
//! recovery codes left. A user with neither is treated as a user without 2FA.

use crate::Error;
use crate::config::{Config, LockoutConfig};
use crate::crypto::Keyring;
use crate::record::UserRecord;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
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

/// The bytes of a step-up token before base64url: expiry (8), nonce (16), tag (32).
const STEP_UP_LEN: usize = 8 + 16 + 32;

/// What a step-up tag covers besides the user: the epoch, the expiry, the nonce and the record's
/// generation (empty for a schema 1 record, which has none).
fn step_up_message(record: &UserRecord, expires: u64, nonce: &[u8]) -> Vec<u8> {
    let generation = record.generation.as_deref().unwrap_or("").as_bytes();
    [&record.step_up_epoch.to_be_bytes()[..], &expires.to_be_bytes(), nonce, generation].concat()
}

/// Issues a step-up token for `user`, valid until the record's step-up epoch changes or
/// `lifetimes.step_up_secs` pass. The record is not changed.
pub(crate) fn issue_step_up(
    record: &UserRecord,
    keyring: &Keyring,
    rng: &dyn SecureRandom,
    config: &Config,
    user: &str,
    now: u64,
) -> Result<StepUpToken, Error> {
    let expires_at = now.saturating_add(config.lifetimes.step_up_secs);
    let nonce = crate::crypto::random_bytes(rng, 16)?;
    let tag = keyring.tag(STEP_UP_DOMAIN, user, &step_up_message(record, expires_at, &nonce))?;
    let token = [&expires_at.to_be_bytes()[..], &nonce, tag.as_ref()].concat();
    Ok(StepUpToken { token: URL_SAFE_NO_PAD.encode(token), expires_at })
}

/// Requires a valid step-up token whenever the user has a usable method or recovery codes.
pub(crate) fn require_step_up(
    record: &UserRecord,
    keyring: &Keyring,
    user: &str,
    token: Option<&str>,
    now: u64,
) -> Result<(), Error> {
    if !record.has_usable_method() && record.recovery.is_empty() {
        return Ok(());
    }
    let Some(token) = token else { return Err(Error::StepUpRequired) };
    if token.len() > 128 {
        return Err(Error::StepUpRequired);
    }
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| Error::StepUpRequired)?;
    if bytes.len() != STEP_UP_LEN {
        return Err(Error::StepUpRequired);
    }
    let (expires, rest) = bytes.split_at(8);
    let (nonce, tag) = rest.split_at(16);
    let expires = u64::from_be_bytes(expires.try_into().map_err(|_| Error::StepUpRequired)?);
    let message = step_up_message(record, expires, nonce);
    if expires > now && keyring.verify_tag(STEP_UP_DOMAIN, user, &message, tag) {
        Ok(())
    } else {
        Err(Error::StepUpRequired)
    }
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
