//! Authenticator apps (TOTP, RFC 6238) over totp-rs: new seeds, checks, otpauth URIs, QR codes.
//!
//! The time is always passed in (never read from the clock here). A check reports the step a code
//! counts for, the earliest matching step after the last accepted one, or that it matched only
//! used steps (a replay).
//!
//! Clock range: the largest time accepted is [`MAX_CLOCK`], 253402300799 (9999-12-31T23:59:59Z).
//! A later clock is refused as an invalid clock by [`check_clock`] (`internal`, like a clock that
//! fails), never clamped: near 2^64 a saturating step-to-time conversion would map step s+1 onto
//! step s's time, so one code would count twice. Every step-to-time conversion is checked
//! arithmetic.

use crate::Error;
use crate::config::TotpConfig;
use crate::crypto::{Keyring, random_bytes};
use crate::record::{TotpAlgorithm, TotpSeed};
use ring::rand::SecureRandom;
use totp_rs::{Algorithm, Builder, Secret};

/// The largest Unix time (seconds) twofa accepts: 9999-12-31T23:59:59Z. Clocks beyond it are
/// refused by [`check_clock`] (see the module notes).
pub(crate) const MAX_CLOCK: u64 = 253_402_300_799;

/// `now` itself, or for a clock beyond [`MAX_CLOCK`] `internal` ("clock: ... is beyond ..."), the
/// error of a clock that fails.
pub(crate) fn check_clock(now: u64) -> Result<u64, Error> {
    if now > MAX_CLOCK {
        return Err(Error::Internal(format!(
            "clock: {now} is beyond the largest time twofa accepts ({MAX_CLOCK}, 9999-12-31T23:59:59Z)"
        )));
    }
    Ok(now)
}

/// Associated data that binds a sealed seed to its user.
fn aad(user: &str) -> Vec<u8> {
    format!("twofa/totp/{user}").into_bytes()
}

fn algorithm(a: TotpAlgorithm) -> Algorithm {
    match a {
        TotpAlgorithm::Sha1 => Algorithm::SHA1,
        TotpAlgorithm::Sha256 => Algorithm::SHA256,
        TotpAlgorithm::Sha512 => Algorithm::SHA512,
    }
}

/// Seals a seed for `user` with the given parameters.
pub(crate) fn seal_seed(
    keyring: &Keyring,
    rng: &dyn SecureRandom,
    user: &str,
    secret: &[u8],
    algorithm: TotpAlgorithm,
    digits: u8,
    period: u64,
) -> Result<TotpSeed, Error> {
    Ok(TotpSeed { sealed: keyring.seal(rng, &aad(user), secret)?, algorithm, digits, period, last_step: None })
}

/// The seed's secret bytes (for an export, which seals them again under the caller's key).
pub(crate) fn open_seed(keyring: &Keyring, user: &str, seed: &TotpSeed) -> Result<Vec<u8>, Error> {
    keyring.open(&seed.sealed, &aad(user))
}

/// Secret bytes as unpadded base32 (RFC 4648), as authenticator apps take them.
pub(crate) fn encode_base32(secret: &[u8]) -> String {
    Secret::from(secret.to_vec()).to_base32()
}

/// A fresh random seed of the configured algorithm's length; returns it sealed and as base32.
pub(crate) fn new_seed(
    keyring: &Keyring,
    rng: &dyn SecureRandom,
    user: &str,
    cfg: &TotpConfig,
) -> Result<(TotpSeed, String), Error> {
    let secret = random_bytes(rng, cfg.algorithm.secret_len())?;
    let b32 = Secret::from(secret.clone()).to_base32();
    Ok((seal_seed(keyring, rng, user, &secret, cfg.algorithm, cfg.digits, cfg.period)?, b32))
}

/// Decodes a base32 secret (RFC 4648; case, spaces and padding ignored), at least 128 bits.
pub(crate) fn decode_base32(secret: &str) -> Result<Vec<u8>, Error> {
    let cleaned: String =
        secret.chars().filter(|c| *c != ' ' && *c != '=' && *c != '-').map(|c| c.to_ascii_uppercase()).collect();
    let bytes = Secret::try_from_base32(&cleaned)
        .ok()
        .map(|s| s.as_ref().to_vec())
        .ok_or_else(|| Error::invalid("secret: not valid base32"))?;
    if bytes.len() < 16 {
        return Err(Error::invalid("secret: at least 128 bits are required"));
    }
    Ok(bytes)
}

