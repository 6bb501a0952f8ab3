//! Recovery codes: single-use codes for a user who lost every second factor.
//!
//! A set holds `config.recovery_codes` codes of 10 characters from a 32-letter alphabet (50 bits
//! each), shown once as `xxxxx-xxxxx` and stored only as keyed hashes. They are usable in any order,
//! insensitive to case, spaces and hyphens, counted in the attempt budget, and do not count as a
//! method for policy. Generating a new set revokes the old one.

use crate::Error;
use crate::crypto::{Hashed, Keyring, RECOVERY_ALPHABET, random_recovery_chars};
use ring::rand::SecureRandom;

const DOMAIN: &str = "twofa/recovery-code";
const LEN: usize = 10;

/// A new set: the codes to show once, and their hashes to store.
pub(crate) fn generate(
    keyring: &Keyring,
    rng: &dyn SecureRandom,
    user: &str,
    count: u32,
) -> Result<(Vec<String>, Vec<Hashed>), Error> {
    let mut shown = Vec::new();
    let mut hashes = Vec::new();
    for _ in 0..count {
        let raw = random_recovery_chars(rng, LEN)?;
        hashes.push(keyring.hash(DOMAIN, user, raw.as_bytes())?);
        shown.push(format!("{}-{}", &raw[..5], &raw[5..]));
    }
    Ok((shown, hashes))
}

/// Normalises a submitted code: spaces and hyphens dropped, lower case; refuses anything that
/// cannot be a recovery code with `invalid_input`.
pub(crate) fn normalize(input: &str) -> Result<String, Error> {
    if input.len() > 64 {
        return Err(Error::invalid("recovery code: too long"));
    }
    let code: String = input.chars().filter(|c| *c != ' ' && *c != '-').map(|c| c.to_ascii_lowercase()).collect();
    if code.len() != LEN || !code.bytes().all(|b| RECOVERY_ALPHABET.contains(&b)) {
        return Err(Error::invalid("recovery code: 10 letters and digits, e.g. abcde-12345"));
    }
    Ok(code)
}

/// Removes and reports the stored code that `code` (normalised) matches. Every stored hash is
/// checked, so the time taken does not depend on which one matches.
pub(crate) fn consume(keyring: &Keyring, stored: &mut Vec<Hashed>, user: &str, code: &str) -> bool {
    let mut found = None;
    for (i, h) in stored.iter().enumerate() {
        if keyring.verify(h, DOMAIN, user, code.as_bytes()) {
            found = Some(i);
        }
    }
    found.map(|i| stored.remove(i)).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation() {
        assert_eq!(normalize(" ABCDE-12345 ").unwrap(), "abcde12345");
        assert_eq!(normalize("ab cd e1 23 45").unwrap(), "abcde12345");
        assert!(normalize("abcde-1234").is_err());
        assert!(normalize("abcde-1234i").is_err(), "i is not in the alphabet");
        assert!(normalize("abcdé-12345").is_err());
    }
}
