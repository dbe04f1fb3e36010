//! Writing a segment in place through a memory mapping.
//!
//! [`crate::write_segment`] streams data the caller already holds. A stage that *produces* a
//! big artifact (an LDE, a Merkle level) can instead ask for a [`MappedSegmentWriter`]: the file
//! is created at its final size with every block reserved (fallocate) up front, mapped, and the
//! caller fills the column slices directly. The data then lives in page cache backed by the
//! file, not in anonymous memory, and a full disk is an error at `create`, never a SIGBUS on a
//! page fault in the middle of an NTT.
//!
//! The Arrow IPC framing (schema, record batch header, footer) is made by arrow-ipc itself: the
//! file is encoded once with the column buffers pointing into an untouched anonymous mapping, and
//! a recording sink keeps the framing bytes and notes where each column's data goes. So the
//! result is byte-for-byte what [`crate::write_segment`] writes for the same values.

use std::io;
use std::ops::Range;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::Arc;

use arrow_array::{ArrayRef, FixedSizeListArray, RecordBatch, UInt64Array};
use arrow_buffer::{Buffer, ScalarBuffer};
use arrow_ipc::MetadataVersion;
use arrow_ipc::writer::{FileWriter, IpcWriteOptions};
use memmap2::{MmapMut, MmapOptions};

use crate::atomic::AtomicFile;
use crate::checksum::Checksum;
use crate::error::{FormatError, Result};
use crate::segment::{
    Layout, SEGMENT_ALIGNMENT, SegmentInfo, SegmentMeta, element_field, segment_schema,
};

/// The bytes of a segment file except its values, and where the values go.
struct Template {
    /// (file offset, bytes) of the framing.
    framing: Vec<(usize, Vec<u8>)>,
    /// File byte ranges of the value buffers, in column order.
    values: Vec<Range<usize>>,
    len: usize,
}

/// A `Write` that keeps everything except writes coming from the placeholder mapping, which it
/// only records as ranges.
struct RecordingSink {
    placeholder: Range<usize>,
    template: Template,
}

impl io::Write for RecordingSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let p = buf.as_ptr() as usize;
        let at = self.template.len;
        if self.placeholder.contains(&p) {
            self.template.values.push(at..at + buf.len());
        } else {
            match self.template.framing.last_mut() {
                Some((start, bytes)) if *start + bytes.len() == at => bytes.extend_from_slice(buf),
                _ => self.template.framing.push((at, buf.to_vec())),
            }
        }
        self.template.len += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn encode_template(
    path: &Path,
    meta: &SegmentMeta,
    layout: Layout,
    rows: usize,
    columns: usize,
) -> Result<Template> {
    let arrow = |e| FormatError::Arrow {
        path: path.to_path_buf(),
        error: e,
    };
    let values_per_buffer = match layout {
        Layout::Columnar => rows,
        Layout::RowMajor => rows * columns,
    };
    // Never touched: reads of it would only ever see the shared zero page.
    let placeholder = MmapOptions::new()
        .len((values_per_buffer * 8).max(8))
        .map_anon()
        .map_err(|e| FormatError::io("map placeholder for", path, e))?;
    let ptr = NonNull::new(placeholder.as_ptr() as *mut u8).expect("mmap is non-null");
    let placeholder_range = ptr.as_ptr() as usize..ptr.as_ptr() as usize + placeholder.len();
    let placeholder = Arc::new(placeholder);
    let array = || {
        // SAFETY: the buffer owns an Arc of the mapping, which outlives it.
        let buffer = unsafe {
            Buffer::from_custom_allocation(ptr, values_per_buffer * 8, placeholder.clone())
        };
        UInt64Array::new(ScalarBuffer::new(buffer, 0, values_per_buffer), None)
    };
    let schema = Arc::new(segment_schema(meta, layout, columns));
    let arrays: Vec<ArrayRef> = match layout {
        Layout::Columnar => (0..columns)
            .map(|_| Arc::new(array()) as ArrayRef)
            .collect(),
        Layout::RowMajor => vec![Arc::new(
            FixedSizeListArray::try_new(element_field(), columns as i32, Arc::new(array()), None)
                .map_err(arrow)?,
        )],
    };
    let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(arrow)?;
    let options =
        IpcWriteOptions::try_new(SEGMENT_ALIGNMENT, false, MetadataVersion::V5).map_err(arrow)?;
    let sink = RecordingSink {
        placeholder: placeholder_range,
        template: Template {
            framing: Vec::new(),
            values: Vec::new(),
            len: 0,
        },
    };
    let mut writer = FileWriter::try_new_with_options(sink, &schema, options).map_err(arrow)?;
    writer.write(&batch).map_err(arrow)?;
    writer.finish().map_err(arrow)?;
    let template = writer.into_inner().map_err(arrow)?.template;
    let expected = if values_per_buffer == 0 {
        0
    } else {
        arrays_count(layout, columns)
    };
    if template.values.len() != expected
        || template
            .values
            .iter()
            .any(|r| r.start % SEGMENT_ALIGNMENT != 0 || r.len() != values_per_buffer * 8)
    {
        return Err(FormatError::invalid(
            path,
            "unexpected Arrow IPC layout for a mapped segment",
        ));
    }
    Ok(template)
}

