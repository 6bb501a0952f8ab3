//! The panic guard every export runs in, and the test hook that proves it.

use crate::error::{Failure, twofa_error};
use crate::twofa_status;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use twofa_core::Error;

static FORCE_PANICS: AtomicBool = AtomicBool::new(false);
static PANICS_CAUGHT: AtomicU64 = AtomicU64::new(0);

/// TESTING ONLY. With `enable`, every other export panics on entry (inside its guard), so a test
/// can prove that each one is guarded. Returns how many panics the guards have caught so far.
/// Never enable it in production: every call then fails with `TWOFA_PANIC`.
#[unsafe(no_mangle)]
pub extern "C" fn twofa_testing_force_panics(enable: bool) -> u64 {
    FORCE_PANICS.store(enable, Ordering::SeqCst);
    PANICS_CAUGHT.load(Ordering::SeqCst)
}

fn forced() {
    if FORCE_PANICS.load(Ordering::Relaxed) {
        #[allow(clippy::panic)]
        {
            panic!("twofa_testing_force_panics is on");
        }
    }
}

/// Runs a fallible export: its error (or a caught panic) goes to `err` and becomes the status.
pub(crate) fn guard(err: *mut *mut twofa_error, body: impl FnOnce() -> Result<(), Failure>) -> twofa_status {
    crate::error::clear_failed_callback();
    let result = catch_unwind(AssertUnwindSafe(|| {
        forced();
        body()
    }));
    let failure = match result {
        Ok(Ok(())) => return crate::TWOFA_OK,
        Ok(Err(failure)) => failure,
        Err(_) => {
            PANICS_CAUGHT.fetch_add(1, Ordering::SeqCst);
            Failure::from(Error::Panic)
        }
    };
    failure.report(err)
}

/// Runs an export that returns a value directly; a panic yields `fallback`.
pub(crate) fn guard_value<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(|| {
        forced();
        body()
    })) {
        Ok(v) => v,
        Err(_) => {
            PANICS_CAUGHT.fetch_add(1, Ordering::SeqCst);
            fallback
        }
    }
}
