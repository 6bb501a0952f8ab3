//! Every request a surface accepts (`Request` and `AdminRequest` JSON, proofs included): parsed
//! strictly and, when they parse, run against a user with an authenticator app. Refusals are
//! fine; a panic is not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twofa_core::{Admin, AdminRequest, Request};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (engine, clock, _secret, _token) = twofa_fuzz::enrolled();
    if let Ok(request) = Request::from_json(text) {
        let _ = engine.run("u", request);
    }
    if let Ok(request) = AdminRequest::from_json(text) {
        let _ = Admin::new(engine.clone()).unwrap().run_at("u", request, clock.get());
    }
});
