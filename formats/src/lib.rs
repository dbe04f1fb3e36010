//! Bytes on disk: segment files (Arrow IPC, 64-byte aligned, read zero-copy through mmap), the
//! spill-dir manifest, and the proof file container.
