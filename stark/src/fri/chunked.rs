//! FRI folded from natural coset chunks ([`crate::ntt`]), for codewords longer than memory:
//! the same layer roots, final value and openings as [`super::prove`].
//!
//! A layer of size `S = L K B` at fold level `l` lives on `g <w_S>`, `g = s^(2^l)`. Its chunk
//! `(u, c)` row `i` holds the value at natural index `t = u + L (c B + i)` (point `g w_S^t`):
//! at level 0 that is the DEEP codeword as [`crate::prover::DeepAccumulator::add_chunk`] makes
//! it, the layout of [`ChunkGeometry`] with `log_height = log S - log L`.
//!
//! - **Pairs.** `-x` is `x w_S^(S/2)`, index `t + S/2`: the same row of chunk `c + K/2`.
//! - **Fold.** Chunk `(u, c)`, `c < K/2`, of the next layer (on `g^2 <w_(S/2)>`, index `t`) is
//!   the fold of chunks `(u, c)` and `(u, c + K/2)`: the same layout with `K/2` chunks.
//! - **Tree.** The in-memory layer's leaf `j` is the pair at `t = rev_(log S - 1)(j)`, which is
//!   [`ChunkGeometry::lde_row`] of the half geometry (`K/2` chunks) at `(u, c, i)`: a
//!   [`crate::chunk_tree`] over pair rows `[f(x), f(-x)]` (4 base values), hashed slab by slab.
//!
//! Once a layer is down to one chunk (`L B` values) it is handed to the in-memory loop,
//! bit-reversed, with the smaller codewords still to join.

use std::collections::BTreeMap;

use p3_matrix::dense::RowMajorMatrixView;
use rayon::prelude::*;

use super::{FriProver, Layer, fold_in_memory, fold_pair};
use crate::chunk_tree::{self, ChunkTree, LevelBuilder};
use crate::domain::lde_shift;
use crate::field::{EF, F, PrimeCharacteristicRing, TwoAdicField, coords, ext};
use crate::merkle::Digest;
use crate::ntt::ChunkGeometry;
use crate::proof::FriLayerOpening;
use crate::prover::ProveError;
use crate::transcript::Transcript;

/// A codeword (a DEEP codeword or a FRI layer) in natural coset chunks.
#[derive(Clone, Debug)]
pub struct ChunkedWord {
    /// `log_height` = log2 of the size minus `log_blowup`.
    pub geo: ChunkGeometry,
    /// Chunk `(u, c)` is `chunks[u K + c]`, B values.
    pub chunks: Vec<Vec<EF>>,
}

impl ChunkedWord {
    /// A zero word of geometry `geo` (what DEEP chunks are added into).
    pub fn zero(geo: ChunkGeometry) -> ChunkedWord {
        ChunkedWord {
            geo,
            chunks: vec![vec![EF::ZERO; geo.chunk_rows()]; geo.cosets() * geo.chunks()],
        }
    }

    pub fn log_size(&self) -> usize {
        self.geo.log_height + self.geo.log_blowup
    }

    fn fits(&self) -> bool {
        let g = &self.geo;
        self.chunks.len() == g.cosets() * g.chunks()
            && self.chunks.iter().all(|c| c.len() == g.chunk_rows())
    }

    /// The word in the in-memory prover's order (bit-reversed).
    pub fn to_bit_reversed(&self) -> Vec<EF> {
        let g = &self.geo;
        let mut out = vec![EF::ZERO; 1 << self.log_size()];
        for (at, chunk) in self.chunks.iter().enumerate() {
            let (u, c) = (at / g.chunks(), at % g.chunks());
            for (i, v) in chunk.iter().enumerate() {
                out[g.lde_row(u, c, i)] = *v;
            }
        }
        out
    }

    /// The geometry of the pairs (and of the folded word): K/2 chunks.
    fn half(&self) -> ChunkGeometry {
        half(&self.geo)
    }

    /// The pair rows of chunk `c < K/2` of coset `u` ([`pair_rows`]).
    fn pair_rows(&self, u: usize, c: usize) -> Vec<F> {
        let k = self.geo.chunks();
        pair_rows(&self.chunks[u * k + c], &self.chunks[u * k + c + k / 2])
    }

    /// The layer's Merkle tree (leaves: the pairs), as [`super::prove`] commits it.
    fn tree(&self) -> ChunkTree {
        let half = self.half();
        let mut level = LevelBuilder::new(half);
        for u in 0..half.cosets() {
            let rows: Vec<Vec<F>> = (0..half.chunks()).map(|c| self.pair_rows(u, c)).collect();
            let views: Vec<_> = rows.iter().map(|r| RowMajorMatrixView::new(r, 4)).collect();
            level.add_slab(u, 0, &views);
        }
        level.finish().expect("every node hashed")
    }

