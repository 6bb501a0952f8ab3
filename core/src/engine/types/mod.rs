//! The inputs and outputs of the canonical operations.
//!
//! Every type here is serde-serialisable: surfaces pass them as JSON (C, async hosts) or map them
//! to native types. `Debug` never shows a code, secret or token. The requests, the outcomes and
//! the audit events each have their file; all are re-exported here.

mod events;
mod outcomes;
mod requests;

pub use events::*;
pub use outcomes::*;
pub use requests::*;
