//! The proving passes as pipelines of stages (execute, tracegen, LDE, commit, aux, quotient, DEEP,
//! FRI, open). Each stage consumes and produces chunk descriptors; the pass plans wire them
//! together in canonical transcript order.
//!
//! Today this crate holds the in-memory reference prover ([`in_memory`]); the out-of-core passes
//! will be measured against it.

pub mod in_memory;

pub use in_memory::{ProveRunError, ProvenRun, TableWidth, prove_in_memory};
