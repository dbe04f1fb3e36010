//! The spill directory: where a run's segments live, with the manifest that explains them.
//!
//! Default location: a fresh `stark-pipe-<run id>` directory under `$TMPDIR` if set, else
//! `/tmp` if it is on disk, else `/var/tmp` (a tmpfs `/tmp` would put the "spilled" data back in
//! RAM, defeating the point). A memory-backed filesystem (tmpfs, ramfs) is detected with statfs
//! and reported as a warning. `--spill-dir` chooses the directory itself.
//!
//! The manifest is rewritten atomically on every change and says "in-progress" until
//! [`SpillDir::finish`] or [`SpillDir::fail`]; a run that is killed leaves it so, and
//! `inspect` reports it as interrupted. The directory is removed at the end of the run (success
//! or failure, including a drop without either) unless [`Keep`] asks otherwise.
//!
//! A resumable run ([`SpillDir::make_resumable`]) saves a checkpoint at every pass barrier
//! ([`SpillDir::save_checkpoint`]), and a pass may save its results so far
//! ([`SpillDir::save_partial_checkpoint`]). When it fails, the files of its finished passes stay,
//! and of the unfinished pass those the resume record's `reuse` names (the rest go);
//! [`SpillDir::resume`] takes the dir over in a later process.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use formats::{
    Checkpoint, Checksum, FormatError, JOURNAL_FILE, Journal, Layout, MANIFEST_FILE, Manifest,
    MappedSegmentWriter, Owner, PassStatus, ResumeRecord, Reuse, RunStatus, Segment, SegmentData,
    SegmentInfo, SegmentMeta, SegmentRecord, atomic_write, checkpoint_file,
    partial_checkpoint_file, write_segment,
};

use crate::descriptor::SegmentRef;

/// When to keep the spill dir after the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Keep {
    /// Remove it on success and on failure.
    #[default]
    Never,
    /// Keep it when the run fails (for debugging).
    OnError,
    /// Always keep it (`--keep-spill`).
    Always,
}

/// How to set up the spill dir.
#[derive(Clone, Debug, Default)]
pub struct SpillOptions {
    /// The directory to use (`--spill-dir`); `None` for a fresh temp dir on disk.
    pub dir: Option<PathBuf>,
    pub keep: Keep,
    /// Verify each segment's checksum when it is opened (`--verify-segments`).
    pub verify_segments: bool,
    /// Most bytes the spill dir may hold at once (`--spill-limit`; removed segments free
    /// room); a segment that would go past it is an error, and [`SpillDir::available_bytes`]
    /// counts it as the room.
    pub limit: Option<u64>,
}

/// What kind of filesystem a path is on, as far as spilling is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsKind {
    /// Memory-backed: spilling there does not free RAM.
    Memory(&'static str),
    Disk,
}

/// statfs `f_type` of the filesystem holding `path`, classified.
// The C types of `f_type` and the magic constants differ between architectures and libcs.
#[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
pub fn filesystem_kind(path: &Path) -> io::Result<FsKind> {
    let st = statfs(path)?;
    // f_type's integer type differs between libcs; compare as i64.
    const RAMFS_MAGIC: i64 = 0x8584_58f6;
    Ok(match st.f_type as i64 {
        t if t == i64::from(libc::TMPFS_MAGIC) => FsKind::Memory("tmpfs"),
        RAMFS_MAGIC => FsKind::Memory("ramfs"),
        _ => FsKind::Disk,
    })
}

/// Bytes available to an unprivileged user on the filesystem holding `path`.
pub fn available_bytes(path: &Path) -> io::Result<u64> {
    let st = statfs(path)?;
    // f_frsize is the unit of the block counts (f_bsize the preferred I/O size), as df uses.
    let unit = if st.f_frsize > 0 {
        st.f_frsize
    } else {
        st.f_bsize
    };
    Ok(st.f_bavail as u64 * unit as u64)
}

fn statfs(path: &Path) -> io::Result<libc::statfs> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid NUL-terminated path and a properly sized out-buffer.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

/// Where a default spill dir goes, with warnings about the choice.
pub fn default_spill_parent() -> (PathBuf, Vec<String>) {
    let mut warnings = Vec::new();
    if let Some(dir) = std::env::var_os("TMPDIR").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        if let Ok(FsKind::Memory(fs)) = filesystem_kind(&dir) {
            warnings.push(format!(
                "TMPDIR {} is on {fs} (RAM): spilled data will use memory; set --spill-dir to a disk path",
                dir.display()
            ));
        }
        return (dir, warnings);
    }
    let tmp = PathBuf::from("/tmp");
    match filesystem_kind(&tmp) {
        Ok(FsKind::Disk) => return (tmp, warnings),
        Ok(FsKind::Memory(fs)) => {
            let var_tmp = PathBuf::from("/var/tmp");
            if matches!(filesystem_kind(&var_tmp), Ok(FsKind::Disk)) {
                return (var_tmp, warnings);
            }
            warnings.push(format!(
                "/tmp is on {fs} (RAM) and /var/tmp is not usable: spilled data will use memory; \
                 set --spill-dir to a disk path"
            ));
        }
        Err(_) => {}
    }
    (tmp, warnings)
}

