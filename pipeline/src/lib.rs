//! Generic out-of-core dataflow runtime.
//!
//! Stages run on their own threads and are joined by bounded channels; what flows between them is
//! a small chunk descriptor that points at data on disk. Backpressure of the bounded channels is
//! what caps peak memory. This crate also owns the spill directory, the memory budget, progress
//! reporting and run metrics. It knows nothing about STARKs or RISC-V.
//!
//! ```
//! use pipeline::{BoxError, Graph};
//!
//! let mut graph = Graph::new(2); // at most 2 items wait between two stages
//! let chunks = graph.source_iter("execute", 0..8u64);
//! let doubled = graph.map("tracegen", chunks, |c: u64| Ok::<_, BoxError>(c * 2));
//! let total = graph
//!     .run("commit", doubled, 0, |acc, c: u64| {
//!         *acc += c;
//!         Ok::<_, BoxError>(())
//!     })
//!     .expect("no stage fails");
//! assert_eq!(total, 56);
//! ```
//!
//! * [`graph`]: [`Graph`], [`Stage`], [`Emitter`], errors naming stage and chunk.
//! * [`descriptor`]: [`ChunkDescriptor`], what flows between stages.
//! * [`spill`]: [`SpillDir`], segments plus manifest, tmpfs detection, cleanup.
//! * [`progress`]: a line per pass and an overall bar with an ETA, log lines, or events.
//! * [`alloc`]: the allocator's settings and [`HugePageAlloc`].
//! * [`budget`]: memory limit (cgroup, MemTotal) and chunk size from a byte budget.
//! * [`metrics`]: per-pass wall/CPU time, sampled peak RSS and RssAnon (run peak: VmHWM), bytes spilled.

pub mod alloc;
pub mod budget;
pub mod descriptor;
pub mod graph;
pub mod metrics;
pub mod progress;
pub mod spill;

pub use alloc::{HugePageAlloc, configure_allocator};
pub use budget::{BudgetError, MemoryLimit, chunk_rows_for_budget};
pub use descriptor::{ChunkDescriptor, DescriptorError, SegmentRef};
pub use graph::{
    BoxError, CancelToken, Cancelled, Chunk, ChunkError, Emitter, Graph, PipelineError, Port,
    Stage, StageStats,
};
pub use metrics::{Metrics, PassMetrics, ProcStatus, RssSampler, RunSummary};
pub use progress::{Progress, ProgressEvent, ProgressMode, RunEstimate, StageProgress};
pub use spill::{
    FsKind, Keep, SpillBytes, SpillDir, SpillError, SpillOptions, StaleSpillDir,
    find_stale_spill_dirs, remove_stale_spill_dirs,
};
