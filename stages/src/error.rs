//! Why an out-of-core proving run stopped. Every variant names where: the executor chunk, the
//! instance, the segment file, or (for [`Error::Pipeline`]) the pass, stage and chunk.

use vm::VmError;
use vm::air::WitnessError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("execution failed in executor chunk {chunk}: {source}")]
    Execution { chunk: u64, source: VmError },
    #[error("cannot build the witness: {0}")]
    Witness(#[from] WitnessError),
    #[error("the prover failed: {0}")]
    Prove(#[from] stark::ProveError),
    #[error("{0}")]
    Spill(#[from] pipeline::SpillError),
    #[error("{0}")]
    Segment(#[from] formats::FormatError),
    #[error("segment {path}: {msg}")]
    BadSegment { path: String, msg: String },
    #[error("pass {pass}: {source}")]
    Pipeline {
        pass: &'static str,
        source: pipeline::PipelineError,
    },
    #[error(
        "re-execution produced {what} where the first pass had {expected} (the run is not \
         deterministic?)"
    )]
    Diverged { what: String, expected: String },
    #[error(
        "the finished proof does not verify ({0}); it was assembled from spilled segments, so \
         one was probably changed on disk during the run (rerun with --verify-segments to find it)"
    )]
    SelfCheck(String),
    #[error(
        "spill dir {dir}: passes 2 and 3 need about {need} more bytes and {room} are left \
         (free space, or what --spill-limit leaves); {hint}"
    )]
    NoRoom {
        dir: String,
        need: u64,
        room: u64,
        hint: &'static str,
    },
    #[error("invalid configuration: {0}")]
    Config(String),
    /// `run --resume`: the spill dir is not this run's, or a checkpoint is unreadable.
    #[error("cannot resume: {0}")]
    Resume(String),
}