/// A unique id for a run: time, pid and a per-process counter.
pub fn new_run_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let ms = formats::manifest::unix_ms();
    format!(
        "{ms:x}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

#[derive(Debug, thiserror::Error)]
pub enum SpillError {
    #[error("spill dir {} is in use by running process {pid}", dir.display())]
    InUse { dir: PathBuf, pid: u32 },
    #[error(
        "spill dir {} is not empty and holds no stark-pipe manifest; refusing to write into it",
        dir.display()
    )]
    NotEmpty { dir: PathBuf },
    /// The OS error is in the message only (not also a `source()`, which a chain printer
    /// would repeat).
    #[error("spill dir {}: {action}: {error}", dir.display())]
    Io {
        dir: PathBuf,
        action: &'static str,
        error: io::Error,
    },
    #[error(
        "segment {}: writing {bytes} more bytes would pass the spill limit of {limit} bytes \
         ({written} in the spill dir; raise --spill-limit, or `--chunked --store recompute` writes least)",
        path.display()
    )]
    OverLimit {
        path: PathBuf,
        bytes: u64,
        written: u64,
        limit: u64,
    },
    #[error(
        "spill dir {}: its filesystem has {} free, and a run needs at least {} (free some \
         space or choose another spill dir)",
        dir.display(), crate::metrics::human_bytes(*free), crate::metrics::human_bytes(*needed)
    )]
    Full {
        dir: PathBuf,
        free: u64,
        needed: u64,
    },
    #[error("segment {} is not inside the spill dir", .0.display())]
    Outside(PathBuf),
    #[error("cannot resume from {}: {reason}", dir.display())]
    NotResumable { dir: PathBuf, reason: String },
    #[error("spill dir {}: no segment {file} in its manifest", dir.display())]
    Unrecorded { dir: PathBuf, file: String },
    #[error("invalid segment name component `{0}` (use letters, digits, `_`, `-`)")]
    BadName(String),
    #[error(transparent)]
    Format(#[from] FormatError),
}

impl SpillError {
    fn io(dir: &Path, action: &'static str, error: io::Error) -> Self {
        SpillError::Io {
            dir: dir.to_path_buf(),
            action,
            error,
        }
    }
}

/// How the run ended, as far as the spill dir is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    Open,
    Closed,
}

/// The manifest in memory and the journal its segment changes are appended to.
struct Book {
    manifest: Manifest,
    journal: Journal,
}

impl Book {
    /// Rewrites the manifest file with everything (emptying the journal).
    fn store(&mut self, root: &Path, durable: bool) -> Result<(), SpillError> {
        self.manifest.store(root, durable)?;
        self.journal.folded();
        Ok(())
    }

    /// Folds the journal into the manifest file once it has more lines than the manifest has
    /// records (plus a margin): each record is then rewritten a bounded number of times on
    /// average, and a reader's replay stays short.
    fn fold_if_long(&mut self, root: &Path) -> Result<(), SpillError> {
        if self.journal.lines() > self.manifest.segments.len() + 1024 {
            self.store(root, false)?;
        }
        Ok(())
    }
}

/// A spill dir's byte counters: written, removed again, and the most held at once. Shared
/// with [`crate::Metrics`], which reads each pass's peak.
#[derive(Debug, Default)]
pub struct SpillBytes {
    written: AtomicU64,
    removed: AtomicU64,
    peak_held: AtomicU64,
}

impl SpillBytes {
    fn add_written(&self, n: u64) {
        let written = self.written.fetch_add(n, Ordering::Relaxed) + n;
        let held = written.saturating_sub(self.removed.load(Ordering::Relaxed));
        self.peak_held.fetch_max(held, Ordering::Relaxed);
    }

    fn add_removed(&self, n: u64) {
        self.removed.fetch_add(n, Ordering::Relaxed);
    }

    /// Bytes written to segment files so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Bytes of the segments in the dir now (written and not removed).
    pub fn held(&self) -> u64 {
        self.written()
            .saturating_sub(self.removed.load(Ordering::Relaxed))
    }

    /// The most bytes held at once since the last call (or the start); the next window starts
    /// from what is held now.
    pub fn take_peak_held(&self) -> u64 {
        self.peak_held.swap(self.held(), Ordering::Relaxed)
    }
}

/// The spill dir of one run; share it between stages behind an `Arc`.
pub struct SpillDir {
    root: PathBuf,
    created_root: bool,
    keep: Keep,
    verify_segments: bool,
    book: Mutex<Book>,
    ending: Mutex<Ending>,
    bytes: Arc<SpillBytes>,
    limit: Option<u64>,
    fs_kind: Option<FsKind>,
    warnings: Vec<String>,
}

