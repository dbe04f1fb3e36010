//! One error type for everything on disk; every variant names the file it is about.

use std::io;
use std::path::PathBuf;

use crate::checksum::Checksum;

/// An error reading or writing a file; always names the file. The OS or Arrow error is part of
/// the message (and not also a `source()`, so that a chain printer does not repeat it).
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// An I/O call failed (`action` says which: "create", "read", "fsync", ...).
    #[error("{action} {}: {error}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        error: io::Error,
    },
    /// The disk (or quota, or file size limit) cannot hold the file; detected when reserving
    /// space, before writing. `needed` is 0 when it surfaced in a write instead.
    #[error(
        "not enough disk space for {}: needed {needed} bytes ({error})",
        path.display()
    )]
    NoSpace {
        path: PathBuf,
        needed: u64,
        error: io::Error,
    },
    /// Arrow could not encode or decode the file.
    #[error("arrow error in {}: {error}", path.display())]
    Arrow {
        path: PathBuf,
        error: arrow_schema::ArrowError,
    },
    /// The file is not what it claims to be (truncated, bad footer, wrong schema, ...).
    #[error("corrupt file {}: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    /// The file's BLAKE3 hash differs from the one recorded when it was written.
    #[error("checksum mismatch for {}: expected {expected}, found {actual}", path.display())]
    ChecksumMismatch {
        path: PathBuf,
        expected: Checksum,
        actual: Checksum,
    },
    /// The caller asked for something the format cannot hold (bad name, ragged columns, ...).
    #[error("invalid request for {}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
}

impl FormatError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        FormatError::Io {
            action,
            path: path.into(),
            error: source,
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        FormatError::Corrupt {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        FormatError::Invalid {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// True when the error is "the disk is full" (so callers can suggest `--spill-dir`).
    pub fn is_no_space(&self) -> bool {
        match self {
            FormatError::NoSpace { .. } => true,
            FormatError::Io { error, .. } => error.raw_os_error() == Some(libc::ENOSPC),
            _ => false,
        }
    }
}

pub type Result<T, E = FormatError> = std::result::Result<T, E>;
