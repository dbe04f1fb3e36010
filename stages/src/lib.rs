//! The proving passes as pipelines of stages (execute, tracegen, LDE, commit, aux, quotient, DEEP,
//! FRI, open). Each stage consumes and produces chunk items; the pass plans wire them together
//! and absorb results in canonical transcript order.
//!
//! * [`passes`]: the out-of-core prover ([`prove_pipeline`]), byte-identical to the reference.
//! * [`generate`]: the execute + tracegen stage (instances handed out as soon as complete).
//! * [`store`]: store or recompute ([`Store`]); spilled matrices and tree levels as Arrow
//!   segments.
//! * [`budget`]: chunk rows from a memory budget (`--mem-budget`).
//! * [`in_memory`]: the in-RAM reference prover ([`prove_in_memory`]).
//! * [`instance`]: the single-instance prover on segments (one instance per table, chunks as
//!   row blocks), byte-identical to the in-memory prover on the same instances; [`lde`] is its
//!   out-of-core LDE and tree of one tall instance.
//! * [`widths`]: each table's committed columns and rows (`run --widths`).

pub mod budget;
pub mod clock;
pub mod error;
pub mod generate;
pub mod in_memory;
pub mod instance;
pub mod lde;
pub mod passes;
pub mod store;
pub mod widths;

pub use error::Error;
pub use in_memory::{ProveRunError, ProvenRun, prove_in_memory};
pub use passes::{PipelineConfig, PipelineRun, prove_pipeline};
pub use store::Store;
pub use widths::TableWidth;
