//! The Merkle tree of an LDE kept in natural coset chunks ([`crate::ntt`]), built a slab at a
//! time and opened from one of its levels.
//!
//! It is the tree [`MerkleTree::from_rows`] builds over the bit-reversed LDE: same root, same
//! batch openings, so a verifier cannot tell how it was made. With `K = 2^k` chunks, leaf
//! `node K + j` of that tree is row `i` of LDE chunk `(u, rev_k(j))`, where
//! `node = rev_l(u) B + rev_b(i)` ([`ChunkGeometry::lde_row`]). So the `K` leaves under a node
//! of level `k` are row `i` of every chunk of coset `u`, and that level (`L B` nodes) is
//! hashed from the slabs step 3 of the four-step produces, one node per slab row; the tree
//! above it is small enough to build in memory. The level is also what an out-of-core prover
//! keeps: opening a row reads the `K` rows under its node again and checks them against it
//! ([`open`]).

use p3_matrix::dense::RowMajorMatrixView;
use rayon::prelude::*;

use crate::field::{F, reverse_bits};
use crate::merkle::{Digest, MerkleTree, PartialTree, hash_node, hash_row_into};
use crate::ntt::ChunkGeometry;
use crate::pass_tree::{JoinNodes, PassTree};
use crate::proof::TreeOpening;

/// The level-`k` nodes of an LDE's tree, filled slab by slab.
pub struct LevelBuilder {
    geo: ChunkGeometry,
    nodes: Vec<Digest>,
    filled: Vec<bool>,
}

/// A finished [`LevelBuilder`]: the kept level and the root above it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkTree {
    /// Level `k`, by node index (`L B` digests).
    pub level: Vec<Digest>,
    pub root: Digest,
}

/// The pass tree over chunk trees (each an instance's LDE height and tree, in instance
/// order): `None` without members.
pub fn join_trees<'a>(
    log_join_lde: usize,
    members: impl IntoIterator<Item = (usize, &'a ChunkTree)>,
) -> Result<Option<PassTree>, String> {
    let nodes = members
        .into_iter()
        .map(|(log_lde, tree)| tree.join_nodes(log_lde, log_join_lde))
        .collect::<Result<Vec<_>, _>>()?;
    JoinNodes::join(log_join_lde, &nodes)
}

impl ChunkTree {
    /// What joins a pass tree ([`JoinNodes`]) of this tree over an LDE of `2^log_lde` rows,
    /// from its kept level.
    pub fn join_nodes(&self, log_lde: usize, log_join_lde: usize) -> Result<JoinNodes, String> {
        let kept = log_lde
            .checked_sub(self.level.len().trailing_zeros() as usize)
            .filter(|_| self.level.len().is_power_of_two())
            .ok_or_else(|| format!("{} kept nodes for 2^{log_lde} rows", self.level.len()))?;
        Ok(JoinNodes::from_level(
            log_lde,
            kept,
            self.level.clone(),
            log_join_lde,
        ))
    }
}

impl LevelBuilder {
    pub fn new(geo: ChunkGeometry) -> LevelBuilder {
        let n = geo.cosets() * geo.chunk_rows();
        LevelBuilder {
            geo,
            nodes: vec![[0; 32]; n],
            filled: vec![false; n],
        }
    }