impl fmt::Debug for SpillDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpillDir")
            .field("root", &self.root)
            .field("keep", &self.keep)
            .field("fs_kind", &self.fs_kind)
            .finish()
    }
}

/// Free space a spill dir's filesystem must have when a run starts (or the spill limit, when
/// smaller): less is refused at once rather than found out in the middle of the first pass.
pub const MIN_FREE_BYTES: u64 = 64 << 20;

impl SpillDir {
    /// Create (or take over) the spill dir and write an in-progress manifest.
    ///
    /// A user-given directory may be missing (created), empty, or hold the leftovers of an
    /// earlier run that is no longer running (its recorded files are cleaned first, with a
    /// warning). Anything else is refused rather than overwritten, and so is a filesystem with
    /// less than [`MIN_FREE_BYTES`] free or one that cannot be written.
    pub fn create(options: &SpillOptions) -> Result<SpillDir, SpillError> {
        let run_id = new_run_id();
        let mut warnings = Vec::new();
        let (root, created_root) = match &options.dir {
            Some(dir) => {
                let created = !dir.exists();
                fs::create_dir_all(dir).map_err(|e| SpillError::io(dir, "create", e))?;
                if !created && let Some(w) = take_over(dir)? {
                    warnings.push(w);
                }
                (dir.clone(), created)
            }
            None => {
                let (parent, w) = default_spill_parent();
                warnings.extend(w);
                let dir = parent.join(format!("stark-pipe-{run_id}"));
                fs::create_dir_all(&dir).map_err(|e| SpillError::io(&dir, "create", e))?;
                (dir, true)
            }
        };
        let needed = MIN_FREE_BYTES.min(options.limit.unwrap_or(u64::MAX));
        if let Ok(free) = available_bytes(&root)
            && free < needed
        {
            if created_root {
                let _ = fs::remove_dir(&root);
            }
            return Err(SpillError::Full {
                dir: root,
                free,
                needed,
            });
        }
        let fs_kind = filesystem_kind(&root).ok();
        if options.dir.is_some()
            && let Some(FsKind::Memory(fs)) = fs_kind
        {
            warnings.push(format!(
                "spill dir {} is on {fs} (RAM): spilled data will use memory, not disk",
                root.display()
            ));
        }
        let mut manifest = Manifest::new(run_id);
        manifest.store(&root, true)?;
        let journal = Journal::open(&root)?;
        Ok(SpillDir {
            root,
            created_root,
            keep: options.keep,
            verify_segments: options.verify_segments,
            book: Mutex::new(Book { manifest, journal }),
            ending: Mutex::new(Ending::Open),
            bytes: Arc::default(),
            limit: options.limit,
            fs_kind,
            warnings,
        })
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    pub fn run_id(&self) -> String {
        self.lock_book().manifest.run_id.clone()
    }

    /// Things the user should know about the chosen location (tmpfs, cleaned leftovers).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    pub fn filesystem(&self) -> Option<FsKind> {
        self.fs_kind
    }

    /// Bytes written to segment files so far.
    pub fn bytes_written(&self) -> u64 {
        self.bytes.written()
    }

    /// The counters behind [`SpillDir::bytes_written`] and [`SpillDir::bytes_held`], for
    /// metrics.
    pub fn bytes_counter(&self) -> Arc<SpillBytes> {
        Arc::clone(&self.bytes)
    }

