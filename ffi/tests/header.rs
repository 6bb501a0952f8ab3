//! include/twofa.h must be exactly what cbindgen generates from the sources.
//! `make header` (TWOFA_UPDATE_HEADER=1) rewrites it.

#[test]
fn header_is_fresh() {
    let generated = include_str!(concat!(env!("OUT_DIR"), "/twofa.h"));
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../include/twofa.h");
    if std::env::var_os("TWOFA_UPDATE_HEADER").is_some() {
        std::fs::write(path, generated).expect("write include/twofa.h");
    }
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(generated == checked_in, "include/twofa.h is stale: run `make header` and commit it");
}
