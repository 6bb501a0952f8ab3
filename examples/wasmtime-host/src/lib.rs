//! A wasmtime host of the twofa component (`twofa:auth/plugin`), and a runner of the shared
//! scenario (`tests/scenarios/security_tab.json`) against both the native core and the component.
//!
//! * [`host`]: bindings, [`host::HostState`] (a shared `twofa_core` store, an outbox, fault
//!   injection, virtual WASI clocks), [`host::Component`] (compile once) and [`host::Instance`]
//!   (typed calls returning `Err` for a trap and `Ok(Err(wit error))` for expected failures).
//! * [`surface`]: the [`surface::Surface`] trait over [`surface::Native`] and
//!   [`surface::ComponentSurface`].
//! * [`adapter`]: the component's adapter of the fault-injection harness
//!   (`tests/faults/README.md`), driven by the `fault-adapter` binary.
//! * [`scenario`]: the interpreter of the scenario files ([`scenario::Scenario`]),
//!   [`scenario::run_scenario`] for the shared one, and its [`scenario::Transcript`].

pub mod adapter;
pub mod clock;
pub mod convert;
pub mod host;
pub mod scenario;
pub mod surface;

/// The soft WebAuthn authenticator of the core's tests (browser JSON in, browser JSON out).
#[path = "../../../core/tests/support/webauthn.rs"]
pub mod webauthn_support;

pub use clock::VirtualClock;
pub use host::{Component, HostState, Instance};
pub use scenario::{Transcript, run_scenario};
pub use surface::{ComponentSurface, Native, Surface};
