//! The spill-dir manifest: which run wrote what, in which pass, with which checksum.
//!
//! It is a TOML file (`manifest.toml`) rewritten atomically (temp + rename), so a reader sees
//! either the previous or the next state, never a torn one. Segment records between two
//! rewrites go to an append-only journal (`manifest.journal`, [`Journal`]) that loading replays,
//! so a run of many segments does not rewrite a long file per segment. A run that is killed
//! leaves `status = "in-progress"` behind, together with the owner's pid and process start time;
//! [`Owner::is_alive`] tells a run still going from an interrupted one.

use std::collections::BTreeMap;
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
/// File name of the manifest's journal of segment changes ([`Journal`]).
pub const JOURNAL_FILE: &str = "manifest.journal";
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

/// What a resumable run (`run --resume`) records: the settings a resumed run must repeat, one
/// checkpoint per pass it finished, in pass order, and what the pass that was running when it
/// stopped had saved so far.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeRecord {
    /// Every setting that shapes the proof, by name (program and input digests, proof
    /// parameters, rows, format version).
    pub key: BTreeMap<String, String>,
    #[serde(default)]
    pub checkpoints: Vec<Checkpoint>,
    /// The unfinished pass's results so far (its `part` is set): the pass goes on after them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial: Option<Checkpoint>,
    /// The segments an unfinished pass takes up again when it is resumed, by pass and kind:
    /// they stay when the pass's other files are discarded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reuse: Vec<Reuse>,
}

impl ResumeRecord {
    /// Whether `segment`, written by a pass that did not finish, is kept for the resumed pass.
    pub fn reuses(&self, segment: &SegmentRecord) -> bool {
        self.reuse.iter().any(|r| {
            r.pass == segment.pass && r.kinds.iter().any(|k| segment.kind.starts_with(k.as_str()))
        })
    }
}

/// Segments of `pass` whose kind starts with one of `kinds` are taken up again by a resumed run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reuse {
    pub pass: String,
    pub kinds: Vec<String>,
}

/// A pass's results, which the passes after it read: written to `file` atomically before the
/// manifest records it, so a recorded checkpoint is always complete.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub pass: String,
    /// The Fiat-Shamir transcript state after the pass's commitments were absorbed (hex).
    pub transcript: String,
    /// The results file, relative to the spill dir.
    pub file: String,
    pub bytes: u64,
    pub checksum: Checksum,
    /// Set for an unfinished pass's checkpoint: the number of its units (e.g. instances) the
    /// results hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<u64>,
}

/// File name of a pass's checkpoint inside the spill dir.
pub fn checkpoint_file(pass: &str) -> String {
    format!("checkpoint-{pass}.bin")
}

/// File name of an unfinished pass's checkpoint of its first `part` units inside the spill dir
/// (a new name for every part: the one the manifest records is never overwritten).
pub fn partial_checkpoint_file(pass: &str, part: u64) -> String {
    format!("checkpoint-{pass}-part{part}.bin")
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
    /// Set by runs that can be resumed (single-instance runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<ResumeRecord>,
    /// The recorded segments by file (written as a `[[segments]]` list in file order).
    #[serde(
        default,
        with = "segment_list",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub segments: BTreeMap<String, SegmentRecord>,
}

/// The segment map as a TOML list of records.
mod segment_list {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serializer};

    use super::SegmentRecord;

    pub fn serialize<S: Serializer>(
        map: &BTreeMap<String, SegmentRecord>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.values())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, SegmentRecord>, D::Error> {
        let list = Vec::<SegmentRecord>::deserialize(d)?;
        Ok(list.into_iter().map(|r| (r.file.clone(), r)).collect())
    }
}

