//! Runs the twofa scenario against the component and prints its transcript.
//!
//! `cargo run -p twofa-wasmtime-host --bin twofa-wasmtime-host -- [path/to/twofa_component.wasm]`
//! (default: the file `make component` builds). The store is SQLite in memory; time is virtual.

use std::sync::Arc;
use std::time::Instant;
use twofa_core::store::SqliteStore;
use twofa_wasmtime_host::host::{Component, default_component_path};
use twofa_wasmtime_host::scenario::{self, run_scenario};
use twofa_wasmtime_host::{ComponentSurface, VirtualClock};

fn main() -> wasmtime::Result<()> {
    let path = std::env::args().nth(1).map(Into::into).unwrap_or_else(default_component_path);
    if !path.exists() {
        wasmtime::bail!("{} is missing: run `make component` first", path.display());
    }
    let started = Instant::now();
    let component = Component::load(&path)?;
    println!("compiled {} in {:.2?}", path.display(), started.elapsed());

    let store = SqliteStore::open_in_memory().map_err(|e| wasmtime::format_err!("sqlite: {e}"))?;
    let clock = VirtualClock::at(scenario::T0);
    let mut surface = ComponentSurface::new(&component, Arc::new(store), &scenario::config(), clock)
        .map_err(|e| wasmtime::format_err!("open: {e}"))?;
    let started = Instant::now();
    let transcript = run_scenario(&mut surface);
    print!("{transcript}");
    println!(
        "{} steps in {:.2?}; {} messages sent",
        transcript.steps.len(),
        started.elapsed(),
        surface.instance.state().outbox.len()
    );
    Ok(())
}
