//! The conformance suite against the built-in stores (and against broken ones, which it must
//! reject without panicking), plus SQLite multi-instance and multi-process behaviour.

use std::collections::HashMap;
use std::sync::Mutex;

use twofa_core::store::conformance::{self, CHECKS};
use twofa_core::store::{MemoryStore, Store, StoreError, Version, Versioned};

fn assert_passes(store: &dyn Store) {
    match conformance::check(store) {
        Ok(report) => assert_eq!(report.passed, CHECKS.to_vec()),
        Err(failure) => panic!("{failure}"),
    }
}

#[test]
fn memory_store_conforms() {
    let store = MemoryStore::new();
    assert_passes(&store);
    // Everything written was deleted again.
    assert_eq!(format!("{store:?}"), "MemoryStore { keys: 0 }");
}

#[test]
fn memory_store_debug_does_not_print_values() {
    let store = MemoryStore::default();
    store.put("k", b"secret-bytes", None).unwrap();
    let debug = format!("{store:?}");
    assert_eq!(debug, "MemoryStore { keys: 1 }");
}

// ---- stores the suite must reject ---------------------------------------------------------------

/// A store whose every call fails.
struct BrokenStore;

impl Store for BrokenStore {
    fn get(&self, _key: &str) -> Result<Option<Versioned>, StoreError> {
        Err(StoreError::Failed("broken: get".into()))
    }
    fn put(&self, _key: &str, _bytes: &[u8], _expected: Option<Version>) -> Result<Version, StoreError> {
        Err(StoreError::Failed("broken: put".into()))
    }
    fn delete(&self, _key: &str, _expected: Version) -> Result<(), StoreError> {
        Err(StoreError::Failed("broken: delete".into()))
    }
}

#[test]
fn broken_store_fails_without_panicking() {
    let failure = conformance::check(&BrokenStore).unwrap_err();
    assert_eq!(failure.check, "get_missing");
    assert!(failure.message.contains("broken: get"), "{failure}");
    let shown = failure.to_string();
    assert!(shown.contains("get_missing") && shown.contains("broken: get"), "{shown}");
    let _: &dyn std::error::Error = &failure;
}

/// A store that accepts every write blindly (no compare-and-swap).
#[derive(Default)]
struct NoCasStore(MemoryStore);

impl Store for NoCasStore {
    fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        self.0.get(key)
    }
    fn put(&self, key: &str, bytes: &[u8], _expected: Option<Version>) -> Result<Version, StoreError> {
        let current = self.0.get(key)?.map(|v| v.version);
        self.0.put(key, bytes, current)
    }
    fn delete(&self, key: &str, _expected: Version) -> Result<(), StoreError> {
        match self.0.get(key)? {
            Some(v) => self.0.delete(key, v.version),
            None => Ok(()),
        }
    }
}

#[test]
fn store_without_compare_and_swap_fails() {
    let store = NoCasStore::default();
    let failure = conformance::check(&store).unwrap_err();
    assert_eq!(failure.check, "insert_existing_conflicts", "{failure}");
    // The failed run still cleaned up after itself.
    assert_eq!(format!("{:?}", store.0), "MemoryStore { keys: 0 }");
}

/// A correct compare-and-swap store whose versions are per key and restart after a delete: the
/// classic bug that lets a write that raced a delete and a re-insert succeed.
#[derive(Default)]
struct PerKeyVersionStore(Mutex<HashMap<String, Versioned>>);

impl Store for PerKeyVersionStore {
    fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        Ok(self.0.lock().unwrap().get(key).cloned())
    }
    fn put(&self, key: &str, bytes: &[u8], expected: Option<Version>) -> Result<Version, StoreError> {
        let mut map = self.0.lock().unwrap();
        let current = map.get(key).map(|v| v.version);
        if current != expected {
            return Err(StoreError::Conflict);
        }
        let version = current.unwrap_or(0) + 1;
        let bytes = bytes.to_vec();
        map.insert(key.to_owned(), Versioned { bytes, version });
        Ok(version)
    }
    fn delete(&self, key: &str, expected: Version) -> Result<(), StoreError> {
        let mut map = self.0.lock().unwrap();
        match map.get(key) {
            Some(v) if v.version == expected => {
                map.remove(key);
                Ok(())
            }
            _ => Err(StoreError::Conflict),
        }
    }
}

#[test]
fn store_reusing_versions_after_delete_fails() {
    let store = PerKeyVersionStore::default();
    let failure = conformance::check(&store).unwrap_err();
    assert_eq!(failure.check, "reinsert_fresh_version", "{failure}");
    assert!(store.0.lock().unwrap().is_empty());
}