    /// Room left for segments: free space on the spill dir's filesystem, and at most what
    /// the spill limit leaves.
    pub fn available_bytes(&self) -> Option<u64> {
        let fs = available_bytes(&self.root).ok();
        let left = self.limit.map(|l| l.saturating_sub(self.bytes_held()));
        match (fs, left) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Bytes of the segments in the dir now (written and not removed).
    pub fn bytes_held(&self) -> u64 {
        self.bytes.held()
    }

    /// Delete a segment this run wrote and no longer needs, and forget it in the manifest.
    pub fn remove_segment(&self, segment: &SegmentRef) -> Result<(), SpillError> {
        let file = self.manifest_name(&segment.path)?;
        let mut book = self.lock_book();
        // The record goes first: a kill between the two leaves an unrecorded file, which a
        // resume removes, never a record of a file that is gone.
        let Book { manifest, journal } = &mut *book;
        if journal.remove_segment(manifest, &file)? {
            self.bytes.add_removed(segment.bytes);
        }
        fs::remove_file(&segment.path)
            .map_err(|e| SpillError::io(&segment.path, "remove segment", e))?;
        book.fold_if_long(&self.root)
    }

    /// Refuses a segment of about `bytes` that would pass the spill limit.
    fn check_limit(&self, path: &Path, bytes: u64) -> Result<(), SpillError> {
        let written = self.bytes_held();
        match self.limit {
            Some(limit) if written.saturating_add(bytes) > limit => Err(SpillError::OverLimit {
                path: path.to_path_buf(),
                bytes,
                written,
                limit,
            }),
            _ => Ok(()),
        }
    }

    /// A copy of the current manifest.
    pub fn manifest(&self) -> Manifest {
        self.lock_book().manifest.clone()
    }

    fn lock_book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that `pass` started; the manifest file is rewritten durably (a pass barrier).
    pub fn begin_pass(&self, pass: &str) -> Result<(), SpillError> {
        check_name(pass)?;
        let mut book = self.lock_book();
        book.manifest.begin_pass(pass);
        book.store(&self.root, true)
    }

    /// Records that `pass` finished; the manifest file is rewritten durably (a pass barrier).
    pub fn end_pass(&self, pass: &str) -> Result<(), SpillError> {
        let mut book = self.lock_book();
        book.manifest.end_pass(pass, PassStatus::Finished);
        book.store(&self.root, true)
    }

    /// Relative path of a segment: `<pass>/<table>-<chunk:06>.<kind>.arrow`.
    pub fn segment_file(meta: &SegmentMeta) -> Result<String, SpillError> {
        for part in [&meta.pass, &meta.table, &meta.kind] {
            check_name(part)?;
        }
        Ok(format!(
            "{}/{}-{:06}.{}.arrow",
            meta.pass, meta.table, meta.chunk, meta.kind
        ))
    }

    /// Write a segment into the spill dir and record it in the manifest.
    pub fn write_segment(
        &self,
        meta: &SegmentMeta,
        data: SegmentData<'_>,
    ) -> Result<SegmentRef, SpillError> {
        let file = Self::segment_file(meta)?;
        let path = self.root.join(&file);
        let dir = path.parent().expect("segment files live in a pass dir");
        fs::create_dir_all(dir).map_err(|e| SpillError::io(dir, "create pass dir", e))?;
        self.check_limit(&path, data.value_bytes())?;
        let info = write_segment(&path, meta, data)?;
        // A rewritten segment (e.g. a retried chunk) replaces its old record.
        self.record_segment(&info)
    }

    /// Start a segment that the caller fills in place (see [`MappedSegmentWriter`]); hand the
    /// finished writer's [`SegmentInfo`] to [`SpillDir::record_segment`].
    pub fn create_mapped_segment(
        &self,
        meta: &SegmentMeta,
        layout: Layout,
        rows: usize,
        columns: usize,
    ) -> Result<MappedSegmentWriter, SpillError> {
        let file = Self::segment_file(meta)?;
        let path = self.root.join(&file);
        let dir = path.parent().expect("segment files live in a pass dir");
        fs::create_dir_all(dir).map_err(|e| SpillError::io(dir, "create pass dir", e))?;
        self.check_limit(&path, (rows * columns * 8) as u64)?;
        Ok(MappedSegmentWriter::create(
            &path, meta, layout, rows, columns,
        )?)
    }

    /// A segment file's name in the manifest: its path relative to the spill dir.
    fn manifest_name(&self, path: &Path) -> Result<String, SpillError> {
        let relative = path
            .strip_prefix(&self.root)
            .map_err(|_| SpillError::Outside(path.to_path_buf()))?;
        Ok(relative.to_string_lossy().into_owned())
    }

    /// Record a segment written into this spill dir by other means (e.g. a mapped writer).
    pub fn record_segment(&self, info: &SegmentInfo) -> Result<SegmentRef, SpillError> {
        let file = self.manifest_name(&info.path)?;
        self.bytes.add_written(info.bytes);
        let mut book = self.lock_book();
        let Book { manifest, journal } = &mut *book;
        journal.record_segment(manifest, SegmentRecord::from_info(file, info))?;
        book.fold_if_long(&self.root)?;
        Ok(SegmentRef::from_info(info))
    }

    /// Open a segment written by this run, verifying it if `--verify-segments` was given.
    pub fn open_segment(&self, segment: &SegmentRef) -> Result<Segment, SpillError> {
        Ok(segment.open(self.verify_segments)?)
    }

    /// Makes the run resumable (`run --resume`), recording the settings a resumed run must
    /// repeat and the segments an unfinished pass takes up again (`reuse`). From then on a
    /// failure after a checkpoint keeps the finished passes' files.
    pub fn make_resumable(
        &self,
        key: BTreeMap<String, String>,
        reuse: Vec<Reuse>,
    ) -> Result<(), SpillError> {
        let mut book = self.lock_book();
        book.manifest.resume = Some(ResumeRecord {
            key,
            reuse,
            ..ResumeRecord::default()
        });
        book.store(&self.root, true)
    }

    /// The resume record: the run's settings and the checkpoints saved so far.
    pub fn resume_record(&self) -> Option<ResumeRecord> {
        self.lock_book().manifest.resume.clone()
    }

    /// Saves `pass`'s results with the transcript state after it and marks the pass finished:
    /// the results file is written atomically and fsynced first, then the manifest records it
    /// (durably), so a recorded checkpoint is always whole. The pass's recorded segments that
    /// `keep` does not name (what a resumed pass did not take up again) are removed, and so is
    /// its partial checkpoint.
    pub fn save_checkpoint(
        &self,
        pass: &str,
        transcript: [u8; 32],
        results: &[u8],
        keep: &BTreeSet<String>,
    ) -> Result<(), SpillError> {
        let checkpoint = self.write_checkpoint(pass, None, transcript, results)?;
        let mut book = self.lock_book();
        let Book { manifest, journal } = &mut *book;
        let stale: Vec<SegmentRecord> = manifest
            .segments
            .values()
            .filter(|r| r.pass == pass && !keep.contains(&r.file))
            .cloned()
            .collect();
        for r in stale {
            if journal.remove_segment(manifest, &r.file)? {
                self.bytes.add_removed(r.bytes);
            }
            let path = self.root.join(&r.file);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(SpillError::io(&path, "remove segment", e)),
            }
        }
        let record = resume_of(&self.root, manifest)?;
        if let Some(p) = record.partial.take_if(|p| p.pass == pass) {
            let _ = fs::remove_file(self.root.join(p.file));
        }
        record.checkpoints.retain(|c| c.pass != pass);
        record.checkpoints.push(checkpoint);
        manifest.end_pass(pass, PassStatus::Finished);
        book.store(&self.root, true)
    }

