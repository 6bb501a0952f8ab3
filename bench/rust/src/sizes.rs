//! `size/libtwofa.so` and `size/twofa_component.wasm`: the bytes of the built artefacts. A
//! missing file is reported on stderr only.

use std::path::PathBuf;

use crate::case::print_value;

/// Prints the size of each artefact that was built.
pub fn report() {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace.join("target"), PathBuf::from);
    let artefacts = [
        ("size/libtwofa.so", target.join("release/libtwofa.so"), "cargo build --release -p twofa-ffi"),
        ("size/twofa_component.wasm", twofa_wasmtime_host::host::default_component_path(), "make component"),
    ];
    for (case, path, build) in artefacts {
        match std::fs::metadata(&path) {
            Ok(meta) => print_value(case, meta.len(), "bytes"),
            Err(_) => eprintln!("{case}: {} is missing (`{build}` builds it); not reported", path.display()),
        }
    }
}
