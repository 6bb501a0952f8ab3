//! The embedded SQLite [`Store`]: one file, safe for several processes and several
//! [`SqliteStore`] instances at once.
//!
//! Schema:
//!
//! ```sql
//! CREATE TABLE twofa_kv(key TEXT PRIMARY KEY, value BLOB NOT NULL, version INTEGER NOT NULL);
//! CREATE TABLE twofa_version(id INTEGER PRIMARY KEY CHECK (id = 0), last INTEGER NOT NULL);
//! ```
//!
//! `twofa_version` holds one row: the last version handed out, for all keys. Every write takes
//! the next one inside the same `BEGIN IMMEDIATE` transaction as its compare-and-swap, so
//! versions are never reused for a key, even after a delete and across processes.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};

use super::{Store, StoreError, Version, Versioned};

/// How long a call waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS twofa_kv(
        key TEXT PRIMARY KEY,
        value BLOB NOT NULL,
        version INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS twofa_version(
        id INTEGER PRIMARY KEY CHECK (id = 0),
        last INTEGER NOT NULL
    );
    INSERT OR IGNORE INTO twofa_version(id, last)
        SELECT 0, COALESCE(MAX(version), 0) FROM twofa_kv;
";

/// A [`Store`] in an SQLite database (WAL journal, 5 s busy timeout).
///
/// Several processes and several instances may open the same file; all compare-and-swap
/// decisions are made inside SQLite write transactions. Calls on one instance are serialised by
/// a mutex around its connection.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// Shown by `Debug`; `None` for an in-memory database.
    path: Option<PathBuf>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and its tables.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref();
        let conn = Connection::open(path).map_err(|e| failed(&format!("cannot open {}", path.display()), &e))?;
        Self::init(conn, Some(path.to_path_buf()))
    }

    /// A private, empty in-memory database (for tests; nothing is shared or persisted).
    pub fn open_in_memory() -> Result<SqliteStore, StoreError> {
        let conn = Connection::open_in_memory().map_err(|e| failed("cannot open in-memory database", &e))?;
        Self::init(conn, None)
    }

    fn init(mut conn: Connection, path: Option<PathBuf>) -> Result<SqliteStore, StoreError> {
        let setup = |e: rusqlite::Error| failed("cannot set up database", &e);
        conn.busy_timeout(BUSY_TIMEOUT).map_err(setup)?;
        // In-memory databases answer "memory"; files switch to (or already are in) WAL.
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)).map_err(setup)?;
        if path.is_some() && !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Failed(format!(
                "sqlite store: cannot set up database: journal mode is {mode:?}, not WAL"
            )));
        }
        // A lost write could resurrect a consumed one-time code: keep every commit durable.
        conn.pragma_update(None, "synchronous", "FULL").map_err(setup)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(setup)?;
        tx.execute_batch(SCHEMA).map_err(setup)?;
        tx.commit().map_err(setup)?;
        Ok(SqliteStore { conn: Mutex::new(conn), path })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        // A panic while the lock was held unwinds through `Transaction::drop`, which rolls back;
        // should a transaction still be open, end it so the next call starts clean.
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        conn
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("SqliteStore");
        match &self.path {
            Some(p) => d.field("path", p),
            None => d.field("path", &":memory:"),
        };
        d.finish_non_exhaustive()
    }
}

/// Maps a rusqlite error to [`StoreError::Failed`]. Messages come from SQLite and rusqlite and
/// name statements, tables and types, never bound values.
fn failed(op: &str, e: &rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Failed(format!(
            "sqlite store: {op}: database is locked by another connection \
             (gave up after {} s): {e}",
            BUSY_TIMEOUT.as_secs()
        )),
        _ => StoreError::Failed(format!("sqlite store: {op}: {e}")),
    }
}

/// A stored version as a [`Version`]; the schema only ever holds positive ones.
fn to_version(v: i64) -> Result<Version, StoreError> {
    match Version::try_from(v) {
        Ok(v) if v != 0 => Ok(v),
        _ => Err(StoreError::Failed(format!("sqlite store: corrupt database: invalid version {v}"))),
    }
}

impl Store for SqliteStore {
    fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        let conn = self.lock();
        let row = conn
            .prepare_cached("SELECT value, version FROM twofa_kv WHERE key = ?1")
            .and_then(|mut stmt| {
                stmt.query_row([key], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?))).optional()
            })
            .map_err(|e| failed("get failed", &e))?;
        match row {
            None => Ok(None),
            Some((bytes, version)) => Ok(Some(Versioned { bytes, version: to_version(version)? })),
        }
    }

    fn put(&self, key: &str, bytes: &[u8], expected: Option<Version>) -> Result<Version, StoreError> {
        let err = |e: rusqlite::Error| failed("put failed", &e);
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
        let current: Option<i64> = tx
            .prepare_cached("SELECT version FROM twofa_kv WHERE key = ?1")
            .and_then(|mut stmt| stmt.query_row([key], |r| r.get(0)).optional())
            .map_err(err)?;
        let matches = match (expected, current) {
            (None, None) => true,
            (Some(e), Some(c)) => i64::try_from(e).is_ok_and(|e| e == c),
            _ => false,
        };
        if !matches {
            // Dropping `tx` rolls back.
            return Err(StoreError::Conflict);
        }
        let version: i64 = tx
            .prepare_cached("UPDATE twofa_version SET last = last + 1 WHERE id = 0 RETURNING last")
            .and_then(|mut stmt| stmt.query_row([], |r| r.get(0)))
            .map_err(err)?;
        let new_version = to_version(version)?;
        tx.prepare_cached(
            "INSERT INTO twofa_kv(key, value, version) VALUES (?1, ?2, ?3)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value, version = excluded.version",
        )
        .and_then(|mut stmt| stmt.execute(params![key, bytes, version]))
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(new_version)
    }

    fn delete(&self, key: &str, expected: Version) -> Result<(), StoreError> {
        let Ok(expected) = i64::try_from(expected) else {
            return Err(StoreError::Conflict);
        };
        let conn = self.lock();
        // One statement is its own transaction: the check and the delete are atomic.
        let deleted = conn
            .prepare_cached("DELETE FROM twofa_kv WHERE key = ?1 AND version = ?2")
            .and_then(|mut stmt| stmt.execute(params![key, expected]))
            .map_err(|e| failed("delete failed", &e))?;
        if deleted == 0 { Err(StoreError::Conflict) } else { Ok(()) }
    }
}
