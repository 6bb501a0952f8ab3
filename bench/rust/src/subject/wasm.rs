//! The wasmtime surface: the WASI component in the `twofa-wasmtime-host` crate's host, driven
//! through its `ComponentSurface` (typed calls of the exported `engine` and `admin` resources,
//! results converted to the core's types).

use twofa_core::{Config, Proof, TotpAlgorithm};
use twofa_wasmtime_host::host::SharedStore;
use twofa_wasmtime_host::{Component, ComponentSurface, Surface, VirtualClock};

use super::{Challenge, Subject};

/// An instance of the component over its own store, reading the subject's clock through WASI.
pub struct Wasm {
    /// The opened instance.
    surface: ComponentSurface,
    /// The clock its WASI wall clock reads.
    clock: VirtualClock,
}

impl Wasm {
    /// A fresh instance of `component` over `store`, opened with `config`.
    pub fn new(component: &Component, store: SharedStore, config: &Config, clock: VirtualClock) -> Wasm {
        let surface = ComponentSurface::new(component, store, config, clock.clone()).expect("the component opens");
        Wasm { surface, clock }
    }
}

impl Subject for Wasm {
    fn clock(&self) -> &VirtualClock {
        &self.clock
    }

    fn totp_import(&mut self, user: &str, secret: &str) {
        self.surface.totp_import(user, secret, TotpAlgorithm::Sha1, 6, 30).expect("totp_import");
    }

    fn webauthn_register_begin(&mut self, user: &str) -> String {
        self.surface.webauthn_register_begin(user, "fixture key", None).expect("webauthn_register_begin").options_json
    }

    fn webauthn_register_finish(&mut self, user: &str, credential_json: &str) {
        self.surface.webauthn_register_finish(user, credential_json, None).expect("webauthn_register_finish");
    }

    fn login_begin(&mut self, user: &str) -> Challenge {
        let challenge = self.surface.login_begin(user).expect("login_begin");
        Challenge {
            id: challenge.challenge_id.expect("a challenge for a user with a second factor"),
            webauthn_options: challenge.webauthn_options,
        }
    }

    fn login_verify(&mut self, user: &str, challenge: &str, proof: Proof) -> Result<(), &'static str> {
        self.surface.login_verify(user, challenge, proof).map(drop).map_err(|e| e.name())
    }
}
