//! Pass 2: each instance's LogUp columns, chunk by chunk. A chunk's columns are computed with
//! its running sum started from 0 and written as they are; the carry (the sum of the chunks
//! before) enters the LDE through step 2 of the four-step ([`stark::ntt::Carry`]), so the
//! committed columns (stored plus carry) are never written, and the stored ones are removed
//! once extended. The claimed sum is the last carry plus the last chunk's sum.

use pipeline::{SpillDir, StageProgress};
use stark::field::{EF, PrimeCharacteristicRing, coords};
use stark::ntt::{Carry, ChunkGeometry, Extension, carry_offsets};
use stark::{RowMajorMatrix, Table, prover};

use formats::SegmentMeta;

use super::main::{MainInstance, Preprocessed};
use crate::error::Error;
use crate::lde::{self, InstanceLde, LdeName};
use crate::store::{Matrix, write_matrix};

/// An instance's committed LogUp columns.
pub struct AuxInstance {
    pub lde: InstanceLde,
    pub claimed_sum: EF,
}

/// Computes and commits the LogUp columns of `main` (with `prep`, the table's preprocessed
/// trace at its height) under the lookup challenges.
pub fn commit_aux(
    spill: &SpillDir,
    table: &Table,
    geo: ChunkGeometry,
    main: &MainInstance,
    prep: Option<&Preprocessed>,
    lookup: &[EF; 2],
    progress: &StageProgress,
) -> Result<AuxInstance, Error> {
    let (b, width) = (geo.chunk_rows(), table.aux_width());
    let (mut stored, mut carries) = (Vec::with_capacity(geo.chunks()), Vec::new());
    let mut carry = EF::ZERO;
    for (c, block) in main.trace.iter().enumerate() {
        let m = Matrix::open(spill, block, table.main_width, b)?;
        let p = prep
            .map(|p| Matrix::open(spill, &p.blocks[c], table.prep_width, b))
            .transpose()?;
        let rows = prover::aux_rows(
            table,
            m.view(),
            p.as_ref().map(Matrix::view),
            lookup,
            EF::ZERO,
        )?;
        let meta = SegmentMeta::new(&*main.label, c as u64, "aux", "aux");
        stored.push(write_matrix(
            spill,
            &meta,
            &mut RowMajorMatrix::new(rows.values, width),
        )?);
        carries.push(carry);
        carry += rows.running_sum;
        progress.advance(1, b as u64);
    }
    let flat: Vec<_> = carries.iter().flat_map(|c| coords(*c)).collect();
    let ext = Extension {
        carry: Some(Carry {
            columns: prover::running_sum_columns(table).to_vec(),
            offsets: carry_offsets(&geo, RowMajorMatrix::new(flat, 2)),
        }),
        ..Extension::lde(&geo)
    };
    let name = LdeName {
        table: &main.label,
        pass: "aux",
        kind: "aux-lde",
    };
    let lde = lde::extend(spill, name, geo, &ext, &stored, width)?;
    stored.iter().try_for_each(|s| spill.remove_segment(s))?;
    Ok(AuxInstance {
        lde,
        claimed_sum: carry,
    })
}