/// A store that drops every value's last byte.
#[derive(Default)]
struct TruncatingStore(MemoryStore);

impl Store for TruncatingStore {
    fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        self.0.get(key)
    }
    fn put(&self, key: &str, bytes: &[u8], expected: Option<Version>) -> Result<Version, StoreError> {
        let keep = bytes.len().saturating_sub(1);
        self.0.put(key, &bytes[..keep], expected)
    }
    fn delete(&self, key: &str, expected: Version) -> Result<(), StoreError> {
        self.0.delete(key, expected)
    }
}

#[test]
fn store_mangling_bytes_fails_without_printing_them() {
    let failure = conformance::check(&TruncatingStore::default()).unwrap_err();
    assert_eq!(failure.check, "insert_round_trip", "{failure}");
    assert!(failure.message.contains("differ"), "{failure}");
    assert!(!failure.message.contains("twofa conformance\""), "{failure}");
}

// ---- SQLite ---------------------------------------------------------------------------------

#[cfg(feature = "sqlite")]
mod sqlite {
    use std::collections::HashSet;
    use std::process::{Command, Stdio};
    use std::thread;

    use twofa_core::store::SqliteStore;

    use super::*;

    /// One read-modify-write increment with retry on conflict; returns the new version.
    fn increment(store: &dyn Store, key: &str) -> Version {
        loop {
            let current = store.get(key).unwrap().unwrap();
            let n: u64 = std::str::from_utf8(&current.bytes).unwrap().parse().unwrap();
            match store.put(key, (n + 1).to_string().as_bytes(), Some(current.version)) {
                Ok(v) => return v,
                Err(StoreError::Conflict) => continue,
                Err(e) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn in_memory_conforms() {
        let store = SqliteStore::open_in_memory().unwrap();
        assert_passes(&store);
    }

    #[test]
    fn file_conforms_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("twofa.db");
        let store = SqliteStore::open(&path).unwrap();
        // A live record outside the conformance prefix survives the runs untouched.
        let v = store.put("user/42", b"live record", None).unwrap();
        assert_passes(&store);
        assert_passes(&store);
        assert_eq!(store.get("user/42").unwrap(), Some(Versioned { bytes: b"live record".to_vec(), version: v }));
        // Look at the file directly: only the live record is left, and one counter row.
        let conn = rusqlite::Connection::open(&path).unwrap();
        let keys: Vec<String> = conn
            .prepare("SELECT key FROM twofa_kv")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(keys, ["user/42"]);
        let counters: i64 = conn.query_row("SELECT COUNT(*) FROM twofa_version", [], |r| r.get(0)).unwrap();
        assert_eq!(counters, 1);
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn debug_does_not_print_values() {
        let store = SqliteStore::open_in_memory().unwrap();
        store.put("k", b"secret-bytes", None).unwrap();
        let debug = format!("{store:?}");
        assert!(!debug.contains("secret"), "{debug}");
        let v = store.get("k").unwrap().unwrap();
        assert!(!format!("{v:?}").contains("secret"));
    }

    #[test]
    fn open_failure_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        // A directory is not a database file.
        let err = SqliteStore::open(dir.path()).unwrap_err();
        assert!(matches!(&err, StoreError::Failed(m) if m.contains("sqlite store")), "{err}");
    }

    #[test]
    fn two_instances_share_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.db");
        let a = SqliteStore::open(&path).unwrap();
        let b = SqliteStore::open(&path).unwrap();

        // Writes through one are visible through the other.
        let v1 = a.put("user/1", b"from a", None).unwrap();
        assert_eq!(b.get("user/1").unwrap(), Some(Versioned { bytes: b"from a".to_vec(), version: v1 }));
        // Insert-only through b conflicts with a's insert.
        assert_eq!(b.put("user/1", b"from b", None), Err(StoreError::Conflict));

        // Both read v1; b wins the compare-and-swap, a's stale write conflicts.
        let v2 = b.put("user/1", b"b wins", Some(v1)).unwrap();
        assert_ne!(v2, v1);
        assert_eq!(a.put("user/1", b"a loses", Some(v1)), Err(StoreError::Conflict));
        assert_eq!(a.delete("user/1", v1), Err(StoreError::Conflict));
        assert_eq!(a.get("user/1").unwrap().unwrap().bytes, b"b wins");

        // a deletes with the current version; b's re-insert gets a version neither ever had.
        a.delete("user/1", v2).unwrap();
        assert_eq!(b.get("user/1").unwrap(), None);
        let v3 = b.put("user/1", b"again", None).unwrap();
        assert!(v3 != v1 && v3 != v2);
        assert_eq!(a.put("user/1", b"old", Some(v2)), Err(StoreError::Conflict));
        assert_eq!(a.get("user/1").unwrap().unwrap().version, v3);

        // The suite passes on one instance while the other holds its own data.
        assert_passes(&a);
        assert_eq!(b.get("user/1").unwrap().unwrap().version, v3);
    }

    #[test]
    fn two_instances_concurrent_increments() {
        const THREADS: usize = 4;
        const INCREMENTS: u64 = 50;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("counter.db");
        let a = SqliteStore::open(&path).unwrap();
        let b = SqliteStore::open(&path).unwrap();
        let v0 = a.put("counter", b"0", None).unwrap();

        let versions: Vec<Vec<Version>> = thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (a, b) = (&a, &b);
                    s.spawn(move || {
                        let mut versions = Vec::new();
                        for i in 0..INCREMENTS {
                            // Alternate instances: every thread writes through both.
                            let store: &dyn Store = if (t as u64 + i).is_multiple_of(2) { a } else { b };
                            versions.push(increment(store, "counter"));
                        }
                        versions
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });

        let total = THREADS as u64 * INCREMENTS;
        for store in [&a, &b] {
            let current = store.get("counter").unwrap().unwrap();
            assert_eq!(current.bytes, total.to_string().as_bytes());
        }
        let mut all: Vec<Version> = versions.into_iter().flatten().collect();
        all.push(v0);
        let distinct: HashSet<Version> = all.iter().copied().collect();
        assert_eq!(distinct.len(), all.len(), "a version was handed out twice");
    }

    const CHILD_DB_ENV: &str = "TWOFA_STORE_TEST_CHILD_DB";
    const CHILD_INCREMENTS: u64 = 50;

    /// Run by `several_processes_increment` in child processes; does nothing on its own.
    #[test]
    #[ignore = "helper for several_processes_increment"]
    fn child_process_increments() {
        let Some(path) = std::env::var_os(CHILD_DB_ENV) else {
            return;
        };
        let store = SqliteStore::open(path).unwrap();
        for _ in 0..CHILD_INCREMENTS {
            increment(&store, "counter");
        }
    }

    #[test]
    fn several_processes_increment() {
        const CHILDREN: u64 = 2;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("processes.db");
        let store = SqliteStore::open(&path).unwrap();
        store.put("counter", b"0", None).unwrap();

        let exe = std::env::current_exe().unwrap();
        let children: Vec<_> = (0..CHILDREN)
            .map(|_| {
                Command::new(&exe)
                    .args(["--exact", "sqlite::child_process_increments", "--ignored"])
                    .arg("--quiet")
                    .env(CHILD_DB_ENV, &path)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        // This process competes too.
        for _ in 0..CHILD_INCREMENTS {
            increment(&store, "counter");
        }
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "child failed:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let total = (CHILDREN + 1) * CHILD_INCREMENTS;
        let current = store.get("counter").unwrap().unwrap();
        assert_eq!(current.bytes, total.to_string().as_bytes());
    }

    #[test]
    fn version_counter_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reopen.db");
        let mut seen = Vec::new();
        {
            let store = SqliteStore::open(&path).unwrap();
            let v1 = store.put("user/7", b"one", None).unwrap();
            let v2 = store.put("user/7", b"two", Some(v1)).unwrap();
            // Burn versions on another key, then delete everything.
            let mut vo = store.put("user/8", b"x", None).unwrap();
            seen.push(vo);
            for _ in 0..5 {
                vo = store.put("user/8", b"x", Some(vo)).unwrap();
                seen.push(vo);
            }
            store.delete("user/8", vo).unwrap();
            store.delete("user/7", v2).unwrap();
            seen.extend([v1, v2]);
        }
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.get("user/7").unwrap(), None);
        let v = store.put("user/7", b"again", None).unwrap();
        assert!(!seen.contains(&v), "version {v} reused after reopen (seen {seen:?})");
        assert!(v > *seen.iter().max().unwrap());
        for &old in &seen {
            assert_eq!(store.put("user/7", b"old", Some(old)), Err(StoreError::Conflict));
            assert_eq!(store.delete("user/7", old), Err(StoreError::Conflict));
        }
        assert_passes(&store);
    }
}
