//! Segment files: one Arrow IPC file per chunk artifact (trace, LDE, aux, quotient, Merkle
//! levels, ...), written with 64-byte aligned buffers and read back zero-copy through mmap.
//!
//! Two layouts, both plain Arrow that pyarrow/polars/duckdb open as is:
//!
//! * [`Layout::Columnar`]: one non-null `UInt64` column per trace column (`c0`, `c1`, ...).
//!   Base field elements are canonical u64; an extension element is consecutive columns. This
//!   is what column-wise work (NTT/LDE, constraint evaluation) wants.
//! * [`Layout::RowMajor`]: one non-null `FixedSizeList<UInt64, width>` column named `rows`.
//!   Its child buffer is the whole chunk as one contiguous row-major `&[u64]`, which is what
//!   Merkle leaf hashing and query openings want (a row is one contiguous read, never a gather
//!   over `width` columns); a Merkle tree level is a row-major segment of width 4 (one 32-byte
//!   digest per row). FixedSizeList rather than "one UInt64 column plus a width in the
//!   metadata" so that any Arrow reader sees the rows without knowing our conventions.
//!
//! Every file carries its identity (table, chunk, pass, kind, layout) in the schema metadata.
//! Writing streams the caller's slices straight to disk (no copy into Arrow-owned memory),
//! reserves the disk space first and renames into place only when complete (see
//! [`crate::atomic`]). Reading maps the file, wraps the mapping in an Arrow `Buffer` without
//! copying and decodes with alignment *required*, so a misaligned file is an error rather than
//! a silent copy. Bad files are errors naming the file, never panics.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use arrow_array::{Array, ArrayRef, FixedSizeListArray, RecordBatch, UInt64Array};
use arrow_buffer::{Buffer, ScalarBuffer};
use arrow_ipc::reader::{FileDecoder, read_footer_length};
use arrow_ipc::writer::{FileWriter, IpcWriteOptions};
use arrow_ipc::{MetadataVersion, root_as_footer, root_as_message};
use arrow_schema::{ArrowError, DataType, Field, Schema};
use memmap2::Mmap;
use serde::{Deserialize, Serialize};

use crate::atomic::{AtomicFile, write_error};
use crate::checksum::{Checksum, HashingWriter};
use crate::error::{FormatError, Result};

/// Alignment of every buffer in a segment file (Arrow's recommendation, and a cache line).
pub const SEGMENT_ALIGNMENT: usize = 64;
/// Version of our metadata conventions, stored in each file.
pub const SEGMENT_FORMAT_VERSION: &str = "1";

const KEY_VERSION: &str = "stark_pipe.segment_version";
const KEY_TABLE: &str = "stark_pipe.table";
const KEY_CHUNK: &str = "stark_pipe.chunk";
const KEY_PASS: &str = "stark_pipe.pass";
const KEY_KIND: &str = "stark_pipe.kind";
const KEY_LAYOUT: &str = "stark_pipe.layout";
const ROW_MAJOR_COLUMN: &str = "rows";

/// Which chunk artifact a segment holds; stored in the file's schema metadata.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SegmentMeta {
    /// Table name (e.g. "cpu").
    pub table: String,
    /// Chunk index within the table.
    pub chunk: u64,
    /// Pass that produced it (e.g. "main").
    pub pass: String,
    /// Artifact kind (e.g. "trace", "lde", "merkle-3").
    pub kind: String,
}

impl SegmentMeta {
    pub fn new(
        table: impl Into<String>,
        chunk: u64,
        pass: impl Into<String>,
        kind: impl Into<String>,
    ) -> Self {
        SegmentMeta {
            table: table.into(),
            chunk,
            pass: pass.into(),
            kind: kind.into(),
        }
    }
}

/// How the u64 values are laid out in the file (see the module docs for why there are two).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    Columnar,
    RowMajor,
}

impl Layout {
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Columnar => "columnar",
            Layout::RowMajor => "row-major",
        }
    }
}

