//! Writes `bench/fixture.json` (see `bench/README.md`, "The fixture").
//!
//! `cargo run --release -p twofa-bench --bin fixture [-- PATH]`: the same bytes every time (see
//! [`twofa_bench::generate`]). PATH defaults to `bench/fixture.json` in the workspace.

use std::path::PathBuf;

use twofa_bench::fixture::default_path;
use twofa_bench::generate::fixture_json;

fn main() -> Result<(), String> {
    let path = std::env::args().nth(1).map(PathBuf::from).unwrap_or_else(default_path);
    std::fs::write(&path, fixture_json()?).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
