//! Cryptography: sealing secrets, keyed hashes of codes, random codes and tokens.
//!
//! Each master key (an id and a base64 secret of at least 32 bytes) yields two subkeys through
//! HKDF-SHA-256: an AES-256-GCM key that seals TOTP seeds (with the user id as associated data)
//! and an HMAC-SHA-256 key that hashes one-time codes, recovery codes and step-up tokens. Everything
//! sealed or hashed records the id of its key, so old keys stay usable after a rotation.
//! All randomness comes from ring's CSPRNG; all comparisons of secrets are constant-time.

use crate::Error;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::SecureRandom;
use ring::{hkdf, hmac};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Decodes a master secret (standard base64, at least 32 bytes).
pub(crate) fn decode_master_secret(b64: &str) -> Result<Vec<u8>, &'static str> {
    let bytes = STANDARD.decode(b64.trim()).map_err(|_| "not valid base64")?;
    if bytes.len() < 32 {
        return Err("must decode to at least 32 bytes");
    }
    Ok(bytes)
}

/// A secret sealed with AES-256-GCM under the key `kid`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Sealed {
    kid: String,
    nonce: String,
    ciphertext: String,
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealed {{ kid: {:?}, .. }}", self.kid)
    }
}

/// A keyed hash (HMAC-SHA-256) of a code or token, under the key `kid`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Hashed {
    kid: String,
    mac: String,
}

impl fmt::Debug for Hashed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hashed {{ kid: {:?}, .. }}", self.kid)
    }
}

struct Subkeys {
    seal: LessSafeKey,
    hash: hmac::Key,
}

/// The derived subkeys of every configured master key.
pub(crate) struct Keyring {
    active: String,
    keys: BTreeMap<String, Subkeys>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keyring {{ active: {:?}, ids: {:?} }}", self.active, self.keys.keys())
    }
}

struct Len(usize);
impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn derive(prk: &hkdf::Prk, info: &[u8]) -> Result<[u8; 32], Error> {
    let mut out = [0u8; 32];
    prk.expand(&[info], Len(32))
        .and_then(|okm| okm.fill(&mut out))
        .map_err(|_| Error::Internal("key derivation failed".into()))?;
    Ok(out)
}