    /// One fold by `beta` at fold level `level`.
    fn fold(&self, beta: EF, level: usize) -> ChunkedWord {
        let g = &self.geo;
        let k = g.chunks();
        let half = self.half();
        let chunks = (0..half.cosets() * half.chunks())
            .into_par_iter()
            .map(|at| {
                let (u, c) = (at / half.chunks(), at % half.chunks());
                let (lo, hi) = (&self.chunks[u * k + c], &self.chunks[u * k + c + k / 2]);
                fold_chunk(g, level, beta, u, c, lo, hi)
            })
            .collect();
        ChunkedWord { geo: half, chunks }
    }
}

/// The geometry of a chunked layer's pairs and of its fold: `K/2` chunks.
pub fn half(geo: &ChunkGeometry) -> ChunkGeometry {
    ChunkGeometry {
        log_height: geo.log_height - 1,
        ..*geo
    }
}

/// The tree rows of a chunked layer: `[f(x), f(-x)]` (4 base values a row) for the rows of
/// chunk `(u, c)`, `c < K/2` (`lo`), and of chunk `(u, c + K/2)` (`hi`), the same rows of each.
pub fn pair_rows(lo: &[EF], hi: &[EF]) -> Vec<F> {
    lo.iter()
        .zip(hi)
        .flat_map(|(a, b)| {
            let [a0, a1] = coords(*a);
            let [b0, b1] = coords(*b);
            [a0, a1, b0, b1]
        })
        .collect()
}

/// Chunk `(u, c)` of the fold by `beta` of a layer of geometry `geo` at fold level `level`:
/// the fold of its chunks `(u, c)` (`lo`) and `(u, c + K/2)` (`hi`).
pub fn fold_chunk(
    geo: &ChunkGeometry,
    level: usize,
    beta: EF,
    u: usize,
    c: usize,
    lo: &[EF],
    hi: &[EF],
) -> Vec<EF> {
    let (b, l) = (geo.chunk_rows(), geo.cosets());
    let log_s = geo.log_height + geo.log_blowup;
    let shift = lde_shift().exp_power_of_2(level);
    let w = F::two_adic_generator(log_s);
    // x = shift w_S^t, t = u + L (c B + i): one step of i multiplies x by w^L.
    let step = w.exp_u64(l as u64);
    let x0 = shift * w.exp_u64((u + l * c * b) as u64);
    let xs: Vec<F> = step.powers().take(b).map(|p| x0 * p).collect();
    let inv = crate::field::batch_inverse(&xs).expect("coset points are nonzero");
    lo.iter()
        .zip(hi)
        .zip(inv)
        .map(|((a, b), ix)| fold_pair(&[*a, *b], beta, ix))
        .collect()
}

/// A smaller DEEP codeword's chunk joining the folded layer's (`next += beta^2 word`).
pub fn join_chunk(next: &mut [EF], word: &[EF], beta: EF) {
    let b2 = beta.square();
    next.iter_mut().zip(word).for_each(|(a, v)| *a += b2 * *v);
}

/// A chunked layer's batch opening as FRI's ([`chunk_tree::open`] of its pair rows).
pub fn layer_opening(opening: crate::proof::TreeOpening) -> FriLayerOpening {
    FriLayerOpening {
        pairs: opening
            .rows
            .iter()
            .map(|r| [ext(r[0], r[1]), ext(r[2], r[3])])
            .collect(),
        siblings: opening.siblings,
    }
}

/// The commit phase from a one-chunk layer on (`cur`, `level` folds done), in memory, with the
/// smaller codewords still to join: the in-memory layers, their roots and the final value.
pub fn finish_in_memory(
    cur: &ChunkedWord,
    rest: BTreeMap<usize, ChunkedWord>,
    level: usize,
    t: &mut Transcript,
    log_blowup: usize,
) -> FriProver {
    let rest: BTreeMap<usize, Vec<EF>> = rest
        .into_iter()
        .map(|(l, w)| (l, w.to_bit_reversed()))
        .collect();
    let layer = Layer {
        log_s: cur.log_size(),
        cur: cur.to_bit_reversed(),
        level,
    };
    let (mut layers, mut roots) = (Vec::new(), Vec::new());
    let final_value = fold_in_memory(layer, rest, t, log_blowup, &mut layers, &mut roots);
    FriProver {
        layers,
        roots,
        final_value,
    }
}

/// The prover's FRI layers when the first were folded in chunks.
pub struct ChunkedFri {
    /// The layers committed in chunks, with their trees.
    pub chunked: Vec<(ChunkedWord, ChunkTree)>,
    /// The rest, committed in memory (their roots follow the chunked layers' in `roots`).
    pub memory: FriProver,
    pub roots: Vec<Digest>,
    pub final_value: EF,
}

