//! Files that appear all at once: write under a temporary name in the same directory, fsync,
//! rename. A crash or an error never leaves a half-written file at the final path, and the
//! temporary file is removed on error.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{FormatError, Result};

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A file being written under a temporary name next to its final path.
///
/// Writes go to the temporary file; [`AtomicFile::commit`] fsyncs it and renames it into place.
/// Dropping it uncommitted deletes the temporary file.
#[derive(Debug)]
pub struct AtomicFile {
    final_path: PathBuf,
    temp_path: PathBuf,
    file: Option<File>,
    written: u64,
    reserved: u64,
    committed: bool,
}

impl AtomicFile {
    /// Create the temporary file `<dir>/.<name>.tmp-<pid>-<n>` for `path`.
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        let final_path = path.as_ref().to_path_buf();
        let name = final_path
            .file_name()
            .ok_or_else(|| FormatError::invalid(&final_path, "path has no file name"))?;
        let temp_name = format!(
            ".{}.tmp-{}-{}",
            name.to_string_lossy(),
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let temp_path = final_path.with_file_name(temp_name);
        // Read access too, so the file can be mapped for writing (MAP_SHARED needs O_RDWR).
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&temp_path)
            .map_err(|e| FormatError::io("create", &temp_path, e))?;
        Ok(AtomicFile {
            final_path,
            temp_path,
            file: Some(file),
            written: 0,
            reserved: 0,
            committed: false,
        })
    }

    /// The path the file will have once committed.
    pub fn path(&self) -> &Path {
        &self.final_path
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Reserve `len` bytes of disk up front, so a full disk fails here with
    /// [`FormatError::NoSpace`] naming the file instead of halfway through (or, for a mapped
    /// file, as SIGBUS). Filesystems without fallocate are accepted silently.
    pub fn reserve(&mut self, len: u64) -> Result<()> {
        let file = self.file.as_ref().expect("file is open until commit");
        reserve_space(file, &self.final_path, len)?;
        self.reserved = self.reserved.max(len);
        Ok(())
    }

    /// The open temporary file (for mapping it).
    pub(crate) fn file(&self) -> &File {
        self.file.as_ref().expect("file is open until commit")
    }

    /// Record that the first `len` bytes were written through a mapping.
    pub(crate) fn set_written(&mut self, len: u64) {
        self.written = len;
    }

    /// Like [`AtomicFile::reserve`], but also on filesystems without fallocate (by writing
    /// zeros): needed before writing through a mapping, where a missing block is SIGBUS.
    pub fn reserve_strict(&mut self, len: u64) -> Result<()> {
        let file = self.file.as_ref().expect("file is open until commit");
        match fallocate(file, len) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS)
                ) =>
            {
                let mut f = file;
                let zeros = vec![0u8; 1 << 20];
                let mut left = len;
                while left > 0 {
                    let n = left.min(zeros.len() as u64) as usize;
                    f.write_all(&zeros[..n])
                        .map_err(|e| write_error(&self.final_path, e))?;
                    left -= n as u64;
                }
                f.sync_data()
                    .map_err(|e| write_error(&self.final_path, e))?;
            }
            Err(e) => return Err(reserve_error(&self.final_path, len, e)),
        }
        self.reserved = self.reserved.max(len);
        Ok(())
    }

    /// Trim any unused reservation, fsync, rename into place and fsync the directory.
    pub fn commit(mut self) -> Result<()> {
        let file = self.file.take().expect("file is open until commit");
        if self.reserved > self.written {
            file.set_len(self.written)
                .map_err(|e| FormatError::io("truncate", &self.temp_path, e))?;
        }
        file.sync_all()
            .map_err(|e| FormatError::io("fsync", &self.temp_path, e))?;
        drop(file);
        fs::rename(&self.temp_path, &self.final_path)
            .map_err(|e| FormatError::io("rename into place", &self.final_path, e))?;
        self.committed = true;
        sync_parent_dir(&self.final_path)
    }
}

impl AtomicFile {
    /// Rename into place without fsync: atomic for readers and against a crashing process (not
    /// against power loss). For files rewritten often, like the manifest between passes.
    pub fn commit_without_sync(mut self) -> Result<()> {
        let file = self.file.take().expect("file is open until commit");
        if self.reserved > self.written {
            file.set_len(self.written)
                .map_err(|e| FormatError::io("truncate", &self.temp_path, e))?;
        }
        drop(file);
        fs::rename(&self.temp_path, &self.final_path)
            .map_err(|e| FormatError::io("rename into place", &self.final_path, e))?;
        self.committed = true;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let file = self.file.as_mut().expect("file is open until commit");
        let n = file.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        drop(self.file.take());
        if !self.committed {
            let _ = fs::remove_file(&self.temp_path);
        }
    }
}

/// Write `bytes` to `path` atomically (temp name in the same dir, reserve, fsync, rename).
/// Used for the proof file and the manifest: readers see the old file or the new one, never a
/// prefix.
pub fn atomic_write(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.reserve(bytes.len() as u64)?;
    let path = file.path().to_path_buf();
    file.write_all(bytes).map_err(|e| write_error(&path, e))?;
    file.commit()
}

/// Checks, before any work, that a file can be written at `path` the way [`AtomicFile`] will
/// write it: its directory exists and takes a new file. Leaves nothing behind.
pub fn probe_writable(path: impl AsRef<Path>) -> Result<()> {
    AtomicFile::create(path).map(drop)
}

/// Map a write error to [`FormatError`], recognising a full disk.
pub(crate) fn write_error(path: &Path, e: io::Error) -> FormatError {
    if e.raw_os_error() == Some(libc::ENOSPC) || e.raw_os_error() == Some(libc::EDQUOT) {
        FormatError::NoSpace {
            path: path.to_path_buf(),
            needed: 0,
            error: e,
        }
    } else {
        FormatError::io("write", path, e)
    }
}

/// Allocate `len` bytes for `file` (blocks really reserved, not a sparse hole).
pub fn reserve_space(file: &File, path: &Path, len: u64) -> Result<()> {
    if len == 0 {
        return Ok(());
    }
    match fallocate(file, len) {
        Ok(()) => Ok(()),
        // No fallocate on this filesystem: plain writes still report ENOSPC as an error.
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS)
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(reserve_error(path, len, e)),
    }
}

/// Allocate blocks for `[0, len)`, extending the file size to `len`.
fn fallocate(file: &File, len: u64) -> io::Result<()> {
    let len = libc::off_t::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
    // SAFETY: plain syscall on an open descriptor.
    if unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn reserve_error(path: &Path, len: u64, err: io::Error) -> FormatError {
    match err.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) | Some(libc::EFBIG) => FormatError::NoSpace {
            path: path.to_path_buf(),
            needed: len,
            error: err,
        },
        _ => FormatError::io("reserve space for", path, err),
    }
}

/// fsync the directory holding `path`, so the rename itself survives a crash.
pub(crate) fn sync_parent_dir(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let d = File::open(dir).map_err(|e| FormatError::io("open directory", dir, e))?;
    d.sync_all()
        .map_err(|e| FormatError::io("fsync directory", dir, e))
}
