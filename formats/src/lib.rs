//! Bytes on disk: segment files (Arrow IPC, 64-byte aligned, read zero-copy through mmap), the
//! spill-dir manifest, and atomic file writing for the proof file.
//!
//! * [`segment`]: one Arrow IPC file per chunk artifact; [`write_segment`] / [`Segment::open`].
//! * [`mapped`]: [`MappedSegmentWriter`], fill a segment in place through a reserved mapping.
//! * [`manifest`]: `manifest.toml`, what each pass wrote, with checksums and run status.
//! * [`inspect`]: [`inspect_spill_dir`] explains a finished, kept, failed or interrupted run.
//! * [`atomic`]: temp + fsync + rename, with disk space reserved up front.
//! * [`proof_file`]: the proof file (statement and STARK proof sections), written atomically.

pub mod atomic;
pub mod checksum;
pub mod error;
pub mod inspect;
pub mod manifest;
pub mod mapped;
pub mod proof_file;
pub mod segment;

pub use atomic::{AtomicFile, atomic_write, probe_writable, reserve_space};
pub use checksum::Checksum;
pub use error::{FormatError, Result};
pub use inspect::{FileStatus, Report, RunState, inspect_spill_dir};
pub use manifest::{
    Checkpoint, JOURNAL_FILE, Journal, MANIFEST_FILE, Manifest, Owner, PassRecord, PassStatus,
    ResumeRecord, Reuse, RunStatus, SegmentRecord, checkpoint_file, partial_checkpoint_file,
};
pub use mapped::MappedSegmentWriter;
pub use proof_file::ProofFile;
pub use segment::{
    Access, Layout, SEGMENT_ALIGNMENT, Segment, SegmentData, SegmentInfo, SegmentMeta,
    checksum_file, verify_file, write_segment,
};