/// The values to write, borrowed from the caller.
#[derive(Clone, Copy, Debug)]
pub enum SegmentData<'a> {
    /// One slice per column, all the same length.
    Columns(&'a [&'a [u64]]),
    /// `values.len() / width` rows of `width` values each.
    RowMajor { width: usize, values: &'a [u64] },
}

impl SegmentData<'_> {
    fn shape(&self, path: &Path) -> Result<(Layout, usize, usize)> {
        match *self {
            SegmentData::Columns(cols) => {
                let rows = cols.first().map_or(0, |c| c.len());
                if let Some((i, c)) = cols.iter().enumerate().find(|(_, c)| c.len() != rows) {
                    return Err(FormatError::invalid(
                        path,
                        format!("column {i} has {} rows, column 0 has {rows}", c.len()),
                    ));
                }
                Ok((Layout::Columnar, rows, cols.len()))
            }
            SegmentData::RowMajor { width, values } => {
                if width == 0 || values.len() % width != 0 {
                    return Err(FormatError::invalid(
                        path,
                        format!(
                            "{} values are not whole rows of width {width}",
                            values.len()
                        ),
                    ));
                }
                Ok((Layout::RowMajor, values.len() / width, width))
            }
        }
    }

    /// Bytes of the values in the file (each buffer padded to the segment alignment).
    pub fn value_bytes(&self) -> u64 {
        match *self {
            SegmentData::Columns(cols) => cols.iter().map(|c| padded(c.len() * 8) as u64).sum(),
            SegmentData::RowMajor { values, .. } => padded(values.len() * 8) as u64,
        }
    }
}

/// What was written: enough to record in the manifest and to find and check the file later.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    pub path: PathBuf,
    pub meta: SegmentMeta,
    pub layout: Layout,
    pub rows: u64,
    pub columns: u32,
    /// File size in bytes.
    pub bytes: u64,
    /// BLAKE3 of the whole file.
    pub checksum: Checksum,
}

fn padded(n: usize) -> usize {
    n.div_ceil(SEGMENT_ALIGNMENT) * SEGMENT_ALIGNMENT
}

pub(crate) fn element_field() -> Arc<Field> {
    Arc::new(Field::new("item", DataType::UInt64, false))
}

pub(crate) fn segment_schema(meta: &SegmentMeta, layout: Layout, columns: usize) -> Schema {
    let fields: Vec<Field> = match layout {
        Layout::Columnar => (0..columns)
            .map(|i| Field::new(format!("c{i}"), DataType::UInt64, false))
            .collect(),
        Layout::RowMajor => vec![Field::new(
            ROW_MAJOR_COLUMN,
            DataType::FixedSizeList(element_field(), columns as i32),
            false,
        )],
    };
    let metadata = HashMap::from([
        (KEY_VERSION.to_string(), SEGMENT_FORMAT_VERSION.to_string()),
        (KEY_TABLE.to_string(), meta.table.clone()),
        (KEY_CHUNK.to_string(), meta.chunk.to_string()),
        (KEY_PASS.to_string(), meta.pass.clone()),
        (KEY_KIND.to_string(), meta.kind.clone()),
        (KEY_LAYOUT.to_string(), layout.as_str().to_string()),
    ]);
    Schema::new(fields).with_metadata(metadata)
}

/// A `UInt64Array` over the caller's slice, without copying it.
///
/// SAFETY (of the caller): the returned array must not outlive `values`. [`write_segment`]
/// builds the batch, hands it to the IPC writer (which only reads it while writing) and drops
/// it before returning, so the borrow is respected.
unsafe fn borrowed_u64_array(values: &[u64]) -> UInt64Array {
    let ptr = NonNull::new(values.as_ptr() as *mut u8).unwrap_or(NonNull::dangling());
    // The owner is a dummy: nothing is freed when the Buffer drops, the slice stays the caller's.
    let buffer = unsafe { Buffer::from_custom_allocation(ptr, values.len() * 8, Arc::new(())) };
    UInt64Array::new(ScalarBuffer::new(buffer, 0, values.len()), None)
}

