//! Proves that every function the header declares is guarded against panics, in the release
//! library the bindings load: with the testing hook on, each export panics on entry, and the
//! call must come back (with `TWOFA_PANIC` where it returns a status) and be counted as caught.
//! A new export without the guard aborts this test or fails its count.
//!
//! Run by `make test` after `cargo build --release -p twofa-ffi` (ignored in a plain
//! `cargo test`, which has no release library to load).

use std::path::PathBuf;

const TWOFA_PANIC: u32 = 16;

/// Every exported function in the header: (return type, name).
fn exports() -> Vec<(String, String)> {
    let header = include_str!("../../include/twofa.h");
    let mut out = Vec::new();
    for line in header.lines() {
        let line = line.trim_start();
        if line.starts_with('*') || line.starts_with("/*") || line.starts_with('#') || line.starts_with("typedef") {
            continue;
        }
        let Some(open) = line.find('(') else { continue };
        let head = &line[..open];
        let Some(name_start) = head.rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) else { continue };
        let name = &head[name_start + 1..];
        if name.starts_with("twofa_") && !head[..name_start + 1].trim().is_empty() {
            out.push((head[..name_start + 1].trim().to_string(), name.to_string()));
        }
    }
    out
}

fn release_library() -> PathBuf {
    if let Some(p) = std::env::var_os("TWOFA_LIB") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/libtwofa.so")
}

#[test]
fn the_header_declares_the_canonical_operations() {
    let names: Vec<String> = exports().into_iter().map(|(_, n)| n).collect();
    for op in [
        "twofa_security_status",
        "twofa_set_contact_email",
        "twofa_contact_email_begin",
        "twofa_contact_email_confirm",
        "twofa_mark_order_created",
        "twofa_totp_enroll_begin",
        "twofa_totp_enroll_confirm",
        "twofa_email_enroll_begin",
        "twofa_email_enroll_confirm",
        "twofa_webauthn_register_begin",
        "twofa_webauthn_register_finish",
        "twofa_rename_method",
        "twofa_remove_method",
        "twofa_recovery_codes_generate",
        "twofa_login_begin",
        "twofa_login_send_email_code",
        "twofa_login_verify",
        "twofa_admin_totp_import",
        "twofa_admin_delete_user",
        "twofa_login_begin_remembered",
        "twofa_login_verify_remembering",
        "twofa_revoke_remembered_device",
        "twofa_revoke_remembered_devices",
        "twofa_admin_reset_user",
        "twofa_admin_export_user",
        "twofa_admin_import_user",
        "twofa_operation_feed_emitted",
        "twofa_version",
    ] {
        assert!(names.iter().any(|n| n == op), "{op} missing from include/twofa.h");
    }
}

#[test]
#[ignore = "needs the release library: run through `make test`"]
fn every_export_is_guarded_in_the_release_library() {
    let path = release_library();
    // SAFETY: loading our own library, whose initialisers are Rust's.
    let lib = unsafe { libloading::Library::new(&path) }.unwrap_or_else(|e| panic!("load {}: {e}", path.display()));
    type Hook = unsafe extern "C" fn(bool) -> u64;
    // Every export takes at most 9 integer or pointer arguments; with the hook on, none is read.
    type AnyExport = unsafe extern "C" fn(usize, usize, usize, usize, usize, usize, usize, usize, usize) -> u64;
    // SAFETY: the symbol has this signature in include/twofa.h.
    let hook: libloading::Symbol<Hook> = unsafe { lib.get(b"twofa_testing_force_panics\0") }.expect("hook");
    let exports = exports();
    assert!(exports.len() > 30, "parsed {} exports only", exports.len());
    for (ret, name) in exports.iter().filter(|(_, n)| n != "twofa_testing_force_panics") {
        let symbol = format!("{name}\0");
        // SAFETY: called with zeroed integer arguments while the hook makes it panic on entry,
        // before any argument is read (x86-64 SysV and AArch64 pass these in registers/stack
        // compatibly with the real prototypes).
        let f: libloading::Symbol<AnyExport> =
            unsafe { lib.get(symbol.as_bytes()) }.unwrap_or_else(|e| panic!("{name}: {e}"));
        // SAFETY: see above.
        let before = unsafe { hook(true) };
        // SAFETY: see above.
        let result = unsafe { f(0, 0, 0, 0, 0, 0, 0, 0, 0) };
        // SAFETY: see above.
        let after = unsafe { hook(false) };
        assert_eq!(after, before + 1, "{name} is not guarded (no panic was caught)");
        if ret == "twofa_status" {
            assert_eq!(result as u32, TWOFA_PANIC, "{name} did not return TWOFA_PANIC");
        }
    }
}
