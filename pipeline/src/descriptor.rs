//! Chunk descriptors: the small values that flow between stages instead of the data itself.
//!
//! A descriptor names a chunk (table, index, rows, producing pass) and points at the segment
//! files that hold its artifacts, with what is needed to validate them (layout, column count,
//! size, checksum). Strings and the segment list are behind `Arc`, so cloning and sending a
//! descriptor costs a few reference-count increments.

use std::path::Path;
use std::sync::Arc;

use formats::{Checksum, FormatError, Layout, Segment, SegmentInfo};

use crate::graph::Chunk;

/// One segment file of a chunk (e.g. its trace, or its LDE).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentRef {
    /// Artifact kind, e.g. "trace", "lde", "merkle".
    pub kind: Arc<str>,
    pub path: Arc<Path>,
    pub layout: Layout,
    /// Rows in the segment (an LDE has `blowup` times the chunk's rows).
    pub rows: u64,
    /// u64 columns (row width for row-major segments).
    pub columns: u32,
    pub bytes: u64,
    pub checksum: Checksum,
}

impl SegmentRef {
    pub fn from_info(info: &SegmentInfo) -> SegmentRef {
        SegmentRef {
            kind: info.meta.kind.as_str().into(),
            path: info.path.as_path().into(),
            layout: info.layout,
            rows: info.rows,
            columns: info.columns,
            bytes: info.bytes,
            checksum: info.checksum,
        }
    }

    /// Map the segment; with `verify`, hash it first and compare with the recorded checksum.
    pub fn open(&self, verify: bool) -> Result<Segment, FormatError> {
        let segment = if verify {
            Segment::open_verified(&self.path, &self.checksum)?
        } else {
            Segment::open(&self.path)?
        };
        let shape = |rows, columns, layout: Layout| {
            format!("{rows} rows x {columns} {} columns", layout.as_str())
        };
        let found = shape(
            segment.rows() as u64,
            segment.columns() as u32,
            segment.layout(),
        );
        let expected = shape(self.rows, self.columns, self.layout);
        if found != expected {
            return Err(FormatError::Corrupt {
                path: self.path.to_path_buf(),
                reason: format!("has {found}, descriptor says {expected}"),
            });
        }
        Ok(segment)
    }
}

/// A chunk of a table as it moves through the pipeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkDescriptor {
    pub table: Arc<str>,
    /// Numeric table id, for canonical ordering (table, chunk).
    pub table_id: u32,
    pub chunk: u64,
    pub rows: u64,
    /// Pass that produced the latest artifact.
    pub pass: Arc<str>,
    pub segments: Arc<[SegmentRef]>,
}

impl ChunkDescriptor {
    pub fn new(table: &str, table_id: u32, chunk: u64, rows: u64, pass: &str) -> ChunkDescriptor {
        ChunkDescriptor {
            table: table.into(),
            table_id,
            chunk,
            rows,
            pass: pass.into(),
            segments: Arc::new([]),
        }
    }

    /// The same chunk with one more segment (replacing one of the same kind).
    pub fn with_segment(&self, segment: SegmentRef) -> ChunkDescriptor {
        let mut segments: Vec<SegmentRef> = self
            .segments
            .iter()
            .filter(|s| s.kind != segment.kind)
            .cloned()
            .collect();
        segments.push(segment);
        ChunkDescriptor {
            segments: segments.into(),
            ..self.clone()
        }
    }

    /// The same chunk without its segment of `kind`.
    pub fn without_segment(&self, kind: &str) -> ChunkDescriptor {
        let segments: Vec<SegmentRef> = self
            .segments
            .iter()
            .filter(|s| &*s.kind != kind)
            .cloned()
            .collect();
        ChunkDescriptor {
            segments: segments.into(),
            ..self.clone()
        }
    }

    /// The same chunk, produced by `pass`.
    pub fn in_pass(&self, pass: &str) -> ChunkDescriptor {
        ChunkDescriptor {
            pass: pass.into(),
            ..self.clone()
        }
    }

    pub fn segment(&self, kind: &str) -> Option<&SegmentRef> {
        self.segments.iter().find(|s| &*s.kind == kind)
    }

    /// Map the segment of `kind`; an error names the chunk if there is none.
    pub fn open(&self, kind: &str, verify: bool) -> Result<Segment, DescriptorError> {
        let seg = self
            .segment(kind)
            .ok_or_else(|| DescriptorError::NoSegment {
                chunk: self.chunk_label(),
                kind: kind.to_string(),
            })?;
        Ok(seg.open(verify)?)
    }

    /// Canonical order key: (table id, chunk index).
    pub fn order_key(&self) -> (u32, u64) {
        (self.table_id, self.chunk)
    }
}

impl Chunk for ChunkDescriptor {
    fn chunk_label(&self) -> String {
        format!("{}#{}", self.table, self.chunk)
    }
    fn chunk_rows(&self) -> u64 {
        self.rows
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DescriptorError {
    #[error("chunk {chunk} has no `{kind}` segment")]
    NoSegment { chunk: String, kind: String },
    #[error(transparent)]
    Format(#[from] FormatError),
}
