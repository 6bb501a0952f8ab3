//! Status codes and structured errors.

use std::cell::{Cell, RefCell};
use std::ffi::{CStr, CString, c_char};
use twofa_core::Error;

/// The result of every fallible call: `TWOFA_OK` (0) or one of the error codes below. Read it as
/// an integer: new codes may appear; unknown ones mean failure.
pub type twofa_status = i32;

/// Success.
pub const TWOFA_OK: twofa_status = 0;
/// Malformed input: NULL, invalid UTF-8, oversized, bad JSON, a code of the wrong shape.
pub const TWOFA_INVALID_INPUT: twofa_status = 1;
/// A well-formed code that does not match (counted in the attempt budget).
pub const TWOFA_INVALID_CODE: twofa_status = 2;
/// The code, challenge, enrolment or token expired.
pub const TWOFA_EXPIRED: twofa_status = 3;
/// The code was already used.
pub const TWOFA_REPLAYED: twofa_status = 4;
/// Too soon: see `retry_after`.
pub const TWOFA_RATE_LIMITED: twofa_status = 5;
/// Too many failed attempts: see `retry_after`.
pub const TWOFA_LOCKED_OUT: twofa_status = 6;
/// No such method, pending enrolment or code.
pub const TWOFA_NOT_ENROLLED: twofa_status = 7;
/// A valid step-up token is required.
pub const TWOFA_STEP_UP_REQUIRED: twofa_status = 8;
/// Refused by policy.
pub const TWOFA_POLICY_VIOLATION: twofa_status = 9;
/// The challenge, method or user does not exist.
pub const TWOFA_NOT_FOUND: twofa_status = 10;
/// The browser's WebAuthn response failed a check.
pub const TWOFA_WEBAUTHN_REJECTED: twofa_status = 11;
/// The store (or a store callback) failed.
pub const TWOFA_STORAGE: twofa_status = 12;
/// Concurrent updates kept conflicting: retry.
pub const TWOFA_CONFLICT: twofa_status = 13;
/// Mail delivery of a one-time code failed.
pub const TWOFA_MAIL: twofa_status = 14;
/// The stored record comes from a newer twofa.
pub const TWOFA_UNSUPPORTED_SCHEMA: twofa_status = 15;
/// A panic was caught; the call may have stopped before or after its write: read the state again.
pub const TWOFA_PANIC: twofa_status = 16;
/// An internal error.
pub const TWOFA_INTERNAL: twofa_status = 17;
/// The handle lacks a capability: an admin handle needs `"admin": true` in its engine's config.
pub const TWOFA_FORBIDDEN: twofa_status = 18;

/// A structured error, allocated by libtwofa; release it with `twofa_error_free`.
#[repr(C)]
pub struct twofa_error {
    /// The status code (never `TWOFA_OK`).
    pub code: twofa_status,
    /// The snake_case name of the code, e.g. "invalid_code" (static; do not free).
    pub name: *const c_char,
    /// A human-readable message without secrets (owned by this struct).
    pub message: *mut c_char,
    /// Seconds to wait for `TWOFA_RATE_LIMITED` and `TWOFA_LOCKED_OUT`, else 0.
    pub retry_after: u64,
    /// The host callback that failed ("store.get", "store.put", "store.delete", "send_mail",
    /// "now"), or NULL (static; do not free).
    pub callback: *const c_char,
}

thread_local! {
    /// Per kind of callback (store, mail, clock), the last one that failed during this call.
    static FAILED_CALLBACKS: Cell<[Option<&'static CStr>; 3]> = const { Cell::new([None; 3]) };
    static LAST_MESSAGE: RefCell<CString> = RefCell::new(CString::default());
}

/// The slot of a callback: 0 store, 1 mail, 2 clock.
fn slot(name: &CStr) -> usize {
    match name.to_bytes() {
        b"send_mail" => 1,
        b"now" => 2,
        _ => 0,
    }
}

/// Remembers, for this thread's current call, that a host callback failed. The error reported
/// names the callback of its own kind: a storage error the store callback, a mail error
/// `send_mail`, a clock failure `now`.
pub(crate) fn note_failed_callback(name: &'static CStr) {
    FAILED_CALLBACKS.with(|c| {
        let mut all = c.get();
        all[slot(name)] = Some(name);
        c.set(all);
    });
}

/// Clears the notes at the start of a call.
pub(crate) fn clear_failed_callback() {
    FAILED_CALLBACKS.with(|c| c.set([None; 3]));
}

/// An error on its way to C.
#[derive(Debug)]
pub(crate) struct Failure {
    error: Error,
    callback: Option<&'static CStr>,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        let kind = match error {
            Error::Storage(_) => Some(0),
            Error::Mail(_) => Some(1),
            Error::Internal(_) => Some(2),
            _ => None,
        };
        let callback = kind.and_then(|k| FAILED_CALLBACKS.with(|c| c.get()[k]));
        Failure { error, callback }
    }
}

