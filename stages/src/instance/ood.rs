//! Pass 4: each instance's out-of-domain values, by barycentric sums over its committed LDE
//! chunks on coset 0, the quotient pieces' included ([`stark::prover::ChunkedOod`]): no trace
//! block or coefficient block is needed after the pass that made it.

use pipeline::SpillDir;
use stark::Table;
use stark::field::EF;
use stark::proof::InstanceOod;
use stark::prover::{ChunkRows, ChunkedOod};

use super::Committed;
use super::quotient::QuotientInstance;
use crate::error::Error;
use crate::store::Matrix;

/// The OOD values of one instance at `z`.
pub fn ood_values(
    spill: &SpillDir,
    table: &Table,
    z: EF,
    committed: Committed<'_>,
    quotient: &QuotientInstance,
) -> Result<InstanceOod, Error> {
    let geo = committed.main.lde.geo;
    let mut ood = ChunkedOod::new(table, geo, z);
    for c in 0..geo.chunks() {
        let main = committed.main.lde.chunk(spill, 0, c)?;
        let prep = committed
            .prep
            .map(|p| p.lde.chunk(spill, 0, c))
            .transpose()?;
        let aux = committed
            .aux
            .map(|a| a.lde.chunk(spill, 0, c))
            .transpose()?;
        let pieces = quotient.lde.chunk(spill, 0, c)?;
        let rows = ChunkRows {
            main: main.view(),
            prep: prep.as_ref().map(Matrix::view),
            aux: aux.as_ref().map(Matrix::view),
        };
        ood.add_chunk(c, rows, pieces.view())?;
    }
    Ok(ood.finish()?)
}
