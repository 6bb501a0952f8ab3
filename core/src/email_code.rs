//! Email one-time codes: issue (pending), arm after delivery, verify.
//!
//! A code is drawn from the CSPRNG without modulo bias and stored only as a keyed hash bound to
//! its user and purpose. It is written *pending*, sent, then *armed* by a second write; only an
//! armed code verifies. A code expires, is single-use (a second use answers `replayed` until it
//! expires) and dies after `max_tries` wrong tries.
//!
//! **Resend cooldown**, per user and purpose: no new code is issued within
//! `resend_cooldown_secs` of the latest one, pending or armed, so concurrent sends write one
//! pending code and mail it once (the others reload, see it, and answer `rate_limited`). A code
//! whose delivery failed is discarded and lifts the cooldown; a pending code older than the
//! cooldown (its host died before sending it) may be replaced; a code that dies of `max_tries`
//! keeps it ([`CodeSlot::resend_at`]). A used code does not hold it.
//!
//! **Sign-in codes are bound to their challenge**: a code completes only the sign-in it was sent
//! for. Codes of different live challenges live side by side (at most [`MAX_LIVE_LOGIN_CODES`],
//! the oldest goes first), so a stranger who knows the password cannot cancel the user's code by
//! asking for another. Arming a new code for a challenge (or any enrolment code) replaces the
//! one before it, which dies at once.
//!
//! **Tries**: each code starts with a fresh count of wrong tries; the user's attempt budget
//! (`lockout`) is not reset by a new code, so resending never buys more guesses than the budget.

use crate::Error;
use crate::config::EmailCodeConfig;
use crate::crypto::{Keyring, random_digits, random_token};
use crate::record::{CodeSlot, EmailCode, UserRecord};
use ring::rand::SecureRandom;

/// How many sign-in codes of different challenges may be live at once.
pub(crate) const MAX_LIVE_LOGIN_CODES: usize = 3;

/// What a code is for; a code made for one purpose never verifies for another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// Confirming a new email method.
    Enroll,
    /// Signing in.
    Login,
    /// Confirming a new contact address.
    Contact,
}

impl Purpose {
    fn domain(self) -> &'static str {
        match self {
            Purpose::Enroll => "twofa/email-code/enroll",
            Purpose::Login => "twofa/email-code/login",
            Purpose::Contact => "twofa/email-code/contact",
        }
    }

    /// The record's codes for this purpose.
    pub(crate) fn slot(self, record: &mut UserRecord) -> &mut CodeSlot {
        match self {
            Purpose::Enroll => &mut record.enroll_code,
            Purpose::Login => &mut record.login_code,
            Purpose::Contact => &mut record.contact_code,
        }
    }
}

/// The time the slot's cooldown ends (see the module documentation).
fn resend_at(slot: &CodeSlot, cfg: &EmailCodeConfig) -> u64 {
    // A code's issue time is its expiry less the lifetime (schema 1 records store no more).
    let ends = |c: &EmailCode| c.expires.saturating_sub(cfg.ttl_secs).saturating_add(cfg.resend_cooldown_secs);
    let live = slot.pending.iter().chain(&slot.armed).chain(&slot.earlier).filter(|c| !c.used);
    live.map(ends).chain(slot.resend_at).max().unwrap_or(0)
}

/// Refuses a new code while the slot's cooldown runs.
pub(crate) fn check_cooldown(slot: &CodeSlot, cfg: &EmailCodeConfig, now: u64) -> Result<(), Error> {
    let ready = resend_at(slot, cfg);
    if now < ready {
        return Err(Error::RateLimited { retry_after: ready - now });
    }
    Ok(())
}

/// Makes a new pending code; returns it with the code in clear (for the message only). The
/// caller binds it (`address`, `challenge`).
pub(crate) fn issue(
    keyring: &Keyring,
    rng: &dyn SecureRandom,
    user: &str,
    purpose: Purpose,
    cfg: &EmailCodeConfig,
    now: u64,
) -> Result<(EmailCode, String), Error> {
    let code = random_digits(rng, usize::from(cfg.digits))?;
    let entry = EmailCode {
        id: random_token(rng)?,
        hash: keyring.hash(purpose.domain(), user, code.as_bytes())?,
        address: None,
        expires: now.saturating_add(cfg.ttl_secs),
        armed_at: None,
        tries: 0,
        used: false,
        challenge: None,
    };
    Ok((entry, code))
}

/// Arms the pending code `id` (delivered); false if it was superseded meanwhile. It replaces the
/// armed code of the same challenge (or the armed enrolment code); codes of other live
/// challenges stay, the oldest going first beyond [`MAX_LIVE_LOGIN_CODES`].
pub(crate) fn arm(slot: &mut CodeSlot, id: &str, now: u64) -> bool {
    match slot.pending.take() {
        Some(mut code) if code.id == id => {
            code.armed_at = Some(now);
            if let Some(previous) = slot.armed.take().filter(|c| c.challenge.is_some() && !c.used) {
                slot.earlier.push(previous);
            }
            slot.earlier.retain(|c| c.challenge != code.challenge);
            let keep = MAX_LIVE_LOGIN_CODES - 1;
            if slot.earlier.len() > keep {
                slot.earlier.drain(..slot.earlier.len() - keep);
            }
            slot.armed = Some(code);
            true
        }
        other => {
            slot.pending = other;
            false
        }
    }
}

/// Drops the pending code `id` (its delivery failed): the cooldown it started is lifted.
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

/// Verifies `code` (already validated) against the armed code of `slot` (for sign-in codes, the
/// one sent for `challenge`), updating the slot.
#[allow(clippy::too_many_arguments)] // the code, where it was found and what it must match
pub(crate) fn verify(
    keyring: &Keyring,
    slot: &mut CodeSlot,
    user: &str,
    purpose: Purpose,
    cfg: &EmailCodeConfig,
    code: &str,
    challenge: Option<&str>,
    now: u64,
) -> Result<Verdict, Error> {
    // A sign-in code completes only its own challenge; one without (schema 1) completes any.
    let for_this = |c: &EmailCode| c.challenge.is_none() || c.challenge.as_deref() == challenge;
    let armed = slot.armed.as_mut().filter(|c| for_this(c));
    let armed = match armed {
        Some(c) => c,
        None => match slot.earlier.iter_mut().rev().find(|c| for_this(c)) {
            Some(c) => c,
            None => {
                // A used code of another sign-in is still a replay (and reported as one).
                let used = |c: &EmailCode| c.used && keyring.verify(&c.hash, purpose.domain(), user, code.as_bytes());
                if slot.armed.iter().chain(&slot.earlier).any(used) {
                    return Err(Error::Replayed);
                }
                let why = match purpose {
                    Purpose::Login => "no code was sent for this sign-in, or it died: send a new one",
                    _ => "no code was sent, or it died: send a new one",
                };
                return Err(Error::NotFound(why.into()));
            }
        },
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
        // The code dies, but the cooldown it started does not.
        let dead = armed.id.clone();
        let ends = armed.expires.saturating_sub(cfg.ttl_secs).saturating_add(cfg.resend_cooldown_secs);
        slot.resend_at = slot.resend_at.max(Some(ends));
        if slot.armed.as_ref().is_some_and(|c| c.id == dead) {
            slot.armed = None;
        }
        slot.earlier.retain(|c| c.id != dead);
    }
    Ok(Verdict::Wrong)
}
