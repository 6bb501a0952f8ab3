//! The sans-IO operation state machine, for hosts that perform their own (asynchronous) I/O.
//!
//! ```c
//! twofa_operation *op;
//! twofa_operation_new(core, "alice", "{\"op\":\"login_begin\"}", now, &op, &err);
//! twofa_action a;
//! while (twofa_operation_next(op, &a) == TWOFA_OK && a.kind != TWOFA_ACTION_DONE) {
//!     switch (a.kind) {
//!     case TWOFA_ACTION_LOAD:   /* get a.key */        twofa_operation_feed_load(op, rc, msg, bytes, len, version); break;
//!     case TWOFA_ACTION_WRITE:  /* put-if-version */   twofa_operation_feed_write(op, rc, msg, new_version); break;
//!     case TWOFA_ACTION_DELETE: /* delete-if-version */twofa_operation_feed_delete(op, rc, msg); break;
//!     case TWOFA_ACTION_SEND:   /* deliver a.to ... */ twofa_operation_feed_send(op, rc, msg); break;
//!     case TWOFA_ACTION_EMIT:   /* log a.event_json */ twofa_operation_feed_emitted(op, &err); break;
//!     }
//! }
//! twofa_operation_finish(op, &json, &err);
//! twofa_operation_free(op);
//! ```
//! `rc` is `TWOFA_CALLBACK_OK`, `TWOFA_CALLBACK_CONFLICT` (store compare-and-swap failed) or any
//! other value for a failure described by `msg` (may be NULL). The request JSON is the core's
//! `Request`, tagged by `"op"` (docs/c-api.md). The synchronous engine is this same machine
//! driven by the host callbacks.

use crate::engine::outcome_json;
use crate::error::{Failure, invalid, twofa_error};
use crate::guard::{guard, guard_value};
use crate::host::{TWOFA_CALLBACK_CONFLICT, TWOFA_CALLBACK_OK, opt_str_arg, str_arg};
use crate::{TWOFA_MAX_ADMIN_REQUEST, TWOFA_MAX_CONFIG, TWOFA_MAX_INPUT, twofa_status};
use ::twofa_core::store::{StoreError, Versioned};
use ::twofa_core::{Action, AdminRequest, Config, Core, Feedback, Operation, Request};
use std::ffi::{CString, c_char};
use std::sync::Arc;

/// A validated config with its derived keys: what operations are decided with. Thread-safe.
pub struct twofa_core {
    core: Arc<Core>,
}

/// One operation in progress. Not thread-safe: drive it from one thread at a time.
pub struct twofa_operation {
    op: Option<Operation>,
    /// NUL-terminated copies of the current action's strings (valid until the next call).
    strings: Vec<CString>,
}

/// The operation is finished: call `twofa_operation_finish`.
pub const TWOFA_ACTION_DONE: i32 = 0;
/// Read `key`; answer with `twofa_operation_feed_load`.
pub const TWOFA_ACTION_LOAD: i32 = 1;
/// Write `bytes`/`len` under `key` if its version is `expected_version` (0: insert only);
/// answer with `twofa_operation_feed_write`.
pub const TWOFA_ACTION_WRITE: i32 = 2;
/// Delete `key` if its version is `expected_version`; answer with `twofa_operation_feed_delete`.
pub const TWOFA_ACTION_DELETE: i32 = 3;
/// Deliver the message `to`, `subject`, `text`, `html`; answer with `twofa_operation_feed_send`.
pub const TWOFA_ACTION_SEND: i32 = 4;
/// Hand the audit event `event_json` (the core's SecurityEvent JSON, never a secret) to the
/// security log; answer with `twofa_operation_feed_emitted`. Events come after the change
/// committed, right after its WRITE (before the notices' SENDs); how the host handles them cannot
/// change the result.
/// (Value 5 is `TWOFA_ACTION_WAIT`, used by conformance sessions.)
pub const TWOFA_ACTION_EMIT: i32 = 6;