impl Keyring {
    /// Derives the subkeys of every master key, given as (id, base64 secret); the key `active`
    /// seals and hashes new data.
    pub(crate) fn new<'k>(keys: impl IntoIterator<Item = (&'k str, &'k str)>, active: &str) -> Result<Keyring, Error> {
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"twofa/v1");
        let mut derived = BTreeMap::new();
        for (id, secret) in keys {
            let secret = decode_master_secret(secret).map_err(|why| Error::invalid(format!("config.keys: {why}")))?;
            let prk = salt.extract(&secret);
            let seal = UnboundKey::new(&AES_256_GCM, &derive(&prk, b"seal")?)
                .map_err(|_| Error::Internal("AES key setup failed".into()))?;
            let hash = hmac::Key::new(hmac::HMAC_SHA256, &derive(&prk, b"hash")?);
            derived.insert(id.to_string(), Subkeys { seal: LessSafeKey::new(seal), hash });
        }
        Ok(Keyring { active: active.to_string(), keys: derived })
    }

    fn subkeys(&self, kid: &str) -> Result<&Subkeys, Error> {
        self.keys.get(kid).ok_or_else(|| Error::Storage(format!("record uses unknown key id {kid:?}")))
    }

    /// Seals `plaintext` under the active key, binding it to `aad`.
    pub(crate) fn seal(&self, rng: &dyn SecureRandom, aad: &[u8], plaintext: &[u8]) -> Result<Sealed, Error> {
        let (nonce, ciphertext) = aead_seal(&self.subkeys(&self.active)?.seal, rng, aad, plaintext)?;
        Ok(Sealed { kid: self.active.clone(), nonce, ciphertext })
    }

    /// Opens a sealed secret; fails if it was sealed for another `aad` or tampered with.
    pub(crate) fn open(&self, sealed: &Sealed, aad: &[u8]) -> Result<Vec<u8>, Error> {
        let keys = self.subkeys(&sealed.kid)?;
        aead_open(&keys.seal, &sealed.nonce, &sealed.ciphertext, aad)
            .ok_or_else(|| Error::Storage("a sealed secret does not open (wrong key or tampered)".into()))
    }

    /// The MAC input: length-prefixed domain and user, then the value.
    fn message(domain: &str, user: &str, value: &[u8]) -> Vec<u8> {
        let mut msg = Vec::with_capacity(16 + domain.len() + user.len() + value.len());
        for part in [domain.as_bytes(), user.as_bytes()] {
            msg.extend_from_slice(&(part.len() as u64).to_be_bytes());
            msg.extend_from_slice(part);
        }
        msg.extend_from_slice(value);
        msg
    }

    /// Hashes `value` for `user` under the active key; `domain` separates purposes, so a hash
    /// made for one purpose or user never verifies for another.
    pub(crate) fn hash(&self, domain: &str, user: &str, value: &[u8]) -> Result<Hashed, Error> {
        let keys = self.subkeys(&self.active)?;
        let tag = hmac::sign(&keys.hash, &Self::message(domain, user, value));
        Ok(Hashed { kid: self.active.clone(), mac: URL_SAFE_NO_PAD.encode(tag.as_ref()) })
    }

    /// The keyed hash of `value` for `user` under the active key, as raw bytes (for values that
    /// carry their own tag, such as step-up tokens).
    pub(crate) fn tag(&self, domain: &str, user: &str, value: &[u8]) -> Result<hmac::Tag, Error> {
        let keys = self.subkeys(&self.active)?;
        Ok(hmac::sign(&keys.hash, &Self::message(domain, user, value)))
    }

    /// Whether `tag` is the keyed hash of `value` for `user` under any configured key, each
    /// compared in constant time.
    pub(crate) fn verify_tag(&self, domain: &str, user: &str, value: &[u8], tag: &[u8]) -> bool {
        let msg = Self::message(domain, user, value);
        self.keys.values().fold(false, |ok, keys| hmac::verify(&keys.hash, &msg, tag).is_ok() | ok)
    }

    /// Whether `value` is what `hashed` was made from, compared in constant time.
    pub(crate) fn verify(&self, hashed: &Hashed, domain: &str, user: &str, value: &[u8]) -> bool {
        let Ok(keys) = self.subkeys(&hashed.kid) else { return false };
        let Ok(expected) = URL_SAFE_NO_PAD.decode(&hashed.mac) else { return false };
        // ring's verify compares in constant time.
        hmac::verify(&keys.hash, &Self::message(domain, user, value), &expected).is_ok()
    }
}

/// The key of an export document (docs/export.md), given by the caller: an AES-256-GCM key
/// derived from it with HKDF-SHA-256 (salt `twofa/export/v1`, info `seal`).
pub(crate) struct ExportKey(LessSafeKey);

impl ExportKey {
    /// Derives the sealing key from the caller's key (standard base64, at least 32 bytes).
    pub(crate) fn new(b64: &str) -> Result<ExportKey, Error> {
        let secret = decode_master_secret(b64).map_err(|why| Error::invalid(format!("key: {why}")))?;
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"twofa/export/v1").extract(&secret);
        let key = UnboundKey::new(&AES_256_GCM, &derive(&prk, b"seal")?)
            .map_err(|_| Error::Internal("AES key setup failed".into()))?;
        Ok(ExportKey(LessSafeKey::new(key)))
    }

    /// Seals `plaintext` bound to `aad`: (nonce, ciphertext with tag), both base64url.
    pub(crate) fn seal(&self, rng: &dyn SecureRandom, aad: &[u8], plaintext: &[u8]) -> Result<(String, String), Error> {
        aead_seal(&self.0, rng, aad, plaintext)
    }

    /// Opens what [`ExportKey::seal`] made; a wrong key, `aad` or any changed byte fails.
    pub(crate) fn open(&self, nonce: &str, ciphertext: &str, aad: &[u8]) -> Result<Vec<u8>, Error> {
        aead_open(&self.0, nonce, ciphertext, aad)
            .ok_or_else(|| Error::invalid("document: does not open (wrong key, another user, or tampered)"))
    }
}

/// AES-256-GCM under a fresh random nonce: (nonce, ciphertext with tag), both base64url.
fn aead_seal(
    key: &LessSafeKey,
    rng: &dyn SecureRandom,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<(String, String), Error> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut nonce).map_err(|_| rng_failed())?;
    let mut buf = plaintext.to_vec();
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut buf)
        .map_err(|_| Error::Internal("sealing failed".into()))?;
    Ok((URL_SAFE_NO_PAD.encode(nonce), URL_SAFE_NO_PAD.encode(&buf)))
}

