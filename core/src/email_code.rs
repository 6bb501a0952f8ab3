//! Email one-time codes: issue (pending), arm after delivery, verify.
//!
//! A code is drawn from the CSPRNG without modulo bias and stored only as a keyed hash bound to
//! its user and purpose. It is written *pending*, sent, then *armed* by a second write; only an
//! armed code verifies, and the resend cooldown runs from arming. Arming a new code replaces the
//! old one, which dies at once; the user's attempt budget is untouched by a resend. A code expires,
//! is single-use (a second use answers `replayed` until it expires) and dies after `max_tries`
//! wrong tries.

use crate::Error;
use crate::config::EmailCodeConfig;
use crate::crypto::{Keyring, random_digits, random_token};
use crate::record::{CodeSlot, EmailCode};
use ring::rand::SecureRandom;

/// What a code is for; a code made for one purpose never verifies for another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// Confirming a new email method.
    Enroll,
    /// Signing in.
    Login,
}

impl Purpose {
    fn domain(self) -> &'static str {
        match self {
            Purpose::Enroll => "twofa/email-code/enroll",
            Purpose::Login => "twofa/email-code/login",
        }
    }
}

/// Refuses a new code while the armed one is within its cooldown.
pub(crate) fn check_cooldown(slot: &CodeSlot, cfg: &EmailCodeConfig, now: u64) -> Result<(), Error> {
    if let Some(armed_at) = slot.armed.as_ref().and_then(|c| c.armed_at) {
        let ready = armed_at.saturating_add(cfg.resend_cooldown_secs);
        if now < ready && !slot.armed.as_ref().is_some_and(|c| c.used) {
            return Err(Error::RateLimited { retry_after: ready - now });
        }
    }
    Ok(())
}

/// Makes a new pending code; returns it with the code in clear (for the message only).
pub(crate) fn issue(
    keyring: &Keyring,
    rng: &dyn SecureRandom,
    user: &str,
    purpose: Purpose,
    cfg: &EmailCodeConfig,
    address: Option<String>,
    now: u64,
) -> Result<(EmailCode, String), Error> {
    let code = random_digits(rng, usize::from(cfg.digits))?;
    let entry = EmailCode {
        id: random_token(rng)?,
        hash: keyring.hash(purpose.domain(), user, code.as_bytes())?,
        address,
        expires: now.saturating_add(cfg.ttl_secs),
        armed_at: None,
        tries: 0,
        used: false,
    };
    Ok((entry, code))
}

/// Arms the pending code `id` (delivered); false if it was superseded meanwhile.
pub(crate) fn arm(slot: &mut CodeSlot, id: &str, now: u64) -> bool {
    match slot.pending.take() {
        Some(mut code) if code.id == id => {
            code.armed_at = Some(now);
            slot.armed = Some(code);
            true
        }
        other => {
            slot.pending = other;
            false
        }
    }
}

/// Drops the pending code `id` (its delivery failed).
pub(crate) fn discard(slot: &mut CodeSlot, id: &str) {
    if slot.pending.as_ref().is_some_and(|c| c.id == id) {
        slot.pending = None;
    }
}

/// The verdict on a submitted code.
#[derive(Debug, PartialEq)]
pub(crate) enum Verdict {
    /// It matched; the code is now marked used.
    Accepted(EmailCode),
    /// It did not match; the try was counted on the code (which may have died).
    Wrong,
}

/// Verifies `code` (already validated) against the armed code of `slot`, updating the slot.
pub(crate) fn verify(
    keyring: &Keyring,
    slot: &mut CodeSlot,
    user: &str,
    purpose: Purpose,
    cfg: &EmailCodeConfig,
    code: &str,
    now: u64,
) -> Result<Verdict, Error> {
    let Some(armed) = slot.armed.as_mut() else {
        return Err(Error::NotFound("no code was sent, or it died: send a new one".into()));
    };
    if armed.expires <= now {
        return Err(Error::Expired);
    }
    let matches = keyring.verify(&armed.hash, purpose.domain(), user, code.as_bytes());
    if armed.used {
        return if matches {
            Err(Error::Replayed)
        } else {
            Err(Error::NotFound("no unused code: send a new one".into()))
        };
    }
    if matches {
        armed.used = true;
        return Ok(Verdict::Accepted(armed.clone()));
    }
    armed.tries += 1;
    if armed.tries >= cfg.max_tries {
        slot.armed = None;
    }
    Ok(Verdict::Wrong)
}