/// The next action. Pointers stay valid until the next call on the operation; unused fields
/// are NULL / 0.
#[repr(C)]
pub struct twofa_action {
    /// One of `TWOFA_ACTION_*`.
    pub kind: i32,
    /// The store key (LOAD, WRITE, DELETE).
    pub key: *const c_char,
    /// The bytes to write (WRITE).
    pub bytes: *const u8,
    /// Their length (WRITE).
    pub len: usize,
    /// The version the key must have (WRITE: 0 means insert only; DELETE).
    pub expected_version: u64,
    /// Recipient (SEND).
    pub to: *const c_char,
    /// Subject (SEND).
    pub subject: *const c_char,
    /// Plain-text body (SEND).
    pub text: *const c_char,
    /// HTML body (SEND).
    pub html: *const c_char,
    /// The audit event, SecurityEvent JSON such as
    /// `{"kind":"login_succeeded","user":"alice","at":1700000000,"method":"totp",...}` (EMIT).
    pub event_json: *const c_char,
}

/// Validates a config and derives its keys.
///
/// # Safety
/// `config_json` NUL-terminated; `out` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_core_new(
    config_json: *const c_char,
    out: *mut *mut twofa_core,
    err: *mut *mut twofa_error,
) -> twofa_status {
    guard(err, || {
        // SAFETY: forwarded contract.
        let json = unsafe { str_arg(config_json, "config_json", TWOFA_MAX_CONFIG) }?;
        if out.is_null() {
            return Err(invalid("out is NULL"));
        }
        let core = Core::new(Config::from_json(json)?)?;
        // SAFETY: checked non-NULL.
        unsafe { *out = Box::into_raw(Box::new(twofa_core { core })) };
        Ok(())
    })
}

/// Frees a core. NULL is a no-op; operations started from it keep working.
///
/// # Safety
/// `core` NULL or from `twofa_core_new`, not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_core_free(core: *mut twofa_core) {
    guard_value((), || {
        if !core.is_null() {
            // SAFETY: per the contract it came from Box::into_raw.
            drop(unsafe { Box::from_raw(core) });
        }
    })
}

/// Checks the arguments of an operation constructor and starts the operation `make` builds.
unsafe fn start(
    core: *const twofa_core,
    user: *const c_char,
    request_json: *const c_char,
    cap: usize,
    out: *mut *mut twofa_operation,
    err: *mut *mut twofa_error,
    make: impl FnOnce(Arc<Core>, &str, &str) -> Result<Operation, Failure>,
) -> twofa_status {
    guard(err, || {
        // SAFETY: NULL or valid per the contract.
        let core = unsafe { core.as_ref() }.ok_or_else(|| invalid("core is NULL"))?;
        // SAFETY: forwarded contract.
        let user = unsafe { str_arg(user, "user", 256) }?;
        // SAFETY: forwarded contract.
        let json = unsafe { str_arg(request_json, "request_json", cap) }?;
        if out.is_null() {
            return Err(invalid("out is NULL"));
        }
        let op = make(core.core.clone(), user, json)?;
        // SAFETY: checked non-NULL.
        unsafe { *out = Box::into_raw(Box::new(twofa_operation { op: Some(op), strings: Vec::new() })) };
        Ok(())
    })
}

/// Starts the operation `request_json` (e.g. `{"op":"login_verify","challenge":"...",
/// "proof":{"kind":"totp","value":"123456"}}`) for `user` at Unix time `now`.
///
/// # Safety
/// `core` valid; strings NUL-terminated; `out` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_operation_new(
    core: *const twofa_core,
    user: *const c_char,
    request_json: *const c_char,
    now: u64,
    out: *mut *mut twofa_operation,
    err: *mut *mut twofa_error,
) -> twofa_status {
    // SAFETY: forwarded contract.
    unsafe {
        start(core, user, request_json, TWOFA_MAX_INPUT, out, err, |core, user, json| {
            Ok(Operation::new(core, user, Request::from_json(json)?, now))
        })
    }
}

