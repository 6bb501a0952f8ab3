//! Authenticator apps (TOTP, RFC 6238) over totp-rs: new seeds, checks, otpauth URIs, QR codes.
//!
//! The time is always passed in (never read from the clock here). A check reports the step a code
//! counts for, the earliest matching step after the last accepted one, or that it matched only
//! used steps (a replay).

use crate::Error;
use crate::config::{TotpAlgorithm, TotpConfig};
use crate::crypto::{Keyring, random_bytes};
use crate::record::TotpSeed;
use ring::rand::SecureRandom;
use totp_rs::{Algorithm, Builder, Secret};

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
pub(crate) fn check(
    keyring: &Keyring,
    user: &str,
    seed: &TotpSeed,
    code: &str,
    now: u64,
    skew: u8,
) -> Result<Match, Error> {
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
    let steps = current.saturating_sub(u64::from(skew))..=current.saturating_add(u64::from(skew));
    let matched: Vec<u64> = steps
        // totp-rs compares tokens in constant time; with no skew it checks this one step.
        .filter(|step| totp.check(code, step.saturating_mul(seed.period)).is_some())
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

/// Checks an account name for the otpauth label: 1 to 128 characters, no `:` or control chars.
pub(crate) fn validate_account_name(name: &str) -> Result<(), Error> {
    if name.trim().is_empty() || name.chars().count() > 128 || name.contains(':') || name.chars().any(char::is_control)
    {
        return Err(Error::invalid("account name: 1 to 128 characters, no ':' or control characters"));
    }
    Ok(())
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

    #[test]
    fn base32_is_lenient_on_format_only() {
        assert_eq!(decode_base32("jbsw y3dp ehpk 3pxp jbsw y3dp ehpk 3pxp").unwrap().len(), 20);
        assert!(decode_base32("JBSWY3DP").is_err());
        assert!(decode_base32("not base32!").is_err());
    }
}
