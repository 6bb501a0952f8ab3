//! `sqlite-throughput/native/{1-thread,2-threads,2-processes}`: TOTP sign-in checks per second
//! (the `totp` unit: `login_begin` + `login_verify`, wrong and right codes alternating) by the
//! native engine on one SQLite file in a temporary directory.
//!
//! Every thread and every process signs in its own user, so the numbers measure the store
//! (SQLite's single writer and its synced commits, two per check) rather than compare-and-swap
//! retries on one shared record. The threads of one run share one `SqliteStore`, as the threads
//! of an application share their engine's store (each thread has its own `Engine` over it only
//! to have its own clock); each process opens the file itself. The processes are this program
//! again, in its hidden worker mode (`--throughput-worker DB USER MILLIS`).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use twofa_bench::fixture::Fixture;
use twofa_wasmtime_host::VirtualClock;

use crate::case::print_value;
use crate::subject::config;
use crate::subject::native::{Native, open_sqlite};
use crate::totp::TwofaTotp;

/// The flag of the hidden worker mode.
pub const WORKER_FLAG: &str = "--throughput-worker";

/// Measures and prints the three throughput cases, each for a few seconds (a fraction of a
/// second with `quick`). `fixture_path` is handed to the worker processes.
pub fn report(fixture: &Fixture, fixture_path: &Path, quick: bool) {
    let duration = Duration::from_millis(if quick { 300 } else { 3000 });
    let dir = tempfile::TempDir::new().expect("a temporary directory");
    let db = dir.path().join("throughput.sqlite3");
    drop(open_sqlite(&db)); // creates the file and its tables before anyone races to
    eprintln!("sqlite throughput: 1 thread");
    print_value("sqlite-throughput/native/1-thread", round(threads(1, &db, fixture, duration)), "ops/s");
    eprintln!("sqlite throughput: 2 threads");
    print_value("sqlite-throughput/native/2-threads", round(threads(2, &db, fixture, duration)), "ops/s");
    eprintln!("sqlite throughput: 2 processes");
    print_value("sqlite-throughput/native/2-processes", round(processes(2, &db, fixture_path, duration)), "ops/s");
}

/// One decimal.
fn round(rate: f64) -> f64 {
    (rate * 10.0).round() / 10.0
}

/// Sign-in checks per second by one user, for `duration`.
fn sign_ins(totp: &mut TwofaTotp, duration: Duration) -> f64 {
    let started = Instant::now();
    let mut ops = 0u64;
    while started.elapsed() < duration {
        totp.sign_in();
        totp.sign_in();
        ops += 2;
    }
    ops as f64 / started.elapsed().as_secs_f64()
}

/// The summed rate of `n` threads, each signing in its own user, sharing one store.
fn threads(n: usize, db: &Path, fixture: &Fixture, duration: Duration) -> f64 {
    let config = config(fixture);
    let store = Arc::new(open_sqlite(db));
    let barrier = Barrier::new(n);
    let (config, barrier) = (&config, &barrier);
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..n)
            .map(|i| {
                let store = store.clone();
                scope.spawn(move || {
                    let subject = Native::new(config, store, VirtualClock::at(fixture.t0));
                    let user = format!("{n}-threads-{i}");
                    let mut totp = TwofaTotp::new(Box::new(subject), fixture, &user, "throughput");
                    barrier.wait();
                    sign_ins(&mut totp, duration)
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().expect("a benchmark thread")).sum()
    })
}

/// The summed rate of `n` worker processes, each signing in its own user on the file.
fn processes(n: usize, db: &Path, fixture_path: &Path, duration: Duration) -> f64 {
    let exe = std::env::current_exe().expect("the path of this program");
    let mut workers: Vec<Child> = (0..n)
        .map(|i| {
            Command::new(&exe)
                .arg("--fixture")
                .arg(fixture_path)
                .arg(WORKER_FLAG)
                .arg(db)
                .arg(format!("{n}-processes-{i}"))
                .arg(duration.as_millis().to_string())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("a worker process")
        })
        .collect();
    let mut replies: Vec<_> =
        workers.iter_mut().map(|w| BufReader::new(w.stdout.take().expect("piped stdout")).lines()).collect();
    let mut next_line = |i: usize| replies[i].next().and_then(Result::ok).expect("a line from a worker");
    for i in 0..n {
        assert_eq!(next_line(i), "ready");
    }
    for worker in &mut workers {
        writeln!(worker.stdin.as_mut().expect("piped stdin"), "go").expect("a worker reading its stdin");
    }
    let rate = (0..n).map(|i| next_line(i).parse::<f64>().expect("a rate")).sum();
    for mut worker in workers {
        assert!(worker.wait().expect("a worker exit").success());
    }
    rate
}

/// The worker mode: `DB USER MILLIS`. Imports the user, prints `ready`, waits for a line on
/// stdin, signs in for MILLIS ms and prints its rate.
pub fn worker(fixture: &Fixture, args: &[String]) -> Result<(), String> {
    let [db, user, millis] = args else {
        return Err(format!("usage: {WORKER_FLAG} DB USER MILLIS"));
    };
    let millis: u64 = millis.parse().map_err(|e| format!("MILLIS: {e}"))?;
    let subject = Native::new(&config(fixture), open_sqlite(Path::new(db)), VirtualClock::at(fixture.t0));
    let mut totp = TwofaTotp::new(Box::new(subject), fixture, user, "throughput");
    println!("ready");
    std::io::stdin().read_line(&mut String::new()).map_err(|e| format!("stdin: {e}"))?;
    println!("{}", sign_ins(&mut totp, Duration::from_millis(millis)));
    Ok(())
}
