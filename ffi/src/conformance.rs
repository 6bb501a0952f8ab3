//! The store conformance suite as a sans-IO session, for hosts whose store is asynchronous
//! (`twofa_check_store` needs callbacks that answer synchronously).
//!
//! ```c
//! twofa_conformance *c;
//! twofa_conformance_new(&c, &err);
//! twofa_action a;
//! uint64_t id;
//! while (twofa_conformance_next(c, &a, &id, &err) == TWOFA_OK && a.kind != TWOFA_ACTION_DONE) {
//!     if (a.kind == TWOFA_ACTION_WAIT) { /* answer one of the outstanding actions */ continue; }
//!     /* start a.kind on a.key (copy what you need now), later answer it under id with
//!        twofa_conformance_feed_load / _feed_write / _feed_delete */
//! }
//! twofa_conformance_finish(c, &json, &err);   /* {"passed":[...]} or the failed check */
//! twofa_conformance_free(c);
//! ```

use crate::error::{Failure, invalid, twofa_error};
use crate::guard::{guard, guard_value};
use crate::operation::{TWOFA_ACTION_DONE, delete_feedback, describe, load_feedback, twofa_action, write_feedback};
use crate::twofa_status;
use std::ffi::{CString, c_char};
use twofa_core::store::conformance::{Next, Session};
use twofa_core::{Action, Feedback};

/// Nothing new can happen until an outstanding action is answered: feed one, then call
/// `twofa_conformance_next` again (conformance sessions only).
pub const TWOFA_ACTION_WAIT: i32 = 5;

/// A store conformance run driven by the host. Not thread-safe: call it from one thread at a
/// time (the actions it hands out may be performed concurrently).
pub struct twofa_conformance {
    session: Session,
    /// The last action handed out, which `twofa_action` points into (valid until the next call).
    current: Action,
    /// NUL-terminated copies of its strings.
    strings: Vec<CString>,
}

/// Starts a conformance run: the same suite as `twofa_check_store`, on a background thread,
/// whose store calls are handed to the host as actions.
///
/// # Safety
/// `out` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_conformance_new(
    out: *mut *mut twofa_conformance,
    err: *mut *mut twofa_error,
) -> twofa_status {
    guard(err, || {
        if out.is_null() {
            return Err(invalid("out is NULL"));
        }
        let session = Session::start().map_err(|f| Failure::from(twofa_core::Error::Internal(f.message)))?;
        // SAFETY: checked non-NULL.
        unsafe {
            *out = Box::into_raw(Box::new(twofa_conformance { session, current: Action::Done, strings: Vec::new() }))
        };
        Ok(())
    })
}

/// The next thing to do, in `*out` (kind LOAD, WRITE or DELETE with `*out_id` to answer it
/// under; WAIT; or DONE). Pointers in `*out` stay valid until the next call on `c`. Blocks only
/// while the suite computes, never for the host's I/O.
///
/// # Safety
/// `c` valid; `out` and `out_id` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_conformance_next(
    c: *mut twofa_conformance,
    out: *mut twofa_action,
    out_id: *mut u64,
    err: *mut *mut twofa_error,
) -> twofa_status {
    guard(err, || {
        // SAFETY: NULL or valid per the contract.
        let c = unsafe { c.as_mut() }.ok_or_else(|| invalid("c is NULL"))?;
        if out.is_null() || out_id.is_null() {
            return Err(invalid("out or out_id is NULL"));
        }
        let (id, kind) = match c.session.next_action() {
            Next::Action { id, action } => {
                c.current = action;
                (id, None)
            }
            Next::Wait => (0, Some(TWOFA_ACTION_WAIT)),
            Next::Done => (0, Some(TWOFA_ACTION_DONE)),
        };
        if kind.is_some() {
            c.current = Action::Done;
        }
        let mut action = describe(&c.current, &mut c.strings);
        action.kind = kind.unwrap_or(action.kind);
        // SAFETY: checked non-NULL.
        unsafe { (*out, *out_id) = (action, id) };
        Ok(())
    })
}

fn feed(c: *mut twofa_conformance, id: u64, feedback: impl FnOnce() -> Result<Feedback, Failure>) -> twofa_status {
    guard(std::ptr::null_mut(), || {
        // SAFETY: NULL or valid per the contract.
        let c = unsafe { c.as_mut() }.ok_or_else(|| invalid("c is NULL"))?;
        if !c.session.feed(id, feedback()?) {
            return Err(invalid(format!("no outstanding action has id {id}")));
        }
        Ok(())
    })
}

/// Answers the LOAD `id` as `twofa_operation_feed_load` answers an operation's.
///
/// # Safety
/// `c` valid; `bytes` points to `len` bytes (or NULL with 0); `message` NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_conformance_feed_load(
    c: *mut twofa_conformance,
    id: u64,
    rc: i32,
    message: *const c_char,
    bytes: *const u8,
    len: usize,
    version: u64,
) -> twofa_status {
    // SAFETY: forwarded contract.
    feed(c, id, || unsafe { load_feedback(rc, message, bytes, len, version) })
}

/// Answers the WRITE `id` with the new version (not 0) on success.
///
/// # Safety
/// `c` valid; `message` NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_conformance_feed_write(
    c: *mut twofa_conformance,
    id: u64,
    rc: i32,
    message: *const c_char,
    new_version: u64,
) -> twofa_status {
    feed(c, id, || write_feedback(rc, message, new_version))
}

/// Answers the DELETE `id`.
///
/// # Safety
/// `c` valid; `message` NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_conformance_feed_delete(
    c: *mut twofa_conformance,
    id: u64,
    rc: i32,
    message: *const c_char,
) -> twofa_status {
    feed(c, id, || Ok(delete_feedback(rc, message)))
}

/// The result once `twofa_conformance_next` said DONE: `TWOFA_OK` with `{"passed":[...]}` in
/// `*out_json`, or `TWOFA_STORAGE` naming the failed check.
///
/// # Safety
/// `c` valid; `out_json` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_conformance_finish(
    c: *mut twofa_conformance,
    out_json: *mut *mut c_char,
    err: *mut *mut twofa_error,
) -> twofa_status {
    guard(err, || {
        // SAFETY: NULL or valid per the contract.
        let c = unsafe { c.as_mut() }.ok_or_else(|| invalid("c is NULL"))?;
        if out_json.is_null() {
            return Err(invalid("out_json is NULL"));
        }
        let result = c.session.finish().ok_or_else(|| invalid("the run is not done (or was finished)"))?;
        let json = crate::host::report_json(result)?;
        // SAFETY: checked non-NULL.
        unsafe { *out_json = json };
        Ok(())
    })
}

/// Frees a conformance run (a run still in progress stops at its next store call). NULL is a
/// no-op.
///
/// # Safety
/// `c` NULL or from `twofa_conformance_new`, not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_conformance_free(c: *mut twofa_conformance) {
    guard_value((), || {
        if !c.is_null() {
            // SAFETY: per the contract it came from Box::into_raw.
            drop(unsafe { Box::from_raw(c) });
        }
    })
}
