//! Shared by the two binaries of `twofa-bench`: the shape of `bench/fixture.json`
//! ([`fixture`]), its content ([`generate`]) and the authenticator that signs with the fixture's
//! key ([`authenticator`]).
//!
//! The `fixture` binary writes the file; the `twofa-bench` binary reads it and signs fresh
//! assertions for the challenges twofa issues.

pub mod authenticator;
pub mod fixture;
pub mod generate;
