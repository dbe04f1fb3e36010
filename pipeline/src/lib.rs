//! Generic out-of-core dataflow runtime.
//!
//! Stages run on their own threads and are joined by bounded channels; what flows between them is
//! a small chunk descriptor that points at data on disk. Backpressure of the bounded channels is
//! what caps peak memory. This crate also owns the spill directory, the memory budget, progress
//! reporting and run metrics. It knows nothing about STARKs or RISC-V.
//!
//! * [`graph`]: [`Graph`], [`Stage`], [`Emitter`], errors naming stage and chunk.
//! * [`descriptor`]: [`ChunkDescriptor`], what flows between stages.
//! * [`spill`]: [`SpillDir`], segments plus manifest, tmpfs detection, cleanup.
//! * [`progress`]: per-stage bars or log lines.
//! * [`budget`]: memory limit (cgroup, MemTotal) and chunk size from a byte budget.
//! * [`metrics`]: per-pass wall/CPU time, peak RSS (VmHWM) and sampled RssAnon, bytes spilled.

pub mod budget;
pub mod descriptor;
pub mod graph;
pub mod metrics;
pub mod progress;
pub mod spill;

pub use budget::{BudgetError, MemoryLimit, chunk_rows_for_budget};
pub use descriptor::{ChunkDescriptor, DescriptorError, SegmentRef};
pub use graph::{
    BoxError, Cancelled, Chunk, ChunkError, Emitter, Graph, PipelineError, Port, Stage, StageStats,
};
pub use metrics::{Metrics, PassMetrics, ProcStatus, RssSampler, RunSummary};
pub use progress::{Progress, ProgressMode, StageProgress};
pub use spill::{FsKind, Keep, SpillDir, SpillError, SpillOptions};
