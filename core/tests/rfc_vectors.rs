//! RFC 4226 Appendix D and RFC 6238 Appendix B, imported with the admin capability and verified
//! through `login_verify` at a set clock (not only through totp-rs).

mod common;
use common::*;
use twofa_core::{Admin, Proof, TotpAlgorithm};

fn b32(seed: &[u8]) -> String {
    totp_rs::Secret::from(seed.to_vec()).to_base32()
}

fn verify_at(alg: TotpAlgorithm, seed: &[u8], digits: u8, t: u64, code: &str) {
    let (engine, clock, _) = engine();
    let admin = Admin::new(engine.clone()).unwrap();
    let user = format!("rfc-{alg:?}-{t}");
    admin.totp_import(&user, &b32(seed), alg, digits, 30).unwrap();
    clock.set(t);
    let ch = engine.login_begin(&user).unwrap().challenge_id.unwrap();
    let ok = engine.login_verify(&user, &ch, Proof::Totp(code.into())).unwrap();
    assert_eq!(ok.method, twofa_core::MethodKind::Totp, "{alg:?} t={t}");
    // The same code again is a replay, through a fresh challenge too.
    let ch = engine.login_begin(&user).unwrap().challenge_id.unwrap();
    assert_eq!(engine.login_verify(&user, &ch, Proof::Totp(code.into())).unwrap_err(), twofa_core::Error::Replayed);
}

#[test]
fn rfc6238_appendix_b_all_18() {
    let sha1 = b"12345678901234567890".as_slice();
    let sha256 = b"12345678901234567890123456789012".as_slice();
    let sha512 = b"1234567890123456789012345678901234567890123456789012345678901234".as_slice();
    let table: [(u64, &str, &str, &str); 6] = [
        (59, "94287082", "46119246", "90693936"),
        (1111111109, "07081804", "68084774", "25091201"),
        (1111111111, "14050471", "67062674", "99943326"),
        (1234567890, "89005924", "91819424", "93441116"),
        (2000000000, "69279037", "90698825", "38618901"),
        (20000000000, "65353130", "77737706", "47863826"),
    ];
    for (t, c1, c256, c512) in table {
        verify_at(TotpAlgorithm::Sha1, sha1, 8, t, c1);
        verify_at(TotpAlgorithm::Sha256, sha256, 8, t, c256);
        verify_at(TotpAlgorithm::Sha512, sha512, 8, t, c512);
    }
}

#[test]
fn rfc4226_appendix_d_as_time_steps() {
    // HOTP counter c is TOTP step c: verify each value at t = 30·c (c = 0 sits at the epoch).
    let codes = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"];
    let (engine, clock, _) = engine();
    let admin = Admin::new(engine.clone()).unwrap();
    admin.totp_import("hotp", &b32(b"12345678901234567890"), TotpAlgorithm::Sha1, 6, 30).unwrap();
    for (c, code) in codes.iter().enumerate() {
        clock.set(30 * c as u64);
        let ch = engine.login_begin("hotp").unwrap().challenge_id.unwrap();
        engine.login_verify("hotp", &ch, Proof::Totp(code.to_string())).unwrap_or_else(|e| panic!("counter {c}: {e}"));
    }
}

#[test]
fn known_vector_shared_with_other_implementations() {
    // JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP at t = 1700000000 is 406058 for oathtool, pyotp and otplib.
    let (engine, clock, _) = engine();
    Admin::new(engine.clone())
        .unwrap()
        .totp_import("u", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", TotpAlgorithm::Sha1, 6, 30)
        .unwrap();
    clock.set(1_700_000_000);
    let ch = engine.login_begin("u").unwrap().challenge_id.unwrap();
    engine.login_verify("u", &ch, Proof::Totp("406 058".into())).unwrap();
}
