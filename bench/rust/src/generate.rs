//! The fixture's content (see `bench/README.md`, "The fixture"): every value derives from fixed
//! strings (SHA-256 of a label) and signatures are RFC 6979 deterministic, so the same bytes come
//! out every time; a test keeps the checked-in `bench/fixture.json` equal to them.

use p256::ecdsa::SigningKey;
use p256::pkcs8::EncodePrivateKey;

use crate::authenticator::{Authenticator, base64, sha256};
use crate::fixture::{Ceremony, Fixture, Jwk};

/// The relying party id.
const RP_ID: &str = "localhost";
/// The browser origin.
const ORIGIN: &str = "http://localhost:8080";
/// The user to sign in as.
const USER: &str = "bench-user";
/// The time the suites start their clocks at (2023-11-14 22:13:20 UTC).
const T0: u64 = 1_700_000_000;

/// 32 bytes derived from a fixed label.
fn seed(label: &str) -> [u8; 32] {
    sha256(format!("twofa-bench fixture: {label}").as_bytes())
}

/// The text of `bench/fixture.json`: pretty-printed JSON with a final newline.
pub fn fixture_json() -> Result<String, String> {
    let key = SigningKey::from_slice(&seed("P-256 private key")).map_err(|e| format!("private key: {e}"))?;
    let authenticator = Authenticator::new(key, seed("credential id").to_vec(), RP_ID, ORIGIN);
    let mut json = serde_json::to_string_pretty(&fixture(&authenticator)?).map_err(|e| e.to_string())?;
    json.push('\n');
    Ok(json)
}

/// Every field of the fixture, from the authenticator and the fixed seeds.
fn fixture(authenticator: &Authenticator) -> Result<Fixture, String> {
    let point = authenticator.public_key_uncompressed();
    let pkcs8 = authenticator.key().to_pkcs8_der().map_err(|e| format!("PKCS#8: {e}"))?;
    let user_handle = &seed("user handle")[..16];
    let totp_secret =
        totp_rs::Secret::from(<[u8; 20]>::try_from(&seed("TOTP secret")[..20]).map_err(|e| e.to_string())?);
    let registration_challenge = base64(&seed("registration challenge"));
    let assertion_challenge = base64(&seed("assertion challenge"));
    Ok(Fixture {
        rp_id: RP_ID.into(),
        origin: ORIGIN.into(),
        user: USER.into(),
        totp_secret: totp_secret.to_base32(),
        t0: T0,
        private_key_jwk: Jwk {
            kty: "EC".into(),
            crv: "P-256".into(),
            x: base64(&point[1..33]),
            y: base64(&point[33..65]),
            d: base64(&authenticator.key().to_bytes()),
        },
        private_key_pkcs8: base64(pkcs8.as_bytes()),
        public_key_cose: base64(&authenticator.public_key_cose()),
        public_key_spki: base64(&authenticator.public_key_spki()),
        public_key_uncompressed: base64(&point),
        credential_id: base64(authenticator.credential_id()),
        user_handle: base64(user_handle),
        attestation_object: base64(&authenticator.attestation_object()),
        authenticator_data: base64(authenticator.authenticator_data()),
        registration: Ceremony {
            response: authenticator.registration(&registration_challenge),
            challenge: registration_challenge,
        },
        assertion: Ceremony {
            response: authenticator.assertion(&assertion_challenge, user_handle),
            challenge: assertion_challenge,
        },
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_checked_in_fixture_is_what_the_generator_writes() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixture.json");
        let stored = std::fs::read_to_string(&path).expect("bench/fixture.json");
        assert!(
            stored == super::fixture_json().unwrap(),
            "bench/fixture.json is stale: run `cargo run --release -p twofa-bench --bin fixture`"
        );
    }
}
