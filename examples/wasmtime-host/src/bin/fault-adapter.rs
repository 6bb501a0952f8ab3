//! The component's adapter of the fault-injection harness (`tests/faults/README.md`): hosts the
//! component in wasmtime with a store, a mailer and a clock in Rust, and answers the harness's
//! commands, one JSON line on stdout per line on stdin (diagnostics go to stderr).
//!
//! `target/debug/fault-adapter [path/to/twofa_component.wasm]` (default: the file
//! `make component` builds), e.g. under
//! `python tests/faults/harness.py -- target/debug/fault-adapter <component>`.

use std::io::{BufRead, Write};
use std::process::ExitCode;
use twofa_wasmtime_host::adapter::Adapter;
use twofa_wasmtime_host::host::{Component, default_component_path};

fn main() -> ExitCode {
    let path = std::env::args_os().nth(1).map(Into::into).unwrap_or_else(default_component_path);
    let component = match Component::load(&path) {
        Ok(component) => component,
        Err(e) => {
            eprintln!("fault-adapter: {e:?} (run `make component` first?)");
            return ExitCode::FAILURE;
        }
    };
    let mut adapter = Adapter::new(component);
    let mut out = std::io::stdout().lock();
    for line in std::io::stdin().lock().lines() {
        let line = match line {
            Ok(line) => line,
            Err(e) => {
                eprintln!("fault-adapter: reading stdin: {e}");
                return ExitCode::FAILURE;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let answer = adapter.command(&line);
        if let Some(error) = answer.get("error").filter(|_| answer.get("outcome").is_none()) {
            eprintln!("fault-adapter: {}: {error}", line.chars().take(200).collect::<String>());
        }
        if writeln!(out, "{answer}").and_then(|()| out.flush()).is_err() {
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
