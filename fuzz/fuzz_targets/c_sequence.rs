//! Random sequences of operations through the C ABI, against an in-memory store handle, with
//! the invariants every sequence must keep:
//!
//! * a TOTP code's time step is accepted at most once (sign-in or enrolment);
//! * the user's failure count never goes down except through a success;
//! * an authenticator app is listed only once a confirmation succeeded, and no longer once
//!   removed;
//! * every call returns a status, and a successful one a JSON result.
#![no_main]

use std::collections::HashSet;
use std::ffi::{CStr, CString, c_char, c_void};
use std::ptr;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use twofa::*;

/// One step of a sequence.
#[derive(Arbitrary, Debug)]
enum Step {
    /// Moves the clock by this many seconds.
    Wait(u8),
    /// Starts a sign-in.
    Begin,
    /// Submits the code of the current step (or of `offset` steps away, -2..=2).
    Code(i8),
    /// Submits a wrong code.
    Wrong,
    /// Submits the last code that was accepted again.
    Replay,
    /// Starts enrolling an authenticator app (with the step-up token, if any).
    EnrollBegin,
    /// Confirms it with the code of the current step, or a wrong one.
    EnrollConfirm(bool),
    /// Removes the authenticator app.
    Remove,
}

/// The clock the engine reads through the host's `now` callback.
unsafe extern "C" fn now(user_data: *mut c_void, out: *mut u64) -> i32 {
    // SAFETY: user_data is the `u64` the harness owns for the engine's life.
    unsafe { *out = *(user_data as *const u64) };
    0
}

/// Every audit event must be a JSON object naming its kind and user (an invariant: a malformed
/// event would reach a host's security log).
unsafe extern "C" fn emit_event(_user_data: *mut c_void, event_json: *const c_char) {
    // SAFETY: the library passes a NUL-terminated string valid for the call.
    let text = unsafe { CStr::from_ptr(event_json) }.to_str().expect("event JSON is UTF-8");
    let event: Value = serde_json::from_str(text).expect("event JSON parses");
    assert!(event["kind"].is_string() && event["user"] == "u", "malformed event {text}");
}

/// The harness: engine, store, clock and what the invariants remember.
struct Harness {
    engine: *mut twofa_engine,
    store: *mut twofa_store,
    clock: Box<u64>,
    challenge: Option<CString>,
    step_up: Option<CString>,
    /// The pending enrolment's secret; the confirmed app's secret.
    pending: Option<String>,
    secret: Option<String>,
    accepted: HashSet<(String, u64)>,
    last_accepted: Option<String>,
}

/// A C call returning JSON: Ok(result) or Err(status).
fn json(status: twofa_status, out: *mut c_char, err: *mut twofa_error) -> Result<Value, twofa_status> {
    // SAFETY: libtwofa's contract: a JSON string on success, an error object (or NULL) otherwise.
    unsafe {
        twofa_error_free(err);
        if status != TWOFA_OK {
            assert!(out.is_null(), "an out-parameter was set on failure");
            return Err(status);
        }
        let value = serde_json::from_str(CStr::from_ptr(out).to_str().expect("UTF-8")).expect("a JSON result");
        twofa_string_free(out);
        Ok(value)
    }
}

fn c(s: &str) -> CString {
    CString::new(s).expect("no NUL")
}

/// The user of [`twofa_fuzz::enrolled_record`], which every sequence starts from.
const USER: &CStr = c"u";

