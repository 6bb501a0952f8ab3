//! Stored records read back from a host's store: whatever bytes the store returns for the user,
//! every operation answers with a result or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twofa_core::store::{Store, StoreError, Version, Versioned};
use twofa_core::{Engine, Proof};

/// A store holding `bytes` under every key at version 1; writes conflict or succeed in turn.
struct Fixed(Vec<u8>);

impl Store for Fixed {
    fn get(&self, _key: &str) -> Result<Option<Versioned>, StoreError> {
        Ok(Some(Versioned { bytes: self.0.clone(), version: 1 }))
    }

    fn put(&self, _key: &str, bytes: &[u8], expected: Option<Version>) -> Result<Version, StoreError> {
        if expected == Some(1) && bytes.len().is_multiple_of(2) { Ok(2) } else { Err(StoreError::Conflict) }
    }

    fn delete(&self, _key: &str, _expected: Version) -> Result<(), StoreError> {
        Err(StoreError::Conflict)
    }
}

fuzz_target!(|data: &[u8]| {
    let (_, clock, outbox) = twofa_fuzz::engine();
    let engine = Engine::new(twofa_fuzz::config(), Fixed(data.to_vec()), outbox).expect("config").with_clock(clock);
    let _ = engine.security_status("u");
    let _ = engine.login_begin("u");
    let _ = engine.login_send_email_code("u", "c");
    let _ = engine.login_verify("u", "c", Proof::Totp("123456".into()));
    let _ = engine.login_verify("u", "c", Proof::Recovery("abcde-fghjk".into()));
    let _ = engine.recovery_codes_generate("u", Some("t"));
    let _ = engine.remove_method("u", "totp-1", Some("t"));
    let _ = engine.mark_order_created("u");
});
