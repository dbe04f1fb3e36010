//! Pass 5: the DEEP codeword of each LDE height, chunk by chunk from the committed LDE chunks
//! ([`stark::prover::DeepAccumulator::add_chunk`]), in natural coset chunks as FRI folds it.
//!
//! The codewords are held in memory ([`ChunkedWord`]): `2^(log n + log L)` extension elements
//! for the tallest instance. Writing them (and the first FRI layers) as segments is the next
//! step of `docs/one-instance.md`.

use pipeline::SpillDir;
use stark::Table;
use stark::fri::chunked::ChunkedWord;
use stark::ntt::ChunkGeometry;
use stark::proof::InstanceOod;
use stark::prover::{ChunkRows, DeepAccumulator};

use super::quotient::{Committed, QuotientInstance};
use crate::error::Error;
use crate::store::Matrix;

/// Adds instance `index`'s DEEP terms into `word` (its height's codeword).
#[allow(clippy::too_many_arguments)]
pub fn add_instance(
    spill: &SpillDir,
    deep: &DeepAccumulator,
    table: &Table,
    index: usize,
    ood: &InstanceOod,
    geo: ChunkGeometry,
    committed: Committed<'_>,
    quotient: &QuotientInstance,
    word: &mut ChunkedWord,
) -> Result<(), Error> {
    for u in 0..geo.cosets() {
        for c in 0..geo.chunks() {
            let main = committed.main.lde.chunk(spill, u, c)?;
            let prep = committed
                .prep
                .map(|p| p.lde.chunk(spill, u, c))
                .transpose()?;
            let aux = committed
                .aux
                .map(|a| a.lde.chunk(spill, u, c))
                .transpose()?;
            let q = quotient.lde.chunk(spill, u, c)?;
            let rows = ChunkRows {
                main: main.view(),
                prep: prep.as_ref().map(Matrix::view),
                aux: aux.as_ref().map(Matrix::view),
            };
            let out = &mut word.chunks[u * geo.chunks() + c];
            deep.add_chunk(table, index, ood, &geo, u, c, rows, q.view(), out)?;
        }
    }
    Ok(())
}
