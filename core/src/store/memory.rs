//! An in-process [`Store`] for tests, examples and single-process deployments that need no
//! persistence.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{Store, StoreError, Version, Versioned};

/// A thread-safe in-memory [`Store`]. Nothing survives the process.
///
/// Versions come from one counter shared by all keys, so a version is never reused for a key,
/// even after it was deleted and inserted again.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// The last version handed out (0: none yet, so the first version is 1).
    last_version: Version,
    entries: HashMap<String, Versioned>,
}

impl Inner {
    fn next_version(&mut self) -> Result<Version, StoreError> {
        let next = self
            .last_version
            .checked_add(1)
            .ok_or_else(|| StoreError::Failed("memory store: version counter exhausted".into()))?;
        self.last_version = next;
        Ok(next)
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every mutation below completes or leaves the map untouched, so a panic in another
        // thread while it held the lock cannot have left the data half-written.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the values; the number of keys is all a log needs.
        let keys = self.lock().entries.len();
        f.debug_struct("MemoryStore").field("keys", &keys).finish()
    }
}

impl Store for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        Ok(self.lock().entries.get(key).cloned())
    }

    fn put(&self, key: &str, bytes: &[u8], expected: Option<Version>) -> Result<Version, StoreError> {
        let mut inner = self.lock();
        let current = inner.entries.get(key).map(|v| v.version);
        match (expected, current) {
            (None, None) => {}
            (Some(e), Some(c)) if e == c => {}
            _ => return Err(StoreError::Conflict),
        }
        let version = inner.next_version()?;
        inner.entries.insert(key.to_owned(), Versioned { bytes: bytes.to_vec(), version });
        Ok(version)
    }

    fn delete(&self, key: &str, expected: Version) -> Result<(), StoreError> {
        let mut inner = self.lock();
        match inner.entries.get(key) {
            Some(v) if v.version == expected => {
                inner.entries.remove(key);
                Ok(())
            }
            _ => Err(StoreError::Conflict),
        }
    }
}