/// Opens what [`aead_seal`] made; `None` for malformed base64, a wrong key or `aad`, or any
/// changed byte (the caller says which error that is).
fn aead_open(key: &LessSafeKey, nonce: &str, ciphertext: &str, aad: &[u8]) -> Option<Vec<u8>> {
    let nonce: [u8; NONCE_LEN] = URL_SAFE_NO_PAD.decode(nonce).ok()?.try_into().ok()?;
    let mut buf = URL_SAFE_NO_PAD.decode(ciphertext).ok()?;
    let plain = key.open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut buf).ok()?;
    Some(plain.to_vec())
}

fn rng_failed() -> Error {
    Error::Internal("the system random generator failed".into())
}

/// `n` random bytes.
pub(crate) fn random_bytes(rng: &dyn SecureRandom, n: usize) -> Result<Vec<u8>, Error> {
    let mut out = vec![0u8; n];
    rng.fill(&mut out).map_err(|_| rng_failed())?;
    Ok(out)
}

/// A uniformly random integer below `bound` (rejection sampling: no modulo bias).
fn random_below(rng: &dyn SecureRandom, bound: u32) -> Result<u32, Error> {
    let zone = u32::MAX - (u32::MAX % bound);
    loop {
        let mut b = [0u8; 4];
        rng.fill(&mut b).map_err(|_| rng_failed())?;
        let v = u32::from_le_bytes(b);
        if v < zone {
            return Ok(v % bound);
        }
    }
}

/// A string of `n` uniformly random decimal digits.
pub(crate) fn random_digits(rng: &dyn SecureRandom, n: usize) -> Result<String, Error> {
    (0..n).map(|_| random_below(rng, 10).map(|d| char::from(b'0' + d as u8))).collect()
}

/// The 32 characters of recovery codes: digits and lowercase letters without i, l, o, u.
pub(crate) const RECOVERY_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A string of `n` random characters from [`RECOVERY_ALPHABET`] (5 bits each).
pub(crate) fn random_recovery_chars(rng: &dyn SecureRandom, n: usize) -> Result<String, Error> {
    (0..n).map(|_| random_below(rng, 32).map(|i| char::from(RECOVERY_ALPHABET[i as usize]))).collect()
}

/// A random token of 128 bits, base64url without padding (ids, step-up tokens).
pub(crate) fn random_token(rng: &dyn SecureRandom) -> Result<String, Error> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes(rng, 16)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;

    fn keyring(active: &str) -> Keyring {
        let (a, b) = (STANDARD.encode([1u8; 32]), STANDARD.encode([2u8; 32]));
        Keyring::new([("a", a.as_str()), ("b", b.as_str())], active).unwrap()
    }

    #[test]
    fn seal_open_binds_aad_and_survives_rotation() {
        let rng = SystemRandom::new();
        let old = keyring("a");
        let sealed = old.seal(&rng, b"user-1", b"seed").unwrap();
        assert_eq!(old.open(&sealed, b"user-1").unwrap(), b"seed");
        assert!(old.open(&sealed, b"user-2").is_err());
        let rotated = keyring("b");
        assert_eq!(rotated.open(&sealed, b"user-1").unwrap(), b"seed");
        assert_eq!(rotated.seal(&rng, b"u", b"s").unwrap().kid, "b");
    }

    #[test]
    fn hashes_bind_domain_user_and_value() {
        let k = keyring("a");
        let h = k.hash("email", "u1", b"123456").unwrap();
        assert!(k.verify(&h, "email", "u1", b"123456"));
        assert!(!k.verify(&h, "email", "u1", b"123457"));
        assert!(!k.verify(&h, "recovery", "u1", b"123456"));
        assert!(!k.verify(&h, "email", "u2", b"123456"));
        // Length-prefixing keeps ("ab","c") and ("a","bc") apart.
        assert!(!k.verify(&k.hash("ab", "c", b"").unwrap(), "a", "bc", b""));
    }

    #[test]
    fn digits_are_uniform_enough() {
        let rng = SystemRandom::new();
        let s = random_digits(&rng, 60_000).unwrap();
        let mut counts = [0u32; 10];
        for b in s.bytes() {
            counts[(b - b'0') as usize] += 1;
        }
        assert!(counts.iter().all(|&c| (5_400..6_600).contains(&c)), "{counts:?}");
    }
}
