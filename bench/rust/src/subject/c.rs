//! The C surface: the `extern "C"` functions of libtwofa (the `twofa` rlib of `twofa-ffi`),
//! called as a C host calls them (see `include/twofa.h`).
//!
//! The host's `now` callback reads the subject's clock and `send_mail` keeps the last message.
//! Timed calls include what a C host cannot avoid: making C strings of the arguments, and
//! copying and freeing (`twofa_string_free`) the JSON reply; `login_begin` also reads the
//! challenge out of its reply.

use std::ffi::{CStr, CString, c_char, c_void};
use std::path::Path;
use std::ptr::{null, null_mut};
use std::sync::{Mutex, PoisonError};

use twofa::{
    TWOFA_CALLBACK_OK, TWOFA_OK, twofa_admin, twofa_admin_free, twofa_admin_new, twofa_admin_totp_import,
    twofa_email_enroll_begin, twofa_email_enroll_confirm, twofa_engine, twofa_engine_free, twofa_engine_new_memory,
    twofa_engine_new_sqlite, twofa_host, twofa_last_error_message, twofa_login_begin, twofa_login_send_email_code,
    twofa_login_verify, twofa_status, twofa_status_name, twofa_string_free, twofa_webauthn_register_begin,
    twofa_webauthn_register_finish,
};
use twofa_core::{Config, Proof};
use twofa_wasmtime_host::VirtualClock;

use super::{Challenge, Mail, Subject};

/// An engine of the C ABI with its host callbacks' state.
pub struct CAbi {
    /// The engine handle.
    engine: *mut twofa_engine,
    /// What the callbacks reach through `user_data`; boxed so its address is stable, and kept
    /// until the engine is freed.
    host: Box<HostState>,
}

/// The state behind the host callbacks.
struct HostState {
    /// What `now` reads.
    clock: VirtualClock,
    /// The plain-text body of the last message sent.
    mail: Mutex<Option<String>>,
}

/// `now`: the subject's clock.
unsafe extern "C" fn now(user_data: *mut c_void, out_unix: *mut u64) -> i32 {
    // SAFETY: `user_data` is the `HostState` of a live `CAbi`; `out_unix` is writable.
    unsafe { *out_unix = (*user_data.cast::<HostState>()).clock.get() };
    TWOFA_CALLBACK_OK
}

/// `send_mail`: keeps the plain-text body.
unsafe extern "C" fn send_mail(
    user_data: *mut c_void,
    _to: *const c_char,
    _subject: *const c_char,
    text: *const c_char,
    _html: *const c_char,
) -> i32 {
    // SAFETY: `user_data` is the `HostState` of a live `CAbi`; `text` is a C string valid
    // during the call.
    let (host, text) = unsafe { (&*user_data.cast::<HostState>(), CStr::from_ptr(text)) };
    *host.mail.lock().unwrap_or_else(PoisonError::into_inner) = Some(text.to_string_lossy().into_owned());
    TWOFA_CALLBACK_OK
}

/// A C string of `s` (the benchmark's strings never hold NUL).
fn c(s: &str) -> CString {
    CString::new(s).expect("no NUL in arguments")
}

/// The name of a status code, e.g. `invalid_code`.
fn status_name(status: twofa_status) -> &'static str {
    // SAFETY: libtwofa returns a static C string.
    unsafe { CStr::from_ptr(twofa_status_name(status)) }.to_str().unwrap_or("unknown")
}

/// Panics with the status name and libtwofa's last error message.
fn fail(what: &str, status: twofa_status) -> ! {
    // SAFETY: libtwofa returns a C string valid until its next call on this thread.
    let message = unsafe { CStr::from_ptr(twofa_last_error_message()) }.to_string_lossy();
    panic!("{what}: {} ({message})", status_name(status))
}