/// A `TWOFA_INVALID_INPUT` failure.
pub(crate) fn invalid(what: impl Into<String>) -> Failure {
    Failure::from(Error::InvalidInput(what.into()))
}

fn code_name(code: twofa_status) -> &'static CStr {
    const NAMES: [&CStr; 19] = [
        c"ok",
        c"invalid_input",
        c"invalid_code",
        c"expired",
        c"replayed",
        c"rate_limited",
        c"locked_out",
        c"not_enrolled",
        c"step_up_required",
        c"policy_violation",
        c"not_found",
        c"webauthn_rejected",
        c"storage",
        c"conflict",
        c"mail",
        c"unsupported_schema",
        c"panic",
        c"internal",
        c"forbidden",
    ];
    usize::try_from(code).ok().and_then(|i| NAMES.get(i)).copied().unwrap_or(c"unknown")
}

fn c_string(s: String) -> CString {
    CString::new(s.replace('\0', " ")).unwrap_or_default()
}

impl Failure {
    /// Writes the error to `*err` (if given) and the thread's last message; returns its code.
    pub(crate) fn report(self, err: *mut *mut twofa_error) -> twofa_status {
        let code = self.error.code() as twofa_status;
        let mut message = self.error.to_string();
        if let Some(cb) = self.callback {
            message = format!("{message} (callback {})", cb.to_string_lossy());
        }
        LAST_MESSAGE.with(|m| *m.borrow_mut() = c_string(message.clone()));
        if !err.is_null() {
            let boxed = Box::new(twofa_error {
                code,
                name: code_name(code).as_ptr(),
                message: c_string(message).into_raw(),
                retry_after: self.error.retry_after().unwrap_or(0),
                callback: self.callback.map_or(std::ptr::null(), CStr::as_ptr),
            });
            // SAFETY: `err` is non-NULL and, per every export's contract, points to writable memory.
            unsafe { *err = Box::into_raw(boxed) };
        }
        code
    }
}

/// Releases an error. NULL is a no-op.
///
/// # Safety
/// `err` must be NULL or an error returned by libtwofa that was not freed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_error_free(err: *mut twofa_error) {
    crate::guard::guard_value((), || {
        if err.is_null() {
            return;
        }
        // SAFETY: per the contract, `err` came from `Box::into_raw` in `Failure::report`.
        let boxed = unsafe { Box::from_raw(err) };
        if !boxed.message.is_null() {
            // SAFETY: `message` came from `CString::into_raw`.
            drop(unsafe { CString::from_raw(boxed.message) });
        }
    })
}

/// The message of the last error on this thread ("" if none). Valid until the next libtwofa
/// call on this thread; do not free.
#[unsafe(no_mangle)]
pub extern "C" fn twofa_last_error_message() -> *const c_char {
    crate::guard::guard_value(c"".as_ptr(), || LAST_MESSAGE.with(|m| m.borrow().as_ptr()))
}

/// The snake_case name of a status code, e.g. "locked_out" ("unknown" for codes this version
/// does not know). Static; do not free.
#[unsafe(no_mangle)]
pub extern "C" fn twofa_status_name(code: twofa_status) -> *const c_char {
    crate::guard::guard_value(c"unknown".as_ptr(), || code_name(code).as_ptr())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_of_the_core_has_its_name_and_constant() {
        for (code, name) in Error::ALL {
            let code = twofa_status::try_from(code).unwrap_or(-1);
            assert_eq!(code_name(code).to_bytes(), name.as_bytes(), "code {code}");
        }
        assert_eq!(code_name(TWOFA_FORBIDDEN).to_bytes(), b"forbidden");
        assert_eq!(code_name(TWOFA_FORBIDDEN + 1).to_bytes(), b"unknown");
    }
}
