//! The conformance suite every [`Store`] implementation must pass.
//!
//! [`check`] runs at runtime (the bindings expose it as `check_store`), never panics and returns
//! the first failed check. It only touches keys under a fresh random prefix
//! `twofa-conformance/<32 hex digits>/` and deletes everything it wrote before it returns, so it
//! is safe to run against a live database. (After a failure it still tries to clean up, but a
//! broken store may keep some of its keys.)

mod session;

pub use session::{Next, Session};

use std::collections::HashSet;
use std::fmt;
use std::thread;

use ring::rand::{SecureRandom, SystemRandom};

use super::{Store, StoreError, Version, Versioned};

const SETUP: &str = "setup";
const GET_MISSING: &str = "get_missing";
const INSERT_ROUND_TRIP: &str = "insert_round_trip";
const INSERT_EXISTING_CONFLICTS: &str = "insert_existing_conflicts";
const UPDATE_WITH_VERSION: &str = "update_with_version";
const UPDATE_STALE_CONFLICTS: &str = "update_stale_conflicts";
const UPDATE_MISSING_CONFLICTS: &str = "update_missing_conflicts";
const DELETE_WRONG_VERSION_CONFLICTS: &str = "delete_wrong_version_conflicts";
const DELETE_MISSING_CONFLICTS: &str = "delete_missing_conflicts";
const DELETE_WITH_VERSION: &str = "delete_with_version";
const REINSERT_FRESH_VERSION: &str = "reinsert_fresh_version";
const KEYS_INDEPENDENT: &str = "keys_independent";
const CONCURRENT_INCREMENTS: &str = "concurrent_increments";
const CLEANUP: &str = "cleanup";

/// The names of all checks, in the order [`check`] runs them (`setup` is not a check; its
/// failures are reported under that name).
pub const CHECKS: [&str; 13] = [
    GET_MISSING,
    INSERT_ROUND_TRIP,
    INSERT_EXISTING_CONFLICTS,
    UPDATE_WITH_VERSION,
    UPDATE_STALE_CONFLICTS,
    UPDATE_MISSING_CONFLICTS,
    DELETE_WRONG_VERSION_CONFLICTS,
    DELETE_MISSING_CONFLICTS,
    DELETE_WITH_VERSION,
    REINSERT_FRESH_VERSION,
    KEYS_INDEPENDENT,
    CONCURRENT_INCREMENTS,
    CLEANUP,
];

/// Threads in the concurrency check.
const THREADS: usize = 8;
/// Increments per thread in the concurrency check.
const INCREMENTS: u64 = 50;
/// Conflicts one increment may meet before the check gives up (guards against livelock).
const MAX_ATTEMPTS: u32 = 10_000;
/// Size of the large value in the round-trip check.
const LARGE_VALUE_LEN: usize = 1 << 20;

/// The result of a successful [`check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The names of the checks that passed, in order (all of [`CHECKS`]).
    pub passed: Vec<&'static str>,
}

/// The first check a store failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The name of the failed check (one of [`CHECKS`], or `"setup"`).
    pub check: &'static str,
    /// What went wrong. Names keys, lengths and versions, never stored bytes.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "store conformance check {} failed: {}", self.check, self.message)
    }
}

impl std::error::Error for Failure {}

/// Runs every check in [`CHECKS`] against `store` and cleans up after itself.
///
/// Returns the first failure. Never panics (unless `store` does).
pub fn check(store: &dyn Store) -> Result<Report, Failure> {
    let prefix = random_prefix().map_err(|message| Failure { check: SETUP, message })?;
    let mut run = Run { store, prefix, written: Vec::new(), passed: Vec::new() };
    let result = run.all();
    if result.is_err() {
        // Best effort: leave as little behind as the store allows.
        let _ = run.cleanup();
    }
    result.map(|()| Report { passed: run.passed })
}

fn random_prefix() -> Result<String, String> {
    let mut bytes = [0u8; 16];
    SystemRandom::new().fill(&mut bytes).map_err(|_| "the system random number generator failed".to_owned())?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("twofa-conformance/{hex}/"))
}

type Step = Result<(), String>;

