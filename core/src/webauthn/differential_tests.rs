//! The differential test of the two assertion paths: ring's ES256 path ([`super::es256`]) and
//! webauthn-rs-core's. Credentials of every registration shape (user-verification policy,
//! UV at registration, backup flags, counting or not) are registered through webauthn-rs-core;
//! then valid assertions, signed by an authenticator written here with ring, are mutated every
//! way a forger or a broken client might (every bit pattern of the flags, every byte of the
//! authenticator data, client data and signature flipped, with and without a fresh signature,
//! wrong origins, RP IDs, types and challenges, counter regressions, high-S signatures, user
//! handles) and both paths must give the same verdict each time.

use super::*;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};

const ORIGIN: &str = "http://localhost:8080";
const HANDLE: &[u8] = b"differential-user";

/// Flag bits of the authenticator data.
const UP: u8 = 0x01;
const UV: u8 = 0x04;
const BE: u8 = 0x08;
const BS: u8 = 0x10;

/// The order of P-256, big-endian (for high-S signatures).
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6, 0xfa,
    0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn sha256(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, data).as_ref().to_vec()
}

/// A CBOR head (major type and length).
fn cbor_head(major: u8, len: usize) -> Vec<u8> {
    match len {
        0..=23 => vec![major << 5 | len as u8],
        24..=255 => vec![major << 5 | 24, len as u8],
        _ => [&[major << 5 | 25][..], &(len as u16).to_be_bytes()].concat(),
    }
}

fn cbor_text(s: &str) -> Vec<u8> {
    [cbor_head(3, s.len()), s.as_bytes().to_vec()].concat()
}

fn cbor_bytes(b: &[u8]) -> Vec<u8> {
    [cbor_head(2, b.len()), b.to_vec()].concat()
}

/// An ES256 authenticator with one credential.
struct Authenticator {
    key: EcdsaKeyPair,
    id: Vec<u8>,
    rng: SystemRandom,
}

impl Authenticator {
    fn new(id_byte: u8) -> Authenticator {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        Authenticator { key, id: vec![id_byte; 32], rng }
    }

    fn cose_key(&self) -> Vec<u8> {
        let point = self.key.public_key().as_ref();
        let mut key = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20];
        key.extend_from_slice(&point[1..33]);
        key.extend_from_slice(&[0x22, 0x58, 0x20]);
        key.extend_from_slice(&point[33..]);
        key
    }

    /// A "none" attestation registration response for `options`.
    fn register(&self, options: &str, flags: u8, counter: u32) -> String {
        let options: serde_json::Value = serde_json::from_str(options).unwrap();
        let challenge = options["publicKey"]["challenge"].as_str().unwrap();
        let client = format!(
            r#"{{"type":"webauthn.create","challenge":"{challenge}","origin":"{ORIGIN}","crossOrigin":false}}"#
        );
        let mut auth_data = sha256(b"localhost");
        auth_data.push(flags | 0x40);
        auth_data.extend_from_slice(&counter.to_be_bytes());
        auth_data.extend_from_slice(&[0u8; 16]);
        auth_data.extend_from_slice(&(self.id.len() as u16).to_be_bytes());
        auth_data.extend_from_slice(&self.id);
        auth_data.extend_from_slice(&self.cose_key());
        let attestation = [
            vec![0xa3],
            cbor_text("fmt"),
            cbor_text("none"),
            cbor_text("attStmt"),
            vec![0xa0],
            cbor_text("authData"),
            cbor_bytes(&auth_data),
        ]
        .concat();
        serde_json::json!({
            "id": b64(&self.id), "rawId": b64(&self.id), "type": "public-key",
            "response": {"clientDataJSON": b64(client.as_bytes()), "attestationObject": b64(&attestation)},
            "clientExtensionResults": {},
        })
        .to_string()
    }

    fn sign(&self, auth_data: &[u8], client: &[u8]) -> Vec<u8> {
        let signed = [auth_data, &sha256(client)].concat();
        self.key.sign(&self.rng, &signed).unwrap().as_ref().to_vec()
    }
}

/// The parts of an assertion, mutated before they are put together.
#[derive(Clone)]
struct Assertion {
    auth_data: Vec<u8>,
    client: Vec<u8>,
    signature: Vec<u8>,
    user_handle: Option<Vec<u8>>,
}

