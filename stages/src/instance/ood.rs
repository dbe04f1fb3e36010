//! Pass 4: each instance's out-of-domain values without any LDE: barycentric sums over the
//! committed columns' trace chunks (the aux chunks with their carries added back) and Horner
//! over the pieces' coefficient blocks ([`stark::prover::ChunkedOod`]).

use pipeline::SpillDir;
use stark::field::EF;
use stark::ntt::ChunkGeometry;
use stark::proof::InstanceOod;
use stark::prover::{ChunkedOod, InstanceTraces};
use stark::{RowMajorMatrix, Table};

use super::quotient::{Committed, QuotientInstance};
use crate::error::Error;
use crate::lde;
use crate::store::Matrix;

/// The OOD values of one instance at `z`.
pub fn ood_values(
    spill: &SpillDir,
    table: &Table,
    geo: ChunkGeometry,
    z: EF,
    committed: Committed<'_>,
    quotient: &QuotientInstance,
) -> Result<InstanceOod, Error> {
    let b = geo.chunk_rows();
    let mut ood = ChunkedOod::new(table, geo, z);
    for (c, block) in committed.main.trace.iter().enumerate() {
        let main = Matrix::open(spill, block, table.main_width, b)?;
        let prep = committed
            .prep
            .map(|p| Matrix::open(spill, &p.blocks[c], table.prep_width, b))
            .transpose()?;
        let aux = committed
            .aux
            .map(|a| a.committed_chunk(spill, table, c))
            .transpose()?;
        ood.add_trace_chunk(
            c,
            InstanceTraces {
                main: main.view(),
                prep: prep.as_ref().map(Matrix::view),
                aux: aux.as_ref().map(RowMajorMatrix::as_view),
            },
        )?;
    }
    for (j1, seg) in quotient.coefficients.iter().enumerate() {
        let block = lde::read_block(spill, seg, table.quotient_width(), b)?;
        ood.add_piece_block(j1, block.as_view())?;
    }
    Ok(ood.finish()?)
}