/// One change to the segment records, as a line of the journal.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Change {
    Record(SegmentRecord),
    Remove(String),
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
            resume: None,
            segments: BTreeMap::new(),
        }
    }

    /// Read `<dir>/manifest.toml` and apply the changes its journal recorded since.
    pub fn load(dir: impl AsRef<Path>) -> Result<Manifest> {
        let path = dir.as_ref().join(MANIFEST_FILE);
        let text = fs::read_to_string(&path).map_err(|e| FormatError::io("read", &path, e))?;
        let mut manifest: Manifest = toml::from_str(&text)
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
        manifest.replay_journal(&dir.as_ref().join(JOURNAL_FILE))?;
        Ok(manifest)
    }

    /// Applies the journal's complete lines in order. A last line without its newline is a
    /// write cut short by a crash, and is ignored; any other bad line is corruption.
    fn replay_journal(&mut self, path: &Path) -> Result<()> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(FormatError::io("read", path, e)),
        };
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        for (n, line) in complete.lines().enumerate() {
            let change: Change = serde_json::from_str(line).map_err(|e| {
                FormatError::corrupt(path, format!("line {}: invalid journal entry: {e}", n + 1))
            })?;
            self.apply(change);
        }
        Ok(())
    }

    fn apply(&mut self, change: Change) -> bool {
        match change {
            Change::Record(r) => self.segments.insert(r.file.clone(), r).is_some(),
            Change::Remove(file) => self.segments.remove(&file).is_some(),
        }
    }

    /// Atomically replace `<dir>/manifest.toml` with the whole manifest, then empty the journal
    /// (whose changes the file now holds; replaying them again would change nothing, so a crash
    /// between the two steps is harmless). With `durable`, fsync file and directory (used on
    /// status changes); without, the rename is still atomic for a crashing process, only a
    /// power loss could lose the latest update.
    pub fn store(&mut self, dir: impl AsRef<Path>, durable: bool) -> Result<()> {
        let path = dir.as_ref().join(MANIFEST_FILE);
        self.updated_unix_ms = unix_ms();
        let text = toml::to_string(self)
            .map_err(|e| FormatError::invalid(&path, format!("cannot serialize manifest: {e}")))?;
        if durable {
            crate::atomic::atomic_write(&path, text.as_bytes())?;
        } else {
            let mut file = AtomicFile::create(&path)?;
            std::io::Write::write_all(&mut file, text.as_bytes())
                .map_err(|e| write_error(&path, e))?;
            file.commit_without_sync()?;
        }
        let journal = dir.as_ref().join(JOURNAL_FILE);
        match fs::OpenOptions::new().write(true).open(&journal) {
            Ok(f) => f.set_len(0).map_err(|e| write_error(&journal, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(FormatError::io("open", &journal, e)),
        }
    }

    /// Add a segment record, replacing an earlier one for the same file.
    pub fn record_segment(&mut self, record: SegmentRecord) {
        self.apply(Change::Record(record));
    }

    /// Forget the record of `file` (a segment deleted by the run); false if there was none.
    pub fn remove_segment(&mut self, file: &str) -> bool {
        self.apply(Change::Remove(file.to_string()))
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
        self.segments.values().map(|s| s.bytes).sum()
    }
}

/// The append-only log of segment changes next to the manifest (`manifest.journal`): one JSON
/// line per recorded or removed segment, so that recording a segment costs one short write
/// whatever the number of segments. [`Manifest::store`] folds it into the manifest file;
/// [`Manifest::load`] replays it.
pub struct Journal {
    file: fs::File,
    path: std::path::PathBuf,
    lines: usize,
}

impl Journal {
    /// Opens (creating) `<dir>/manifest.journal` for appending.
    pub fn open(dir: impl AsRef<Path>) -> Result<Journal> {
        let path = dir.as_ref().join(JOURNAL_FILE);
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| FormatError::io("open", &path, e))?;
        Ok(Journal {
            file,
            path,
            lines: 0,
        })
    }

    /// Records `record` in `manifest` and appends the change.
    pub fn record_segment(&mut self, manifest: &mut Manifest, record: SegmentRecord) -> Result<()> {
        self.append(&Change::Record(record.clone()))?;
        manifest.record_segment(record);
        Ok(())
    }

    /// Forgets `file` in `manifest` and appends the change; false if it was not recorded.
    pub fn remove_segment(&mut self, manifest: &mut Manifest, file: &str) -> Result<bool> {
        self.append(&Change::Remove(file.to_string()))?;
        Ok(manifest.remove_segment(file))
    }

    /// Lines appended since the last [`Journal::folded`].
    pub fn lines(&self) -> usize {
        self.lines
    }

    /// The manifest file now holds every change ([`Manifest::store`] emptied the journal).
    pub fn folded(&mut self) {
        self.lines = 0;
    }

    fn append(&mut self, change: &Change) -> Result<()> {
        let mut line = serde_json::to_string(change)
            .map_err(|e| FormatError::invalid(&self.path, format!("journal entry: {e}")))?;
        line.push('\n');
        std::io::Write::write_all(&mut self.file, line.as_bytes())
            .map_err(|e| write_error(&self.path, e))?;
        self.lines += 1;
        Ok(())
    }
}