impl Assertion {
    fn new(auth: &Authenticator, challenge: &str, flags: u8, counter: u32) -> Assertion {
        let mut auth_data = sha256(b"localhost");
        auth_data.push(flags);
        auth_data.extend_from_slice(&counter.to_be_bytes());
        let client =
            format!(r#"{{"type":"webauthn.get","challenge":"{challenge}","origin":"{ORIGIN}","crossOrigin":false}}"#)
                .into_bytes();
        let signature = auth.sign(&auth_data, &client);
        Assertion { auth_data, client, signature, user_handle: Some(HANDLE.to_vec()) }
    }

    fn resigned(mut self, auth: &Authenticator) -> Assertion {
        self.signature = auth.sign(&self.auth_data, &self.client);
        self
    }

    fn json(&self, auth: &Authenticator) -> String {
        let mut response = serde_json::json!({
            "clientDataJSON": b64(&self.client),
            "authenticatorData": b64(&self.auth_data),
            "signature": b64(&self.signature),
        });
        if let Some(h) = &self.user_handle {
            response["userHandle"] = b64(h).into();
        }
        serde_json::json!({
            "id": b64(&auth.id), "rawId": b64(&auth.id), "type": "public-key",
            "response": response, "clientExtensionResults": {},
        })
        .to_string()
    }
}

/// The same signature with s replaced by n - s (equally valid ECDSA, "high S").
fn high_s(der: &[u8]) -> Vec<u8> {
    let r_len = der[3] as usize;
    let r = &der[4..4 + r_len];
    let s_len = der[5 + r_len] as usize;
    let s = &der[6 + r_len..6 + r_len + s_len];
    let mut s32 = [0u8; 32];
    let s = &s[s.len().saturating_sub(32)..];
    s32[32 - s.len()..].copy_from_slice(s);
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = P256_N[i] as i16 - s32[i] as i16 - borrow;
        borrow = i16::from(d < 0);
        out[i] = d.rem_euclid(256) as u8;
    }
    let mut int = out.iter().copied().skip_while(|b| *b == 0).collect::<Vec<u8>>();
    if int[0] & 0x80 != 0 {
        int.insert(0, 0);
    }
    let body = [&[0x02, r_len as u8][..], r, &[0x02, int.len() as u8], &int].concat();
    [&[0x30, body.len() as u8][..], &body].concat()
}

/// A verdict to compare: the verified result, or the reason of the refusal.
fn verdict(result: Result<Verified, WebauthnError>) -> Result<Verified, &'static str> {
    result.map_err(|e| reason(&e))
}

struct Tally {
    cases: usize,
    fast: usize,
    accepted: usize,
}

/// Runs one assertion through both paths and requires the same verdict; returns it (`None` for
/// JSON that is not a PublicKeyCredential).
fn compare(
    rp: &RelyingParty,
    state: &AuthState,
    cred: &StoredCredential,
    json: &str,
    what: &str,
    tally: &mut Tally,
) -> Option<Result<Verified, &'static str>> {
    let response = serde_json::from_str::<wa::PublicKeyCredential>(json).ok()?;
    let reference = verdict(rp.verify_with_core(&response, state, &cred.credential).unwrap());
    tally.cases += 1;
    if let Some(fast) = es256::verify(&rp.settings, &response, state, &cred.credential) {
        tally.fast += 1;
        assert_eq!(verdict(fast), reference, "{what}");
    }
    tally.accepted += usize::from(reference.is_ok());
    Some(reference)
}

/// The reason both paths give a cross-origin assertion.
const CROSS_ORIGIN: &str = "cross-origin request not allowed";

