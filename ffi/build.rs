//! Generates the C header into $OUT_DIR (compared with include/twofa.h by a test) and gives
//! the shared library its soname.
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libtwofa.so.0");
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default());
    let config = match cbindgen::Config::from_file(dir.join("cbindgen.toml")) {
        Ok(c) => c,
        Err(e) => {
            println!("cargo:warning=cbindgen.toml: {e}");
            std::process::exit(1);
        }
    };
    match cbindgen::Builder::new().with_crate(&dir).with_config(config).generate() {
        Ok(header) => {
            header.write_to_file(out.join("twofa.h"));
        }
        Err(e) => {
            println!("cargo:warning=cbindgen: {e}");
            std::process::exit(1);
        }
    }
}
