//! The Rust suite of twofa's benchmarks (protocol, case ids and fixture: `bench/README.md`).
//!
//! `cargo run --release -p twofa-bench -- [--quick] [--fixture PATH]` prints one JSON line per
//! case on stdout (progress goes to stderr):
//!
//! - `totp`, `totp-begin`, `totp-verify` and `webauthn` for the native engine, the C ABI and the
//!   wasmtime host (when `make component` has built the component), each over the in-memory and
//!   the SQLite store; `email` and `email-verify` for the native engine and the C ABI;
//! - the peers totp-rs and webauthn-rs-core, and the ring, RustCrypto `p256` and HMAC-SHA1
//!   floors;
//! - `sqlite-throughput/native/...` and the sizes of libtwofa.so and the component.

mod case;
mod email;
mod sizes;
mod subject;
mod throughput;
mod totp;
mod webauthn;

use std::path::PathBuf;

use twofa_bench::fixture::{Fixture, default_path};

/// The command line.
struct Args {
    /// `--fixture PATH`.
    fixture: PathBuf,
    /// `--quick`: short chunks, for a smoke run.
    quick: bool,
    /// The arguments of the hidden worker mode, when given.
    worker: Option<Vec<String>>,
}

impl Args {
    /// Parses `--quick`, `--fixture PATH` and the worker mode (which takes the rest).
    fn parse() -> Result<Args, String> {
        let mut args = Args { fixture: default_path(), quick: false, worker: None };
        let mut words = std::env::args().skip(1);
        while let Some(word) = words.next() {
            match word.as_str() {
                "--quick" => args.quick = true,
                "--fixture" => args.fixture = words.next().ok_or("--fixture needs a path")?.into(),
                throughput::WORKER_FLAG => args.worker = Some(words.by_ref().collect()),
                _ => return Err(format!("unknown argument {word:?}; usage: twofa-bench [--quick] [--fixture PATH]")),
            }
        }
        Ok(args)
    }
}

fn main() -> Result<(), String> {
    let args = Args::parse()?;
    let fixture = Fixture::load(&args.fixture)?;
    if let Some(worker) = &args.worker {
        return throughput::worker(&fixture, worker);
    }
    let factory = subject::Factory::new(&fixture);
    eprintln!("setting up...");
    let mut cases = totp::cases(&factory, &fixture);
    cases.extend(webauthn::cases(&factory, &fixture));
    cases.extend(email::cases(&factory, &fixture));
    case::measure(&mut cases, case::Plan::new(args.quick));
    throughput::report(&fixture, &args.fixture, args.quick);
    sizes::report();
    Ok(())
}