    /// Saves the results of the first `part` units of the running pass `pass` (e.g. its first
    /// instances), replacing the ones it saved before: a resumed run restores them and goes on
    /// after them. Written like [`SpillDir::save_checkpoint`]; the pass stays unfinished.
    pub fn save_partial_checkpoint(
        &self,
        pass: &str,
        part: u64,
        transcript: [u8; 32],
        results: &[u8],
    ) -> Result<(), SpillError> {
        let checkpoint = self.write_checkpoint(pass, Some(part), transcript, results)?;
        let mut book = self.lock_book();
        let old = resume_of(&self.root, &mut book.manifest)?
            .partial
            .replace(checkpoint);
        book.store(&self.root, true)?;
        if let Some(old) = old {
            let _ = fs::remove_file(self.root.join(old.file));
        }
        Ok(())
    }

    /// Writes a checkpoint's file (atomically, fsynced) and returns its record.
    fn write_checkpoint(
        &self,
        pass: &str,
        part: Option<u64>,
        transcript: [u8; 32],
        results: &[u8],
    ) -> Result<Checkpoint, SpillError> {
        check_name(pass)?;
        let file = match part {
            None => checkpoint_file(pass),
            Some(part) => partial_checkpoint_file(pass, part),
        };
        let path = self.root.join(&file);
        self.check_limit(&path, results.len() as u64)?;
        atomic_write(&path, results)?;
        Ok(Checkpoint {
            pass: pass.to_string(),
            transcript: Checksum(transcript).to_hex(),
            file,
            bytes: results.len() as u64,
            checksum: Checksum::of(results),
            part,
        })
    }

    /// The results a checkpoint saved, checked against its recorded size and checksum.
    pub fn read_checkpoint(&self, checkpoint: &Checkpoint) -> Result<Vec<u8>, SpillError> {
        let path = self.root.join(&checkpoint.file);
        let bytes = fs::read(&path).map_err(|e| SpillError::io(&path, "read checkpoint", e))?;
        if bytes.len() as u64 != checkpoint.bytes || Checksum::of(&bytes) != checkpoint.checksum {
            return Err(FormatError::Corrupt {
                path,
                reason: "does not match the checksum its manifest recorded (changed on disk)"
                    .into(),
            }
            .into());
        }
        Ok(bytes)
    }

    /// The segment the manifest records as `file` (a path relative to the dir, as
    /// [`SpillDir::segment_name`] gives it).
    pub fn recorded_segment(&self, file: &str) -> Result<SegmentRef, SpillError> {
        let book = self.lock_book();
        let rec = book
            .manifest
            .segments
            .get(file)
            .ok_or_else(|| SpillError::Unrecorded {
                dir: self.root.clone(),
                file: file.to_string(),
            })?;
        Ok(SegmentRef {
            kind: rec.kind.as_str().into(),
            path: self.root.join(&rec.file).as_path().into(),
            layout: rec.layout,
            rows: rec.rows,
            columns: rec.columns,
            bytes: rec.bytes,
            checksum: rec.checksum,
        })
    }

    /// The segment recorded for `meta`, if there is one: a resumed pass takes up what its
    /// interrupted attempt wrote ([`ResumeRecord::reuse`]) instead of writing it again.
    pub fn recorded(&self, meta: &SegmentMeta) -> Result<Option<SegmentRef>, SpillError> {
        let file = Self::segment_file(meta)?;
        if !self.lock_book().manifest.segments.contains_key(&file) {
            return Ok(None);
        }
        self.recorded_segment(&file).map(Some)
    }