    /// Hashes rows `at..at + S` of every LDE chunk of `coset` (`slabs[c]` is chunk `c`'s, all
    /// of one shape) into their `S` level nodes.
    pub fn add_slab(&mut self, coset: usize, at: usize, slabs: &[RowMajorMatrixView<'_, F>]) {
        let geo = self.geo;
        assert_eq!(slabs.len(), geo.chunks(), "one slab per chunk");
        let width = slabs[0].width;
        let rows = slabs[0].values.len() / width;
        assert!(at + rows <= geo.chunk_rows(), "slab inside the chunk");
        assert!(
            slabs
                .iter()
                .all(|s| s.width == width && s.values.len() == rows * width),
            "slabs of one shape"
        );
        let k = geo.chunks().trailing_zeros() as usize;
        let digests: Vec<Digest> = (0..rows)
            .into_par_iter()
            .map_init(
                || Vec::with_capacity(width * 8),
                |buf, s| {
                    let mut layer: Vec<Digest> = (0..geo.chunks())
                        .map(|j| {
                            let c = reverse_bits(j, k);
                            hash_row_into(buf, &slabs[c].values[s * width..(s + 1) * width])
                        })
                        .collect();
                    while layer.len() > 1 {
                        layer = layer
                            .chunks_exact(2)
                            .map(|p| hash_node(&p[0], &p[1]))
                            .collect();
                    }
                    layer[0]
                },
            )
            .collect();
        for (s, d) in digests.into_iter().enumerate() {
            let node = node_of(&geo, coset, at + s);
            self.nodes[node] = d;
            self.filled[node] = true;
        }
    }

    /// The level and root, once every node has been hashed.
    pub fn finish(self) -> Result<ChunkTree, String> {
        if let Some(missing) = self.filled.iter().position(|f| !f) {
            return Err(format!("level node {missing} was never hashed"));
        }
        let root = MerkleTree::from_leaves(self.nodes.clone()).root();
        Ok(ChunkTree {
            level: self.nodes,
            root,
        })
    }
}

/// The level-`k` node above row `row` of every chunk of coset `coset`.
fn node_of(geo: &ChunkGeometry, coset: usize, row: usize) -> usize {
    geo.lde_row(coset, 0, row) >> geo.chunks().trailing_zeros()
}

/// Which chunk and row of the natural coset layout hold row `r` of the bit-reversed LDE: the
/// inverse of [`ChunkGeometry::lde_row`], as (coset, chunk, row).
pub fn position(geo: &ChunkGeometry, r: usize) -> (usize, usize, usize) {
    let k = geo.chunks().trailing_zeros() as usize;
    let (b, l) = (geo.log_chunk, geo.log_blowup);
    let chunk = reverse_bits(r & (geo.chunks() - 1), k);
    let row = reverse_bits((r >> k) & (geo.chunk_rows() - 1), b);
    let coset = reverse_bits(r >> (k + b), l);
    (coset, chunk, row)
}

/// The batch opening of `rows` (sorted, distinct rows of the bit-reversed LDE) from the kept
/// level: `read(coset, chunk, row)` returns one LDE row (`width` values) from wherever the
/// chunks live. Every node's rows are hashed again and checked against the level, the level
/// against `root`, so a corrupted chunk is an error here, never a bad opening.
pub fn open(
    geo: &ChunkGeometry,
    width: usize,
    tree: &ChunkTree,
    rows: &[usize],
    mut read: impl FnMut(usize, usize, usize) -> Result<Vec<F>, String>,
) -> Result<TreeOpening, String> {
    let k = geo.chunks().trailing_zeros() as usize;
    let leaves = geo.cosets() << geo.log_height;
    let mut opened = Vec::with_capacity(rows.len());
    let partial = PartialTree::rebuild_by(leaves, width, &tree.level, &tree.root, rows, |node| {
        let mut values = Vec::with_capacity(width << k);
        for j in 0..geo.chunks() {
            let (u, c, i) = position(geo, (node << k) + j);
            let row = read(u, c, i)?;
            if row.len() != width {
                return Err(format!(
                    "row {i} of chunk ({u}, {c}) has {} values",
                    row.len()
                ));
            }
            values.extend_from_slice(&row);
        }
        Ok(values)
    })?;
    for &r in rows {
        let (u, c, i) = position(geo, r);
        opened.push(read(u, c, i)?);
    }
    Ok(TreeOpening {
        rows: opened,
        siblings: partial.batch_siblings(rows),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lde;
    use crate::field::PrimeCharacteristicRing;
    use crate::ntt::lde_chunked;
    use crate::ntt::tests::trace as random;
    use p3_matrix::dense::RowMajorMatrix;

    #[test]
    fn position_inverts_lde_row() {
        for (n, b, l) in [(6, 3, 1), (6, 2, 2), (5, 5, 1), (4, 1, 3)] {
            let geo = ChunkGeometry::new(n, b, l);
            for r in 0..(1 << (n + l)) {
                let (u, c, i) = position(&geo, r);
                assert_eq!(geo.lde_row(u, c, i), r);
            }
        }
    }

    /// The tree hashed slab by slab from natural coset chunks is the in-memory LDE's tree, and
    /// opening from its level gives that tree's bytes; a changed row is refused.
    #[test]
    fn slabs_give_the_in_memory_tree_and_openings() {
        let width = 3;
        for (n, b, l) in [(7, 4, 1), (6, 2, 1), (6, 6, 2), (5, 1, 1)] {
            let geo = ChunkGeometry::new(n, b, l);
            let trace = random(1 << n, width, n as u64 * 31 + b as u64);
            let chunks: Vec<RowMajorMatrix<F>> = trace
                .values
                .chunks(geo.chunk_rows() * width)
                .map(|v| RowMajorMatrix::new(v.to_vec(), width))
                .collect();
            let ldes = lde_chunked(&geo, &chunks);
            let full = lde(trace, l);
            let reference = MerkleTree::from_rows(&full.values, width);

            let mut builder = LevelBuilder::new(geo);
            let slab = geo.slab_rows().max(2).min(geo.chunk_rows());
            for (u, coset) in ldes.iter().enumerate() {
                for at in (0..geo.chunk_rows()).step_by(slab) {
                    let views: Vec<_> = coset
                        .iter()
                        .map(|m| {
                            RowMajorMatrixView::new(
                                &m.values[at * width..(at + slab) * width],
                                width,
                            )
                        })
                        .collect();
                    builder.add_slab(u, at, &views);
                }
            }
            let tree = builder.finish().unwrap();
            assert_eq!(tree.root, reference.root(), "n={n} b={b} l={l}");

            let rows = [0, 3, 4, (1 << (n + l)) - 1];
            let read = |u: usize, c: usize, i: usize| -> Result<Vec<F>, String> {
                Ok(ldes[u][c].values[i * width..(i + 1) * width].to_vec())
            };
            let opening = open(&geo, width, &tree, &rows, read).unwrap();
            let expected = crate::prover::open_rows(full.as_view(), &reference, &rows);
            assert_eq!(opening, expected);

            let (bu, bc, bi) = position(&geo, 4);
            let tampered = |u: usize, c: usize, i: usize| -> Result<Vec<F>, String> {
                let mut row = read(u, c, i)?;
                if (u, c, i) == (bu, bc, bi) {
                    row[1] += F::ONE;
                }
                Ok(row)
            };
            assert!(open(&geo, width, &tree, &rows, tampered).is_err());
        }
    }

    #[test]
    fn an_unfinished_level_is_an_error() {
        let geo = ChunkGeometry::new(4, 2, 1);
        assert!(LevelBuilder::new(geo).finish().is_err());
    }
}
