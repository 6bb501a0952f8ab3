//! The built-in stores as handles: an in-memory store or the embedded SQLite store, shareable by
//! several engines and readable directly (the Python and Node bindings wrap them, and async hosts
//! perform the sans-IO actions on them).

use crate::error::{Failure, invalid, twofa_error};
use crate::guard::{guard, guard_value};
use crate::host::str_arg;
use crate::{TWOFA_MAX_INPUT, twofa_status};
use std::ffi::c_char;
use std::sync::Arc;
use twofa_core::Error;
use twofa_core::store::{MemoryStore, SqliteStore, Store, StoreError};

/// A built-in store: in memory or the embedded SQLite file. Thread-safe; engines opened on it
/// with `twofa_engine_new_with_store` share it and keep it alive after `twofa_store_free`.
pub struct twofa_store {
    pub(crate) store: Arc<dyn Store>,
}

/// Largest accepted value (bytes) for `twofa_store_put`.
pub const TWOFA_MAX_VALUE: usize = 16 * 1_048_576;

fn open(
    out: *mut *mut twofa_store,
    err: *mut *mut twofa_error,
    make: impl FnOnce() -> Result<Arc<dyn Store>, Failure>,
) -> twofa_status {
    guard(err, || {
        if out.is_null() {
            return Err(invalid("out is NULL"));
        }
        let store = make()?;
        // SAFETY: checked non-NULL above.
        unsafe { *out = Box::into_raw(Box::new(twofa_store { store })) };
        Ok(())
    })
}

/// A store failure as a C error (`TWOFA_CONFLICT` or `TWOFA_STORAGE`).
pub(crate) fn storage(e: StoreError) -> Failure {
    match e {
        StoreError::Conflict => Failure::from(Error::Conflict),
        StoreError::Failed(m) => Failure::from(Error::Storage(m)),
    }
}

/// Creates an empty in-memory store (lost when the store and every engine on it are freed).
///
/// # Safety
/// `out` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_store_new_memory(
    out: *mut *mut twofa_store,
    err: *mut *mut twofa_error,
) -> twofa_status {
    open(out, err, || Ok(Arc::new(MemoryStore::new())))
}

/// Opens (creating if needed) the embedded SQLite store at `path`.
///
/// # Safety
/// `path` NUL-terminated; `out` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_store_new_sqlite(
    path: *const c_char,
    out: *mut *mut twofa_store,
    err: *mut *mut twofa_error,
) -> twofa_status {
    open(out, err, || {
        // SAFETY: forwarded contract.
        let path = unsafe { str_arg(path, "path", 4096) }?;
        Ok(Arc::new(SqliteStore::open(path).map_err(storage)?))
    })
}

/// Frees a store handle. NULL is a no-op. Engines opened on the store keep it alive.
///
/// # Safety
/// `store` NULL or from `twofa_store_new_*`, not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_store_free(store: *mut twofa_store) {
    guard_value((), || {
        if !store.is_null() {
            // SAFETY: per the contract it came from Box::into_raw.
            drop(unsafe { Box::from_raw(store) });
        }
    })
}

unsafe fn store_arg<'a>(store: *const twofa_store) -> Result<&'a twofa_store, Failure> {
    // SAFETY: NULL or valid per every store function's contract.
    unsafe { store.as_ref() }.ok_or_else(|| invalid("store is NULL"))
}