    /// A segment's name in the manifest: its path relative to the spill dir.
    pub fn segment_name(&self, segment: &SegmentRef) -> Result<String, SpillError> {
        self.manifest_name(&segment.path)
    }

    /// Takes over the spill dir of a resumable run that was killed or failed (`run --resume
    /// DIR`): the files of the passes it saved a checkpoint for stay, the unfinished pass's
    /// files (recorded, unrecorded and partial) are removed, and this process becomes the
    /// owner. Refused for a dir that holds no resumable run, a finished run, or a run whose
    /// process is still alive. The caller checks the settings ([`SpillDir::resume_record`]).
    pub fn resume(options: &SpillOptions) -> Result<SpillDir, SpillError> {
        let Some(dir) = options.dir.clone() else {
            return Err(SpillError::NotResumable {
                dir: PathBuf::from("."),
                reason: "no spill dir given".into(),
            });
        };
        let refuse = |reason: &str| SpillError::NotResumable {
            dir: dir.clone(),
            reason: reason.to_string(),
        };
        if !dir.join(MANIFEST_FILE).exists() {
            return Err(refuse("it holds no stark-pipe manifest"));
        }
        let mut manifest = Manifest::load(&dir)?;
        match manifest.status {
            RunStatus::InProgress if manifest.owner.is_alive() => {
                return Err(SpillError::InUse {
                    dir,
                    pid: manifest.owner.pid,
                });
            }
            RunStatus::Finished => return Err(refuse("its run finished")),
            RunStatus::InProgress | RunStatus::Failed => {}
        }
        if manifest.resume.is_none() {
            return Err(refuse(
                "its run was a chunked run; only single-instance runs (--instance-rows) resume",
            ));
        }
        discard_unfinished(&dir, &mut manifest, true)?;
        for p in &mut manifest.passes {
            if p.status == PassStatus::Running {
                p.status = PassStatus::Failed;
            }
        }
        manifest.status = RunStatus::InProgress;
        manifest.error = None;
        manifest.owner = Owner::current();
        manifest.store(&dir, true)?;
        let journal = Journal::open(&dir)?;
        let bytes = Arc::new(SpillBytes::default());
        bytes.add_written(manifest.total_bytes());
        let fs_kind = filesystem_kind(&dir).ok();
        // A default-location dir was created by the first run: remove it whole at the end.
        let created_root = dir.parent() == Some(default_spill_parent().0.as_path())
            && dir
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("stark-pipe-"));
        Ok(SpillDir {
            root: dir,
            created_root,
            keep: options.keep,
            verify_segments: options.verify_segments,
            book: Mutex::new(Book { manifest, journal }),
            ending: Mutex::new(Ending::Open),
            bytes,
            limit: options.limit,
            fs_kind,
            warnings: Vec::new(),
        })
    }

    /// The run succeeded: mark the manifest finished, then remove the dir unless kept.
    /// Returns the path if it was kept.
    pub fn finish(&self) -> Result<Option<PathBuf>, SpillError> {
        self.close(RunStatus::Finished, None)
    }

    /// The run failed with `error`: record it, then remove the dir unless kept.
    pub fn fail(&self, error: &dyn fmt::Display) -> Result<Option<PathBuf>, SpillError> {
        self.close(RunStatus::Failed, Some(error.to_string()))
    }

    fn close(
        &self,
        status: RunStatus,
        error: Option<String>,
    ) -> Result<Option<PathBuf>, SpillError> {
        {
            let mut ending = self.ending.lock().unwrap_or_else(|e| e.into_inner());
            if *ending == Ending::Closed {
                return Ok(self.root.exists().then(|| self.root.clone()));
            }
            *ending = Ending::Closed;
        }
        let keep = matches!(
            (self.keep, status),
            (Keep::Always, _) | (Keep::OnError, RunStatus::Failed)
        );
        let mut book = self.lock_book();
        let m = &mut book.manifest;
        m.status = status;
        m.error = error;
        if status == RunStatus::Failed {
            let running: Vec<String> = m
                .passes
                .iter()
                .filter(|p| p.status == PassStatus::Running)
                .map(|p| p.name.clone())
                .collect();
            for pass in running {
                m.end_pass(&pass, PassStatus::Failed);
            }
        }
        if keep {
            book.store(&self.root, true)?;
            return Ok(Some(self.root.clone()));
        }
        let resumable = m.resume.as_ref().is_some_and(|r| !r.checkpoints.is_empty());
        if status == RunStatus::Failed && resumable {
            // Free what the failed pass wrote (a disk-full run gets its room back) and keep the
            // rest for `run --resume`.
            let Book { manifest, .. } = &mut *book;
            discard_unfinished(&self.root, manifest, true)?;
            if book.store(&self.root, true).is_err() {
                // No room for the manifest even so (a full disk, and the failed pass kept what
                // it could take up again): that goes too, the finished passes stay.
                let Book { manifest, .. } = &mut *book;
                discard_unfinished(&self.root, manifest, false)?;
                book.store(&self.root, true)?;
            }
            return Ok(Some(self.root.clone()));
        }
        // Mark the end first, so a crash during removal leaves an explained directory.
        book.store(&self.root, false)?;
        remove_run_files(&self.root, &book.manifest, self.created_root)?;
        Ok(None)
    }
}

