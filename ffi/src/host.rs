//! Host callbacks: a store, mail delivery and a clock implemented by the embedding program.

use crate::error::{Failure, invalid, note_failed_callback};
use crate::{TWOFA_INVALID_INPUT, TWOFA_OK, twofa_status};
use std::ffi::{CStr, CString, c_char, c_void};
use twofa_core::store::{Store, StoreError, Version, Versioned};
use twofa_core::{EventHandler, Mailer, Message, SecurityEvent};

/// A callback succeeded.
pub const TWOFA_CALLBACK_OK: i32 = 0;
/// A store callback's compare-and-swap failed (the key exists, is missing, or has another
/// version). Any other non-zero value is a failure of the callback.
pub const TWOFA_CALLBACK_CONFLICT: i32 = 1;

/// Where a store callback hands back bytes and versions (owned by libtwofa; fill it only through
/// `twofa_store_value_set` and `twofa_store_value_set_version`, during the callback).
pub struct twofa_store_value {
    bytes: Option<Vec<u8>>,
    version: Version,
}

/// `store.get`: look up `key`; if it exists, call `twofa_store_value_set(out, bytes, len, version)`
/// and return `TWOFA_CALLBACK_OK`; if it does not, return `TWOFA_CALLBACK_OK` without setting.
pub type twofa_store_get_fn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, key: *const c_char, out: *mut twofa_store_value) -> i32>;
/// `store.put`: write `bytes` under `key` if its version is `expected_version` (0: only if the
/// key does not exist); report the new version (never 0, never reused for the key) with
/// `twofa_store_value_set_version(out, version)`. Returns `TWOFA_CALLBACK_CONFLICT` on mismatch.
pub type twofa_store_put_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        key: *const c_char,
        bytes: *const u8,
        len: usize,
        expected_version: u64,
        out: *mut twofa_store_value,
    ) -> i32,
>;
/// `store.delete`: delete `key` if its version is `expected_version`, else
/// `TWOFA_CALLBACK_CONFLICT`.
pub type twofa_store_delete_fn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, key: *const c_char, expected_version: u64) -> i32>;
/// `send_mail`: deliver one message (UTF-8, NUL-terminated strings valid during the call).
pub type twofa_send_mail_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        to: *const c_char,
        subject: *const c_char,
        text: *const c_char,
        html: *const c_char,
    ) -> i32,
>;
/// `now`: write the current Unix time in seconds to `*out_unix`.
pub type twofa_now_fn = Option<unsafe extern "C" fn(user_data: *mut c_void, out_unix: *mut u64) -> i32>;
/// `emit_event`: receives one audit event, the core's SecurityEvent JSON
/// (`{"kind":"login_succeeded","user":"alice","at":1700000000,"method":"totp",...}`; never a
/// secret, code or token), valid during the call. It is called after the change the event
/// reports has committed, from any thread that calls into the engine (concurrently: it must be
/// thread-safe); it cannot fail the operation, and it must not call back into the engine.
pub type twofa_emit_event_fn = Option<unsafe extern "C" fn(user_data: *mut c_void, event_json: *const c_char)>;

/// The host's callbacks. libtwofa copies this struct when an engine is opened; `user_data` must
/// stay valid until the engine is freed. Callbacks may be called from any thread that calls into
/// the engine, concurrently: they must be thread-safe. Unused callbacks may be NULL (see each
/// `twofa_engine_new*`); a NULL `send_mail` makes every delivery fail, a NULL `now` means the
/// system clock, a NULL `emit_event` drops audit events.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct twofa_host {
    /// Passed as the first argument of every callback.
    pub user_data: *mut c_void,
    /// Reads a key.
    pub store_get: twofa_store_get_fn,
    /// Writes a key if its version matches.
    pub store_put: twofa_store_put_fn,
    /// Deletes a key if its version matches.
    pub store_delete: twofa_store_delete_fn,
    /// Delivers a message.
    pub send_mail: twofa_send_mail_fn,
    /// Reads the clock.
    pub now: twofa_now_fn,
    /// Receives audit events (optional).
    pub emit_event: twofa_emit_event_fn,
}

/// The callbacks, shareable between threads as the header's contract demands of the host.
#[derive(Clone, Copy)]
pub(crate) struct Host(pub(crate) twofa_host);

// SAFETY: the header requires `user_data` and the callbacks to be usable from any thread.
unsafe impl Send for Host {}
// SAFETY: as above.
unsafe impl Sync for Host {}

impl Host {
    /// The empty host: no store, mail fails, system clock, no audit events.
    pub(crate) fn none() -> Host {
        Host(twofa_host {
            user_data: std::ptr::null_mut(),
            store_get: None,
            store_put: None,
            store_delete: None,
            send_mail: None,
            now: None,
            emit_event: None,
        })
    }

