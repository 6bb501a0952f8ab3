//! libtwofa: the C ABI of twofa.
//!
//! Every export follows the same rules (rustls-ffi's conventions):
//! - it returns a `twofa_status` (0 = `TWOFA_OK`, otherwise one of the core's stable error codes),
//!   except the `*_free` functions and the few infallible getters;
//! - out-parameters are written only on success; structured results are UTF-8 JSON strings the
//!   caller releases with `twofa_string_free`;
//! - on failure, `*err` (when `err` is not NULL) receives a `twofa_error` to release with
//!   `twofa_error_free`, and the message is also kept for `twofa_last_error_message()`;
//! - NULL pointers (except where documented as optional), invalid UTF-8, oversized inputs and
//!   malformed JSON give `TWOFA_INVALID_INPUT` and change nothing;
//! - the body runs inside a panic guard: a panic becomes `TWOFA_PANIC`, never an unwind into C;
//! - handles are safe to share between threads; `*_free(NULL)` is a no-op.
#![allow(non_camel_case_types)]
#![deny(missing_docs)]

mod conformance;
mod engine;
mod error;
mod guard;
mod host;
mod operation;
mod store;

pub use conformance::*;
pub use engine::*;
pub use error::*;
pub use guard::twofa_testing_force_panics;
pub use host::*;
pub use operation::*;
pub use store::*;

use std::ffi::{CStr, CString, c_char};

/// The version of libtwofa, e.g. "0.1.0" (a static string: never free it).
#[unsafe(no_mangle)]
pub extern "C" fn twofa_version() -> *const c_char {
    static VERSION: &CStr = match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(v) => v,
        Err(_) => c"unknown",
    };
    guard::guard_value(std::ptr::null(), || VERSION.as_ptr())
}

/// Releases a string returned by libtwofa. NULL is a no-op.
///
/// # Safety
/// `s` must be NULL or a string returned by libtwofa that was not freed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_string_free(s: *mut c_char) {
    guard::guard_value((), || {
        if !s.is_null() {
            // SAFETY: per the contract, `s` came from `CString::into_raw` in this library.
            drop(unsafe { CString::from_raw(s) });
        }
    })
}

/// Largest accepted string argument (bytes), unless a parameter documents its own cap.
pub const TWOFA_MAX_INPUT: usize = 65_536;
/// Largest accepted config JSON (bytes).
pub const TWOFA_MAX_CONFIG: usize = 1_048_576;
/// Largest accepted admin request JSON (bytes): room for an `import_user` document of
/// `TWOFA_MAX_CONFIG` bytes, escaped.
pub const TWOFA_MAX_ADMIN_REQUEST: usize = 3_145_728;