impl Drop for SpillDir {
    /// Dropped without `finish` or `fail` (an early return or a panic): a failed run.
    fn drop(&mut self) {
        let _ = self.fail(&"run ended without finishing (dropped)");
    }
}

/// A spill dir left behind by a run that died (its manifest says in progress, its process is
/// gone) or that failed and was kept.
#[derive(Clone, Debug)]
pub struct StaleSpillDir {
    pub path: PathBuf,
    pub manifest: Manifest,
}

/// Default-location spill dirs (`<parent>/stark-pipe-*`) of runs that are no longer running:
/// interrupted ones (e.g. killed by Ctrl-C) and failed ones. Finished ones are only left when
/// kept on purpose and are not listed. Directories without a readable manifest are ignored.
pub fn find_stale_spill_dirs(parent: &Path) -> Vec<StaleSpillDir> {
    let Ok(entries) = fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut out: Vec<StaleSpillDir> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("stark-pipe-"))
        .filter_map(|e| {
            let manifest = Manifest::load(e.path()).ok()?;
            let stale = match manifest.status {
                RunStatus::InProgress => !manifest.owner.is_alive(),
                RunStatus::Failed => true,
                RunStatus::Finished => false,
            };
            stale.then(|| StaleSpillDir {
                path: e.path(),
                manifest,
            })
        })
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Remove what [`find_stale_spill_dirs`] finds; returns the removed paths.
pub fn remove_stale_spill_dirs(parent: &Path) -> Result<Vec<PathBuf>, SpillError> {
    let mut removed = Vec::new();
    for stale in find_stale_spill_dirs(parent) {
        fs::remove_dir_all(&stale.path).map_err(|e| SpillError::io(&stale.path, "remove", e))?;
        removed.push(stale.path);
    }
    Ok(removed)
}

/// Letters, digits, `_` and `-` only: names become path components.
fn check_name(s: &str) -> Result<(), SpillError> {
    if s.is_empty()
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(SpillError::BadName(s.to_string()));
    }
    Ok(())
}

/// Prepare an existing user-given directory: empty is fine, a dead run's leftovers are cleaned,
/// a live run or foreign files are refused.
fn take_over(dir: &Path) -> Result<Option<String>, SpillError> {
    let has_manifest = dir.join(MANIFEST_FILE).exists();
    if !has_manifest {
        let mut entries = fs::read_dir(dir).map_err(|e| SpillError::io(dir, "read", e))?;
        return match entries.next() {
            None => Ok(None),
            Some(_) => Err(SpillError::NotEmpty {
                dir: dir.to_path_buf(),
            }),
        };
    }
    let old = Manifest::load(dir)?;
    if old.status == RunStatus::InProgress && old.owner.is_alive() {
        return Err(SpillError::InUse {
            dir: dir.to_path_buf(),
            pid: old.owner.pid,
        });
    }
    remove_run_files(dir, &old, false)?;
    let how = match old.status {
        RunStatus::InProgress => "interrupted",
        RunStatus::Finished => "finished",
        RunStatus::Failed => "failed",
    };
    let note = if old.resume.is_some() && old.status != RunStatus::Finished {
        " (`run --resume` could have continued it)"
    } else {
        ""
    };
    Ok(Some(format!(
        "removed {} files of an earlier {how} run ({}) from {}{note}",
        old.segments.len(),
        old.run_id,
        dir.display()
    )))
}

