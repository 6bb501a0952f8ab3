//! twofa-core: two-factor authentication as sans-IO decisions over one record per user.
//!
//! - [`Engine`]: every canonical operation, performed against a [`Store`](store::Store), a
//!   [`Mailer`](mail::Mailer) and a [`Clock`].
//! - [`Operation`]: the same operations as a state machine for hosts that do their own
//!   (asynchronous) I/O: ask for the next [`Action`], perform it, [`feed`](Operation::feed) the result.
//! - [`Admin`]: the admin capability (reset, export, import, TOTP import, deletion), granted only
//!   by `"admin": true` in the config and kept apart from user calls.
//!
//! **Layers**, bottom to top: a module uses only the ones below it.
//! 1. `error`: the one error type.
//! 2. `mail`, `webauthn`, `store`: messages and templates, the WebAuthn relying party, the store
//!    contract with its sans-IO vocabulary ([`StoreCall`](store::StoreCall)) and conformance suite.
//! 3. `crypto`: master keys, sealing, keyed hashes, randomness.
//! 4. `record`: the stored per-user record, with the stored types the API shows as they are
//!    ([`MethodKind`], [`TotpAlgorithm`], [`ResetInfo`]).
//! 5. `config`: the validated configuration.
//! 6. `policy`, `login`, `totp`, `email_code`, `recovery`, `export`: the rules and factors, over
//!    the record.
//! 7. `engine`, itself layered: requests, outcomes and events (`types`), the checks of text input
//!    (`validate`) and the configuration with its keys ([`Core`]); the pure decisions (`decide`);
//!    the driver ([`Operation`], which turns store calls into [`Action`]s); the synchronous
//!    [`Engine`].
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo, clippy::unimplemented)
)]
#![deny(missing_docs)]

pub mod config;
mod crypto;
mod email_code;
pub mod engine;
pub mod error;
mod export;
mod login;
pub mod mail;
pub mod policy;
mod record;
mod recovery;
pub mod store;
mod totp;
pub mod webauthn;

pub use config::{Config, TotpAlgorithm};
pub use engine::*;
pub use error::Error;
pub use login::StepUpToken;
pub use mail::{Mailer, Message};
pub use policy::{MethodKind, Recommendation, Warning};