struct Run<'a> {
    store: &'a dyn Store,
    prefix: String,
    /// Every key a put may have created, for cleanup.
    written: Vec<String>,
    passed: Vec<&'static str>,
}

impl Run<'_> {
    fn all(&mut self) -> Result<(), Failure> {
        self.step(GET_MISSING, Self::get_missing)?;
        self.step(INSERT_ROUND_TRIP, Self::insert_round_trip)?;
        self.step(INSERT_EXISTING_CONFLICTS, Self::insert_existing_conflicts)?;
        self.step(UPDATE_WITH_VERSION, Self::update_with_version)?;
        self.step(UPDATE_STALE_CONFLICTS, Self::update_stale_conflicts)?;
        self.step(UPDATE_MISSING_CONFLICTS, Self::update_missing_conflicts)?;
        self.step(DELETE_WRONG_VERSION_CONFLICTS, Self::delete_wrong_version_conflicts)?;
        self.step(DELETE_MISSING_CONFLICTS, Self::delete_missing_conflicts)?;
        self.step(DELETE_WITH_VERSION, Self::delete_with_version)?;
        self.step(REINSERT_FRESH_VERSION, Self::reinsert_fresh_version)?;
        self.step(KEYS_INDEPENDENT, Self::keys_independent)?;
        self.step(CONCURRENT_INCREMENTS, Self::concurrent_increments)?;
        self.step(CLEANUP, Self::cleanup)?;
        Ok(())
    }

    fn step(&mut self, check: &'static str, f: fn(&mut Self) -> Step) -> Result<(), Failure> {
        f(self).map_err(|message| Failure { check, message })?;
        self.passed.push(check);
        Ok(())
    }

    // ---- the checks -------------------------------------------------------------------------

    fn get_missing(&mut self) -> Step {
        let key = self.key("missing");
        self.expect_missing(&key)
    }

    fn insert_round_trip(&mut self) -> Step {
        let all_bytes: Vec<u8> = (0..=255u8).collect();
        let values: [(&str, Vec<u8>); 5] = [
            ("round-trip/empty", Vec::new()),
            ("round-trip/text", b"twofa conformance".to_vec()),
            ("round-trip/non-utf8", b"\xff\xfe\x00\x80\xc3\x28\x00tail\x00".to_vec()),
            ("round-trip/all-bytes", all_bytes),
            ("round-trip/1mib", large_value()),
        ];
        for (name, bytes) in &values {
            let key = self.key(name);
            let version = self.insert(&key, bytes)?;
            if version == 0 {
                return Err(format!("put({key:?}, None) returned version 0 (versions are non-zero)"));
            }
            self.expect_value(&key, bytes, version)?;
        }
        Ok(())
    }

    fn insert_existing_conflicts(&mut self) -> Step {
        let key = self.key("insert-twice");
        let v1 = self.insert(&key, b"first")?;
        let second = self.store.put(&key, b"second", None);
        expect_conflict(second, || format!("a second put({key:?}, None)"))?;
        self.expect_value(&key, b"first", v1)
    }

    fn update_with_version(&mut self) -> Step {
        let key = self.key("update");
        let v1 = self.insert(&key, b"one")?;
        let v2 = self.update(&key, b"two", v1)?;
        if v2 == v1 || v2 == 0 {
            return Err(format!("put({key:?}, Some({v1})) returned version {v2}; expected a new, non-zero version"));
        }
        self.expect_value(&key, b"two", v2)?;
        // Updating to identical bytes must still produce a new version.
        let v3 = self.update(&key, b"two", v2)?;
        if v3 == v2 || v3 == v1 || v3 == 0 {
            return Err(format!(
                "put({key:?}, Some({v2})) with unchanged bytes returned version {v3}; \
                 expected a new version (the key had {v1} and {v2})"
            ));
        }
        self.expect_value(&key, b"two", v3)
    }

    fn update_stale_conflicts(&mut self) -> Step {
        let key = self.key("stale");
        let v1 = self.insert(&key, b"one")?;
        let v2 = self.update(&key, b"two", v1)?;
        let stale = self.store.put(&key, b"stale", Some(v1));
        expect_conflict(stale, || format!("put({key:?}, Some({v1})) with the stale version (current is {v2})"))?;
        self.expect_value(&key, b"two", v2)
    }

    fn update_missing_conflicts(&mut self) -> Step {
        // A version the store really issued, on a key that never existed.
        let other = self.key("missing-update/other");
        let v = self.insert(&other, b"other")?;
        let key = self.key("missing-update/absent");
        let result = self.store.put(&key, b"value", Some(v));
        self.note_written(&key);
        expect_conflict(result, || format!("put({key:?}, Some({v})) on a missing key"))?;
        self.expect_missing(&key)?;
        self.expect_value(&other, b"other", v)
    }

    fn delete_wrong_version_conflicts(&mut self) -> Step {
        let key = self.key("delete-wrong");
        let v1 = self.insert(&key, b"one")?;
        let v2 = self.update(&key, b"two", v1)?;
        let result = self.store.delete(&key, v1);
        expect_conflict(result, || format!("delete({key:?}, {v1}) with the stale version (current is {v2})"))?;
        self.expect_value(&key, b"two", v2)?;
        // A version issued for another key must not work either.
        let other = self.key("delete-wrong/other");
        let vo = self.insert(&other, b"other")?;
        let result = self.store.delete(&key, vo);
        expect_conflict(result, || format!("delete({key:?}, {vo}) with another key's version (current is {v2})"))?;
        self.expect_value(&key, b"two", v2)?;
        self.expect_value(&other, b"other", vo)
    }

    fn delete_missing_conflicts(&mut self) -> Step {
        let other = self.key("delete-missing/other");
        let v = self.insert(&other, b"other")?;
        let key = self.key("delete-missing/absent");
        let result = self.store.delete(&key, v);
        expect_conflict(result, || format!("delete({key:?}, {v}) on a missing key"))?;
        self.expect_missing(&key)?;
        self.expect_value(&other, b"other", v)
    }

    fn delete_with_version(&mut self) -> Step {
        let key = self.key("delete");
        let v1 = self.insert(&key, b"one")?;
        let v2 = self.update(&key, b"two", v1)?;
        self.delete(&key, v2)?;
        self.expect_missing(&key)?;
        // Deleting again with the same version conflicts: the key is gone.
        let again = self.store.delete(&key, v2);
        expect_conflict(again, || format!("a second delete({key:?}, {v2})"))
    }

    fn reinsert_fresh_version(&mut self) -> Step {
        let key = self.key("reinsert");
        let mut history = vec![self.insert(&key, b"one")?];
        for round in 0..3 {
            let last = history.last().copied().unwrap_or_default();
            history.push(self.update(&key, b"two", last)?);
            let last = history.last().copied().unwrap_or_default();
            self.delete(&key, last)?;
            let bytes = format!("again {round}");
            let v = self.insert(&key, bytes.as_bytes())?;
            if history.contains(&v) {
                return Err(format!(
                    "put({key:?}, None) after a delete returned version {v}, which the key \
                     already had (versions so far: {history:?}); versions must never be reused"
                ));
            }
            // No version the key ever had may succeed again.
            for &old in &history {
                let put = self.store.put(&key, b"raced", Some(old));
                expect_conflict(put, || {
                    format!("put({key:?}, Some({old})) with a pre-delete version (current is {v})")
                })?;
                let delete = self.store.delete(&key, old);
                expect_conflict(delete, || {
                    format!("delete({key:?}, {old}) with a pre-delete version (current is {v})")
                })?;
            }
            self.expect_value(&key, bytes.as_bytes(), v)?;
            history.push(v);
        }
        Ok(())
    }

    fn keys_independent(&mut self) -> Step {
        // Keys that are prefixes of each other or differ only in case must not interfere.
        let names = ["indep/a", "indep/a2", "indep/a/b", "indep/A", "indep/b"];
        let keys: Vec<String> = names.iter().map(|n| self.key(n)).collect();
        let mut current: Vec<(Vec<u8>, Version)> = Vec::new();
        for key in &keys {
            let bytes = format!("value of {key}").into_bytes();
            let v = self.insert(key, &bytes)?;
            current.push((bytes, v));
        }
        self.expect_all(&keys, &current)?;
        // Update the first key; the others keep their bytes and versions.
        if let (Some(first), Some(slot)) = (keys.first(), current.first_mut()) {
            let bytes = b"updated".to_vec();
            let nv = self.update(first, &bytes, slot.1)?;
            *slot = (bytes, nv);
            self.expect_all(&keys, &current)?;
            // A version of one key does not work on another.
            for (key, (_, kv)) in keys.iter().zip(&current).skip(1) {
                if *kv != nv {
                    let put = self.store.put(key, b"wrong", Some(nv));
                    expect_conflict(put, || format!("put({key:?}, Some({nv})) with another key's version"))?;
                }
            }
            self.expect_all(&keys, &current)?;
            // Delete the first key; the others stay.
            self.delete(first, nv)?;
            self.expect_missing(first)?;
            for (key, (bytes, v)) in keys.iter().zip(&current).skip(1) {
                self.expect_value(key, bytes, *v)?;
            }
        }
        Ok(())
    }

    fn concurrent_increments(&mut self) -> Step {
        let key = self.key("concurrent/counter");
        let v0 = self.insert(&key, b"0")?;
        let store = self.store;
        let key_ref = key.as_str();
        let results: Vec<Result<Vec<Version>, String>> = thread::scope(|s| {
            let mut handles = Vec::with_capacity(THREADS);
            let mut spawn_error = None;
            for i in 0..THREADS {
                let spawned = thread::Builder::new()
                    .name(format!("twofa-conformance-{i}"))
                    .spawn_scoped(s, move || increment_worker(store, key_ref));
                match spawned {
                    Ok(h) => handles.push(h),
                    Err(e) => {
                        spawn_error = Some(format!("cannot start worker thread {i}: {e}"));
                        break;
                    }
                }
            }
            let mut results: Vec<Result<Vec<Version>, String>> = handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err("a worker thread panicked inside the store".into())))
                .collect();
            if let Some(e) = spawn_error {
                results.push(Err(e));
            }
            results
        });
        let mut versions = vec![v0];
        for r in results {
            versions.extend(r?);
        }
        let expected = THREADS as u64 * INCREMENTS;
        let current =
            self.get(&key)?.ok_or_else(|| format!("{key:?} is missing after {THREADS} threads incremented it"))?;
        let value = parse_counter(&key, &current.bytes)?;
        if value != expected {
            return Err(format!(
                "{THREADS} threads each incremented {key:?} {INCREMENTS} times with \
                 compare-and-swap; the counter is {value}, expected {expected} (lost updates)"
            ));
        }
        let distinct: HashSet<Version> = versions.iter().copied().collect();
        if distinct.len() != versions.len() {
            return Err(format!(
                "{} successful writes to {key:?} returned only {} distinct versions",
                versions.len(),
                distinct.len()
            ));
        }
        if !distinct.contains(&current.version) {
            return Err(format!("get({key:?}) reports version {}, which no put returned", current.version));
        }
        Ok(())
    }

    /// Deletes every key this run may have written and checks that they are gone.
    fn cleanup(&mut self) -> Step {
        let mut remaining = Vec::new();
        for key in &self.written {
            let mut gone = false;
            // Retry a few times in case a conflict comes from a concurrent writer.
            for _ in 0..5 {
                match self.get(key)? {
                    None => {
                        gone = true;
                        break;
                    }
                    Some(current) => match self.store.delete(key, current.version) {
                        Ok(()) | Err(StoreError::Conflict) => {}
                        Err(e) => {
                            return Err(format!("delete({key:?}, {}) failed: {e}", current.version));
                        }
                    },
                }
            }
            if !gone {
                remaining.push(key.clone());
            }
        }
        if remaining.is_empty() {
            self.written.clear();
            Ok(())
        } else {
            Err(format!("could not delete {remaining:?}"))
        }
    }

    // ---- helpers ----------------------------------------------------------------------------

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn note_written(&mut self, key: &str) {
        if !self.written.iter().any(|k| k == key) {
            self.written.push(key.to_owned());
        }
    }

    fn get(&self, key: &str) -> Result<Option<Versioned>, String> {
        self.store.get(key).map_err(|e| format!("get({key:?}) failed: {e}"))
    }

    fn insert(&mut self, key: &str, bytes: &[u8]) -> Result<Version, String> {
        self.note_written(key);
        self.store
            .put(key, bytes, None)
            .map_err(|e| format!("put({key:?}, {} bytes, None) on a new key failed: {e}", bytes.len()))
    }

    fn update(&mut self, key: &str, bytes: &[u8], expected: Version) -> Result<Version, String> {
        self.note_written(key);
        self.store
            .put(key, bytes, Some(expected))
            .map_err(|e| format!("put({key:?}, Some({expected})) with the current version failed: {e}"))
    }

    fn delete(&self, key: &str, expected: Version) -> Step {
        self.store
            .delete(key, expected)
            .map_err(|e| format!("delete({key:?}, {expected}) with the current version failed: {e}"))
    }

    fn expect_missing(&self, key: &str) -> Step {
        match self.get(key)? {
            None => Ok(()),
            Some(v) => Err(format!(
                "get({key:?}) returned {} bytes at version {} for a key that should not exist",
                v.bytes.len(),
                v.version
            )),
        }
    }

    fn expect_value(&self, key: &str, bytes: &[u8], version: Version) -> Step {
        let Some(current) = self.get(key)? else {
            return Err(format!("get({key:?}) returned None; expected {} bytes at version {version}", bytes.len()));
        };
        if current.bytes != bytes {
            let at = current
                .bytes
                .iter()
                .zip(bytes)
                .position(|(a, b)| a != b)
                .unwrap_or(current.bytes.len().min(bytes.len()));
            return Err(format!(
                "get({key:?}) returned {} bytes that differ from the {} bytes written \
                 (first difference at offset {at})",
                current.bytes.len(),
                bytes.len()
            ));
        }
        if current.version != version {
            return Err(format!("get({key:?}) returned version {}; the last put returned {version}", current.version));
        }
        Ok(())
    }

    fn expect_all(&self, keys: &[String], values: &[(Vec<u8>, Version)]) -> Step {
        for (key, (bytes, version)) in keys.iter().zip(values) {
            self.expect_value(key, bytes, *version)?;
        }
        Ok(())
    }
}