/// Remove the temporary files of writes that never completed (`.<name>.tmp-<pid>-<n>`).
fn remove_partial_files(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.contains(".tmp-") {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Remove every segment file of a pass dir (it holds only the run's own segments), recorded or
/// not (a killed run may have renamed one into place before recording it).
fn remove_segment_files(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.path().extension().is_some_and(|e| e == "arrow") {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Remove the segments of pass dir `pass` that the manifest does not record: a killed run
/// finished writing (renamed into place) but died before recording them.
fn remove_unrecorded_segments(root: &Path, pass: &str, manifest: &Manifest) {
    let Ok(entries) = fs::read_dir(root.join(pass)) else {
        return;
    };
    for entry in entries.flatten() {
        let name = format!("{pass}/{}", entry.file_name().to_string_lossy());
        if entry.path().extension().is_some_and(|e| e == "arrow")
            && !manifest.segments.contains_key(&name)
        {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Removes what a resumable run wrote in the passes it saved no checkpoint for: their recorded
/// segments (but those the unfinished pass takes up again, with `keep_reusable`), the
/// unrecorded and partial files in their pass dirs, and any checkpoint file the manifest does
/// not record (a write cut short before its record; without `keep_reusable`, the partial
/// checkpoint too).
fn discard_unfinished(
    root: &Path,
    manifest: &mut Manifest,
    keep_reusable: bool,
) -> Result<(), SpillError> {
    let record = manifest.resume.clone().unwrap_or_default();
    let done: BTreeSet<&str> = record.checkpoints.iter().map(|c| c.pass.as_str()).collect();
    // What an unfinished pass takes up again must be whole: a record without its file (or
    // with another size) is dropped like the rest.
    let whole =
        |r: &SegmentRecord| fs::metadata(root.join(&r.file)).is_ok_and(|m| m.len() == r.bytes);
    let unfinished: Vec<String> = manifest
        .segments
        .values()
        .filter(|r| {
            !(done.contains(r.pass.as_str()) || keep_reusable && record.reuses(r) && whole(r))
        })
        .map(|r| r.file.clone())
        .collect();
    for file in unfinished {
        let path = root.join(&file);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(SpillError::io(&path, "remove segment", e)),
        }
        manifest.remove_segment(&file);
    }
    let pass_dirs: BTreeSet<&str> = manifest
        .passes
        .iter()
        .map(|p| p.name.as_str())
        .filter(|p| !done.contains(p))
        .collect();
    for pass in pass_dirs {
        let dir = root.join(pass);
        remove_partial_files(&dir);
        remove_unrecorded_segments(root, pass, manifest);
        let _ = fs::remove_dir(&dir); // only if empty
    }
    remove_partial_files(root);
    let partial = match keep_reusable {
        true => record.partial.as_ref(),
        // Without the segments it names, a partial checkpoint would claim work that is gone.
        false => {
            if let Some(r) = manifest.resume.as_mut() {
                r.partial = None;
            }
            None
        }
    };
    let saved: Vec<&Checkpoint> = record.checkpoints.iter().chain(partial).collect();
    remove_checkpoint_files(root, |name| saved.iter().any(|c| c.file == name));
    Ok(())
}

/// The resume record of a run made resumable.
fn resume_of<'a>(
    root: &Path,
    manifest: &'a mut Manifest,
) -> Result<&'a mut ResumeRecord, SpillError> {
    manifest
        .resume
        .as_mut()
        .ok_or_else(|| SpillError::NotResumable {
            dir: root.to_path_buf(),
            reason: "the run was not made resumable".into(),
        })
}

/// Removes the `checkpoint-*.bin` files of `root` that `keep` does not keep.
fn remove_checkpoint_files(root: &Path, keep: impl Fn(&str) -> bool) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("checkpoint-") && name.ends_with(".bin") && !keep(&name) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Remove what a run wrote: the whole dir if the run created it, otherwise only the recorded
/// segments, partial temp files, emptied pass dirs and the manifest. The journal and the
/// manifest go last, so a process killed while removing leaves a dir its manifest still
/// explains (a finished run with segments missing), never files without a manifest.
fn remove_run_files(root: &Path, manifest: &Manifest, remove_root: bool) -> Result<(), SpillError> {
    if remove_root {
        let entries = fs::read_dir(root).map_err(|e| SpillError::io(root, "list", e))?;
        for entry in entries {
            let entry = entry.map_err(|e| SpillError::io(root, "list", e))?;
            let name = entry.file_name();
            if name == JOURNAL_FILE || name == MANIFEST_FILE {
                continue;
            }
            let path = entry.path();
            let removed = match entry.file_type() {
                Ok(t) if t.is_dir() => fs::remove_dir_all(&path),
                _ => fs::remove_file(&path),
            };
            removed.map_err(|e| SpillError::io(&path, "remove", e))?;
        }
        remove_manifest_files(root)?;
        return fs::remove_dir(root).map_err(|e| SpillError::io(root, "remove", e));
    }
    let mut dirs = std::collections::BTreeSet::new();
    for seg in manifest.segments.values() {
        let path = root.join(&seg.file);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(SpillError::io(&path, "remove segment", e)),
        }
        if let Some(parent) = path.parent() {
            dirs.insert(parent.to_path_buf());
        }
    }
    for pass in &manifest.passes {
        dirs.insert(root.join(&pass.name));
    }
    remove_partial_files(root);
    remove_checkpoint_files(root, |_| false);
    for dir in dirs.into_iter().filter(|d| d != root) {
        remove_partial_files(&dir);
        remove_segment_files(&dir);
        let _ = fs::remove_dir(&dir); // only if empty
    }
    remove_manifest_files(root)
}

/// Removes the journal, then the manifest: a manifest without its journal still explains the
/// dir.
fn remove_manifest_files(root: &Path) -> Result<(), SpillError> {
    for file in [JOURNAL_FILE, MANIFEST_FILE] {
        let path = root.join(file);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(SpillError::io(&path, "remove manifest", e)),
        }
    }
    Ok(())
}
