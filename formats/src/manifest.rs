//! The spill-dir manifest: which run wrote what, in which pass, with which checksum.
//!
//! It is a TOML file (`manifest.toml`) rewritten atomically (temp + rename) on every change, so a
//! reader sees either the previous or the next state, never a torn one. A run that is killed
//! leaves `status = "in-progress"` behind, together with the owner's pid and process start time;
//! [`Owner::is_alive`] tells a run still going from an interrupted one.

use std::fs;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::atomic::{AtomicFile, write_error};
use crate::checksum::Checksum;
use crate::error::{FormatError, Result};
use crate::segment::{Layout, SegmentInfo};

/// File name of the manifest inside a spill dir.
pub const MANIFEST_FILE: &str = "manifest.toml";
/// Format tag written into every manifest.
pub const MANIFEST_FORMAT: &str = "stark-pipe-spill/1";

/// Overall state of the run that owns the spill dir.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    InProgress,
    Finished,
    Failed,
}

/// State of one pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PassStatus {
    Running,
    Finished,
    Failed,
}

/// The process that owns the run, to tell a live run from an interrupted one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub pid: u32,
    /// Process start time in clock ticks since boot (`/proc/<pid>/stat` field 22), so a recycled
    /// pid is not mistaken for the owner.
    pub start_ticks: Option<u64>,
}

impl Owner {
    pub fn current() -> Owner {
        let pid = std::process::id();
        Owner {
            pid,
            start_ticks: process_start_ticks(pid),
        }
    }

    /// True if the owning process still exists (same pid and same start time).
    pub fn is_alive(&self) -> bool {
        match process_start_ticks(self.pid) {
            None => false,
            Some(now) => self.start_ticks.is_none_or(|t| t == now),
        }
    }
}

/// Field 22 of `/proc/<pid>/stat`; `None` if the process does not exist.
pub fn process_start_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: split after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    // `rest` starts at field 3 (state); field 22 is the 20th from there.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// One pass as recorded in the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassRecord {
    pub name: String,
    pub status: PassStatus,
    pub started_unix_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_unix_ms: Option<u64>,
}

/// One segment file as recorded in the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SegmentRecord {
    /// Path relative to the spill dir.
    pub file: String,
    pub pass: String,
    pub table: String,
    pub chunk: u64,
    pub kind: String,
    pub layout: Layout,
    pub rows: u64,
    pub columns: u32,
    pub bytes: u64,
    pub checksum: Checksum,
}

impl SegmentRecord {
    /// Record for a segment written at `file` (relative to the spill dir).
    pub fn from_info(file: impl Into<String>, info: &SegmentInfo) -> Self {
        SegmentRecord {
            file: file.into(),
            pass: info.meta.pass.clone(),
            table: info.meta.table.clone(),
            chunk: info.meta.chunk,
            kind: info.meta.kind.clone(),
            layout: info.layout,
            rows: info.rows,
            columns: info.columns,
            bytes: info.bytes,
            checksum: info.checksum,
        }
    }
}

/// Contents of `manifest.toml`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub run_id: String,
    pub status: RunStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub owner: Owner,
    pub created_unix_ms: u64,
    pub updated_unix_ms: u64,
    #[serde(default)]
    pub passes: Vec<PassRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<SegmentRecord>,
    /// TOML of the segment records already serialized, so that recording one more segment
    /// costs one record's serialization, not the whole list's.
    #[serde(skip)]
    segments_toml: SegmentsToml,
}

/// Cache behind [`Manifest::store`]: the TOML of `segments[..count]`, valid while those
/// records hash to `prefix_hash`. Never part of equality.
#[derive(Clone, Debug, Default)]
struct SegmentsToml {
    count: usize,
    prefix_hash: u64,
    text: String,
}

impl PartialEq for SegmentsToml {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for SegmentsToml {}

fn hash_records(records: &[SegmentRecord]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    records.hash(&mut h);
    h.finish()
}

#[derive(Serialize)]
struct SegmentsOnly<'a> {
    segments: &'a [SegmentRecord],
}

pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Manifest {
    /// A fresh in-progress manifest owned by this process.
    pub fn new(run_id: impl Into<String>) -> Self {
        let now = unix_ms();
        Manifest {
            format: MANIFEST_FORMAT.to_string(),
            run_id: run_id.into(),
            status: RunStatus::InProgress,
            error: None,
            owner: Owner::current(),
            created_unix_ms: now,
            updated_unix_ms: now,
            passes: Vec::new(),
            segments: Vec::new(),
            segments_toml: SegmentsToml::default(),
        }
    }

    /// Read `<dir>/manifest.toml`.
    pub fn load(dir: impl AsRef<Path>) -> Result<Manifest> {
        let path = dir.as_ref().join(MANIFEST_FILE);
        let text = fs::read_to_string(&path).map_err(|e| FormatError::io("read", &path, e))?;
        let manifest: Manifest = toml::from_str(&text)
            .map_err(|e| FormatError::corrupt(&path, format!("invalid manifest: {e}")))?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(FormatError::corrupt(
                &path,
                format!(
                    "manifest format `{}`, expected `{MANIFEST_FORMAT}`",
                    manifest.format
                ),
            ));
        }
        Ok(manifest)
    }

    /// Atomically replace `<dir>/manifest.toml`. With `durable`, fsync file and directory (used
    /// on status changes); without, the rename is still atomic for a crashing process, only a
    /// power loss could lose the latest update.
    pub fn store(&mut self, dir: impl AsRef<Path>, durable: bool) -> Result<()> {
        let path = dir.as_ref().join(MANIFEST_FILE);
        self.updated_unix_ms = unix_ms();
        let text = self
            .to_toml()
            .map_err(|e| FormatError::invalid(&path, format!("cannot serialize manifest: {e}")))?;
        if durable {
            return crate::atomic::atomic_write(&path, text.as_bytes());
        }
        let mut file = AtomicFile::create(&path)?;
        std::io::Write::write_all(&mut file, text.as_bytes()).map_err(|e| write_error(&path, e))?;
        file.commit_without_sync()
    }

    /// The manifest as TOML: the run fields and passes, then the `[[segments]]` tables (which
    /// TOML allows after everything else), reusing the cached text of unchanged records.
    pub fn to_toml(&mut self) -> std::result::Result<String, toml::ser::Error> {
        let cache = &mut self.segments_toml;
        let valid = cache.count <= self.segments.len()
            && hash_records(&self.segments[..cache.count]) == cache.prefix_hash;
        if !valid {
            *cache = SegmentsToml::default();
            cache.prefix_hash = hash_records(&[]);
        }
        if cache.count < self.segments.len() {
            let new = &self.segments[cache.count..];
            cache.text += &toml::to_string(&SegmentsOnly { segments: new })?;
            cache.count = self.segments.len();
            cache.prefix_hash = hash_records(&self.segments);
        }
        let head = Manifest {
            segments: Vec::new(),
            segments_toml: SegmentsToml::default(),
            passes: self.passes.clone(),
            error: self.error.clone(),
            owner: self.owner.clone(),
            format: self.format.clone(),
            run_id: self.run_id.clone(),
            ..*self
        };
        let mut text = toml::to_string(&head)?;
        if !self.segments.is_empty() {
            text.push('\n');
            text += &self.segments_toml.text;
        }
        Ok(text)
    }

    /// Add a segment record, replacing an earlier one for the same file.
    pub fn record_segment(&mut self, record: SegmentRecord) {
        self.segments.retain(|s| s.file != record.file);
        self.segments.push(record);
    }

    /// Forget the record of `file` (a segment deleted by the run); false if there was none.
    pub fn remove_segment(&mut self, file: &str) -> bool {
        let before = self.segments.len();
        self.segments.retain(|s| s.file != file);
        self.segments.len() != before
    }

    pub fn begin_pass(&mut self, name: &str) {
        self.passes.push(PassRecord {
            name: name.to_string(),
            status: PassStatus::Running,
            started_unix_ms: unix_ms(),
            ended_unix_ms: None,
        });
    }

    /// Mark the latest pass called `name` finished or failed.
    pub fn end_pass(&mut self, name: &str, status: PassStatus) {
        if let Some(p) = self.passes.iter_mut().rev().find(|p| p.name == name) {
            p.status = status;
            p.ended_unix_ms = Some(unix_ms());
        }
    }

    pub fn total_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }
}