fn expect_conflict<T>(result: Result<T, StoreError>, what: impl FnOnce() -> String) -> Step {
    match result {
        Err(StoreError::Conflict) => Ok(()),
        Ok(_) => Err(format!("{} succeeded; expected Conflict", what())),
        Err(e) => Err(format!("{} failed with \"{e}\"; expected Conflict", what())),
    }
}

/// 1 MiB of varied bytes (every byte value, no long runs), so truncation or re-encoding shows.
fn large_value() -> Vec<u8> {
    let mut state: u32 = 0x9e37_79b9;
    (0..LARGE_VALUE_LEN)
        .map(|_| {
            // xorshift32
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state.to_le_bytes()[0]
        })
        .collect()
}

fn parse_counter(key: &str, bytes: &[u8]) -> Result<u64, String> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{key:?} holds {} bytes that are not a counter", bytes.len()))
}

/// One thread of the concurrency check: `INCREMENTS` read-modify-write increments, retrying on
/// conflict. Returns the versions its successful puts got.
fn increment_worker(store: &dyn Store, key: &str) -> Result<Vec<Version>, String> {
    let mut versions = Vec::with_capacity(INCREMENTS as usize);
    for _ in 0..INCREMENTS {
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            if attempts > MAX_ATTEMPTS {
                return Err(format!("an increment of {key:?} conflicted {MAX_ATTEMPTS} times in a row"));
            }
            let current = store
                .get(key)
                .map_err(|e| format!("get({key:?}) failed under concurrency: {e}"))?
                .ok_or_else(|| format!("{key:?} vanished during the concurrency check"))?;
            let n = parse_counter(key, &current.bytes)?;
            let next = (n + 1).to_string();
            match store.put(key, next.as_bytes(), Some(current.version)) {
                Ok(v) => {
                    if v == current.version {
                        return Err(format!("put({key:?}, Some({v})) succeeded but returned the same version {v}"));
                    }
                    versions.push(v);
                    break;
                }
                Err(StoreError::Conflict) => thread::yield_now(),
                Err(e) => {
                    return Err(format!("put({key:?}, Some({})) failed under concurrency: {e}", current.version));
                }
            }
        }
    }
    Ok(versions)
}
