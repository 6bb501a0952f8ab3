//! Configuration: validated once, then shared by every operation.
//!
//! A [`Config`] is plain data (JSON on every surface, via serde). [`Config::validate`] checks it and
//! returns nothing but an error naming the first bad field; the engine refuses an invalid config.
//! Every field except `issuer` and `keys` has a secure default.

use crate::Error;
use crate::mail::Templates;
use crate::webauthn::WebauthnConfig;
use serde::{Deserialize, Serialize};
use std::fmt;

pub use crate::record::TotpAlgorithm;

/// Everything an engine needs to know, and nothing it must not log.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The product name shown in authenticator apps and mail (e.g. "Example Shop").
    pub issuer: String,
    /// Master keys, from which the sealing and hashing subkeys are derived. The first one (or the
    /// one named by `active_key`) seals and hashes new data; the others stay readable, so keys can
    /// rotate.
    pub keys: Vec<MasterKey>,
    /// The key id used for new data; default: the first key.
    #[serde(default)]
    pub active_key: Option<String>,
    /// Authenticator-app parameters.
    #[serde(default)]
    pub totp: TotpConfig,
    /// Email one-time-code parameters.
    #[serde(default)]
    pub email_code: EmailCodeConfig,
    /// The per-user attempt budget.
    #[serde(default)]
    pub lockout: LockoutConfig,
    /// Lifetimes of sign-in challenges, pending enrolments and step-up tokens.
    #[serde(default)]
    pub lifetimes: Lifetimes,
    /// How many recovery codes a set holds (default 10).
    #[serde(default = "default_recovery_count")]
    pub recovery_codes: u32,
    /// The WebAuthn relying party; WebAuthn is unavailable when absent.
    #[serde(default)]
    pub webauthn: Option<WebauthnConfig>,
    /// Mail subjects and bodies; every template may be replaced by the host.
    #[serde(default)]
    pub templates: Templates,
    /// How many times an operation reloads and decides again after a write conflict.
    #[serde(default = "default_conflict_retries")]
    pub conflict_retries: u32,
    /// Path of the embedded SQLite store, for surfaces that open the default store themselves.
    #[serde(default)]
    pub sqlite_path: Option<String>,
    /// When the 2FA requirement starts to block sign-in.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// "Don't ask again on this browser" after a second factor (off by default).
    #[serde(default)]
    pub remember_device: RememberDeviceConfig,
    /// Grants the admin capability (reset, import, export, TOTP import, deletion) to handles
    /// opened with this config. Default `false`: a user-facing config can never open one.
    #[serde(default)]
    pub admin: bool,
    /// The record schema this engine writes (default: the newest, 2). During a rolling upgrade
    /// from an engine that writes schema 1, set 1 on every new server until no old one is left,
    /// then remove it (docs/scaling.md). A record already stored in a newer schema is never
    /// written back in an older one.
    #[serde(default = "default_write_schema")]
    pub write_schema: u32,
}

/// Enforcement of the 2FA requirement.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// How long, from the first order, a user without a second factor may still sign in without
    /// one (default 0: at once; at most 400 days). `security_status` and `login_begin` report
    /// the deadline; after it, sign-in answers `enrollment_required`.
    pub grace_period_secs: u64,
}

/// Remembered devices: after a second factor, `login_verify` can issue a device token that lets
/// `login_begin` skip the second factor on that browser.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RememberDeviceConfig {
    /// Whether `login_verify` may issue device tokens (default `false`).
    pub enabled: bool,
    /// How long a device token works (default 30 days; 1 hour to 400 days).
    pub ttl_secs: u64,
}

impl Default for RememberDeviceConfig {
    fn default() -> Self {
        RememberDeviceConfig { enabled: false, ttl_secs: 30 * 86_400 }
    }
}

/// A master key: an id (stored next to everything it protects) and at least 32 secret bytes.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MasterKey {
    /// Short identifier: 1 to 32 ASCII letters, digits, `-` or `_`.
    pub id: String,
    /// The secret, standard base64, at least 32 bytes once decoded.
    pub secret: String,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey {{ id: {:?}, secret: <redacted> }}", self.id)
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("issuer", &self.issuer)
            .field("keys", &self.keys)
            .field("active_key", &self.active_key)
            .field("totp", &self.totp)
            .field("email_code", &self.email_code)
            .field("lockout", &self.lockout)
            .field("lifetimes", &self.lifetimes)
            .field("recovery_codes", &self.recovery_codes)
            .field("webauthn", &self.webauthn)
            .field("conflict_retries", &self.conflict_retries)
            .field("sqlite_path", &self.sqlite_path)
            .field("policy", &self.policy)
            .field("remember_device", &self.remember_device)
            .field("admin", &self.admin)
            .finish_non_exhaustive()
    }
}