/// What a code matched in the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Match {
    /// The code of this time step, later than the last accepted one.
    Fresh(u64),
    /// Only codes of steps at or before the last accepted one: a replay.
    Used,
    /// No step of the window.
    None,
}

/// Checks `code` (already validated as `digits` ASCII digits) against `seed` at `now` within
/// `skew` steps. Every step of the window is computed and compared in constant time; a code that
/// matches several steps (two steps can share a code) counts for the earliest one later than
/// `seed.last_step`, so a coincidence with a used step never turns a fresh code into a replay.
///
/// A `now` beyond [`MAX_CLOCK`] is refused ([`check_clock`]); a step whose start time does not fit
/// in a `u64` is never compared (checked arithmetic: no two steps share a time).
pub(crate) fn check(
    keyring: &Keyring,
    user: &str,
    seed: &TotpSeed,
    code: &str,
    now: u64,
    skew: u8,
) -> Result<Match, Error> {
    let now = check_clock(now)?;
    if seed.period == 0 {
        return Err(Error::Storage("stored TOTP parameters are invalid".into()));
    }
    let secret = keyring.open(&seed.sealed, &aad(user))?;
    let totp = Builder::new()
        .with_algorithm(algorithm(seed.algorithm))
        .with_digits(seed.digits)
        .with_step_duration(seed.period)
        .with_skew(0)
        .with_secret(secret)
        .build()
        .map_err(|_| Error::Storage("stored TOTP parameters are invalid".into()))?;
    let current = now / seed.period;
    let first = current.saturating_sub(u64::from(skew));
    // Saturating the window's end only shortens it (no step is visited twice); the start time of
    // each step is computed with checked arithmetic, so no two steps ever share a time.
    let last = current.saturating_add(u64::from(skew));
    let matched: Vec<u64> = (first..=last)
        // totp-rs compares tokens in constant time; with no skew it checks this one step.
        .filter(|step| step.checked_mul(seed.period).is_some_and(|time| totp.check(code, time).is_some()))
        .collect();
    let fresh = matched.iter().copied().find(|step| seed.last_step.is_none_or(|last| *step > last));
    Ok(match (fresh, matched.is_empty()) {
        (Some(step), _) => Match::Fresh(step),
        (None, false) => Match::Used,
        (None, true) => Match::None,
    })
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `otpauth://totp/...` URI that authenticator apps scan.
pub(crate) fn otpauth_uri(issuer: &str, account: &str, secret_b32: &str, cfg: &TotpConfig) -> String {
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm={}&digits={}&period={}",
        encode(issuer),
        encode(account),
        secret_b32,
        encode(issuer),
        cfg.algorithm.as_str(),
        cfg.digits,
        cfg.period
    )
}