    /// `engine`, handing its audit events to the `emit_event` callback when there is one.
    pub(crate) fn events_of(self, engine: twofa_core::Engine) -> twofa_core::Engine {
        match self.0.emit_event {
            Some(_) => engine.with_events(self),
            None => engine,
        }
    }

    /// The current time from the `now` callback (or the system clock).
    pub(crate) fn now(&self) -> Result<u64, Failure> {
        let Some(now) = self.0.now else {
            return Ok(twofa_core::Clock::now(&twofa_core::SystemClock));
        };
        let mut t = 0u64;
        // SAFETY: the host promised a valid callback; `t` is a valid out-pointer.
        let rc = unsafe { now(self.0.user_data, &mut t) };
        if rc != TWOFA_CALLBACK_OK {
            note_failed_callback(c"now");
            return Err(Failure::from(twofa_core::Error::Internal(format!("the now callback returned {rc}"))));
        }
        Ok(t)
    }
}

fn key_c(key: &str) -> Result<CString, StoreError> {
    CString::new(key).map_err(|_| StoreError::Failed("key contains NUL".into()))
}

fn callback_failed(name: &'static CStr, rc: i32) -> StoreError {
    note_failed_callback(name);
    StoreError::Failed(format!("the {} callback returned {rc}", name.to_string_lossy()))
}

impl Store for Host {
    fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        let get = self.0.store_get.ok_or_else(|| StoreError::Failed("no store.get callback".into()))?;
        let key = key_c(key)?;
        let mut out = twofa_store_value { bytes: None, version: 0 };
        // SAFETY: valid callback per the host's contract; pointers live for the call.
        let rc = unsafe { get(self.0.user_data, key.as_ptr(), &mut out) };
        match rc {
            TWOFA_CALLBACK_OK => Ok(out.bytes.map(|bytes| Versioned { bytes, version: out.version })),
            rc => Err(callback_failed(c"store.get", rc)),
        }
    }

    fn put(&self, key: &str, bytes: &[u8], expected: Option<Version>) -> Result<Version, StoreError> {
        let put = self.0.store_put.ok_or_else(|| StoreError::Failed("no store.put callback".into()))?;
        let key = key_c(key)?;
        let mut out = twofa_store_value { bytes: None, version: 0 };
        // SAFETY: as above.
        let rc = unsafe {
            put(self.0.user_data, key.as_ptr(), bytes.as_ptr(), bytes.len(), expected.unwrap_or(0), &mut out)
        };
        match rc {
            TWOFA_CALLBACK_OK if out.version != 0 => Ok(out.version),
            TWOFA_CALLBACK_OK => {
                note_failed_callback(c"store.put");
                Err(StoreError::Failed("the store.put callback set no (non-zero) version".into()))
            }
            TWOFA_CALLBACK_CONFLICT => Err(StoreError::Conflict),
            rc => Err(callback_failed(c"store.put", rc)),
        }
    }

    fn delete(&self, key: &str, expected: Version) -> Result<(), StoreError> {
        let delete = self.0.store_delete.ok_or_else(|| StoreError::Failed("no store.delete callback".into()))?;
        let key = key_c(key)?;
        // SAFETY: as above.
        match unsafe { delete(self.0.user_data, key.as_ptr(), expected) } {
            TWOFA_CALLBACK_OK => Ok(()),
            TWOFA_CALLBACK_CONFLICT => Err(StoreError::Conflict),
            rc => Err(callback_failed(c"store.delete", rc)),
        }
    }
}

impl EventHandler for Host {
    fn handle(&self, event: &SecurityEvent) {
        let Some(emit) = self.0.emit_event else { return };
        let Ok(json) = serde_json::to_string(event) else { return };
        let json = CString::new(json.replace('\0', " ")).unwrap_or_default();
        // SAFETY: valid callback per the host's contract; the string lives for the call.
        unsafe { emit(self.0.user_data, json.as_ptr()) };
    }
}

impl Mailer for Host {
    fn send(&self, m: &Message) -> Result<(), String> {
        let Some(send) = self.0.send_mail else {
            note_failed_callback(c"send_mail");
            return Err("no send_mail callback".into());
        };
        let c = |s: &str| CString::new(s.replace('\0', " ")).unwrap_or_default();
        let (to, subject, text, html) = (c(&m.to), c(&m.subject), c(&m.text), c(&m.html));
        // SAFETY: valid callback per the host's contract; the strings live for the call.
        let rc = unsafe { send(self.0.user_data, to.as_ptr(), subject.as_ptr(), text.as_ptr(), html.as_ptr()) };
        if rc == TWOFA_CALLBACK_OK {
            Ok(())
        } else {
            note_failed_callback(c"send_mail");
            Err(format!("the send_mail callback returned {rc}"))
        }
    }
}