/// [`super::prove`] from chunked DEEP codewords (keyed by log2 size): folds in chunks while a
/// layer has two chunks or more, then in memory. A smaller codeword joins when the folded layer
/// reaches its size, and must then have the layer's geometry (true for instances of at least
/// one chunk's height; shorter ones join in memory).
pub fn prove_chunked(
    mut codewords: BTreeMap<usize, ChunkedWord>,
    t: &mut Transcript,
    log_blowup: usize,
) -> Result<ChunkedFri, ProveError> {
    let shape = |msg: &str| ProveError::Shape(format!("FRI: {msg}"));
    if codewords.iter().any(|(l, w)| {
        !w.fits() || w.log_size() != *l || w.geo.log_blowup != log_blowup || *l <= log_blowup
    }) {
        return Err(shape("DEEP codeword shapes do not match their keys"));
    }
    let Some((_, mut cur)) = codewords.pop_last() else {
        return Err(shape("no DEEP codeword"));
    };
    let (mut chunked, mut roots, mut level) = (Vec::new(), Vec::new(), 0);
    while cur.geo.chunks() >= 2 {
        let tree = cur.tree();
        let beta = crate::protocol::observe_fri_layer(t, &tree.root);
        roots.push(tree.root);
        let mut next = cur.fold(beta, level);
        level += 1;
        if codewords
            .last_key_value()
            .is_some_and(|(&l, _)| l == next.log_size())
        {
            let d = codewords.pop_last().expect("just looked").1;
            if d.geo != next.geo {
                return Err(shape("a DEEP codeword joins with another chunk size"));
            }
            next.chunks
                .par_iter_mut()
                .zip(d.chunks.par_iter())
                .for_each(|(a, v)| join_chunk(a, v, beta));
        }
        chunked.push((cur, tree));
        cur = next;
    }
    let memory = finish_in_memory(&cur, codewords, level, t, log_blowup);
    roots.extend(&memory.roots);
    Ok(ChunkedFri {
        chunked,
        final_value: memory.final_value,
        memory,
        roots,
    })
}

impl ChunkedFri {
    /// [`FriProver::open`]: every layer's pairs at the query positions, batch-opened; the
    /// chunked layers' pairs read from their chunks and checked against their trees.
    pub fn open(&self, positions: &[usize]) -> Result<Vec<FriLayerOpening>, String> {
        let mut out = Vec::with_capacity(self.roots.len());
        for (l, (word, tree)) in self.chunked.iter().enumerate() {
            let idx = crate::protocol::fri_pair_indices(positions, l);
            let half = word.half();
            let k = word.geo.chunks();
            let opening = chunk_tree::open(&half, 4, tree, &idx, |u, c, i| {
                let at = u * k + c;
                Ok(pair_rows(
                    &word.chunks[at][i..=i],
                    &word.chunks[at + k / 2][i..=i],
                ))
            })?;
            out.push(layer_opening(opening));
        }
        // The in-memory layers, at their place in the fold.
        let first = self.chunked.len();
        let shifted: Vec<usize> = positions.iter().map(|&q| q >> first).collect();
        out.extend(self.memory.open(&shifted));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(geo: ChunkGeometry, seed: u64) -> ChunkedWord {
        let mut x = seed;
        let mut next = || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            F::from_u64(x >> 1)
        };
        let chunks = (0..geo.cosets() * geo.chunks())
            .map(|_| (0..geo.chunk_rows()).map(|_| ext(next(), next())).collect())
            .collect();
        ChunkedWord { geo, chunks }
    }

    /// Roots, final value and openings equal the in-memory FRI's, with codewords joining in
    /// the chunked phase and in the in-memory phase.
    #[test]
    fn chunked_fri_is_the_in_memory_fri() {
        for (b, l) in [(3, 1), (2, 2), (9, 1)] {
            let top = word(ChunkGeometry::new(8, b, l), 1);
            let mid = word(ChunkGeometry::new(6, b, l), 2);
            let low = word(ChunkGeometry::new(2, b, l), 3);
            let chunked: BTreeMap<usize, ChunkedWord> = [top, mid, low]
                .into_iter()
                .map(|w| (w.log_size(), w))
                .collect();
            let memory: BTreeMap<usize, Vec<EF>> = chunked
                .iter()
                .map(|(k, w)| (*k, w.to_bit_reversed()))
                .collect();
            let (mut t1, mut t2) = (Transcript::new(b"fri test"), Transcript::new(b"fri test"));
            let reference = super::super::prove(memory, &mut t1, l).unwrap();
            let fri = prove_chunked(chunked, &mut t2, l).unwrap();
            assert_eq!(fri.roots, reference.roots, "b={b} l={l}");
            assert_eq!(fri.final_value, reference.final_value);
            assert_eq!(t1.challenge_ext(b"after"), t2.challenge_ext(b"after"));
            assert_eq!(
                fri.chunked.is_empty(),
                b >= 8,
                "chunked layers while K >= 2"
            );
            let positions = [0, 5, 77, 300, (1 << (8 + l)) - 1];
            assert_eq!(fri.open(&positions).unwrap(), reference.open(&positions));
        }
    }

    #[test]
    fn mismatched_words_are_an_error() {
        let top = word(ChunkGeometry::new(6, 2, 1), 1);
        let mut bad = top.clone();
        bad.chunks.pop();
        let mut t = Transcript::new(b"fri test");
        assert!(prove_chunked([(7, bad)].into(), &mut t, 1).is_err());
        assert!(prove_chunked([(8, top)].into(), &mut t, 1).is_err());
        assert!(prove_chunked(BTreeMap::new(), &mut t, 1).is_err());
    }
}