/// The URI as a QR code in SVG.
pub(crate) fn qr_svg(uri: &str) -> Result<String, Error> {
    let code = qrcode::QrCode::with_error_correction_level(uri, qrcode::EcLevel::M)
        .map_err(|e| Error::Internal(format!("QR code: {e}")))?;
    Ok(code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_is_encoded() {
        let uri = otpauth_uri("Ex Shop", "a@b.com", "JBSWY3DPEHPK3PXP", &TotpConfig::default());
        assert_eq!(
            uri,
            "otpauth://totp/Ex%20Shop:a%40b.com?secret=JBSWY3DPEHPK3PXP&issuer=Ex%20Shop&algorithm=SHA1&digits=6&period=30"
        );
        assert!(qr_svg(&uri).unwrap().starts_with("<?xml"));
    }

    fn keyring() -> Keyring {
        use base64::Engine as _;
        let secret = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        Keyring::new([("k", secret.as_str())], "k").unwrap()
    }

    /// A SHA-1 seed of 6 digits and `period` seconds, with `last_step` accepted already.
    fn seed(keyring: &Keyring, period: u64, last_step: Option<u64>) -> TotpSeed {
        let rng = ring::rand::SystemRandom::new();
        let mut seed = seal_seed(keyring, &rng, "u", b"12345678901234567890", TotpAlgorithm::Sha1, 6, period).unwrap();
        seed.last_step = last_step;
        seed
    }

    /// The code of time step `step`, computed without a step-to-time multiplication (with a
    /// 1-second step the HOTP counter is the time itself).
    fn code_at(step: u64) -> String {
        let totp = Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(6)
            .with_step_duration(1)
            .with_skew(0)
            .with_secret(b"12345678901234567890".to_vec())
            .build()
            .unwrap();
        totp.generate(step).to_string()
    }

    #[test]
    fn max_clock_is_the_end_of_year_9999() {
        assert_eq!(MAX_CLOCK, 253_402_300_799);
        // 10000-01-01T00:00:00Z is 2932897 days after the epoch.
        assert_eq!(MAX_CLOCK + 1, 2_932_897 * 86_400);
        assert_eq!(check_clock(MAX_CLOCK), Ok(MAX_CLOCK));
        assert_eq!(check_clock(0), Ok(0));
        for now in [MAX_CLOCK + 1, 1 << 40, u64::MAX - 30, u64::MAX] {
            match check_clock(now) {
                Err(Error::Internal(m)) => assert!(m.starts_with("clock: ") && m.contains("beyond"), "{m}"),
                other => panic!("clock {now}: {other:?}"),
            }
        }
    }

    #[test]
    fn clocks_beyond_max_clock_are_refused() {
        let k = keyring();
        for period in [1, 30, 300] {
            let s = seed(&k, period, None);
            let step = MAX_CLOCK / period;
            let code = code_at(step);
            assert_eq!(check(&k, "u", &s, &code, MAX_CLOCK, 1), Ok(Match::Fresh(step)), "period {period}");
            for now in [MAX_CLOCK + 1, u64::MAX / 2, u64::MAX - 1, u64::MAX] {
                let result = check(&k, "u", &s, &code, now, 1);
                assert!(
                    matches!(&result, Err(Error::Internal(m)) if m.starts_with("clock: ")),
                    "period {period}, now {now}: {result:?}"
                );
            }
        }
    }

    #[test]
    fn a_code_never_counts_for_another_step_near_the_top_of_the_range() {
        let k = keyring();
        for period in [1, 7, 30, 60, 300] {
            // The last steps up to MAX_CLOCK, and the last steps before 2^64, where a saturating
            // step-to-time conversion mapped step s+1 onto step s's time.
            for top in [MAX_CLOCK / period, u64::MAX / period] {
                for s in top - 3..=top {
                    let code = code_at(s);
                    for last_step in [None, Some(s)] {
                        let seed = seed(&k, period, last_step);
                        let start = s * period;
                        for now in [start, start.saturating_add(period - 1), start.saturating_add(period)] {
                            for skew in [0u8, 1, 2] {
                                let what = format!("period {period}, step {s}, last {last_step:?}, now {now}");
                                match check(&k, "u", &seed, &code, now, skew) {
                                    // A code counts only for a step it is the code of.
                                    Ok(Match::Fresh(step)) => {
                                        assert_eq!(code_at(step), code, "{what}, skew {skew}: counted for {step}");
                                        assert!(last_step.is_none_or(|last| step > last), "{what}");
                                    }
                                    Ok(Match::Used | Match::None) => {}
                                    Err(Error::Internal(m)) if now > MAX_CLOCK && m.starts_with("clock: ") => {}
                                    Err(e) => panic!("{what}: {e:?}"),
                                }
                            }
                        }
                    }
                }
            }
        }
        // Step s+1's code at step s+1 below MAX_CLOCK is fresh once step s was accepted.
        let s = MAX_CLOCK / 30 - 1;
        let seed = seed(&k, 30, Some(s));
        assert_eq!(check(&k, "u", &seed, &code_at(s + 1), (s + 1) * 30, 1), Ok(Match::Fresh(s + 1)));
        assert_eq!(check(&k, "u", &seed, &code_at(s), (s + 1) * 30, 1), Ok(Match::Used));
    }

    #[test]
    fn base32_is_lenient_on_format_only() {
        assert_eq!(decode_base32("jbsw y3dp ehpk 3pxp jbsw y3dp ehpk 3pxp").unwrap().len(), 20);
        assert!(decode_base32("JBSWY3DP").is_err());
        assert!(decode_base32("not base32!").is_err());
    }
}
