//! Pass 5: the DEEP codeword of each LDE height, chunk by chunk from the committed LDE chunks
//! ([`stark::prover::DeepAccumulator::add_chunk`]), in natural coset chunks as FRI folds it:
//! chunk `(u, c)` of a height's codeword sums the terms of every instance of that height and is
//! written as a segment ([`super::fri::DiskWord`]).

use std::collections::BTreeMap;

use pipeline::SpillDir;
use stark::Table;
use stark::field::{EF, PrimeCharacteristicRing};
use stark::proof::InstanceOod;
use stark::prover::{ChunkRows, DeepAccumulator};

use super::Committed;
use super::fri::{self, DiskWord};
use super::quotient::QuotientInstance;
use crate::error::Error;
use crate::store::Matrix;

/// One instance as the DEEP pass reads it.
pub struct DeepInput<'a> {
    pub index: usize,
    pub table: &'a Table,
    pub ood: &'a InstanceOod,
    pub committed: Committed<'a>,
    pub quotient: &'a QuotientInstance,
}

/// The DEEP codewords of `instances`, keyed by log2 size.
pub fn deep_words(
    spill: &SpillDir,
    deep: &DeepAccumulator,
    instances: &[DeepInput<'_>],
) -> Result<BTreeMap<usize, DiskWord>, Error> {
    let mut by_height: BTreeMap<usize, Vec<&DeepInput<'_>>> = BTreeMap::new();
    for d in instances {
        let geo = d.committed.main.lde.geo;
        by_height
            .entry(geo.log_height + geo.log_blowup)
            .or_default()
            .push(d);
    }
    let mut words = BTreeMap::new();
    for (log_size, group) in by_height {
        let geo = group[0].committed.main.lde.geo;
        let name = format!("deep{log_size}");
        let mut chunks = Vec::with_capacity(geo.cosets() * geo.chunks());
        for u in 0..geo.cosets() {
            for c in 0..geo.chunks() {
                let mut out = vec![EF::ZERO; geo.chunk_rows()];
                for d in &group {
                    let main = d.committed.main.lde.chunk(spill, u, c)?;
                    let prep = d
                        .committed
                        .prep
                        .map(|p| p.lde.chunk(spill, u, c))
                        .transpose()?;
                    let aux = d
                        .committed
                        .aux
                        .map(|a| a.lde.chunk(spill, u, c))
                        .transpose()?;
                    let q = d.quotient.lde.chunk(spill, u, c)?;
                    let rows = ChunkRows {
                        main: main.view(),
                        prep: prep.as_ref().map(Matrix::view),
                        aux: aux.as_ref().map(Matrix::view),
                    };
                    deep.add_chunk(
                        d.table,
                        d.index,
                        d.ood,
                        &geo,
                        u,
                        c,
                        rows,
                        q.view(),
                        &mut out,
                    )?;
                }
                chunks.push(fri::write_chunk(
                    spill,
                    "deep",
                    &name,
                    u * geo.chunks() + c,
                    &out,
                )?);
            }
        }
        words.insert(log_size, DiskWord { geo, chunks });
    }
    Ok(words)
}
