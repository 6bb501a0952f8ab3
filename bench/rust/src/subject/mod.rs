//! The twofa surfaces the workloads drive, behind one small interface: the native `Engine`
//! ([`native`]), the C ABI's exported functions ([`c`]) and the WASI component in the wasmtime
//! host ([`wasm`]), each over the built-in in-memory store or an SQLite file.
//!
//! Every subject reads time from its own [`VirtualClock`], which the workloads move. Set-up
//! calls panic on failure (a benchmark cannot go on without its user); `login_verify` reports
//! the error's name, since the workloads expect `invalid_code` half of the time.

pub mod c;
pub mod native;
pub mod wasm;

use std::cell::Cell;
use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tempfile::TempDir;
use twofa_bench::fixture::Fixture;
use twofa_core::webauthn::WebauthnConfig;
use twofa_core::{Config, Proof};
use twofa_wasmtime_host::{Component, VirtualClock};

/// The engine's master key: for this benchmark only.
const MASTER_KEY: &[u8; 32] = b"twofa-bench master key, 32 bytes";

/// The issuer and relying-party name.
const ISSUER: &str = "twofa bench";

/// A sign-in challenge, as the workloads need it.
pub struct Challenge {
    /// The id to pass to `login_verify`.
    pub id: String,
    /// The `navigator.credentials.get` options when the user has a WebAuthn device.
    pub webauthn_options: Option<String>,
}

/// The operations of the TOTP and WebAuthn workloads, on one surface and one store.
pub trait Subject {
    /// The clock this subject's engine reads.
    fn clock(&self) -> &VirtualClock;
    /// Admin: imports a SHA-1, 6-digit, 30 s TOTP secret (base32) for `user`.
    fn totp_import(&mut self, user: &str, secret: &str);
    /// Starts a WebAuthn registration; returns the creation options JSON.
    fn webauthn_register_begin(&mut self, user: &str) -> String;
    /// Finishes it with the browser's response JSON.
    fn webauthn_register_finish(&mut self, user: &str, credential_json: &str);
    /// Starts a sign-in.
    fn login_begin(&mut self, user: &str) -> Challenge;
    /// Verifies a second factor; `Err` holds the error's name (e.g. `invalid_code`).
    fn login_verify(&mut self, user: &str, challenge: &str, proof: Proof) -> Result<(), &'static str>;
}

/// The operations of the email workload: a subject whose mail the benchmark can read.
pub trait Mail: Subject {
    /// Starts an email enrolment (the code goes to the mailbox).
    fn email_enroll_begin(&mut self, user: &str, address: &str);
    /// Confirms it with the mailed code.
    fn email_enroll_confirm(&mut self, user: &str, code: &str);
    /// Mails a sign-in code for `challenge`.
    fn login_send_email_code(&mut self, user: &str, challenge: &str);
    /// The plain-text body of the last message sent (panics if none was).
    fn take_mail(&mut self) -> String;
}

/// The surfaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    /// The Rust `Engine`.
    Native,
    /// The C ABI's exported functions.
    C,
    /// The WASI component in the wasmtime host.
    Wasmtime,
}

impl Surface {
    /// The subject part of a case id.
    pub fn name(self) -> &'static str {
        match self {
            Surface::Native => "native",
            Surface::C => "c",
            Surface::Wasmtime => "wasmtime",
        }
    }
}

/// The built-in stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// The in-memory store.
    Memory,
    /// The embedded SQLite store, in a fresh file in a temporary directory.
    Sqlite,
}

impl StoreKind {
    /// The variant part of a case id.
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::Memory => "memory",
            StoreKind::Sqlite => "sqlite",
        }
    }
}

/// The engine configuration: the defaults (TOTP SHA-1, 6 digits, 30 s, ±1 step; email codes
/// with a 60 s resend cooldown; lockout after 10 failures) and the fixture's relying party.
pub fn config(fixture: &Fixture) -> Config {
    let mut config = Config::new(ISSUER, "k1", STANDARD.encode(MASTER_KEY));
    config.webauthn = Some(WebauthnConfig::new(&fixture.rp_id, ISSUER, vec![fixture.origin.clone()]));
    // The setup imports TOTP secrets with the admin handle.
    config.admin = true;
    config
}

/// Makes subjects: each one gets its own engine, clock and store (a fresh SQLite file for
/// [`StoreKind::Sqlite`]). The component is compiled once, if it was built.
pub struct Factory {
    /// The engines' configuration.
    config: Config,
    /// Where every clock starts.
    t0: u64,
    /// Holds the SQLite files until the program ends.
    dir: TempDir,
    /// SQLite files made so far.
    files: Cell<u32>,
    /// The compiled component, if it was built.
    component: Option<Component>,
}

impl Factory {
    /// A factory for the fixture's configuration; compiles the component when
    /// `make component` has built it (the wasmtime cases are skipped otherwise).
    pub fn new(fixture: &Fixture) -> Factory {
        eprintln!("compiling the component...");
        let component = match Component::load_default() {
            Ok(component) => Some(component),
            Err(e) => {
                eprintln!("skipping the wasmtime cases: {e}");
                None
            }
        };
        Factory {
            config: config(fixture),
            t0: fixture.t0,
            dir: TempDir::new().expect("a temporary directory"),
            files: Cell::new(0),
            component,
        }
    }

    /// The surfaces that can be measured here.
    pub fn surfaces(&self) -> Vec<Surface> {
        let mut surfaces = vec![Surface::Native, Surface::C];
        if self.component.is_some() {
            surfaces.push(Surface::Wasmtime);
        }
        surfaces
    }

    /// A subject on `surface` over `store`.
    pub fn subject(&self, surface: Surface, store: StoreKind) -> Box<dyn Subject> {
        match surface {
            Surface::Native => Box::new(self.native(store)),
            Surface::C => Box::new(self.c(store)),
            Surface::Wasmtime => {
                let component = self.component.as_ref().expect("the wasmtime surface needs the component");
                let store: twofa_wasmtime_host::host::SharedStore = match store {
                    StoreKind::Memory => std::sync::Arc::new(twofa_core::store::MemoryStore::new()),
                    StoreKind::Sqlite => std::sync::Arc::new(native::open_sqlite(&self.sqlite_path())),
                };
                Box::new(wasm::Wasm::new(component, store, &self.config, self.clock()))
            }
        }
    }

    /// The native engine over `store`.
    pub fn native(&self, store: StoreKind) -> native::Native {
        match store {
            StoreKind::Memory => native::Native::new(&self.config, twofa_core::store::MemoryStore::new(), self.clock()),
            StoreKind::Sqlite => {
                native::Native::new(&self.config, native::open_sqlite(&self.sqlite_path()), self.clock())
            }
        }
    }

    /// An engine of the C ABI over `store`.
    pub fn c(&self, store: StoreKind) -> c::CAbi {
        match store {
            StoreKind::Memory => c::CAbi::memory(&self.config, self.clock()),
            StoreKind::Sqlite => c::CAbi::sqlite(&self.config, &self.sqlite_path(), self.clock()),
        }
    }

    /// A clock at the fixture's start time.
    fn clock(&self) -> VirtualClock {
        VirtualClock::at(self.t0)
    }

    /// A new database file name in the temporary directory.
    fn sqlite_path(&self) -> PathBuf {
        let n = self.files.get() + 1;
        self.files.set(n);
        self.dir.path().join(format!("twofa-{n}.sqlite3"))
    }
}