/// Starts the admin operation `request_json` (as `twofa_admin_run` takes it, at most
/// `TWOFA_MAX_ADMIN_REQUEST` bytes) for `user` at Unix time `now`: the sans-IO form of the
/// admin handle, for async admin tooling. The operation ends at once with `TWOFA_FORBIDDEN`
/// unless the core's config has `"admin": true`.
///
/// # Safety
/// As `twofa_operation_new`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_admin_operation_new(
    core: *const twofa_core,
    user: *const c_char,
    request_json: *const c_char,
    now: u64,
    out: *mut *mut twofa_operation,
    err: *mut *mut twofa_error,
) -> twofa_status {
    // SAFETY: forwarded contract.
    unsafe {
        start(core, user, request_json, TWOFA_MAX_ADMIN_REQUEST, out, err, |core, user, json| {
            Ok(Operation::admin(core, user, AdminRequest::from_json(json)?, now))
        })
    }
}

fn c(s: &str) -> CString {
    CString::new(s.replace('\0', " ")).unwrap_or_default()
}

/// The C view of `action`; its strings are kept in `strings` (replacing what was there).
pub(crate) fn describe(action: &Action, strings: &mut Vec<CString>) -> twofa_action {
    let mut a = twofa_action {
        kind: TWOFA_ACTION_DONE,
        key: std::ptr::null(),
        bytes: std::ptr::null(),
        len: 0,
        expected_version: 0,
        to: std::ptr::null(),
        subject: std::ptr::null(),
        text: std::ptr::null(),
        html: std::ptr::null(),
        event_json: std::ptr::null(),
    };
    strings.clear();
    match action {
        Action::Load { key } => {
            a.kind = TWOFA_ACTION_LOAD;
            strings.push(c(key));
        }
        Action::Write { key, bytes, expected } => {
            a.kind = TWOFA_ACTION_WRITE;
            strings.push(c(key));
            a.bytes = bytes.as_ptr();
            a.len = bytes.len();
            a.expected_version = expected.unwrap_or(0);
        }
        Action::Delete { key, expected } => {
            a.kind = TWOFA_ACTION_DELETE;
            strings.push(c(key));
            a.expected_version = *expected;
        }
        Action::Send { message } => {
            a.kind = TWOFA_ACTION_SEND;
            strings.extend([c(&message.to), c(&message.subject), c(&message.text), c(&message.html)]);
        }
        Action::Emit { event } => {
            a.kind = TWOFA_ACTION_EMIT;
            // SecurityEvent holds only strings, numbers and enums: serialising cannot fail.
            strings.push(c(&serde_json::to_string(event).unwrap_or_default()));
        }
        Action::Done => {}
    }
    match a.kind {
        TWOFA_ACTION_SEND => {
            a.to = strings[0].as_ptr();
            a.subject = strings[1].as_ptr();
            a.text = strings[2].as_ptr();
            a.html = strings[3].as_ptr();
        }
        TWOFA_ACTION_EMIT => a.event_json = strings[0].as_ptr(),
        TWOFA_ACTION_DONE => {}
        _ => a.key = strings[0].as_ptr(),
    }
    a
}

/// Describes the next action in `*out`.
///
/// # Safety
/// `op` valid; `out` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_operation_next(
    op: *mut twofa_operation,
    out: *mut twofa_action,
    err: *mut *mut twofa_error,
) -> twofa_status {
    guard(err, || {
        // SAFETY: NULL or valid per the contract.
        let op = unsafe { op.as_mut() }.ok_or_else(|| invalid("op is NULL"))?;
        if out.is_null() {
            return Err(invalid("out is NULL"));
        }
        let inner = op.op.as_ref().ok_or_else(|| invalid("the operation was finished"))?;
        let a = describe(inner.action(), &mut op.strings);
        // SAFETY: checked non-NULL.
        unsafe { *out = a };
        Ok(())
    })
}