/// Reads `key`. If it exists, `*out_bytes`/`*out_len` receive a copy of its value (free it with
/// `twofa_bytes_free`) and `*out_version` its version; if not, `*out_bytes` is NULL and
/// `*out_len` and `*out_version` are 0.
///
/// # Safety
/// `store` valid; `key` NUL-terminated; the out-pointers writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_store_get(
    store: *const twofa_store,
    key: *const c_char,
    out_bytes: *mut *mut u8,
    out_len: *mut usize,
    out_version: *mut u64,
    err: *mut *mut twofa_error,
) -> twofa_status {
    guard(err, || {
        // SAFETY: forwarded contract.
        let (store, key) = unsafe { (store_arg(store)?, str_arg(key, "key", TWOFA_MAX_INPUT)?) };
        if out_bytes.is_null() || out_len.is_null() || out_version.is_null() {
            return Err(invalid("an out-pointer is NULL"));
        }
        let (bytes, len, version) = match store.store.get(key).map_err(storage)? {
            Some(v) => {
                let len = v.bytes.len();
                (Box::into_raw(v.bytes.into_boxed_slice()).cast::<u8>(), len, v.version)
            }
            None => (std::ptr::null_mut(), 0, 0),
        };
        // SAFETY: checked non-NULL above.
        unsafe { (*out_bytes, *out_len, *out_version) = (bytes, len, version) };
        Ok(())
    })
}

/// Releases bytes returned by `twofa_store_get`. NULL is a no-op.
///
/// # Safety
/// `bytes`/`len` exactly as `twofa_store_get` returned them, not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_bytes_free(bytes: *mut u8, len: usize) {
    guard_value((), || {
        if !bytes.is_null() {
            // SAFETY: per the contract it is the boxed slice `twofa_store_get` leaked.
            drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(bytes, len)) });
        }
    })
}

/// Writes `len` bytes under `key` if its version is `expected_version` (0: only if the key does
/// not exist); `*out_version` receives the new version. A version mismatch is `TWOFA_CONFLICT`.
///
/// # Safety
/// `store` valid; `key` NUL-terminated; `bytes` `len` readable bytes (NULL if 0); `out_version`
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_store_put(
    store: *const twofa_store,
    key: *const c_char,
    bytes: *const u8,
    len: usize,
    expected_version: u64,
    out_version: *mut u64,
    err: *mut *mut twofa_error,
) -> twofa_status {
    guard(err, || {
        // SAFETY: forwarded contract.
        let (store, key) = unsafe { (store_arg(store)?, str_arg(key, "key", TWOFA_MAX_INPUT)?) };
        if out_version.is_null() {
            return Err(invalid("out_version is NULL"));
        }
        if (bytes.is_null() && len != 0) || len > TWOFA_MAX_VALUE {
            return Err(invalid(format!("bytes: NULL with a length, or over {TWOFA_MAX_VALUE} bytes")));
        }
        let value = if len == 0 {
            &[][..]
        } else {
            // SAFETY: non-NULL with `len` readable bytes per the contract.
            unsafe { std::slice::from_raw_parts(bytes, len) }
        };
        let expected = (expected_version != 0).then_some(expected_version);
        let version = store.store.put(key, value, expected).map_err(storage)?;
        // SAFETY: checked non-NULL above.
        unsafe { *out_version = version };
        Ok(())
    })
}

/// Deletes `key` if its version is `expected_version`; a mismatch (or a missing key) is
/// `TWOFA_CONFLICT`.
///
/// # Safety
/// `store` valid; `key` NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_store_delete(
    store: *const twofa_store,
    key: *const c_char,
    expected_version: u64,
    err: *mut *mut twofa_error,
) -> twofa_status {
    guard(err, || {
        // SAFETY: forwarded contract.
        let (store, key) = unsafe { (store_arg(store)?, str_arg(key, "key", TWOFA_MAX_INPUT)?) };
        store.store.delete(key, expected_version).map_err(storage)
    })
}

/// Runs the store conformance suite against a built-in store, as `twofa_check_store` does for
/// host callbacks.
///
/// # Safety
/// `store` valid; `out_json` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_store_check(
    store: *const twofa_store,
    out_json: *mut *mut c_char,
    err: *mut *mut twofa_error,
) -> twofa_status {
    guard(err, || {
        // SAFETY: forwarded contract.
        let store = unsafe { store_arg(store) }?;
        if out_json.is_null() {
            return Err(invalid("out_json is NULL"));
        }
        let json = crate::host::conformance_json(&*store.store)?;
        // SAFETY: checked non-NULL.
        unsafe { *out_json = json };
        Ok(())
    })
}