/// Write one segment atomically: reserve space, stream the slices through Arrow IPC (64-byte
/// alignment) while hashing, rename. On any error the partial file is removed.
///
/// Segments are scratch data for the run that writes them, so they are not fsynced: the
/// rename keeps readers and a crashed run's `inspect` from seeing a partial file, and nothing
/// needs them after a power loss. An fsync per segment made the prover wait for the disk
/// (about 400 MB/s here) instead of handing the writes to the page cache.
pub fn write_segment(
    path: impl AsRef<Path>,
    meta: &SegmentMeta,
    data: SegmentData<'_>,
) -> Result<SegmentInfo> {
    let path = path.as_ref();
    let (layout, rows, columns) = data.shape(path)?;
    if columns == 0 || columns > i32::MAX as usize {
        return Err(FormatError::invalid(path, format!("{columns} columns")));
    }
    let schema = Arc::new(segment_schema(meta, layout, columns));

    // SAFETY: the arrays borrow `data`; `batch` is dropped at the end of this function.
    let arrays: Vec<ArrayRef> = unsafe {
        match data {
            SegmentData::Columns(cols) => cols
                .iter()
                .map(|c| Arc::new(borrowed_u64_array(c)) as ArrayRef)
                .collect(),
            SegmentData::RowMajor { width, values } => {
                let child = Arc::new(borrowed_u64_array(values)) as ArrayRef;
                let list = FixedSizeListArray::try_new(element_field(), width as i32, child, None)
                    .map_err(|e| arrow_error(path, e))?;
                vec![Arc::new(list) as ArrayRef]
            }
        }
    };
    let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(|e| arrow_error(path, e))?;

    let mut file = AtomicFile::create(path)?;
    // Upper bound: padded buffers plus generous room for the flatbuffer metadata.
    let reserve = data.value_bytes() + 8192 + 512 * columns as u64;
    file.reserve(reserve)?;

    let options = IpcWriteOptions::try_new(SEGMENT_ALIGNMENT, false, MetadataVersion::V5)
        .map_err(|e| arrow_error(path, e))?;
    let sink = BufWriter::with_capacity(1 << 20, HashingWriter::new(&mut file));
    let mut writer = FileWriter::try_new_with_options(sink, &schema, options)
        .map_err(|e| ipc_write_error(path, e))?;
    writer.write(&batch).map_err(|e| ipc_write_error(path, e))?;
    writer.finish().map_err(|e| ipc_write_error(path, e))?;
    drop(batch);
    let sink = writer.into_inner().map_err(|e| ipc_write_error(path, e))?;
    let hashing = sink
        .into_inner()
        .map_err(|e| write_error(path, e.into_error()))?;
    let (_, checksum, bytes) = hashing.finish();
    file.commit_without_sync()?;
    Ok(SegmentInfo {
        path: path.to_path_buf(),
        meta: meta.clone(),
        layout,
        rows: rows as u64,
        columns: columns as u32,
        bytes,
        checksum,
    })
}

fn arrow_error(path: &Path, error: ArrowError) -> FormatError {
    FormatError::Arrow {
        path: path.to_path_buf(),
        error,
    }
}

fn ipc_write_error(path: &Path, e: ArrowError) -> FormatError {
    match e {
        ArrowError::IoError(_, io) => write_error(path, io),
        other => arrow_error(path, other),
    }
}

/// How a segment's mapping will be read; see [`Segment::set_access`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Sequential,
    Random,
    Normal,
}

/// A mapped segment file, decoded zero-copy: column slices point into the mapping.
pub struct Segment {
    path: PathBuf,
    map: Arc<Mmap>,
    meta: SegmentMeta,
    layout: Layout,
    columns: usize,
    batch: RecordBatch,
}