/// Calls an export that answers JSON in `out_json`: its reply (copied, then freed with
/// `twofa_string_free`), or the status on failure.
fn call(export: impl FnOnce(*mut *mut c_char) -> twofa_status) -> Result<String, twofa_status> {
    let mut out: *mut c_char = null_mut();
    let status = export(&mut out);
    if status != TWOFA_OK {
        return Err(status);
    }
    // SAFETY: on success libtwofa wrote a C string it owns to `out`; freed once, here.
    let json = unsafe { CStr::from_ptr(out) }.to_string_lossy().into_owned();
    unsafe { twofa_string_free(out) };
    Ok(json)
}

/// [`call`] for set-up steps: panics on failure.
fn expect(what: &str, export: impl FnOnce(*mut *mut c_char) -> twofa_status) -> String {
    call(export).unwrap_or_else(|status| fail(what, status))
}

impl CAbi {
    /// `twofa_engine_new_memory`.
    pub fn memory(config: &Config, clock: VirtualClock) -> CAbi {
        CAbi::open(config, clock, |config_json, host, out| {
            // SAFETY: valid C strings and pointers, per the header.
            unsafe { twofa_engine_new_memory(config_json, host, out, null_mut()) }
        })
    }

    /// `twofa_engine_new_sqlite` on the file at `path`.
    pub fn sqlite(config: &Config, path: &Path, clock: VirtualClock) -> CAbi {
        let path = c(path.to_str().expect("a UTF-8 temporary path"));
        CAbi::open(config, clock, |config_json, host, out| {
            // SAFETY: valid C strings and pointers, per the header.
            unsafe { twofa_engine_new_sqlite(config_json, path.as_ptr(), host, out, null_mut()) }
        })
    }

    /// Opens an engine of `config` (as JSON) with callbacks reading `clock` and keeping mail.
    fn open(
        config: &Config,
        clock: VirtualClock,
        open: impl FnOnce(*const c_char, *const twofa_host, *mut *mut twofa_engine) -> twofa_status,
    ) -> CAbi {
        let config_json = c(&serde_json::to_string(config).expect("a config serialises"));
        let host = Box::new(HostState { clock, mail: Mutex::new(None) });
        let callbacks = twofa_host {
            user_data: (&*host as *const HostState).cast_mut().cast(),
            store_get: None,
            store_put: None,
            store_delete: None,
            send_mail: Some(send_mail),
            now: Some(now),
            emit_event: None,
        };
        let mut engine = null_mut();
        let status = open(config_json.as_ptr(), &callbacks, &mut engine);
        if status != TWOFA_OK {
            fail("twofa_engine_new", status);
        }
        CAbi { engine, host }
    }
}

impl Drop for CAbi {
    fn drop(&mut self) {
        // SAFETY: the engine came from `twofa_engine_new_*` and is freed once; no call is running.
        unsafe { twofa_engine_free(self.engine) };
    }
}

impl Subject for CAbi {
    fn clock(&self) -> &VirtualClock {
        &self.host.clock
    }

    fn totp_import(&mut self, user: &str, secret: &str) {
        let mut admin: *mut twofa_admin = null_mut();
        // SAFETY: a live engine and a writable out-pointer.
        let status = unsafe { twofa_admin_new(self.engine, &mut admin, null_mut()) };
        if status != TWOFA_OK {
            fail("twofa_admin_new", status);
        }
        let (user, secret) = (c(user), c(secret));
        expect("twofa_admin_totp_import", |out| {
            // SAFETY: a live admin, C strings and a writable out-pointer.
            unsafe {
                twofa_admin_totp_import(admin, user.as_ptr(), secret.as_ptr(), c"SHA1".as_ptr(), 6, 30, out, null_mut())
            }
        });
        // SAFETY: from `twofa_admin_new`, freed once.
        unsafe { twofa_admin_free(admin) };
    }

    fn webauthn_register_begin(&mut self, user: &str) -> String {
        let user = c(user);
        let reply = expect("twofa_webauthn_register_begin", |out| {
            // SAFETY: a live engine, C strings (the step-up token may be NULL) and an out-pointer.
            unsafe {
                twofa_webauthn_register_begin(
                    self.engine,
                    user.as_ptr(),
                    c"fixture key".as_ptr(),
                    null(),
                    out,
                    null_mut(),
                )
            }
        });
        let reply: serde_json::Value = serde_json::from_str(&reply).expect("a JSON reply");
        reply["options_json"].as_str().expect("options_json in the reply").to_string()
    }

