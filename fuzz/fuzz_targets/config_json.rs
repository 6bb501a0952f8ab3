//! The config JSON: parsed, validated and opened as an engine, it may be refused but never
//! panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twofa_core::store::MemoryStore;
use twofa_core::{Config, Engine};
use twofa_fuzz::Outbox;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(config) = Config::from_json(text) {
        let _ = Engine::new(config, MemoryStore::new(), Outbox::default());
    }
});