/// One line: identity, shape and size, e.g. for `inspect` of a single segment file.
impl std::fmt::Display for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = &self.meta;
        write!(
            f,
            "{}: pass {} table {} chunk {} kind {}, {} rows x {} u64 ({}), {} bytes",
            self.path.display(),
            m.pass,
            m.table,
            m.chunk,
            m.kind,
            self.rows(),
            self.columns,
            self.layout.as_str(),
            self.map.len()
        )
    }
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("path", &self.path)
            .field("meta", &self.meta)
            .field("layout", &self.layout)
            .field("rows", &self.rows())
            .field("columns", &self.columns)
            .finish()
    }
}

impl Segment {
    /// Map and decode a segment. Corruption that breaks the structure is an error naming the
    /// file; flipped bits inside the values are only caught by [`Segment::open_verified`].
    pub fn open(path: impl AsRef<Path>) -> Result<Segment> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| FormatError::io("open", path, e))?;
        // SAFETY: segment files are written once (temp + rename) and never modified in place;
        // truncating one behind our back would be the usual mmap hazard (SIGBUS).
        let map = unsafe { Mmap::map(&file) }.map_err(|e| FormatError::io("mmap", path, e))?;
        let _ = map.advise(memmap2::Advice::Sequential);
        Self::decode(path, Arc::new(map))
    }

    /// Like [`Segment::open`], but first hash the file and compare with `expected`.
    pub fn open_verified(path: impl AsRef<Path>, expected: &Checksum) -> Result<Segment> {
        let segment = Self::open_mapped_only(path.as_ref())?;
        verify_bytes(path.as_ref(), &segment[..], expected)?;
        Self::decode(path.as_ref(), segment)
    }

    fn open_mapped_only(path: &Path) -> Result<Arc<Mmap>> {
        let file = File::open(path).map_err(|e| FormatError::io("open", path, e))?;
        // SAFETY: as in `open`.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| FormatError::io("mmap", path, e))?;
        Ok(Arc::new(map))
    }

    fn decode(path: &Path, map: Arc<Mmap>) -> Result<Segment> {
        let bytes: &[u8] = &map;
        let len = bytes.len();
        // magic(6) + padding(2) ... footer, footer length(4), magic(6)
        if len < 8 + 10 {
            return Err(FormatError::corrupt(
                path,
                format!("{len} bytes is too short for an Arrow IPC file"),
            ));
        }
        if &bytes[..6] != b"ARROW1" {
            return Err(FormatError::corrupt(
                path,
                "missing Arrow IPC magic at start",
            ));
        }
        let trailer: [u8; 10] = bytes[len - 10..].try_into().expect("10 bytes");
        let footer_len = read_footer_length(trailer).map_err(|e| {
            FormatError::corrupt(path, format!("bad trailer (truncated file?): {e}"))
        })?;
        if footer_len > len - 10 - 8 {
            return Err(FormatError::corrupt(
                path,
                format!("footer length {footer_len} exceeds file size {len} (truncated file?)"),
            ));
        }
        let footer = root_as_footer(&bytes[len - 10 - footer_len..len - 10])
            .map_err(|e| FormatError::corrupt(path, format!("unreadable footer: {e}")))?;
        let fb_schema = footer
            .schema()
            .ok_or_else(|| FormatError::corrupt(path, "footer has no schema"))?;
        let schema = arrow_ipc::convert::try_fb_to_schema(fb_schema)
            .map_err(|e| FormatError::corrupt(path, format!("unreadable schema: {e}")))?;
        let (meta, layout, columns) = parse_schema(path, &schema)?;

        let blocks = footer
            .recordBatches()
            .ok_or_else(|| FormatError::corrupt(path, "footer lists no record batches"))?;
        if blocks.len() != 1 {
            return Err(FormatError::corrupt(
                path,
                format!("expected 1 record batch, footer lists {}", blocks.len()),
            ));
        }
        let block = blocks.get(0);
        let (offset, meta_len, body_len) =
            (block.offset(), block.metaDataLength(), block.bodyLength());
        let data_end = (len - 10 - footer_len) as i64;
        if offset < 8
            || meta_len < 8
            || body_len < 0
            || offset + meta_len as i64 + body_len > data_end
        {
            return Err(FormatError::corrupt(
                path,
                format!(
                    "record batch block (offset {offset}, metadata {meta_len}, body {body_len}) lies outside the file"
                ),
            ));
        }
        let row_width = if layout == Layout::RowMajor {
            columns
        } else {
            1
        };
        check_buffer_bounds(
            path,
            &bytes[offset as usize..][..meta_len as usize],
            body_len,
            row_width,
        )?;

        let whole = {
            let ptr = NonNull::new(map.as_ptr() as *mut u8).expect("mmap of a non-empty file");
            // SAFETY: the pointer and length describe the mapping, which the Arc keeps alive for
            // as long as any Buffer (and thus any slice handed out) refers to it.
            unsafe { Buffer::from_custom_allocation(ptr, len, map.clone()) }
        };
        let block_buf =
            whole.slice_with_length(offset as usize, meta_len as usize + body_len as usize);
        let decoder =
            FileDecoder::new(Arc::new(schema), footer.version()).with_require_alignment(true);
        // Arrow validates what it decodes; the guard turns any assertion we did not foresee on a
        // corrupt file into an error instead of a panic.
        let decoded = catch_unwind(AssertUnwindSafe(|| {
            decoder.read_record_batch(block, &block_buf)
        }));
        let batch = match decoded {
            Ok(Ok(Some(batch))) => batch,
            Ok(Ok(None)) => return Err(FormatError::corrupt(path, "record batch block is empty")),
            Ok(Err(e)) => {
                return Err(FormatError::corrupt(
                    path,
                    format!("cannot decode record batch: {e}"),
                ));
            }
            Err(_) => {
                return Err(FormatError::corrupt(
                    path,
                    "record batch decoder rejected the data",
                ));
            }
        };
        if batch.columns().iter().any(|c| c.null_count() != 0) {
            return Err(FormatError::corrupt(
                path,
                "segment columns must not contain nulls",
            ));
        }
        Ok(Segment {
            path: path.to_path_buf(),
            map,
            meta,
            layout,
            columns,
            batch,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn meta(&self) -> &SegmentMeta {
        &self.meta
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    pub fn rows(&self) -> usize {
        self.batch.num_rows()
    }

    /// Number of u64 columns (the row width for row-major segments).
    pub fn columns(&self) -> usize {
        self.columns
    }

    /// The whole mapped file.
    pub fn mapped_bytes(&self) -> &[u8] {
        &self.map
    }

    /// The decoded Arrow batch (its buffers point into the mapping).
    pub fn record_batch(&self) -> &RecordBatch {
        &self.batch
    }

    /// Hash the mapped file.
    pub fn checksum(&self) -> Checksum {
        checksum_bytes(&self.map)
    }

    /// Tell the kernel how the mapping will be read (madvise): `Sequential` (the default set at
    /// open) reads ahead aggressively, `Random` stops read-ahead for scattered row openings.
    pub fn set_access(&self, access: Access) {
        let advice = match access {
            Access::Sequential => memmap2::Advice::Sequential,
            Access::Random => memmap2::Advice::Random,
            Access::Normal => memmap2::Advice::Normal,
        };
        let _ = self.map.advise(advice);
    }

    /// Start reading `rows` in the background (madvise WILLNEED) before they are used, e.g.
    /// the next block of a sequential scan or a batch of query rows. Out-of-range rows are
    /// clipped.
    pub fn prefetch_rows(&self, rows: Range<usize>) {
        let end = rows.end.min(self.rows());
        if rows.start >= end {
            return;
        }
        let base = self.map.as_ptr() as usize;
        let (slices, width) = match self.layout {
            Layout::Columnar => (self.column_slices().unwrap_or_default(), 1),
            Layout::RowMajor => (
                self.row_major_values().map(|v| vec![v]).unwrap_or_default(),
                self.columns,
            ),
        };
        for slice in slices {
            let offset = slice.as_ptr() as usize - base + rows.start * width * 8;
            let len = (end - rows.start) * width * 8;
            let _ = self
                .map
                .advise_range(memmap2::Advice::WillNeed, offset, len);
        }
    }

    /// Column `i` of a columnar segment, zero-copy.
    pub fn column(&self, i: usize) -> Result<&[u64]> {
        if self.layout != Layout::Columnar {
            return Err(FormatError::invalid(
                &self.path,
                "column access on a row-major segment",
            ));
        }
        if i >= self.columns {
            return Err(FormatError::invalid(
                &self.path,
                format!("column {i} out of range ({} columns)", self.columns),
            ));
        }
        Ok(self.batch.column(i).as_primitive::<UInt64Type>().values())
    }

    /// All columns of a columnar segment, zero-copy.
    pub fn column_slices(&self) -> Result<Vec<&[u64]>> {
        (0..self.columns).map(|i| self.column(i)).collect()
    }

    /// The row-major values (`rows * columns`) of a row-major segment, zero-copy.
    pub fn row_major_values(&self) -> Result<&[u64]> {
        if self.layout != Layout::RowMajor {
            return Err(FormatError::invalid(
                &self.path,
                "row-major access on a columnar segment",
            ));
        }
        let list = self.batch.column(0).as_fixed_size_list();
        let values = list.values().as_primitive::<UInt64Type>().values();
        Ok(&values[list.offset() * self.columns..][..list.len() * self.columns])
    }

    /// Row `r` of a row-major segment.
    pub fn row(&self, r: usize) -> Result<&[u64]> {
        let values = self.row_major_values()?;
        values
            .get(r * self.columns..(r + 1) * self.columns)
            .ok_or_else(|| {
                FormatError::invalid(
                    &self.path,
                    format!("row {r} out of range ({} rows)", self.rows()),
                )
            })
    }
}

/// BLAKE3 of a byte slice. Single-threaded (SIMD) BLAKE3 runs at several GB/s, faster than the
/// disks segments are read from, so it is not parallelised.
pub fn checksum_bytes(bytes: &[u8]) -> Checksum {
    Checksum::of(bytes)
}

/// Hash a file on disk (mapped, not read into memory).
pub fn checksum_file(path: impl AsRef<Path>) -> Result<Checksum> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| FormatError::io("open", path, e))?;
    let len = file
        .metadata()
        .map_err(|e| FormatError::io("stat", path, e))?
        .len();
    if len == 0 {
        return Ok(Checksum::of(&[]));
    }
    // SAFETY: read-only mapping of a file we do not modify.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| FormatError::io("mmap", path, e))?;
    let _ = map.advise(memmap2::Advice::Sequential);
    Ok(Checksum::of(&map))
}

/// Check a file's checksum without decoding it.
pub fn verify_file(path: impl AsRef<Path>, expected: &Checksum) -> Result<()> {
    let path = path.as_ref();
    let actual = checksum_file(path)?;
    if &actual != expected {
        return Err(FormatError::ChecksumMismatch {
            path: path.to_path_buf(),
            expected: *expected,
            actual,
        });
    }
    Ok(())
}

fn verify_bytes(path: &Path, bytes: &[u8], expected: &Checksum) -> Result<()> {
    let actual = Checksum::of(bytes);
    if &actual != expected {
        return Err(FormatError::ChecksumMismatch {
            path: path.to_path_buf(),
            expected: *expected,
            actual,
        });
    }
    Ok(())
}

/// Check that the lengths in the record batch header are plausible and every buffer it points at
/// lies inside the body, so the decoder cannot slice out of bounds or overflow on a corrupt file.
fn check_buffer_bounds(path: &Path, meta: &[u8], body_len: i64, row_width: usize) -> Result<()> {
    let fb = if meta[..4] == [0xff; 4] {
        &meta[8..]
    } else {
        &meta[4..]
    };
    let message = root_as_message(fb)
        .map_err(|e| FormatError::corrupt(path, format!("unreadable record batch header: {e}")))?;
    let batch = message
        .header_as_record_batch()
        .ok_or_else(|| FormatError::corrupt(path, "block is not a record batch"))?;
    if message.bodyLength() > body_len {
        return Err(FormatError::corrupt(
            path,
            "record batch body is longer than its block",
        ));
    }
    // Every row holds at least one u64, so no length can exceed body/8; checking this here keeps
    // overflowing lengths away from Arrow's validation (which panics on some).
    let max_len = body_len / 8;
    if batch.length() < 0 || batch.length() > max_len {
        return Err(FormatError::corrupt(
            path,
            format!("implausible row count {}", batch.length()),
        ));
    }
    for (i, node) in batch.nodes().into_iter().flatten().enumerate() {
        let fits = node.length() >= 0
            && node.length() <= max_len
            && (0..=node.length()).contains(&node.null_count())
            && (i > 0 || (node.length() as u128) * (row_width as u128) <= max_len as u128);
        if !fits {
            return Err(FormatError::corrupt(
                path,
                format!(
                    "implausible length {} (nulls {}) of array node {i}",
                    node.length(),
                    node.null_count()
                ),
            ));
        }
    }
    for (i, b) in batch.buffers().into_iter().flatten().enumerate() {
        if b.offset() < 0 || b.length() < 0 || b.offset().saturating_add(b.length()) > body_len {
            return Err(FormatError::corrupt(
                path,
                format!(
                    "buffer {i} (offset {}, length {}) lies outside the body",
                    b.offset(),
                    b.length()
                ),
            ));
        }
    }
    Ok(())
}

fn parse_schema(path: &Path, schema: &Schema) -> Result<(SegmentMeta, Layout, usize)> {
    let md = schema.metadata();
    let get = |key: &str| {
        md.get(key).ok_or_else(|| {
            FormatError::corrupt(
                path,
                format!("not a stark-pipe segment: no `{key}` in schema metadata"),
            )
        })
    };
    let version = get(KEY_VERSION)?;
    if version != SEGMENT_FORMAT_VERSION {
        return Err(FormatError::corrupt(
            path,
            format!("segment format version {version}, this build reads {SEGMENT_FORMAT_VERSION}"),
        ));
    }
    let chunk = get(KEY_CHUNK)?
        .parse()
        .map_err(|_| FormatError::corrupt(path, "chunk index is not a number"))?;
    let meta = SegmentMeta::new(
        get(KEY_TABLE)?.clone(),
        chunk,
        get(KEY_PASS)?.clone(),
        get(KEY_KIND)?.clone(),
    );
    let fields = schema.fields();
    let (layout, columns) = match get(KEY_LAYOUT)?.as_str() {
        "columnar" => {
            if let Some(f) = fields.iter().find(|f| f.data_type() != &DataType::UInt64) {
                return Err(FormatError::corrupt(
                    path,
                    format!(
                        "column `{}` has type {}, expected UInt64",
                        f.name(),
                        f.data_type()
                    ),
                ));
            }
            (Layout::Columnar, fields.len())
        }
        "row-major" => match fields
            .iter()
            .map(|f| f.data_type())
            .collect::<Vec<_>>()
            .as_slice()
        {
            [DataType::FixedSizeList(item, width)]
                if item.data_type() == &DataType::UInt64 && *width > 0 =>
            {
                (Layout::RowMajor, *width as usize)
            }
            _ => {
                return Err(FormatError::corrupt(
                    path,
                    "row-major segment must have one FixedSizeList<UInt64> column",
                ));
            }
        },
        other => {
            return Err(FormatError::corrupt(
                path,
                format!("unknown layout `{other}`"),
            ));
        }
    };
    if columns == 0 {
        return Err(FormatError::corrupt(path, "segment has no columns"));
    }
    Ok((meta, layout, columns))
}
