//! Real races: two engines over one SQLite file (two `SqliteStore` connections), and two
//! engines over one shared `MemoryStore`, sharing a `TestClock`.
//!
//! - one TOTP code submitted by 16 threads, each with its own challenge: exactly one sign-in
//!   (5 rounds);
//! - one email sign-in code submitted by 16 threads: exactly one sign-in (5 rounds);
//! - 200 wrong TOTP codes from 10 threads: exactly `threshold` (10) failures are counted and
//!   answered `invalid_code`, every other answer is `locked_out`, and nothing conflicts.
#![cfg(feature = "sqlite")]

mod common;

use common::{Outbox, T0, TestClock, config, race, totp_code};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use twofa_core::store::{MemoryStore, SqliteStore, Store, StoreError, Version, Versioned};
use twofa_core::{Engine, Error, LoginSuccess, Proof};

const USER: &str = "alice";
const EMAIL: &str = "alice.mail@example.com";
const THREADS: usize = 16;

/// A store that counts the compare-and-swap conflicts it reports (to show the races are real).
/// While `slow` is set, every read is followed by a 2 ms pause, so that racing threads all read
/// the same version before any of them writes (the widest race window).
struct Counting {
    inner: Arc<dyn Store>,
    conflicts: Arc<AtomicUsize>,
    slow: Arc<AtomicBool>,
}

impl Store for Counting {
    fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        let r = self.inner.get(key);
        if self.slow.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(2));
        }
        r
    }
    fn put(&self, key: &str, bytes: &[u8], expected: Option<Version>) -> Result<Version, StoreError> {
        let r = self.inner.put(key, bytes, expected);
        if r == Err(StoreError::Conflict) {
            self.conflicts.fetch_add(1, Ordering::SeqCst);
        }
        r
    }
    fn delete(&self, key: &str, expected: Version) -> Result<(), StoreError> {
        self.inner.delete(key, expected)
    }
}

/// Two engines over two stores that share their data, with one clock and one outbox.
struct Pair {
    engines: [Engine; 2],
    clock: TestClock,
    outbox: Outbox,
    /// Reads the raw record.
    reader: Arc<dyn Store>,
    /// Compare-and-swap conflicts seen by either engine.
    conflicts: Arc<AtomicUsize>,
    slow: Arc<AtomicBool>,
    _dir: Option<tempfile::TempDir>,
}

impl Pair {
    fn engine(&self, i: usize) -> &Engine {
        &self.engines[i % 2]
    }

    /// Runs `f` with slow reads when `slow` is true.
    fn with_reads<T>(&self, slow: bool, f: impl FnOnce() -> T) -> T {
        self.slow.store(slow, Ordering::SeqCst);
        let out = f();
        self.slow.store(false, Ordering::SeqCst);
        out
    }

    fn conflicts(&self) -> usize {
        self.conflicts.load(Ordering::SeqCst)
    }

    fn record(&self) -> serde_json::Value {
        let raw = self.reader.get(&format!("user/{USER}")).unwrap().expect("no record");
        serde_json::from_slice(&raw.bytes).unwrap()
    }
}

fn pair(a: Arc<dyn Store>, b: Arc<dyn Store>, reader: Arc<dyn Store>, dir: Option<tempfile::TempDir>) -> Pair {
    let clock = TestClock::at(T0);
    let outbox = Outbox::default();
    let conflicts = Arc::new(AtomicUsize::new(0));
    let slow = Arc::new(AtomicBool::new(false));
    let make = |inner: Arc<dyn Store>| {
        let store = Counting { inner, conflicts: conflicts.clone(), slow: slow.clone() };
        Engine::new(config(), store, outbox.clone()).unwrap().with_clock(clock.clone())
    };
    let engines = [make(a), make(b)];
    Pair { engines, clock, outbox, reader, conflicts, slow, _dir: dir }
}