/// Performs an operation's store actions on a built-in store (`twofa_store_new_*`) until the
/// operation needs a message delivered, an event emitted or is done, then describes that action
/// (SEND, EMIT or DONE) in `*out` as `twofa_operation_next` does. An async host with a built-in store thus makes one
/// call (on a worker thread, for SQLite) where it would make one per store action, and keeps
/// only mail in its event loop.
///
/// # Safety
/// `store` and `op` valid; `out` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_store_run_operation(
    store: *const crate::store::twofa_store,
    op: *mut twofa_operation,
    out: *mut twofa_action,
    err: *mut *mut twofa_error,
) -> twofa_status {
    guard(err, || {
        // SAFETY: NULL or valid per the contract.
        let store = unsafe { store.as_ref() }.ok_or_else(|| invalid("store is NULL"))?;
        // SAFETY: NULL or valid per the contract.
        let op = unsafe { op.as_mut() }.ok_or_else(|| invalid("op is NULL"))?;
        if out.is_null() {
            return Err(invalid("out is NULL"));
        }
        let inner = op.op.as_mut().ok_or_else(|| invalid("the operation was finished"))?;
        inner.run_store(store.store.as_ref());
        let a = describe(inner.action(), &mut op.strings);
        // SAFETY: checked non-NULL.
        unsafe { *out = a };
        Ok(())
    })
}

/// Turns a host result code and message into a store result.
fn store_result(rc: i32, message: *const c_char) -> Result<(), StoreError> {
    match rc {
        TWOFA_CALLBACK_OK => Ok(()),
        TWOFA_CALLBACK_CONFLICT => Err(StoreError::Conflict),
        // SAFETY: NULL or NUL-terminated per the contract.
        _ => Err(StoreError::Failed(match unsafe { opt_str_arg(message, "message", TWOFA_MAX_INPUT) } {
            Ok(Some(m)) => m.to_string(),
            _ => format!("the host's store failed ({rc})"),
        })),
    }
}

/// The answer to a LOAD: `version` 0 means the key does not exist.
///
/// # Safety
/// `bytes` points to `len` bytes (or NULL with 0); `message` NULL or NUL-terminated.
pub(crate) unsafe fn load_feedback(
    rc: i32,
    message: *const c_char,
    bytes: *const u8,
    len: usize,
    version: u64,
) -> Result<Feedback, Failure> {
    if rc == TWOFA_CALLBACK_OK && version != 0 && bytes.is_null() && len != 0 {
        return Err(invalid("bytes is NULL"));
    }
    let value = store_result(rc, message).map(|()| {
        (version != 0).then(|| Versioned {
            bytes: if len == 0 || bytes.is_null() {
                Vec::new()
            } else {
                // SAFETY: `len` readable bytes per the contract.
                unsafe { std::slice::from_raw_parts(bytes, len) }.to_vec()
            },
            version,
        })
    });
    Ok(Feedback::Loaded(value))
}

/// The answer to a WRITE: the new version (not 0) on success.
pub(crate) fn write_feedback(rc: i32, message: *const c_char, new_version: u64) -> Result<Feedback, Failure> {
    if rc == TWOFA_CALLBACK_OK && new_version == 0 {
        return Err(invalid("new_version must not be 0"));
    }
    Ok(Feedback::Written(store_result(rc, message).map(|()| new_version)))
}

/// The answer to a DELETE.
pub(crate) fn delete_feedback(rc: i32, message: *const c_char) -> Feedback {
    Feedback::Deleted(store_result(rc, message))
}

fn feed(op: *mut twofa_operation, feedback: impl FnOnce() -> Result<Feedback, Failure>) -> twofa_status {
    feed_with_err(op, std::ptr::null_mut(), feedback)
}

fn feed_with_err(
    op: *mut twofa_operation,
    err: *mut *mut twofa_error,
    feedback: impl FnOnce() -> Result<Feedback, Failure>,
) -> twofa_status {
    guard(err, || {
        // SAFETY: NULL or valid per the contract.
        let op = unsafe { op.as_mut() }.ok_or_else(|| invalid("op is NULL"))?;
        let inner = op.op.as_mut().ok_or_else(|| invalid("the operation was finished"))?;
        inner.feed(feedback()?);
        Ok(())
    })
}

