//! Store or recompute: which artifacts later passes map instead of recomputing, and the
//! segment files that hold spilled artifacts (traces, LDEs, tree levels, coefficients).
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
use stark::merkle::Digest;
use stark::prover::MatrixView;
use stark::{F, RowMajorMatrix};

use crate::error::Error;

/// Which artifacts the first passes keep on disk for the later ones (`--store`); what is not
/// kept is recomputed. See the [`crate::passes`] docs for the measurements behind the default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Store {
    /// Main traces, written in pass 1 and mapped by the passes that need a trace. Not kept:
    /// those passes re-execute the program and rebuild the instances.
    pub traces: bool,
    /// Which chunks keep their main, aux and quotient LDEs, each with one level of its Merkle
    /// tree ([`stark::merkle::PartialTree`]): the quotient, OOD, DEEP and open passes map
    /// them. A chunk that does not gets its LDEs recomputed from the traces in the quotient
    /// and open passes (its aux trace and quotient coefficients are spilled instead).
    pub ldes: KeepLdes,
}

/// Which chunks keep their LDEs ([`Store::ldes`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeepLdes {
    Never,
    Always,
    /// Every chunk whose LDEs still fit, decided in pass 1 in generation order, leaving a
    /// reserve for what the other chunks spill: a long run keeps what the disk holds and
    /// recomputes the rest, instead of failing on a full disk.
    WhileRoom,
}

/// The Merkle tree level kept next to a spilled LDE: 1/16 of the leaf digests, and 16 rows
/// hashed again per opened row.
pub const KEPT_LEVEL: usize = 4;

impl Store {
    /// Keep nothing but what recomputed chunks need (aux traces, quotient coefficients).
    pub const RECOMPUTE: Store = Store {
        traces: false,
        ldes: KeepLdes::Never,
    };
}

impl Default for Store {
    /// LDEs while they fit, traces re-executed (`auto`, the measured choice).
    fn default() -> Self {
        Store {
            traces: false,
            ldes: KeepLdes::WhileRoom,
        }
    }
}

impl FromStr for Store {
    type Err = String;
    /// `recompute`, or a comma list of `trace` and one of `lde`, `auto`.
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "recompute" {
            return Ok(Store::RECOMPUTE);
        }
        let mut store = Store::RECOMPUTE;
        for part in s.split(',') {
            match part.trim() {
                "trace" => store.traces = true,
                "lde" => store.ldes = KeepLdes::Always,
                "auto" => store.ldes = KeepLdes::WhileRoom,
                other => {
                    return Err(format!(
                        "unknown store policy `{other}` (auto, lde, trace, recompute; \
                         trace combines with auto or lde: trace,lde)"
                    ));
                }
            }
        }
        Ok(store)
    }
}

impl fmt::Display for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ldes = match self.ldes {
            KeepLdes::Never => None,
            KeepLdes::Always => Some("lde"),
            KeepLdes::WhileRoom => Some("auto"),
        };
        match (self.traces, ldes) {
            (false, None) => f.write_str("recompute"),
            (true, None) => f.write_str("trace"),
            (false, Some(l)) => f.write_str(l),
            (true, Some(l)) => write!(f, "trace,{l}"),
        }
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

    /// For scattered reads of a few rows: no read-ahead (a mapped segment's default reads ahead
    /// the device's whole window at each fault), and `rows` asked for at once (madvise
    /// WILLNEED), so the disk serves them together rather than a page fault at a time.
    pub fn prefetch_scattered(&self, rows: impl Iterator<Item = usize>) {
        if let Matrix::Mapped { segment, .. } = self {
            segment.set_access(Access::Random);
            for r in rows {
                segment.prefetch_rows(r..r + 1);
            }
        }
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

    /// The stored u64 words as they are (for segments that do not hold field elements).
    pub fn words(&self) -> &[u64] {
        match self {
            Matrix::Owned(m) => as_u64(&m.values),
            Matrix::Mapped { segment, .. } => segment
                .row_major_values()
                .expect("the layout was checked when the segment was opened"),
        }
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
pub(crate) fn as_field(values: &[u64]) -> &[F] {
    const _: () = assert!(std::mem::size_of::<F>() == 8 && std::mem::align_of::<F>() == 8);
    // SAFETY: Goldilocks is repr(transparent) over u64 (size and alignment checked above) and
    // every u64 bit pattern is a valid Goldilocks representation.
    unsafe { std::slice::from_raw_parts(values.as_ptr().cast::<F>(), values.len()) }
}

/// Writes a matrix as a row-major segment of canonical values and records it in the manifest.
/// The values are made canonical in place (same field elements), so nothing is copied.
pub fn write_matrix(
    spill: &SpillDir,
    meta: &SegmentMeta,
    m: &mut RowMajorMatrix<F>,
) -> Result<SegmentRef, Error> {
    m.values
        .par_iter_mut()
        .with_min_len(1 << 12)
        .for_each(|x| *x = F::new(x.as_canonical_u64()));
    let canonical = as_u64(&m.values);
    Ok(spill.write_segment(
        meta,
        SegmentData::RowMajor {
            width: m.width,
            values: canonical,
        },
    )?)
}

/// Writes Merkle tree nodes as a row-major segment of 4 u64 (little-endian words) per digest.
pub fn write_digests(
    spill: &SpillDir,
    meta: &SegmentMeta,
    nodes: &[Digest],
) -> Result<SegmentRef, Error> {
    let values: Vec<u64> = nodes
        .iter()
        .flat_map(|d| {
            d.chunks_exact(8)
                .map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")))
        })
        .collect();
    Ok(spill.write_segment(
        meta,
        SegmentData::RowMajor {
            width: 4,
            values: &values,
        },
    )?)
}

/// The digests of a segment written by [`write_digests`] (opened with width 4).
pub fn read_digests(m: &Matrix) -> Vec<Digest> {
    m.words()
        .chunks_exact(4)
        .map(|w| {
            let mut d = [0u8; 32];
            for (i, x) in w.iter().enumerate() {
                d[8 * i..8 * i + 8].copy_from_slice(&x.to_le_bytes());
            }
            d
        })
        .collect()
}

/// Field elements as their u64 representations (canonical ones after [`write_matrix`]'s pass).
fn as_u64(values: &[F]) -> &[u64] {
    // SAFETY: as in `as_field`, in the other direction: Goldilocks is repr(transparent) over
    // u64.
    unsafe { std::slice::from_raw_parts(values.as_ptr().cast::<u64>(), values.len()) }
}