/// Two `SqliteStore` connections to one file in a temporary directory.
fn sqlite_pair() -> Pair {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("twofa.db");
    let a = Arc::new(SqliteStore::open(&path).unwrap());
    let b = Arc::new(SqliteStore::open(&path).unwrap());
    pair(a.clone(), b, a, Some(dir))
}

/// Two engines over one shared `MemoryStore`.
fn memory_pair() -> Pair {
    let store = Arc::new(MemoryStore::new());
    pair(store.clone(), store.clone(), store, None)
}

/// How many answers of each kind.
fn histogram<T>(results: &[Result<T, Error>]) -> BTreeMap<&'static str, usize> {
    let mut h = BTreeMap::new();
    for r in results {
        *h.entry(r.as_ref().map(|_| "ok").unwrap_or_else(Error::name)).or_insert(0) += 1;
    }
    h
}

/// Exactly one Ok; every other answer is replayed, invalid_code, conflict or (the challenge
/// consumed by the winner) not_found.
fn exactly_one_sign_in(what: &str, results: &[Result<LoginSuccess, Error>]) {
    let h = histogram(results);
    eprintln!("{what}: {h:?}");
    assert_eq!(h.get("ok"), Some(&1), "{what}: exactly one sign-in expected: {h:?}");
    for (name, _) in h.iter().filter(|(n, _)| **n != "ok") {
        assert!(
            ["replayed", "invalid_code", "conflict", "not_found"].contains(name),
            "{what}: unexpected answer {name}: {h:?}"
        );
    }
}

/// One challenge per thread, made before the race (alternating engines).
fn challenges(p: &Pair, n: usize) -> Vec<String> {
    (0..n).map(|i| p.engine(i).login_begin(USER).unwrap().challenge_id.unwrap()).collect()
}

const ROUNDS: usize = 5;

fn totp_race(p: &Pair, what: &str) {
    let (secret, _) = common::enroll_totp(p.engine(0), &p.clock, USER, None);
    for round in 0..ROUNDS {
        p.clock.advance(30);
        let chs = challenges(p, THREADS);
        let code = totp_code(&secret, p.clock.get());
        let before = p.conflicts();
        let slow = round % 2 == 1;
        let results = p
            .with_reads(slow, || race(THREADS, |i| p.engine(i).login_verify(USER, &chs[i], Proof::Totp(code.clone()))));
        eprintln!("{what}, round {round} (slow reads: {slow}): {} CAS conflicts", p.conflicts() - before);
        exactly_one_sign_in(what, &results);
        // The winner's step is recorded: the code stays refused.
        let ch = p.engine(1).login_begin(USER).unwrap().challenge_id.unwrap();
        assert_eq!(p.engine(1).login_verify(USER, &ch, Proof::Totp(code)).unwrap_err(), Error::Replayed);
        assert_eq!(p.record()["failures"], 0);
    }
}

#[test]
fn one_totp_code_signs_in_once_sqlite() {
    totp_race(&sqlite_pair(), "16 threads, one TOTP code, two SQLite connections");
}

#[test]
fn one_totp_code_signs_in_once_memory() {
    totp_race(&memory_pair(), "16 threads, one TOTP code, one shared MemoryStore");
}

fn email_race(p: &Pair, what: &str) {
    let (_, step_up) = common::enroll_totp(p.engine(0), &p.clock, USER, None);
    p.engine(1).email_enroll_begin(USER, EMAIL, step_up.as_deref()).unwrap();
    p.engine(0).email_enroll_confirm(USER, &p.outbox.last_code(EMAIL), step_up.as_deref()).unwrap();
    for round in 0..ROUNDS {
        let chs = challenges(p, THREADS);
        p.engine(round).login_send_email_code(USER, &chs[0]).unwrap();
        let code = p.outbox.last_code(EMAIL);
        let before = p.conflicts();
        let slow = round % 2 == 1;
        let results = p.with_reads(slow, || {
            // A code completes only the challenge it was sent for: every thread tries that one.
            race(THREADS, |i| p.engine(i).login_verify(USER, &chs[0], Proof::Email(code.clone())))
        });
        eprintln!("{what}, round {round} (slow reads: {slow}): {} CAS conflicts", p.conflicts() - before);
        exactly_one_sign_in(what, &results);
        let ch = p.engine(0).login_begin(USER).unwrap().challenge_id.unwrap();
        assert_eq!(p.engine(0).login_verify(USER, &ch, Proof::Email(code)).unwrap_err(), Error::Replayed);
        // The resend cooldown runs from the code's issue.
        p.clock.advance(60);
    }
}