/// Authenticator-app parameters (RFC 6238).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TotpConfig {
    /// HMAC algorithm (default SHA1).
    pub algorithm: TotpAlgorithm,
    /// 6 or 8 digits (default 6).
    pub digits: u8,
    /// Time step in seconds, 1 to 300 (default 30).
    pub period: u64,
    /// Steps accepted either side of now, 0 to 3 (default 1).
    pub skew: u8,
}

impl Default for TotpConfig {
    fn default() -> Self {
        TotpConfig { algorithm: TotpAlgorithm::Sha1, digits: 6, period: 30, skew: 1 }
    }
}

/// Email one-time-code parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailCodeConfig {
    /// Digits per code, 6 to 10 (default 6).
    pub digits: u8,
    /// Seconds a code stays valid after it is issued (default 600).
    pub ttl_secs: u64,
    /// Wrong tries after which a code dies (default 5).
    pub max_tries: u32,
    /// Seconds after a code is issued before another one for the same user and purpose may be
    /// sent (default 60). A code whose delivery failed lifts it; a code that died of
    /// `max_tries` keeps it.
    pub resend_cooldown_secs: u64,
    /// Enrolment and contact-confirmation codes one address may receive per
    /// `address_window_secs`, across all users (default 10, 1 to 1000).
    pub address_limit: u32,
    /// The window of `address_limit` in seconds (default 3600, 60 to 86400).
    pub address_window_secs: u64,
}

impl Default for EmailCodeConfig {
    fn default() -> Self {
        EmailCodeConfig {
            digits: 6,
            ttl_secs: 600,
            max_tries: 5,
            resend_cooldown_secs: 60,
            address_limit: 10,
            address_window_secs: 3_600,
        }
    }
}

/// The per-user attempt budget: consecutive failed code attempts before a lockout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LockoutConfig {
    /// Failures that trigger a lockout, 1 to 100 (NIST SP 800-63B's ceiling; default 10).
    pub threshold: u32,
    /// The first lockout's length in seconds (default 60); each further failure doubles it.
    pub base_delay_secs: u64,
    /// The longest lockout in seconds (default 86400).
    pub max_delay_secs: u64,
}

impl Default for LockoutConfig {
    fn default() -> Self {
        LockoutConfig { threshold: 10, base_delay_secs: 60, max_delay_secs: 86_400 }
    }
}

/// How long the short-lived things in a record live, in seconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Lifetimes {
    /// A sign-in challenge (default 300).
    pub challenge_secs: u64,
    /// A pending TOTP or WebAuthn enrolment (default 900).
    pub enrollment_secs: u64,
    /// A step-up token (default 600).
    pub step_up_secs: u64,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Lifetimes { challenge_secs: 300, enrollment_secs: 900, step_up_secs: 600 }
    }
}

fn default_recovery_count() -> u32 {
    10
}

fn default_conflict_retries() -> u32 {
    32
}

fn default_write_schema() -> u32 {
    crate::record::SCHEMA
}

impl Config {
    /// A config with the given issuer and one master key, every other field at its default.
    pub fn new(issuer: impl Into<String>, key_id: impl Into<String>, secret_b64: impl Into<String>) -> Config {
        Config {
            issuer: issuer.into(),
            keys: vec![MasterKey { id: key_id.into(), secret: secret_b64.into() }],
            active_key: None,
            totp: TotpConfig::default(),
            email_code: EmailCodeConfig::default(),
            lockout: LockoutConfig::default(),
            lifetimes: Lifetimes::default(),
            recovery_codes: default_recovery_count(),
            webauthn: None,
            templates: Templates::default(),
            conflict_retries: default_conflict_retries(),
            sqlite_path: None,
            policy: PolicyConfig::default(),
            remember_device: RememberDeviceConfig::default(),
            admin: false,
            write_schema: default_write_schema(),
        }
    }

