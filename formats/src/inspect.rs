//! Explain a spill dir: what run wrote it, how it ended, and whether every recorded segment is
//! still there intact.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use crate::checksum::Checksum;
use crate::error::{FormatError, Result};
use crate::manifest::{MANIFEST_FILE, Manifest, RunStatus};
use crate::segment::checksum_file;

/// How the run that owns the spill dir ended (or did not).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunState {
    /// Finished; the files are here because keeping them was requested.
    Finished,
    /// Failed with this error; files kept for debugging.
    Failed { error: Option<String> },
    /// Marked in progress and its process is still running.
    Running { pid: u32 },
    /// Marked in progress but its process is gone: it crashed or was killed.
    Interrupted { pid: u32 },
}

/// What was found on disk for one recorded segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileStatus {
    /// Present with the recorded size (checksum not computed).
    Present,
    /// Present and its BLAKE3 checksum matches.
    Verified,
    Missing,
    SizeMismatch {
        actual: u64,
    },
    ChecksumMismatch {
        actual: Checksum,
    },
    Unreadable {
        error: String,
    },
}

impl FileStatus {
    pub fn is_ok(&self) -> bool {
        matches!(self, FileStatus::Present | FileStatus::Verified)
    }
}

impl fmt::Display for FileStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileStatus::Present => f.write_str("present"),
            FileStatus::Verified => f.write_str("ok"),
            FileStatus::Missing => f.write_str("MISSING"),
            FileStatus::SizeMismatch { actual } => write!(f, "SIZE {actual}"),
            FileStatus::ChecksumMismatch { actual } => write!(f, "BAD {}", actual.short()),
            FileStatus::Unreadable { error } => write!(f, "UNREADABLE: {error}"),
        }
    }
}

/// Result of [`inspect_spill_dir`].
#[derive(Clone, Debug)]
pub struct Report {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub state: RunState,
    /// One entry per recorded segment, in manifest order.
    pub segments: Vec<(crate::manifest::SegmentRecord, FileStatus)>,
    /// Whether checksums were computed.
    pub verified: bool,
    /// Temporary files left by writes that never completed (a crash mid-write).
    pub partial_files: Vec<PathBuf>,
}

impl Report {
    /// True when every recorded segment is present (and verified, if asked).
    pub fn all_segments_ok(&self) -> bool {
        self.segments.iter().all(|(_, s)| s.is_ok())
    }

    pub fn total_bytes(&self) -> u64 {
        self.manifest.total_bytes()
    }

    /// Whether `stark-pipe run --resume DIR` can continue this run, and from where.
    pub fn resume(&self) -> String {
        let Some(record) = &self.manifest.resume else {
            return "no: a chunked run (only single-instance runs, --instance-rows, resume)".into();
        };
        match &self.state {
            RunState::Finished => return "no: the run finished".into(),
            RunState::Running { pid } => return format!("not while process {pid} runs"),
            RunState::Failed { .. } | RunState::Interrupted { .. } => {}
        }
        let done: Vec<&str> = record.checkpoints.iter().map(|c| c.pass.as_str()).collect();
        let bad: Vec<&str> = self
            .segments
            .iter()
            .filter(|(r, s)| (done.contains(&r.pass.as_str()) || record.reuses(r)) && !s.is_ok())
            .map(|(r, _)| r.file.as_str())
            .collect();
        if let Some(first) = bad.first() {
            return format!(
                "no: {} segment(s) it would read missing or changed (first: {first})",
                bad.len()
            );
        }
        let partial = match &record.partial {
            Some(p) => format!(
                ", and {} unit(s) of pass {} (its checkpoint {})",
                p.part.unwrap_or(0),
                p.pass,
                p.file
            ),
            None => String::new(),
        };
        match done.last() {
            None => "yes, from the start (no pass had finished)".into(),
            Some(last) => format!(
                "yes, after pass {last}{partial} (finished: {}); the unfinished pass's files \
                 are discarded but for the segments it takes up again",
                done.join(", ")
            ),
        }
    }
}

