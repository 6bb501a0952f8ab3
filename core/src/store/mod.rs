//! Persistence: the versioned key-value contract every host store implements.
//!
//! twofa keeps one key per user (`user/{id}`). The contract is a compare-and-swap:
//!
//! - [`Store::get`] returns the bytes and their version, or `None`.
//! - [`Store::put`] with `expected: None` inserts only (fails with [`StoreError::Conflict`] if the
//!   key exists); with `Some(v)` it replaces only if the current version is `v`. It returns the new
//!   version.
//! - [`Store::delete`] removes the key only if its current version is `expected`.
//!
//! Versions are opaque, non-zero and never reused for a key, even after a delete (a write that
//! raced a delete and a re-insert must not succeed). [`conformance`] checks all of this against
//! any implementation.

pub mod conformance;
mod memory;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use memory::MemoryStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

use std::fmt;

/// An opaque record version. Never zero, never reused for a key.
pub type Version = u64;

/// Stored bytes with their version.
#[derive(Clone, PartialEq, Eq)]
pub struct Versioned {
    /// The stored value.
    pub bytes: Vec<u8>,
    /// Its current version.
    pub version: Version,
}

impl fmt::Debug for Versioned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Records hold sealed secrets and hashes only, but they are still nobody's business in logs.
        write!(f, "Versioned {{ {} bytes, version {} }}", self.bytes.len(), self.version)
    }
}

/// Why a store call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The compare-and-swap failed: the key exists (insert-only), is missing, or has another
    /// version. The engine reloads and decides again.
    Conflict,
    /// The store itself failed (I/O, connection, a host callback). The message names the cause.
    Failed(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Conflict => f.write_str("version conflict"),
            StoreError::Failed(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for StoreError {}

/// The storage contract (see the module documentation). Implementations must be safe to share
/// between threads; the engine caches nothing between calls.
pub trait Store: Send + Sync {
    /// The value stored under `key` with its version, or `None` if there is none.
    fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError>;

    /// Writes `bytes` under `key` if its version is `expected` (`None`: only if the key does not
    /// exist). Returns the new version.
    fn put(&self, key: &str, bytes: &[u8], expected: Option<Version>) -> Result<Version, StoreError>;

    /// Deletes `key` if its version is `expected`.
    fn delete(&self, key: &str, expected: Version) -> Result<(), StoreError>;
}

/// One [`Store`] call as a value, for hosts that perform it themselves (sans-IO): the
/// [conformance session](conformance::Session) hands these out, and the engine's `Action`
/// is made from them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreCall {
    /// `Store::get(key)`; answered by [`StoreAnswer::Get`].
    Get {
        /// The key to read.
        key: String,
    },
    /// `Store::put(key, bytes, expected)`; answered by [`StoreAnswer::Put`].
    Put {
        /// The key to write.
        key: String,
        /// The new value.
        bytes: Vec<u8>,
        /// The version it must still have (`None`: insert only).
        expected: Option<Version>,
    },
    /// `Store::delete(key, expected)`; answered by [`StoreAnswer::Delete`].
    Delete {
        /// The key to delete.
        key: String,
        /// The version it must still have.
        expected: Version,
    },
}

/// The result of a [`StoreCall`], under the name of the call it answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreAnswer {
    /// Result of [`StoreCall::Get`].
    Get(Result<Option<Versioned>, StoreError>),
    /// Result of [`StoreCall::Put`].
    Put(Result<Version, StoreError>),
    /// Result of [`StoreCall::Delete`].
    Delete(Result<(), StoreError>),
}

impl<S: Store + ?Sized> Store for std::sync::Arc<S> {
    fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        (**self).get(key)
    }
    fn put(&self, key: &str, bytes: &[u8], expected: Option<Version>) -> Result<Version, StoreError> {
        (**self).put(key, bytes, expected)
    }
    fn delete(&self, key: &str, expected: Version) -> Result<(), StoreError> {
        (**self).delete(key, expected)
    }
}