/// Hands a stored value back from a `store_get` callback: a copy of `len` bytes at `bytes` (NULL
/// allowed when `len` is 0) and its version (not 0). Call it at most once per callback.
///
/// # Safety
/// `out` must be the pointer the callback received; `bytes` must point to `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_store_value_set(
    out: *mut twofa_store_value,
    bytes: *const u8,
    len: usize,
    version: u64,
) -> twofa_status {
    crate::guard::guard_value(crate::TWOFA_PANIC, || {
        // SAFETY: per the contract `out` is NULL or the callback's live value.
        let Some(out) = (unsafe { out.as_mut() }) else { return TWOFA_INVALID_INPUT };
        if version == 0 || (bytes.is_null() && len != 0) || len > crate::TWOFA_MAX_CONFIG * 16 {
            return TWOFA_INVALID_INPUT;
        }
        let data = if len == 0 {
            Vec::new()
        } else {
            // SAFETY: non-NULL and `len` readable bytes per the contract.
            unsafe { std::slice::from_raw_parts(bytes, len) }.to_vec()
        };
        out.bytes = Some(data);
        out.version = version;
        TWOFA_OK
    })
}

/// Reports the new version from a `store_put` callback (not 0).
///
/// # Safety
/// `out` must be the pointer the callback received.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_store_value_set_version(out: *mut twofa_store_value, version: u64) -> twofa_status {
    crate::guard::guard_value(crate::TWOFA_PANIC, || {
        // SAFETY: as above.
        let Some(out) = (unsafe { out.as_mut() }) else { return TWOFA_INVALID_INPUT };
        if version == 0 {
            return TWOFA_INVALID_INPUT;
        }
        out.version = version;
        TWOFA_OK
    })
}

/// Reads a NUL-terminated UTF-8 argument of at most `cap` bytes.
///
/// # Safety
/// `p` must be NULL or a NUL-terminated string.
pub(crate) unsafe fn str_arg<'a>(p: *const c_char, name: &str, cap: usize) -> Result<&'a str, Failure> {
    if p.is_null() {
        return Err(invalid(format!("{name} is NULL")));
    }
    // SAFETY: non-NULL and NUL-terminated per the contract.
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    if bytes.len() > cap {
        return Err(invalid(format!("{name} is longer than {cap} bytes")));
    }
    std::str::from_utf8(bytes).map_err(|_| invalid(format!("{name} is not valid UTF-8")))
}

/// Like [`str_arg`], NULL meaning `None`.
///
/// # Safety
/// As [`str_arg`].
pub(crate) unsafe fn opt_str_arg<'a>(p: *const c_char, name: &str, cap: usize) -> Result<Option<&'a str>, Failure> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded contract.
    unsafe { str_arg(p, name, cap) }.map(Some)
}

/// Runs the store conformance suite against the host's store callbacks (the same suite the
/// built-in stores pass). It writes, then deletes, keys under a random `twofa-conformance/`
/// prefix, from several threads at once. On success `*out_json` lists the checks passed
/// (`{"passed":[...]}`); on failure the error names the failed check.
///
/// # Safety
/// `host` valid with its three store callbacks; `out_json` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_check_store(
    host: *const twofa_host,
    out_json: *mut *mut c_char,
    err: *mut *mut crate::twofa_error,
) -> twofa_status {
    crate::guard::guard(err, || {
        // SAFETY: NULL or valid per the contract.
        let host = Host(*unsafe { host.as_ref() }.ok_or_else(|| invalid("host is NULL"))?);
        if host.0.store_get.is_none() || host.0.store_put.is_none() || host.0.store_delete.is_none() {
            return Err(invalid("host: store_get, store_put and store_delete are required"));
        }
        if out_json.is_null() {
            return Err(invalid("out_json is NULL"));
        }
        let json = conformance_json(&host)?;
        // SAFETY: checked non-NULL.
        unsafe { *out_json = json };
        Ok(())
    })
}

/// Runs the conformance suite on `store` and renders its report as a new C string.
pub(crate) fn conformance_json(store: &dyn Store) -> Result<*mut c_char, Failure> {
    report_json(twofa_core::store::conformance::check(store))
}

/// A conformance result as a new C string (`{"passed":[...]}`), or the failed check as a
/// `TWOFA_STORAGE` error.
pub(crate) fn report_json(
    result: Result<twofa_core::store::conformance::Report, twofa_core::store::conformance::Failure>,
) -> Result<*mut c_char, Failure> {
    let report = result.map_err(|f| {
        Failure::from(twofa_core::Error::Storage(format!("store conformance: {} failed: {}", f.check, f.message)))
    })?;
    let json = serde_json::json!({ "passed": report.passed }).to_string();
    Ok(CString::new(json).unwrap_or_default().into_raw())
}