/// Read the manifest of the spill dir at `dir`, check which recorded files exist with the
/// recorded size and, with `verify`, their checksums.
pub fn inspect_spill_dir(dir: impl AsRef<Path>, verify: bool) -> Result<Report> {
    let dir = dir.as_ref();
    if !dir.join(MANIFEST_FILE).exists() {
        return Err(FormatError::invalid(
            dir,
            format!("no {MANIFEST_FILE}: not a stark-pipe spill dir, or its run never started"),
        ));
    }
    let manifest = Manifest::load(dir)?;
    let state = match manifest.status {
        RunStatus::Finished => RunState::Finished,
        RunStatus::Failed => RunState::Failed {
            error: manifest.error.clone(),
        },
        RunStatus::InProgress if manifest.owner.is_alive() => RunState::Running {
            pid: manifest.owner.pid,
        },
        RunStatus::InProgress => RunState::Interrupted {
            pid: manifest.owner.pid,
        },
    };
    let segments = manifest
        .segments
        .values()
        .map(|rec| {
            (
                rec.clone(),
                check_file(&dir.join(&rec.file), rec.bytes, &rec.checksum, verify),
            )
        })
        .collect();
    Ok(Report {
        dir: dir.to_path_buf(),
        state,
        segments,
        verified: verify,
        partial_files: find_partial_files(dir),
        manifest,
    })
}

fn check_file(path: &Path, bytes: u64, checksum: &Checksum, verify: bool) -> FileStatus {
    let actual_len = match fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return FileStatus::Missing,
        Err(e) => {
            return FileStatus::Unreadable {
                error: e.to_string(),
            };
        }
    };
    if actual_len != bytes {
        return FileStatus::SizeMismatch { actual: actual_len };
    }
    if !verify {
        return FileStatus::Present;
    }
    match checksum_file(path) {
        Ok(actual) if &actual == checksum => FileStatus::Verified,
        Ok(actual) => FileStatus::ChecksumMismatch { actual },
        Err(e) => FileStatus::Unreadable {
            error: e.to_string(),
        },
    }
}

/// `.<name>.tmp-<pid>-<n>` files (see [`crate::atomic::AtomicFile`]) up to two levels deep.
fn find_partial_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                if depth > 0 {
                    walk(&path, depth - 1, out);
                }
            } else if name.starts_with('.') && name.contains(".tmp-") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, 1, &mut out);
    out.sort();
    out
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.manifest;
        writeln!(f, "spill dir  {}", self.dir.display())?;
        writeln!(f, "run        {}", m.run_id)?;
        let state = match &self.state {
            RunState::Finished => "finished (files kept on request)".to_string(),
            RunState::Failed { error } => format!(
                "FAILED: {} (files kept for debugging)",
                error.as_deref().unwrap_or("no error recorded")
            ),
            RunState::Running { pid } => format!("in progress, process {pid} is still running"),
            RunState::Interrupted { pid } => format!(
                "INTERRUPTED: marked in progress but process {pid} is gone (crashed or killed)"
            ),
        };
        writeln!(f, "state      {state}")?;
        writeln!(f, "resume     {}", self.resume())?;
        let passes: Vec<String> = m
            .passes
            .iter()
            .map(|p| format!("{} ({:?})", p.name, p.status).to_lowercase())
            .collect();
        writeln!(
            f,
            "passes     {}",
            if passes.is_empty() {
                "-".into()
            } else {
                passes.join(", ")
            }
        )?;
        let bad = self.segments.iter().filter(|(_, s)| !s.is_ok()).count();
        writeln!(
            f,
            "segments   {} files, {} ({}){}",
            self.segments.len(),
            human_bytes(self.total_bytes()),
            if self.verified {
                "checksums verified"
            } else {
                "checksums not verified; use --verify"
            },
            if bad > 0 {
                format!(", {bad} BAD")
            } else {
                String::new()
            }
        )?;
        for p in &self.partial_files {
            writeln!(
                f,
                "partial    {} (incomplete write, not in manifest)",
                p.display()
            )?;
        }
        if self.segments.is_empty() {
            return Ok(());
        }
        writeln!(f)?;
        writeln!(
            f,
            "{:<8} {:<10} {:>6} {:<10} {:>10} {:>7} {:>11}  {:<16}  status",
            "pass", "table", "chunk", "kind", "rows", "columns", "bytes", "checksum"
        )?;
        for (r, status) in &self.segments {
            writeln!(
                f,
                "{:<8} {:<10} {:>6} {:<10} {:>10} {:>7} {:>11}  {:<16}  {}",
                r.pass,
                r.table,
                r.chunk,
                r.kind,
                r.rows,
                r.columns,
                r.bytes,
                r.checksum.short(),
                status
            )?;
        }
        Ok(())
    }
}
