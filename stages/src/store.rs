//! Store or recompute: how a later pass gets an instance's main trace back, and the segment
//! files that hold spilled artifacts (main traces, quotient LDEs).
//!
//! Segments hold canonical u64 values in row-major layout (one `FixedSizeList<UInt64, width>`
//! column), so a row is one contiguous read and any Arrow reader sees the field elements as
//! plain integers. Reading maps the file and reinterprets the u64 buffer as field elements
//! without a copy (Goldilocks is `repr(transparent)` over u64 and any u64 is a valid
//! representation; canonical values are what we write).

use std::fmt;
use std::str::FromStr;

use formats::{Access, Segment, SegmentData, SegmentMeta};
use pipeline::{SegmentRef, SpillDir};
use rayon::prelude::*;
use stark::field::PrimeField64;
use stark::prover::MatrixView;
use stark::{F, RowMajorMatrix};

use crate::error::Error;

/// Where later passes get an instance's main trace from (`--store`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Store {
    /// Write each main trace as a segment in pass 1 and map it in every later pass.
    Trace,
    /// Keep nothing: every later pass re-executes the program and rebuilds the instances
    /// (execution and witness generation cost a few percent of proving; see the crate docs).
    #[default]
    Recompute,
}

impl FromStr for Store {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "trace" => Ok(Store::Trace),
            "recompute" => Ok(Store::Recompute),
            other => Err(format!("unknown store policy `{other}` (trace, recompute)")),
        }
    }
}

impl fmt::Display for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Store::Trace => "trace",
            Store::Recompute => "recompute",
        })
    }
}

/// A matrix of field elements either owned or mapped from a segment file.
pub enum Matrix {
    Owned(RowMajorMatrix<F>),
    Mapped { segment: Segment, width: usize },
}

impl Matrix {
    /// Maps a row-major segment of `width` columns and `rows` rows, checking its shape.
    pub fn open(
        spill: &SpillDir,
        seg: &SegmentRef,
        width: usize,
        rows: usize,
    ) -> Result<Matrix, Error> {
        let segment = spill.open_segment(seg)?;
        let bad = |msg: String| Error::BadSegment {
            path: seg.path.display().to_string(),
            msg,
        };
        let values = segment.row_major_values()?;
        if segment.columns() != width || values.len() != width * rows {
            return Err(bad(format!(
                "holds {} rows x {} columns, expected {rows} x {width}",
                segment.rows(),
                segment.columns()
            )));
        }
        segment.set_access(Access::Sequential);
        Ok(Matrix::Mapped { segment, width })
    }

    pub fn view(&self) -> MatrixView<'_> {
        match self {
            Matrix::Owned(m) => m.as_view(),
            Matrix::Mapped { segment, width } => {
                let values = segment
                    .row_major_values()
                    .expect("the layout was checked when the segment was opened");
                MatrixView::new(as_field(values), *width)
            }
        }
    }

    pub fn rows(&self) -> usize {
        let v = self.view();
        v.values.len() / v.width.max(1)
    }

    /// The first `rows` rows.
    pub fn prefix(&self, rows: usize) -> MatrixView<'_> {
        let v = self.view();
        MatrixView::new(&v.values[..rows * v.width], v.width)
    }

    /// An owned copy with room for its LDE (so the LDE does not reallocate).
    pub fn to_owned_for_lde(&self, log_blowup: usize) -> RowMajorMatrix<F> {
        let v = self.view();
        let mut values = Vec::with_capacity(v.values.len() << log_blowup);
        values.extend_from_slice(v.values);
        RowMajorMatrix::new(values, v.width)
    }
}

/// Reinterprets canonical u64 values as field elements (no copy).
fn as_field(values: &[u64]) -> &[F] {
    const _: () = assert!(std::mem::size_of::<F>() == 8 && std::mem::align_of::<F>() == 8);
    // SAFETY: Goldilocks is repr(transparent) over u64 (size and alignment checked above) and
    // every u64 bit pattern is a valid Goldilocks representation.
    unsafe { std::slice::from_raw_parts(values.as_ptr().cast::<F>(), values.len()) }
}

/// Writes a matrix as a row-major segment of canonical values and records it in the manifest.
pub fn write_matrix(
    spill: &SpillDir,
    meta: &SegmentMeta,
    m: MatrixView<'_>,
) -> Result<SegmentRef, Error> {
    let canonical: Vec<u64> = m.values.par_iter().map(|x| x.as_canonical_u64()).collect();
    Ok(spill.write_segment(
        meta,
        SegmentData::RowMajor {
            width: m.width,
            values: &canonical,
        },
    )?)
}