    /// Parses a JSON config (unknown fields are refused) and validates it.
    pub fn from_json(json: &str) -> Result<Config, Error> {
        let config: Config = serde_json::from_str(json).map_err(|e| Error::invalid_json("config", &e))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |field: &str, why: &str| Err(Error::invalid(format!("config.{field}: {why}")));
        if self.issuer.trim().is_empty() || self.issuer.len() > 64 || self.issuer.contains(':') {
            return bad("issuer", "1 to 64 bytes, no ':'");
        }
        if self.issuer.chars().any(char::is_control) {
            return bad("issuer", "control characters are not allowed");
        }
        if self.keys.is_empty() {
            return bad("keys", "at least one key is required");
        }
        for (i, key) in self.keys.iter().enumerate() {
            let id_ok = !key.id.is_empty()
                && key.id.len() <= 32
                && key.id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !id_ok {
                return bad(&format!("keys[{i}].id"), "1 to 32 of A-Z a-z 0-9 - _");
            }
            if self.keys[..i].iter().any(|k| k.id == key.id) {
                return bad(&format!("keys[{i}].id"), "duplicate key id");
            }
            crate::crypto::decode_master_secret(&key.secret)
                .map_err(|why| Error::invalid(format!("config.keys[{i}].secret: {why}")))?;
        }
        if let Some(active) = &self.active_key
            && !self.keys.iter().any(|k| &k.id == active)
        {
            return bad("active_key", "names no key in config.keys");
        }
        let t = &self.totp;
        if !(t.digits == 6 || t.digits == 8) {
            return bad("totp.digits", "must be 6 or 8");
        }
        if !(1..=300).contains(&t.period) {
            return bad("totp.period", "must be 1 to 300 seconds");
        }
        if t.skew > 3 {
            return bad("totp.skew", "must be 0 to 3 steps");
        }
        let e = &self.email_code;
        if !(6..=10).contains(&e.digits) {
            return bad("email_code.digits", "must be 6 to 10");
        }
        if !(60..=86_400).contains(&e.ttl_secs) {
            return bad("email_code.ttl_secs", "must be 60 to 86400");
        }
        if !(1..=10).contains(&e.max_tries) {
            return bad("email_code.max_tries", "must be 1 to 10");
        }
        if e.resend_cooldown_secs > e.ttl_secs {
            return bad("email_code.resend_cooldown_secs", "must not exceed ttl_secs");
        }
        if !(1..=1_000).contains(&e.address_limit) {
            return bad("email_code.address_limit", "must be 1 to 1000");
        }
        if !(60..=86_400).contains(&e.address_window_secs) {
            return bad("email_code.address_window_secs", "must be 60 to 86400");
        }
        let l = &self.lockout;
        if !(1..=100).contains(&l.threshold) {
            return bad("lockout.threshold", "must be 1 to 100 (NIST SP 800-63B)");
        }
        if l.base_delay_secs == 0 || l.max_delay_secs < l.base_delay_secs {
            return bad("lockout", "need 0 < base_delay_secs <= max_delay_secs");
        }
        let lt = &self.lifetimes;
        for (name, v) in [
            ("challenge_secs", lt.challenge_secs),
            ("enrollment_secs", lt.enrollment_secs),
            ("step_up_secs", lt.step_up_secs),
        ] {
            if !(10..=86_400).contains(&v) {
                return bad(&format!("lifetimes.{name}"), "must be 10 to 86400");
            }
        }
        if !(4..=20).contains(&self.recovery_codes) {
            return bad("recovery_codes", "must be 4 to 20");
        }
        if self.conflict_retries == 0 || self.conflict_retries > 1000 {
            return bad("conflict_retries", "must be 1 to 1000");
        }
        if self.policy.grace_period_secs > 400 * 86_400 {
            return bad("policy.grace_period_secs", "must be 0 to 34560000 (400 days)");
        }
        if !(3_600..=400 * 86_400).contains(&self.remember_device.ttl_secs) {
            return bad("remember_device.ttl_secs", "must be 3600 to 34560000 (1 hour to 400 days)");
        }
        if !(crate::record::OLDEST_SCHEMA..=crate::record::SCHEMA).contains(&self.write_schema) {
            return bad("write_schema", "must be 1 or 2");
        }
        if let Some(w) = &self.webauthn {
            crate::webauthn::RelyingParty::new(w)?;
        }
        self.templates.validate()?;
        Ok(())
    }

    /// The id of the key that seals and hashes new data.
    pub fn active_key_id(&self) -> &str {
        match &self.active_key {
            Some(id) => id,
            None => self.keys.first().map(|k| k.id.as_str()).unwrap_or(""),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

    #[test]
    fn defaults_validate_and_json_round_trips() {
        let c = Config::new("Example", "k1", KEY);
        c.validate().unwrap();
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(Config::from_json(&json).unwrap(), c);
        let minimal = format!(r#"{{"issuer":"Example","keys":[{{"id":"k1","secret":"{KEY}"}}]}}"#);
        assert_eq!(Config::from_json(&minimal).unwrap(), c);
    }

    #[test]
    fn bad_fields_are_named() {
        let mut c = Config::new("Example", "k1", KEY);
        c.totp.digits = 7;
        assert!(c.validate().unwrap_err().to_string().contains("totp.digits"));
        let mut c = Config::new("Example", "k1", "c2hvcnQ=");
        assert!(c.validate().unwrap_err().to_string().contains("keys[0].secret"));
        c.keys[0].secret = KEY.into();
        c.lockout.threshold = 101;
        assert!(c.validate().unwrap_err().to_string().contains("lockout.threshold"));
        assert!(Config::from_json(r#"{"issuer":"x","keys":[],"nope":1}"#).is_err());
    }

    #[test]
    fn debug_never_shows_key_material() {
        let c = Config::new("Example", "k1", KEY);
        assert!(!format!("{c:?}").contains(KEY));
    }
}