impl Harness {
    fn new() -> Harness {
        let mut clock = Box::new(twofa_fuzz::T0);
        let host = twofa_host {
            user_data: (&mut *clock as *mut u64).cast(),
            store_get: None,
            store_put: None,
            store_delete: None,
            send_mail: None,
            now: Some(now),
            emit_event: Some(emit_event),
        };
        let config = c(&serde_json::to_string(&twofa_fuzz::config()).expect("config JSON"));
        let (mut store, mut engine, mut err) = (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
        // SAFETY: valid arguments; the clock outlives the engine (both live in the harness).
        unsafe {
            assert_eq!(twofa_store_new_memory(&mut store, &mut err), TWOFA_OK);
            assert_eq!(twofa_engine_new_with_store(config.as_ptr(), store, &host, &mut engine, &mut err), TWOFA_OK);
        }
        // The user starts with a confirmed authenticator app, enrolled at `at` (a used step).
        let (record, secret, step_up, at) = twofa_fuzz::enrolled_record();
        let mut version = 0;
        // SAFETY: valid handle, key and bytes.
        unsafe {
            let put =
                twofa_store_put(store, c"user/u".as_ptr(), record.as_ptr(), record.len(), 0, &mut version, &mut err);
            assert_eq!(put, TWOFA_OK);
        }
        *clock = at;
        Harness {
            engine,
            store,
            clock,
            challenge: None,
            step_up: Some(c(step_up)),
            pending: None,
            secret: Some(secret.to_string()),
            accepted: HashSet::from([(secret.to_string(), at / 30)]),
            last_accepted: None,
        }
    }

    /// The stored record's failure count (0 without a record).
    fn stored_failures(&self) -> u64 {
        let (mut bytes, mut len, mut version, mut err) = (ptr::null_mut(), 0, 0, ptr::null_mut());
        // SAFETY: valid handle and out-parameters; the bytes are freed below.
        unsafe {
            assert_eq!(
                twofa_store_get(self.store, c"user/u".as_ptr(), &mut bytes, &mut len, &mut version, &mut err),
                TWOFA_OK
            );
            if version == 0 {
                return 0;
            }
            let record: Value = serde_json::from_slice(std::slice::from_raw_parts(bytes, len)).expect("a JSON record");
            twofa_bytes_free(bytes, len);
            record["failures"].as_u64().unwrap_or(0)
        }
    }

    fn code_at(&self, secret: &str, offset: i64) -> String {
        twofa_fuzz::totp_code(secret, self.clock.saturating_add_signed(offset * 30))
    }

    /// `login_verify` of a TOTP `code` on the open challenge (None without one).
    fn submit(&self, code: &str) -> Option<Result<Value, twofa_status>> {
        let challenge = self.challenge.as_ref()?;
        let (mut out, mut err) = (ptr::null_mut(), ptr::null_mut());
        let code = c(code);
        // SAFETY: valid engine and NUL-terminated strings.
        let status = unsafe {
            twofa_login_verify(
                self.engine,
                USER.as_ptr(),
                challenge.as_ptr(),
                c"totp".as_ptr(),
                code.as_ptr(),
                &mut out,
                &mut err,
            )
        };
        Some(json(status, out, err))
    }

    /// Submits `code` to the open challenge; records an acceptance (checking it is the first for
    /// its step) and returns whether it signed in.
    fn verify(&mut self, code: &str, step: Option<u64>) -> bool {
        let Some(result) = self.submit(code) else { return false };
        match result {
            Ok(result) => {
                let step = step.expect("only a code of the window can sign in");
                let secret = self.secret.clone().expect("a confirmed app");
                assert!(self.accepted.insert((secret, step)), "a time step was accepted twice");
                self.last_accepted = Some(code.to_string());
                self.step_up = result["step_up"]["token"].as_str().map(c);
                self.challenge = None;
                true
            }
            Err(_) => false,
        }
    }

    fn run(&mut self, step: Step) {
        let before = self.stored_failures();
        let mut succeeded = false;
        match step {
            Step::Wait(secs) => *self.clock += u64::from(secs),
            Step::Begin => {
                let (mut out, mut err) = (ptr::null_mut(), ptr::null_mut());
                // SAFETY: valid engine and strings.
                let status = unsafe { twofa_login_begin(self.engine, USER.as_ptr(), &mut out, &mut err) };
                if let Ok(result) = json(status, out, err) {
                    self.challenge = result["challenge_id"].as_str().map(c);
                }
            }
            Step::Code(offset) => {
                if let Some(secret) = self.secret.clone() {
                    let offset = i64::from(offset.clamp(-2, 2));
                    let step = (*self.clock / 30).saturating_add_signed(offset);
                    let code = self.code_at(&secret, offset);
                    succeeded = self.verify(&code, Some(step));
                    let window: Vec<String> = (-1..=1).map(|o| self.code_at(&secret, o)).collect();
                    assert!(!succeeded || window.contains(&code), "a code outside the window signed in");
                }
            }
            Step::Wrong => {
                let wrong = match &self.secret {
                    Some(secret) => {
                        let window: Vec<String> = (-1..=1).map(|o| self.code_at(secret, o)).collect();
                        (0..1_000_000).map(|n| format!("{n:06}")).find(|w| !window.contains(w)).expect("a wrong code")
                    }
                    None => "000000".into(),
                };
                succeeded = self.verify(&wrong, None);
            }
            Step::Replay => {
                if let Some(code) = self.last_accepted.clone() {
                    // The same code may belong to a later step (codes repeat); only a fresh step
                    // may sign in, which `verify` would catch next time.
                    if let Some(Ok(_)) = self.submit(&code) {
                        let secret = self.secret.clone().expect("a confirmed app");
                        let fresh = (-1..=1).any(|o| {
                            let step = (*self.clock / 30).saturating_add_signed(o);
                            self.code_at(&secret, o) == code && !self.accepted.contains(&(secret.clone(), step))
                        });
                        assert!(fresh, "a replayed code signed in");
                        self.challenge = None;
                        succeeded = true;
                    }
                }
            }
            Step::EnrollBegin => {
                let token = self.step_up.as_ref().map_or(ptr::null(), |t| t.as_ptr());
                let (mut out, mut err) = (ptr::null_mut(), ptr::null_mut());
                // SAFETY: valid engine and strings (token NULL or NUL-terminated).
                let status = unsafe {
                    twofa_totp_enroll_begin(
                        self.engine,
                        USER.as_ptr(),
                        c"fuzz@example.com".as_ptr(),
                        token,
                        &mut out,
                        &mut err,
                    )
                };
                if let Ok(result) = json(status, out, err) {
                    self.pending = result["secret"].as_str().map(str::to_string);
                }
            }
            Step::EnrollConfirm(right) => {
                let code = match (&self.pending, right) {
                    (Some(secret), true) => self.code_at(secret, 0),
                    _ => "999999".into(),
                };
                let token = self.step_up.as_ref().map_or(ptr::null(), |t| t.as_ptr());
                let (mut out, mut err) = (ptr::null_mut(), ptr::null_mut());
                // SAFETY: as above.
                let status = unsafe {
                    twofa_totp_enroll_confirm(self.engine, USER.as_ptr(), c(&code).as_ptr(), token, &mut out, &mut err)
                };
                if let Ok(result) = json(status, out, err) {
                    let secret = self.pending.take().expect("a confirmation without a pending enrolment succeeded");
                    assert_eq!(self.code_at(&secret, 0), code, "a wrong enrolment code was accepted");
                    assert!(self.accepted.insert((secret.clone(), *self.clock / 30)), "a time step was accepted twice");
                    self.secret = Some(secret);
                    if let Some(token) = result["step_up"]["token"].as_str() {
                        self.step_up = Some(c(token));
                    }
                    succeeded = true;
                }
            }
            Step::Remove => {
                let token = self.step_up.as_ref().map_or(ptr::null(), |t| t.as_ptr());
                let (mut out, mut err) = (ptr::null_mut(), ptr::null_mut());
                // SAFETY: as above.
                let status = unsafe {
                    twofa_remove_method(self.engine, USER.as_ptr(), c"totp-1".as_ptr(), token, &mut out, &mut err)
                };
                if json(status, out, err).is_ok() {
                    self.secret = None;
                }
            }
        }
        let after = self.stored_failures();
        assert!(after >= before || succeeded, "the failure count went from {before} to {after} without a success");
        self.check_listing();
    }

    /// The Security tab lists an authenticator app exactly when one was confirmed and not removed.
    fn check_listing(&self) {
        let (mut out, mut err) = (ptr::null_mut(), ptr::null_mut());
        // SAFETY: valid engine and strings.
        let status = unsafe { twofa_security_status(self.engine, USER.as_ptr(), &mut out, &mut err) };
        let status = json(status, out, err).expect("security_status");
        let listed = status["methods"].as_array().expect("methods").iter().any(|m| m["kind"] == "totp");
        assert_eq!(listed, self.secret.is_some(), "the listing disagrees with what was confirmed");
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // SAFETY: both from this harness, freed once.
        unsafe {
            twofa_engine_free(self.engine);
            twofa_store_free(self.store);
        }
    }
}

fuzz_target!(|steps: Vec<Step>| {
    let mut harness = Harness::new();
    for step in steps.into_iter().take(64) {
        harness.run(step);
    }
});
