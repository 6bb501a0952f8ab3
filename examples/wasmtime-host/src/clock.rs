//! A clock the host sets: WASI's wall and monotonic clocks for the component, and the core's
//! `Clock` for the native engine, all reading the same Unix seconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock};

/// Unix seconds shared by every clone; `set` moves time for everyone who reads it.
#[derive(Clone, Debug, Default)]
pub struct VirtualClock(Arc<AtomicU64>);

impl VirtualClock {
    /// A clock at `unix` seconds.
    pub fn at(unix: u64) -> VirtualClock {
        VirtualClock(Arc::new(AtomicU64::new(unix)))
    }

    /// Sets the time (Unix seconds).
    pub fn set(&self, unix: u64) {
        self.0.store(unix, Ordering::SeqCst)
    }

    /// Moves the time forward.
    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }

    /// The time (Unix seconds).
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl HostWallClock for VirtualClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn now(&self) -> Duration {
        Duration::from_secs(self.get())
    }
}

/// Nanoseconds, moving with the wall clock (monotonic as long as the test only moves forward).
impl HostMonotonicClock for VirtualClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }

    fn now(&self) -> u64 {
        self.get().saturating_mul(1_000_000_000)
    }
}

impl twofa_core::Clock for VirtualClock {
    fn now(&self) -> u64 {
        self.get()
    }
}
