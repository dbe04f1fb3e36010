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
//! Every intermediate is removed once read; what stays is the pieces' LDE. The interpolated
//! blocks are handed back ([`Interpolated`]) for the driver to remove once its partial
//! checkpoint names the instance: until then a kill can take them up again.
//!
//! Resumed (`run --resume`), the pass takes up what its killed attempt recorded ([`REUSED`]):
//! the instances of its partial checkpoint are not done again, and in the next instance every
//! recorded values chunk, every coset whose blocks are all interpolated or inverted, is used as
//! it is. What is lost to a kill is at most the chunk being computed, a coset's cross inverse,
//! or the commitment of one instance.

use pipeline::{SegmentRef, SpillDir, StageProgress};
use stark::field::{EF, PrimeCharacteristicRing, coords};
use stark::ntt::{self, ChunkGeometry, Extension};
use stark::prover::{self, ChunkRows};
use stark::{RowMajorMatrix, Table};

use formats::{Reuse, SegmentMeta};

use super::Committed;
use crate::error::Error;
use crate::lde::{self, InstanceLde, LdeName};
use crate::store::write_matrix;

/// The segment kinds of this pass that a resumed run takes up again (kind prefixes).
pub fn reused() -> Reuse {
    Reuse {
        pass: PASS.into(),
        kinds: ["values-", "interp-", "quotient-lde"]
            .map(String::from)
            .into(),
    }
}

const PASS: &str = "quotient";

/// An instance's committed quotient pieces.
pub struct QuotientInstance {
    pub lde: InstanceLde,
}

/// An instance's interpolated blocks, which its commitment read.
pub struct Interpolated(Vec<SegmentRef>);

impl Interpolated {
    pub fn remove(self, spill: &SpillDir) -> Result<(), Error> {
        self.0.iter().try_for_each(|s| spill.remove_segment(s))?;
        Ok(())
    }
}

/// Computes and commits the quotient of one instance; its interpolated blocks are left for the
/// caller to remove.
pub fn commit_quotient(
    spill: &SpillDir,
    table: &Table,
    geo: ChunkGeometry,
    committed: Committed<'_>,
    lookup: &[EF; 2],
    composition: EF,
    progress: &StageProgress,
) -> Result<(QuotientInstance, Interpolated), Error> {
    let qf = table.quotient_pieces;
    let (k, b) = (geo.chunks(), geo.chunk_rows());
    let step = prover::quotient_coset_step(table, &geo)?;
    let label = &*committed.main.label;
    let claimed = committed.aux.map_or(EF::ZERO, |a| a.claimed_sum);
    let meta = |j: usize, kind: &str| SegmentMeta::new(label, j as u64, PASS, kind);
    let recorded = |kind: &str| -> Result<Vec<Option<SegmentRef>>, Error> {
        (0..k)
            .map(|j| Ok(spill.recorded(&meta(j, kind))?))
            .collect()
    };
    let mut interpolated: Vec<Vec<SegmentRef>> = Vec::with_capacity(qf);
    for q in 0..qf {
        let (values_kind, interp_kind) = (format!("values-{q}"), format!("interp-{q}"));
        let step1_kind = format!("{values_kind}-step1");
        let mut interp = recorded(&interp_kind)?;
        let mut blocks = recorded(&step1_kind)?;
        if interp
            .iter()
            .zip(&blocks)
            .any(|(i, s)| i.is_none() && s.is_none())
        {
            let mut values = Vec::with_capacity(k);
            for c in 0..k {
                let m = meta(c, &values_kind);
                if let Some(seg) = spill.recorded(&m)? {
                    values.push(seg);
                    progress.advance(1, b as u64);
                    continue;
                }
                let u = q * step;
                let rows = |lde: &InstanceLde| lde.chunk_with_next(spill, u, c);
                let main = rows(&committed.main.lde)?;
                let prep = committed.prep.map(|p| rows(&p.lde)).transpose()?;
                let aux = committed.aux.map(|a| rows(&a.lde)).transpose()?;
                let rows = ChunkRows {
                    main: main.as_view(),
                    prep: prep.as_ref().map(RowMajorMatrix::as_view),
                    aux: aux.as_ref().map(RowMajorMatrix::as_view),
                };
                let v =
                    prover::quotient_chunk(table, &geo, q, c, rows, lookup, claimed, composition)?;
                let mut v = RowMajorMatrix::new(v.into_iter().flat_map(coords).collect(), 2);
                values.push(write_matrix(spill, &m, &mut v)?);
                progress.advance(1, b as u64);
            }
            let name = quotient_name(label, &step1_kind);
            blocks = lde::cross_inverse(spill, name, geo, values, 2)?
                .into_iter()
                .map(Some)
                .collect();
        } else {
            progress.advance(k as u64, (k * b) as u64);
        }
        for (j1, slot) in interp.iter_mut().enumerate() {
            if slot.is_none() {
                let seg = blocks[j1].as_ref().expect("inverted when not interpolated");
                let block = lde::read_block(spill, seg, 2, b)?;
                let mut coeffs = ntt::interpolate_block(&geo, j1, block, None);
                *slot = Some(write_matrix(spill, &meta(j1, &interp_kind), &mut coeffs)?);
            }
            if let Some(seg) = blocks[j1].take() {
                spill.remove_segment(&seg)?;
            }
        }
        interpolated.push(interp.into_iter().flatten().collect());
    }

    let width = table.quotient_width();
    let lde = lde::commit_blocks(
        spill,
        quotient_name(label, "quotient-lde"),
        geo,
        width,
        lde::Blocks::Recorded,
        |j1| {
            let blocks = interpolated
                .iter()
                .map(|segs| lde::read_block(spill, &segs[j1], 2, b))
                .collect::<Result<Vec<_>, _>>()?;
            let views: Vec<_> = blocks.iter().map(RowMajorMatrix::as_view).collect();
            let block = prover::quotient_piece_block(table, &geo, j1, &views)?;
            Ok(ntt::evaluate_block(&geo, &Extension::lde(&geo), j1, block))
        },
    )?;
    let interpolated = Interpolated(interpolated.into_iter().flatten().collect());
    Ok((QuotientInstance { lde }, interpolated))
}

fn quotient_name<'a>(label: &'a str, kind: &'a str) -> LdeName<'a> {
    LdeName {
        table: label,
        pass: PASS,
        kind,
    }
}
