//! Pass 3: each instance's quotient, out of core.
//!
//! ```text
//! values   per quotient coset q and chunk c: prover::quotient_chunk over LDE chunk (q L/qf, c)
//!          of every committed matrix and the next chunk's first row -> a segment (B x 2)
//! interp   per coset: lde::cross_inverse (step 1), then ntt::interpolate_block per block
//! pieces   per block j1: prover::quotient_piece_block of the qf cosets' block j1 -> the pieces'
//!          coefficient block j1, ntt::evaluate_block to every coset, step 3 and the tree by
//!          lde::commit_blocks
//! ```
//!
//! Every intermediate is removed once read; what stays is the pieces' LDE.

use pipeline::{SegmentRef, SpillDir, StageProgress};
use stark::field::{EF, PrimeCharacteristicRing, coords};
use stark::ntt::{self, ChunkGeometry, Extension};
use stark::prover::{self, ChunkRows};
use stark::{RowMajorMatrix, Table};

use formats::SegmentMeta;

use super::Committed;
use crate::error::Error;
use crate::lde::{self, InstanceLde, LdeName};
use crate::store::write_matrix;

/// An instance's committed quotient pieces.
pub struct QuotientInstance {
    pub lde: InstanceLde,
}

/// Computes and commits the quotient of one instance.
pub fn commit_quotient(
    spill: &SpillDir,
    table: &Table,
    geo: ChunkGeometry,
    committed: Committed<'_>,
    lookup: &[EF; 2],
    composition: EF,
    progress: &StageProgress,
) -> Result<QuotientInstance, Error> {
    let qf = table.quotient_pieces;
    let (b, step) = (geo.chunk_rows(), prover::quotient_coset_step(table, &geo)?);
    let label = &*committed.main.label;
    let claimed = committed.aux.map_or(EF::ZERO, |a| a.claimed_sum);
    let mut interpolated: Vec<Vec<SegmentRef>> = Vec::with_capacity(qf);
    for q in 0..qf {
        let (values_kind, interp_kind) = (format!("values-{q}"), format!("interp-{q}"));
        let mut values = Vec::with_capacity(geo.chunks());
        for c in 0..geo.chunks() {
            let u = q * step;
            let m = committed.main.lde.chunk_with_next(spill, u, c)?;
            let p = committed
                .prep
                .map(|p| p.lde.chunk_with_next(spill, u, c))
                .transpose()?;
            let a = committed
                .aux
                .map(|a| a.lde.chunk_with_next(spill, u, c))
                .transpose()?;
            let rows = ChunkRows {
                main: m.as_view(),
                prep: p.as_ref().map(RowMajorMatrix::as_view),
                aux: a.as_ref().map(RowMajorMatrix::as_view),
            };
            let v = prover::quotient_chunk(table, &geo, q, c, rows, lookup, claimed, composition)?;
            let mut m = RowMajorMatrix::new(v.into_iter().flat_map(coords).collect(), 2);
            let meta = SegmentMeta::new(label, c as u64, "quotient", &*values_kind);
            values.push(write_matrix(spill, &meta, &mut m)?);
            progress.advance(1, b as u64);
        }
        let step1_kind = format!("{values_kind}-step1");
        let blocks = lde::cross_inverse(spill, quotient_name(label, &step1_kind), geo, values, 2)?;
        let mut interp = Vec::with_capacity(geo.chunks());
        for (j1, seg) in blocks.iter().enumerate() {
            let block = lde::read_block(spill, seg, 2, b)?;
            let mut coeffs = ntt::interpolate_block(&geo, j1, block, None);
            let meta = SegmentMeta::new(label, j1 as u64, "quotient", &*interp_kind);
            interp.push(write_matrix(spill, &meta, &mut coeffs)?);
            spill.remove_segment(seg)?;
        }
        interpolated.push(interp);
    }

    let width = table.quotient_width();
    let lde = lde::commit_blocks(
        spill,
        quotient_name(label, "quotient-lde"),
        geo,
        width,
        |j1| {
            let blocks = interpolated
                .iter()
                .map(|segs| lde::read_block(spill, &segs[j1], 2, b))
                .collect::<Result<Vec<_>, _>>()?;
            let views: Vec<_> = blocks.iter().map(RowMajorMatrix::as_view).collect();
            let block = prover::quotient_piece_block(table, &geo, j1, &views)?;
            for segs in &interpolated {
                spill.remove_segment(&segs[j1])?;
            }
            Ok(ntt::evaluate_block(&geo, &Extension::lde(&geo), j1, block))
        },
    )?;
    Ok(QuotientInstance { lde })
}

fn quotient_name<'a>(label: &'a str, kind: &'a str) -> LdeName<'a> {
    LdeName {
        table: label,
        pass: "quotient",
        kind,
    }
}
