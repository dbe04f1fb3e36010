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
//! - **Leaves.** A committed layer of `2^a`-value leaves: the in-memory leaf `j` holds the
//!   values at bit-reversed indices `j 2^a + r`, `r < 2^a`, which are the natural indices
//!   `t0 + rev_a(r) S/2^a` with `t0 = rev_(log S - a)(j)`. Adding `S/2^a = L B K/2^a` to a
//!   natural index moves `K/2^a` chunks on, so leaf `j` is row `i` of chunks `(u, c + rev_a(r)
//!   K/2^a)` for `c < K/2^a`, and `j` is [`ChunkGeometry::lde_row`] of the geometry of `K/2^a`
//!   chunks at `(u, c, i)` (needs `K >= 2^a`). For `a = 1` that is the pair `[f(x), f(-x)]`.
//! - **Tree.** So a layer's tree is a [`crate::chunk_tree`] over those leaf rows (`2^(a+1)`
//!   base values), hashed slab by slab.
//!
//! Once the next layer to commit has fewer chunks than values in a leaf, it is handed to the
//! in-memory loop, bit-reversed, with the smaller codewords still to join.

use std::collections::BTreeMap;

use p3_matrix::dense::RowMajorMatrixView;
use rayon::prelude::*;

use super::{FriProver, Layer, fold_in_memory, fold_pair};
use crate::chunk_tree::{self, ChunkTree, LevelBuilder};
use crate::domain::lde_shift;
use crate::field::{EF, F, PrimeCharacteristicRing, TwoAdicField, coords, ext, reverse_bits};
use crate::merkle::Digest;
use crate::ntt::ChunkGeometry;
use crate::proof::FriLayerOpening;
use crate::protocol::{self, FriLayer};
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

    /// The layer's Merkle tree with `2^log_arity`-value leaves, as [`super::prove`] commits it.
    fn tree(&self, log_arity: usize) -> ChunkTree {
        let leaves = shrink(&self.geo, log_arity);
        let mut level = LevelBuilder::new(leaves);
        for u in 0..leaves.cosets() {
            let rows: Vec<Vec<F>> = (0..leaves.chunks())
                .map(|c| {
                    let chunks: Vec<&[EF]> = leaf_chunks(&self.geo, log_arity, u, c)
                        .map(|at| &self.chunks[at][..])
                        .collect();
                    leaf_rows(&chunks)
                })
                .collect();
            let width = 2 << log_arity;
            let views: Vec<_> = rows
                .iter()
                .map(|r| RowMajorMatrixView::new(r, width))
                .collect();
            level.add_slab(u, 0, &views);
        }
        level.finish().expect("every node hashed")
    }

    /// One fold by `beta` at fold level `level`.
    fn fold(&self, beta: EF, level: usize) -> ChunkedWord {
        let g = &self.geo;
        let k = g.chunks();
        let half = half(g);
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

/// The geometry of a chunked layer's fold: `K/2` chunks.
pub fn half(geo: &ChunkGeometry) -> ChunkGeometry {
    shrink(geo, 1)
}

/// The geometry of a chunked layer's `2^log_arity`-value leaves: `K/2^log_arity` chunks.
pub fn shrink(geo: &ChunkGeometry, log_arity: usize) -> ChunkGeometry {
    ChunkGeometry {
        log_height: geo.log_height - log_arity,
        ..*geo
    }
}

/// The chunks (indices `u K + c'`) that hold leaf row `(u, c)`'s values, in leaf order: chunk
/// `c + rev_a(r) K/2^a` for `r < 2^a` (`c < K/2^a`; module docs).
pub fn leaf_chunks(
    geo: &ChunkGeometry,
    log_arity: usize,
    u: usize,
    c: usize,
) -> impl Iterator<Item = usize> {
    let k = geo.chunks();
    let stride = k >> log_arity;
    (0..1usize << log_arity).map(move |r| u * k + c + reverse_bits(r, log_arity) * stride)
}

/// The tree rows of a chunked layer: row `i` is `[chunks[0][i], chunks[1][i], ...]` as base
/// coordinates (`2^(a+1)` values), `chunks` the leaf's chunks in [`leaf_chunks`] order.
pub fn leaf_rows(chunks: &[&[EF]]) -> Vec<F> {
    let rows = chunks.first().map_or(0, |c| c.len());
    let mut out = Vec::with_capacity(rows * 2 * chunks.len());
    for i in 0..rows {
        for c in chunks {
            out.extend(coords(c[i]));
        }
    }
    out
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

/// A chunked layer's batch opening as FRI's ([`chunk_tree::open`] of its leaf rows).
pub fn layer_opening(opening: crate::proof::TreeOpening) -> FriLayerOpening {
    FriLayerOpening {
        values: opening
            .rows
            .iter()
            .flat_map(|r| r.chunks_exact(2).map(|p| ext(p[0], p[1])))
            .collect(),
        siblings: opening.siblings,
    }
}

/// The commit phase from layer `cur` on (`level` folds done), in memory, with the smaller
/// codewords still to join and `schedule` the layers still to commit: the in-memory layers,
/// their roots and the final value.
pub fn finish_in_memory(
    cur: &ChunkedWord,
    rest: BTreeMap<usize, ChunkedWord>,
    level: usize,
    schedule: &[FriLayer],
    t: &mut Transcript,
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
    let final_value = fold_in_memory(layer, rest, schedule, t, &mut layers, &mut roots);
    FriProver {
        layers,
        roots,
        final_value,
    }
}

/// A layer committed in chunks: its word and tree.
pub struct ChunkedLayer {
    pub layer: FriLayer,
    pub word: ChunkedWord,
    pub tree: ChunkTree,
}

/// The prover's FRI layers when the first were folded in chunks.
pub struct ChunkedFri {
    /// The layers committed in chunks.
    pub chunked: Vec<ChunkedLayer>,
    /// The rest, committed in memory (their roots follow the chunked layers' in `roots`).
    pub memory: FriProver,
    pub roots: Vec<Digest>,
    pub final_value: EF,
}

/// [`super::prove`] from chunked DEEP codewords (keyed by log2 size): folds in chunks while the
/// next layer to commit has at least as many chunks as values in a leaf, then in memory (at
/// most `2^(MAX_FRI_LOG_ARITY - 1)` chunks). A smaller codeword joins when the folded layer reaches
/// its size, and must then have the layer's geometry (true for instances of at least one
/// chunk's height; shorter ones join in memory).
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
    let schedule = protocol::fri_layers(codewords.keys().copied(), log_blowup);
    let Some((_, mut cur)) = codewords.pop_last() else {
        return Err(shape("no DEEP codeword"));
    };
    let (mut chunked, mut roots, mut level) = (Vec::new(), Vec::new(), 0);
    let mut todo = &schedule[..];
    while let Some((&fl, rest)) = todo.split_first() {
        if cur.geo.chunks() < 1 << fl.log_arity {
            break;
        }
        let tree = cur.tree(fl.log_arity);
        let betas = protocol::observe_fri_layer(t, &tree.root, fl);
        roots.push(tree.root);
        let mut next = cur.fold(betas[0], level);
        for (k, beta) in betas.iter().enumerate().skip(1) {
            next = next.fold(*beta, level + k);
        }
        level += fl.log_arity;
        if codewords
            .last_key_value()
            .is_some_and(|(&l, _)| l == next.log_size())
        {
            let d = codewords.pop_last().expect("just looked").1;
            if d.geo != next.geo {
                return Err(shape("a DEEP codeword joins with another chunk size"));
            }
            let last = betas[fl.log_arity - 1];
            next.chunks
                .par_iter_mut()
                .zip(d.chunks.par_iter())
                .for_each(|(a, v)| join_chunk(a, v, last));
        }
        chunked.push(ChunkedLayer {
            layer: fl,
            word: cur,
            tree,
        });
        cur = next;
        todo = rest;
    }
    let memory = finish_in_memory(&cur, codewords, level, todo, t);
    roots.extend(&memory.roots);
    Ok(ChunkedFri {
        chunked,
        final_value: memory.final_value,
        memory,
        roots,
    })
}

impl ChunkedFri {
    /// [`FriProver::open`]: every layer's leaves at the query positions, batch-opened; the
    /// chunked layers' leaves read from their chunks and checked against their trees.
    pub fn open(&self, positions: &[usize]) -> Result<Vec<FriLayerOpening>, String> {
        let mut out = Vec::with_capacity(self.roots.len());
        for ChunkedLayer { layer, word, tree } in &self.chunked {
            let idx = protocol::fri_group_indices(positions, *layer);
            let a = layer.log_arity;
            let leaves = shrink(&word.geo, a);
            let opening = chunk_tree::open(&leaves, 2 << a, tree, &idx, |u, c, i| {
                let chunks: Vec<&[EF]> = leaf_chunks(&word.geo, a, u, c)
                    .map(|at| &word.chunks[at][i..=i])
                    .collect();
                Ok(leaf_rows(&chunks))
            })?;
            out.push(layer_opening(opening));
        }
        out.extend(self.memory.open(positions));
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
        // Chunked layers of 4 and 8 values a leaf; a hand-over with two chunks left (b = 5).
        for (b, l) in [(3, 1), (2, 2), (5, 1), (4, 2), (9, 1)] {
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