#[test]
fn one_email_code_signs_in_once_sqlite() {
    email_race(&sqlite_pair(), "16 threads, one email code, two SQLite connections");
}

#[test]
fn one_email_code_signs_in_once_memory() {
    email_race(&memory_pair(), "16 threads, one email code, one shared MemoryStore");
}

/// 10 threads x 20 wrong codes, each thread with its own challenge (a record keeps at most 16
/// live challenges, so one challenge per attempt would evict challenges still in use; a wrong
/// code does not consume its challenge).
fn wrong_codes(p: &Pair, what: &str, slow: bool) {
    const WORKERS: usize = 10;
    const ATTEMPTS: usize = 20;
    let (secret, _) = common::enroll_totp(p.engine(0), &p.clock, USER, None);
    p.clock.advance(30);
    let now = p.clock.get();
    let valid: Vec<String> = [now - 30, now, now + 30].iter().map(|t| totp_code(&secret, *t)).collect();
    let wrong = ["000000", "111111", "222222", "333333"].into_iter().find(|c| !valid.iter().any(|v| v == c)).unwrap();
    let chs = challenges(p, WORKERS);
    let results: Vec<Result<LoginSuccess, Error>> = p
        .with_reads(slow, || {
            race(WORKERS, |i| {
                let attempt = || p.engine(i).login_verify(USER, &chs[i], Proof::Totp(wrong.to_string()));
                (0..ATTEMPTS).map(|_| attempt()).collect::<Vec<_>>()
            })
        })
        .into_iter()
        .flatten()
        .collect();
    let h = histogram(&results);
    eprintln!("{what}: {h:?}, {} CAS conflicts", p.conflicts());
    assert_eq!(results.len(), WORKERS * ATTEMPTS);
    let record = p.record();
    assert_eq!(record["failures"], 10, "{what}: stored failure count; answers {h:?}");
    assert_eq!(h.get("conflict"), None, "{what}: conflicts (retries exhausted?): {h:?}");
    assert_eq!(h.get("invalid_code"), Some(&10), "{what}: {h:?}");
    assert_eq!(h.get("locked_out"), Some(&(WORKERS * ATTEMPTS - 10)), "{what}: {h:?}");
    assert_eq!(h.len(), 2, "{what}: only invalid_code and locked_out: {h:?}");
    for r in &results {
        if let Err(Error::LockedOut { retry_after }) = r {
            assert_eq!(*retry_after, 60, "the first lockout lasts base_delay_secs");
        }
    }
    assert_eq!(p.engine(0).security_status(USER).unwrap().locked_until, Some(now + 60));
    assert_eq!(record["locked_until"], now + 60);
}

#[test]
fn wrong_codes_count_exactly_to_the_threshold_sqlite() {
    wrong_codes(&sqlite_pair(), "200 wrong TOTP codes, two SQLite connections", false);
}

#[test]
fn wrong_codes_count_exactly_to_the_threshold_sqlite_slow_reads() {
    wrong_codes(&sqlite_pair(), "200 wrong TOTP codes, two SQLite connections, slow reads", true);
}

#[test]
fn wrong_codes_count_exactly_to_the_threshold_memory() {
    wrong_codes(&memory_pair(), "200 wrong TOTP codes, one shared MemoryStore", false);
}

#[test]
fn wrong_codes_count_exactly_to_the_threshold_memory_slow_reads() {
    wrong_codes(&memory_pair(), "200 wrong TOTP codes, one shared MemoryStore, slow reads", true);
}