    fn webauthn_register_finish(&mut self, user: &str, credential_json: &str) {
        let (user, credential) = (c(user), c(credential_json));
        expect("twofa_webauthn_register_finish", |out| {
            // SAFETY: a live engine, C strings (the step-up token may be NULL) and an out-pointer.
            unsafe {
                twofa_webauthn_register_finish(self.engine, user.as_ptr(), credential.as_ptr(), null(), out, null_mut())
            }
        });
    }

    fn login_begin(&mut self, user: &str) -> Challenge {
        let user = c(user);
        let reply = expect("twofa_login_begin", |out| {
            // SAFETY: a live engine, a C string and an out-pointer.
            unsafe { twofa_login_begin(self.engine, user.as_ptr(), out, null_mut()) }
        });
        let reply: ChallengeReply = serde_json::from_str(&reply).expect("a challenge reply");
        Challenge {
            id: reply.challenge_id.expect("a challenge for a user with a second factor"),
            webauthn_options: reply.webauthn_options,
        }
    }

    fn login_verify(&mut self, user: &str, challenge: &str, proof: Proof) -> Result<(), &'static str> {
        let (kind, value) = match proof {
            Proof::Totp(code) => (c"totp", code),
            Proof::Email(code) => (c"email", code),
            Proof::Webauthn(json) => (c"webauthn", json),
            Proof::Recovery(code) => (c"recovery", code),
        };
        let (user, challenge, value) = (c(user), c(challenge), c(&value));
        call(|out| {
            // SAFETY: a live engine, C strings and an out-pointer.
            unsafe {
                twofa_login_verify(
                    self.engine,
                    user.as_ptr(),
                    challenge.as_ptr(),
                    kind.as_ptr(),
                    value.as_ptr(),
                    out,
                    null_mut(),
                )
            }
        })
        .map(drop)
        .map_err(status_name)
    }
}

/// The fields of a `{"type":"challenge",...}` reply the workloads use.
#[derive(serde::Deserialize)]
struct ChallengeReply {
    /// The challenge id (absent when no second factor is needed).
    challenge_id: Option<String>,
    /// The `navigator.credentials.get` options, for a user with a WebAuthn device.
    webauthn_options: Option<String>,
}

impl Mail for CAbi {
    fn email_enroll_begin(&mut self, user: &str, address: &str) {
        let (user, address) = (c(user), c(address));
        expect("twofa_email_enroll_begin", |out| {
            // SAFETY: a live engine, C strings (the step-up token may be NULL) and an out-pointer.
            unsafe { twofa_email_enroll_begin(self.engine, user.as_ptr(), address.as_ptr(), null(), out, null_mut()) }
        });
    }

    fn email_enroll_confirm(&mut self, user: &str, code: &str) {
        let (user, code) = (c(user), c(code));
        expect("twofa_email_enroll_confirm", |out| {
            // SAFETY: a live engine, C strings (the step-up token may be NULL) and an out-pointer.
            unsafe { twofa_email_enroll_confirm(self.engine, user.as_ptr(), code.as_ptr(), null(), out, null_mut()) }
        });
    }

    fn login_send_email_code(&mut self, user: &str, challenge: &str) {
        let (user, challenge) = (c(user), c(challenge));
        expect("twofa_login_send_email_code", |out| {
            // SAFETY: a live engine, C strings and an out-pointer.
            unsafe { twofa_login_send_email_code(self.engine, user.as_ptr(), challenge.as_ptr(), out, null_mut()) }
        });
    }

    fn take_mail(&mut self) -> String {
        self.host.mail.lock().unwrap_or_else(PoisonError::into_inner).take().expect("a message was sent")
    }
}