/// Every mutation of one valid assertion.
fn mutations(base: &Assertion, auth: &Authenticator, challenge: &str, counter: u32) -> Vec<(String, Assertion)> {
    let mut out = vec![("valid".to_string(), base.clone())];
    for i in 0..base.auth_data.len() {
        for bit in [0x01u8, 0x80] {
            let mut m = base.clone();
            m.auth_data[i] ^= bit;
            out.push((format!("authData[{i}]^{bit:#x}"), m.clone()));
            out.push((format!("authData[{i}]^{bit:#x} re-signed"), m.resigned(auth)));
        }
    }
    for flags in 0..=255u8 {
        let mut m = base.clone();
        m.auth_data[32] = flags;
        out.push((format!("flags {flags:#04x} re-signed"), m.resigned(auth)));
    }
    for i in 0..base.client.len() {
        let mut m = base.clone();
        m.client[i] ^= 0x01;
        out.push((format!("client[{i}]^1"), m.clone()));
        out.push((format!("client[{i}]^1 re-signed"), m.resigned(auth)));
    }
    for i in 0..base.signature.len() {
        let mut m = base.clone();
        m.signature[i] ^= 0x01;
        out.push((format!("signature[{i}]^1"), m));
    }
    let sig = &base.signature;
    for (name, s) in [
        ("signature truncated", sig[..sig.len() - 1].to_vec()),
        ("signature with a trailing byte", [sig.as_slice(), &[0]].concat()),
        ("signature empty", Vec::new()),
        ("signature high-S", high_s(sig)),
    ] {
        let mut m = base.clone();
        m.signature = s;
        out.push((name.to_string(), m));
    }
    let get = |client: String| Assertion { client: client.into_bytes(), ..base.clone() }.resigned(auth);
    for origin in [
        "http://localhost:8081",
        "https://localhost:8080",
        "http://sub.localhost:8080",
        "http://evil.example",
        "http://localhost:8080/",
        "http://localhost:8080/path",
        "http://LOCALHOST:8080",
        "http://localhost",
        "null",
    ] {
        let c = format!(r#"{{"type":"webauthn.get","challenge":"{challenge}","origin":"{origin}"}}"#);
        out.push((format!("origin {origin}"), get(c)));
    }
    let other = b64(&[7u8; 32]);
    let padded = format!("{challenge}==");
    let standard = challenge.replace('-', "+").replace('_', "/");
    for (name, ty, ch) in [
        ("type create", "webauthn.create", challenge),
        ("type empty", "", challenge),
        ("other challenge", "webauthn.get", other.as_str()),
        ("empty challenge", "webauthn.get", ""),
        ("padded challenge", "webauthn.get", padded.as_str()),
        ("standard-alphabet challenge", "webauthn.get", standard.as_str()),
    ] {
        out.push((name.to_string(), get(format!(r#"{{"type":"{ty}","challenge":"{ch}","origin":"{ORIGIN}"}}"#))));
    }
    for (name, extra) in [
        ("cross-origin", r#","crossOrigin":true"#),
        ("token binding", r#","tokenBinding":{"status":"present","id":"AAA"}"#),
        ("extra keys", r#","other_keys_can_be_added_here":"x","n":[1,{}]"#),
        ("top origin", r#","topOrigin":"http://evil.example""#),
    ] {
        let c = format!(r#"{{"type":"webauthn.get","challenge":"{challenge}","origin":"{ORIGIN}"{extra}}}"#);
        out.push((name.to_string(), get(c)));
    }
    // crossOrigin: true with every other kind of defect: refused the same way on both paths.
    let cross = |ty: &str, ch: &str, origin: &str| {
        format!(r#"{{"type":"{ty}","challenge":"{ch}","origin":"{origin}","crossOrigin":true}}"#)
    };
    for (name, client) in [
        (
            "cross-origin with topOrigin",
            format!(
                r#"{{"type":"webauthn.get","challenge":"{challenge}","origin":"{ORIGIN}","crossOrigin":true,"topOrigin":"http://evil.example"}}"#
            ),
        ),
        ("cross-origin, type create", cross("webauthn.create", challenge, ORIGIN)),
        ("cross-origin, other challenge", cross("webauthn.get", &other, ORIGIN)),
        ("cross-origin, other origin", cross("webauthn.get", challenge, "http://evil.example")),
    ] {
        out.push((name.to_string(), get(client)));
    }
    let signed_cross = get(cross("webauthn.get", challenge, ORIGIN));
    let mut unsigned = signed_cross.clone();
    unsigned.signature = base.signature.clone();
    out.push(("cross-origin, signature of another client data".to_string(), unsigned));
    let mut rp_mismatch = signed_cross.clone();
    rp_mismatch.auth_data[..32].copy_from_slice(&sha256(b"example.com"));
    out.push(("cross-origin, rp id example.com".to_string(), rp_mismatch.resigned(auth)));
    let mut no_up = signed_cross.clone();
    no_up.auth_data[32] &= !UP;
    out.push(("cross-origin, no user presence".to_string(), no_up.resigned(auth)));
    for c in [0, counter] {
        let mut m = signed_cross.clone();
        m.auth_data[33..37].copy_from_slice(&c.to_be_bytes());
        out.push((format!("cross-origin, counter {c}"), m.resigned(auth)));
    }
    let mut short = signed_cross.clone();
    short.auth_data.truncate(36);
    out.push(("cross-origin, authData 36 bytes".to_string(), short.resigned(auth)));
    let mut ext = signed_cross.clone();
    ext.auth_data[32] |= 0x80;
    ext.auth_data.push(0xa0);
    out.push(("cross-origin, authData with empty extensions".to_string(), ext.resigned(auth)));
    for (name, value) in [("crossOrigin false", "false"), ("crossOrigin null", "null")] {
        let c =
            format!(r#"{{"type":"webauthn.get","challenge":"{challenge}","origin":"{ORIGIN}","crossOrigin":{value}}}"#);
        out.push((name.to_string(), get(c)));
    }
    out.push((
        "crossOrigin absent".to_string(),
        get(format!(r#"{{"type":"webauthn.get","challenge":"{challenge}","origin":"{ORIGIN}"}}"#)),
    ));
    let mut rp_id = base.clone();
    rp_id.auth_data[..32].copy_from_slice(&sha256(b"example.com"));
    out.push(("rp id example.com".to_string(), rp_id.resigned(auth)));
    for c in [0, counter.saturating_sub(1), counter, counter.saturating_add(1), u32::MAX] {
        let mut m = base.clone();
        m.auth_data[33..37].copy_from_slice(&c.to_be_bytes());
        out.push((format!("counter {c}"), m.resigned(auth)));
    }
    for (name, len) in [("authData 36 bytes", 36), ("authData empty", 0)] {
        let mut m = base.clone();
        m.auth_data.truncate(len);
        out.push((name.to_string(), m.resigned(auth)));
    }
    let mut trailing = base.clone();
    trailing.auth_data.extend_from_slice(&[0xa0, 1, 2]);
    out.push(("authData trailing bytes".to_string(), trailing.resigned(auth)));
    let mut extensions = base.clone();
    extensions.auth_data[32] |= 0x80;
    extensions.auth_data.push(0xa0);
    out.push(("authData with empty extensions".to_string(), extensions.resigned(auth)));
    for (name, handle) in [("no user handle", None), ("other user handle", Some(b"mallory".to_vec()))] {
        out.push((name.to_string(), Assertion { user_handle: handle, ..base.clone() }));
    }
    out
}

#[test]
fn ring_and_webauthn_rs_core_agree_on_every_assertion() {
    let mut tally = Tally { cases: 0, fast: 0, accepted: 0 };
    let mut registered = 0;
    let mut cross_origin = 0;
    for uv in [UserVerification::Preferred, UserVerification::Required, UserVerification::Discouraged] {
        let rp = RelyingParty::new(&WebauthnConfig {
            user_verification: uv,
            ..WebauthnConfig::new("localhost", "differential", vec![ORIGIN.into()])
        })
        .unwrap();
        for reg_flags in [UP, UP | UV, UP | UV | BE, UP | UV | BE | BS, UP | BE] {
            for reg_counter in [0u32, 10] {
                let auth = Authenticator::new(registered as u8 + 1);
                let (options, state) = rp.register_begin(HANDLE, "alice", "Alice", &[]).unwrap();
                let Ok(cred) = rp.register_finish(&auth.register(&options, reg_flags, reg_counter), &state) else {
                    assert!(uv == UserVerification::Required && reg_flags & UV == 0, "registration refused");
                    continue;
                };
                registered += 1;
                let (options, challenge) = rp.authenticate_begin(std::slice::from_ref(&cred)).unwrap();
                let options: serde_json::Value = serde_json::from_str(&options).unwrap();
                let ch = options["publicKey"]["challenge"].as_str().unwrap().to_string();
                let counter = if reg_counter == 0 { 0 } else { reg_counter + 1 };
                let base = Assertion::new(&auth, &ch, reg_flags, counter);
                for (name, assertion) in mutations(&base, &auth, &ch, counter) {
                    let what = format!("{uv:?} reg {reg_flags:#04x}/{reg_counter}: {name}");
                    let reference = compare(&rp, &challenge.state, &cred, &assertion.json(&auth), &what, &mut tally);
                    if name.starts_with("cross-origin") {
                        assert_eq!(reference.map(|r| r.err()), Some(Some(CROSS_ORIGIN)), "{what}");
                        cross_origin += 1;
                    }
                }
                // The valid base really signs in through the public entry point.
                let outcome =
                    rp.authenticate_finish(&base.json(&auth), &challenge, std::slice::from_ref(&cred), HANDLE);
                assert!(matches!(outcome, Ok(AssertionOutcome::Verified { .. })), "{outcome:?}");
            }
        }
    }
    assert!(registered >= 25, "{registered} credentials");
    assert!(cross_origin >= registered * 12, "{cross_origin} cross-origin cases");
    assert!(tally.cases > 10_000, "{} cases", tally.cases);
    // Flags with AT or ED set (3 in 4 of the 256 flag mutations) go to webauthn-rs-core.
    assert!(tally.fast * 10 > tally.cases * 7, "{} of {} on the ring path", tally.fast, tally.cases);
    assert!(tally.accepted > 1_000, "{} accepted", tally.accepted);
}

/// WebAuthn L3 §7.2: an assertion whose client data says `crossOrigin: true` is refused on the
/// ring path and on webauthn-rs-core's alike, with the reason a cross-origin registration gets,
/// even when it is otherwise valid and properly signed; `false` or no flag still signs in.
#[test]
fn cross_origin_assertions_refused_on_both_paths() {
    let rp = RelyingParty::new(&WebauthnConfig::new("localhost", "differential", vec![ORIGIN.into()])).unwrap();
    let auth = Authenticator::new(0xc0);
    let (options, state) = rp.register_begin(HANDLE, "alice", "Alice", &[]).unwrap();
    let cred = rp.register_finish(&auth.register(&options, UP, 0), &state).unwrap();
    let creds = std::slice::from_ref(&cred);
    for (flag, refused) in [(",\"crossOrigin\":true", true), (",\"crossOrigin\":false", false), ("", false)] {
        // Without extensions the ring path decides; with (empty) extensions webauthn-rs-core does.
        for extensions in [false, true] {
            let what = format!("flag {flag:?}, extensions {extensions}");
            let (options, challenge) = rp.authenticate_begin(creds).unwrap();
            let options: serde_json::Value = serde_json::from_str(&options).unwrap();
            let ch = options["publicKey"]["challenge"].as_str().unwrap();
            let mut assertion = Assertion::new(&auth, ch, UP, 0);
            assertion.client =
                format!(r#"{{"type":"webauthn.get","challenge":"{ch}","origin":"{ORIGIN}"{flag}}}"#).into_bytes();
            if extensions {
                assertion.auth_data[32] |= 0x80;
                assertion.auth_data.push(0xa0);
            }
            let json = assertion.resigned(&auth).json(&auth);
            let response: wa::PublicKeyCredential = serde_json::from_str(&json).unwrap();
            let core = verdict(rp.verify_with_core(&response, &challenge.state, &cred.credential).unwrap());
            let ring = es256::verify(&rp.settings, &response, &challenge.state, &cred.credential).map(verdict);
            assert_eq!(ring.is_some(), !extensions || refused, "{what}: which path");
            if let Some(ring) = ring {
                assert_eq!(ring, core, "{what}");
            }
            let outcome = rp.authenticate_finish(&json, &challenge, creds, HANDLE);
            if refused {
                assert_eq!(core, Err(CROSS_ORIGIN), "{what}");
                assert_eq!(outcome.unwrap_err(), Error::WebauthnRejected(CROSS_ORIGIN.into()), "{what}");
            } else {
                assert!(core.is_ok(), "{what}: {core:?}");
                assert!(matches!(outcome, Ok(AssertionOutcome::Verified { .. })), "{what}: {outcome:?}");
            }
        }
    }
}
