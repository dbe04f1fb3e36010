//! Generic out-of-core dataflow runtime.
//!
//! Stages run on their own threads and are joined by bounded channels; what flows between them is
//! a small chunk descriptor that points at data on disk. Backpressure of the bounded channels is
//! what caps peak memory. This crate also owns the spill directory, the memory budget, progress
//! reporting and run metrics. It knows nothing about STARKs or RISC-V.
//!
//! * [`graph`]: [`Graph`], [`Stage`], [`Emitter`], errors naming stage and chunk.
//! * [`progress`]: per-stage bars or log lines.

pub mod graph;
pub mod progress;

pub use graph::{
    BoxError, Cancelled, Chunk, ChunkError, Emitter, Graph, PipelineError, Port, Stage, StageStats,
};
pub use progress::{Progress, ProgressMode, StageProgress};