/// Answers a LOAD: `version` 0 means the key does not exist; otherwise `bytes`/`len` are its
/// value (copied). Returns `TWOFA_INVALID_INPUT` for a NULL `op` or bad arguments.
///
/// # Safety
/// `op` valid; `bytes` points to `len` bytes (or NULL with 0); `message` NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_operation_feed_load(
    op: *mut twofa_operation,
    rc: i32,
    message: *const c_char,
    bytes: *const u8,
    len: usize,
    version: u64,
) -> twofa_status {
    // SAFETY: forwarded contract.
    feed(op, || unsafe { load_feedback(rc, message, bytes, len, version) })
}

/// Answers a WRITE with the new version (not 0) on success.
///
/// # Safety
/// `op` valid; `message` NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_operation_feed_write(
    op: *mut twofa_operation,
    rc: i32,
    message: *const c_char,
    new_version: u64,
) -> twofa_status {
    feed(op, || write_feedback(rc, message, new_version))
}

/// Answers a DELETE.
///
/// # Safety
/// `op` valid; `message` NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_operation_feed_delete(
    op: *mut twofa_operation,
    rc: i32,
    message: *const c_char,
) -> twofa_status {
    feed(op, || Ok(delete_feedback(rc, message)))
}

/// Answers a SEND (`rc` 0: delivered; otherwise `message` says why not).
///
/// # Safety
/// `op` valid; `message` NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_operation_feed_send(
    op: *mut twofa_operation,
    rc: i32,
    message: *const c_char,
) -> twofa_status {
    feed(op, || {
        Ok(Feedback::Sent(match rc {
            TWOFA_CALLBACK_OK => Ok(()),
            // SAFETY: NULL or NUL-terminated per the contract.
            _ => Err(match unsafe { opt_str_arg(message, "message", TWOFA_MAX_INPUT) } {
                Ok(Some(m)) => m.to_string(),
                _ => format!("delivery failed ({rc})"),
            }),
        }))
    })
}

/// Answers an EMIT: the host has taken the event (whatever it did with it; the operation's
/// result does not depend on it). Returns `TWOFA_INVALID_INPUT` for a NULL `op` or a finished
/// operation.
///
/// # Safety
/// `op` NULL or valid; `err` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_operation_feed_emitted(
    op: *mut twofa_operation,
    err: *mut *mut twofa_error,
) -> twofa_status {
    feed_with_err(op, err, || Ok(Feedback::Emitted))
}

/// Takes the result once the next action is DONE: `TWOFA_OK` with the JSON outcome in
/// `*out_json`, or the operation's error. The operation cannot be driven afterwards.
///
/// # Safety
/// `op` valid; `out_json` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_operation_finish(
    op: *mut twofa_operation,
    out_json: *mut *mut c_char,
    err: *mut *mut twofa_error,
) -> twofa_status {
    guard(err, || {
        // SAFETY: NULL or valid per the contract.
        let op = unsafe { op.as_mut() }.ok_or_else(|| invalid("op is NULL"))?;
        if out_json.is_null() {
            return Err(invalid("out_json is NULL"));
        }
        match op.op.as_ref().map(Operation::action) {
            None => return Err(invalid("the operation was finished")),
            Some(Action::Done) => {}
            Some(_) => return Err(invalid("the operation is not done: perform its next action")),
        }
        let outcome = op.op.take().ok_or_else(|| invalid("the operation was finished"))?.finish()?;
        let json = outcome_json(&outcome)?;
        // SAFETY: checked non-NULL.
        unsafe { *out_json = json };
        Ok(())
    })
}

/// Frees an operation. NULL is a no-op.
///
/// # Safety
/// `op` NULL or from `twofa_operation_new`, not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_operation_free(op: *mut twofa_operation) {
    guard_value((), || {
        if !op.is_null() {
            // SAFETY: per the contract it came from Box::into_raw.
            drop(unsafe { Box::from_raw(op) });
        }
    })
}