fn arrays_count(layout: Layout, columns: usize) -> usize {
    match layout {
        Layout::Columnar => columns,
        Layout::RowMajor => 1,
    }
}

/// A segment file being filled in place; see the module docs.
pub struct MappedSegmentWriter {
    file: AtomicFile,
    map: MmapMut,
    values: Vec<Range<usize>>,
    meta: SegmentMeta,
    layout: Layout,
    rows: usize,
    columns: usize,
}

impl MappedSegmentWriter {
    /// Create the file at its final size (blocks reserved, so a full disk fails here with
    /// [`FormatError::NoSpace`]), map it and write the Arrow framing. Values start as zeros.
    pub fn create(
        path: impl AsRef<Path>,
        meta: &SegmentMeta,
        layout: Layout,
        rows: usize,
        columns: usize,
    ) -> Result<Self> {
        let path = path.as_ref();
        if columns == 0 || columns > i32::MAX as usize {
            return Err(FormatError::invalid(path, format!("{columns} columns")));
        }
        let template = encode_template(path, meta, layout, rows, columns)?;
        let mut file = AtomicFile::create(path)?;
        file.reserve_strict(template.len as u64)?;
        // SAFETY: the temporary file is ours alone until it is renamed, and its blocks are
        // allocated, so page faults on the mapping cannot fail for lack of space.
        let mut map = unsafe { MmapOptions::new().len(template.len).map_mut(file.file()) }
            .map_err(|e| FormatError::io("mmap for writing", path, e))?;
        for (offset, bytes) in &template.framing {
            map[*offset..*offset + bytes.len()].copy_from_slice(bytes);
        }
        file.set_written(template.len as u64);
        Ok(MappedSegmentWriter {
            file,
            map,
            values: template.values,
            meta: meta.clone(),
            layout,
            rows,
            columns,
        })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn columns(&self) -> usize {
        self.columns
    }

    fn slice_mut(&mut self, i: usize) -> &mut [u64] {
        let Some(range) = self.values.get(i).cloned() else {
            return &mut [];
        };
        // SAFETY: the range lies in the mapping, is 64-byte aligned from a page-aligned base,
        // and its length is a multiple of 8 (checked when encoding the template).
        unsafe {
            std::slice::from_raw_parts_mut(
                self.map.as_mut_ptr().add(range.start) as *mut u64,
                range.len() / 8,
            )
        }
    }

    /// The columns of a columnar segment, to fill (disjoint, so they can go to rayon tasks).
    pub fn columns_mut(&mut self) -> Result<Vec<&mut [u64]>> {
        if self.layout != Layout::Columnar {
            return Err(FormatError::invalid(
                self.file.path(),
                "column access on a row-major segment",
            ));
        }
        let base = self.map.as_mut_ptr();
        let rows = self.rows;
        Ok((0..self.columns)
            .map(|i| match self.values.get(i) {
                // SAFETY: as in `slice_mut`; the ranges of different columns do not overlap.
                Some(r) => unsafe {
                    std::slice::from_raw_parts_mut(base.add(r.start) as *mut u64, rows)
                },
                None => &mut [][..],
            })
            .collect())
    }

    /// The `rows x columns` row-major values of a row-major segment, to fill.
    pub fn values_mut(&mut self) -> Result<&mut [u64]> {
        if self.layout != Layout::RowMajor {
            return Err(FormatError::invalid(
                self.file.path(),
                "row-major access on a columnar segment",
            ));
        }
        Ok(self.slice_mut(0))
    }

    /// Writes `values` at value index `start` of a row-major segment through the file rather
    /// than the mapping: the first write of a page then needs no page fault (a fault on a
    /// fresh page of a reserved file zero-fills it first, which costs as much as the copy).
    /// Later reads and writes through [`MappedSegmentWriter::values_mut`] see these values.
    pub fn write_values(&self, start: usize, values: &[u64]) -> Result<()> {
        use std::os::unix::fs::FileExt;
        let range = self.values.first().cloned().unwrap_or(0..0);
        if self.layout != Layout::RowMajor || (start + values.len()) * 8 > range.len() {
            return Err(FormatError::invalid(
                self.file.path(),
                format!(
                    "{} values at {start} do not fit the segment's {} values",
                    values.len(),
                    range.len() / 8
                ),
            ));
        }
        // SAFETY: u64 has no padding; the bytes are the values' native (little-endian on
        // every supported target, as the Arrow buffers are) representation.
        let bytes =
            unsafe { std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), values.len() * 8) };
        self.file
            .file()
            .write_all_at(bytes, (range.start + start * 8) as u64)
            .map_err(|e| FormatError::io("write", self.file.path(), e))
    }

    /// Hash the file and rename it into place. Like [`crate::write_segment`], no msync or
    /// fsync: the mapping's pages are the page cache readers see.
    pub fn finish(self) -> Result<SegmentInfo> {
        let path = self.file.path().to_path_buf();
        let checksum = Checksum::of(&self.map);
        let bytes = self.map.len() as u64;
        drop(self.map);
        self.file.commit_without_sync()?;
        Ok(SegmentInfo {
            path,
            meta: self.meta,
            layout: self.layout,
            rows: self.rows as u64,
            columns: self.columns as u32,
            bytes,
            checksum,
        })
    }
}
