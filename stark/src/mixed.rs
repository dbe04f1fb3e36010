//! One Merkle commitment to matrices of several heights (the mixed-height scheme of Plonky3's
//! MMCS, with this crate's BLAKE3 hashes): what lets a proof open every table of a pass with one
//! authentication path per query instead of one per table.
//!
//! # The tree
//! The matrices' heights are powers of two; the tallest is `2^d` rows and sets the depth `d`.
//! - Leaf `r` hashes row `r` of every matrix of height `2^d`, concatenated in the order the
//!   matrices are given, as one row ([`crate::merkle::hash_row`] of the concatenation). With
//!   one matrix, the tree is [`crate::merkle::MerkleTree::from_rows`]'s.
//! - Layer `h` (`2^(d-h)` nodes) is hashed from layer `h - 1` by [`hash_node`]; where matrices
//!   of height `2^(d-h)` exist, node `i` is then `hash_inject(node, leaf)` with `leaf` the hash
//!   of their rows `i`, concatenated. Injection has its own key, distinct from the leaf and node
//!   keys, so an injected node is never mistaken for a plain one.
//!
//! The heights and widths are not in the tree: the verifier takes them from the proof's shapes,
//! which the transcript has absorbed before the root.
//!
//! # Openings
//! A query at position `q` of the tallest domain opens row `q >> (d - log2 height)` of each
//! matrix: the row of the shorter domain that the query's point lands on when the tallest
//! domain is squared down to that height, as [`crate::protocol::query_row`] already picks for
//! today's separate trees. A batch opening of several queries sends each distinct row
//! once, in increasing order per matrix, and the siblings that the opened nodes do not supply,
//! bottom-up and in increasing index within a layer, so paths that meet share their upper
//! nodes ([`crate::merkle::MerkleTree::batch_siblings`]' order).

use p3_matrix::Matrix;
use p3_matrix::dense::RowMajorMatrixView;

use crate::field::{F, canonical};
use crate::merkle::{Digest, LEAF_KEY, batch_siblings_by, hash_layer_up, hash_node};
use crate::protocol::query_rows;

const INJECT_KEY: &[u8; 32] = b"stark-pipe/v1/merkle/inject-row!";

/// The leaf digest of rows of several matrices, concatenated.
fn hash_rows<'a>(rows: impl IntoIterator<Item = &'a [F]>) -> Digest {
    let mut hasher = blake3::Hasher::new_keyed(LEAF_KEY);
    for row in rows {
        for v in row {
            hasher.update(&canonical(*v).to_le_bytes());
        }
    }
    *hasher.finalize().as_bytes()
}

/// A node with the rows of the matrices of its layer's height injected.
fn hash_inject(node: &Digest, rows: &Digest) -> Digest {
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(node);
    buf[32..].copy_from_slice(rows);
    *blake3::keyed_hash(INJECT_KEY, &buf).as_bytes()
}

/// The shape of one committed matrix, as the verifier knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatrixDims {
    pub log_height: usize,
    pub width: usize,
}

/// Why a set of matrices cannot be committed to together.
fn check_dims(dims: &[MatrixDims]) -> Result<usize, String> {
    if dims.is_empty() {
        return Err("no matrices to commit to".into());
    }
    if let Some(i) = dims.iter().position(|d| d.width == 0) {
        return Err(format!("matrix {i} has no columns"));
    }
    let depth = dims.iter().map(|d| d.log_height).max().unwrap_or(0);
    if depth >= usize::BITS as usize - 1 {
        return Err(format!("a height of 2^{depth} rows"));
    }
    Ok(depth)
}

/// The matrices (by index) whose rows enter layer `layer` of a tree of depth `depth`.
fn at_layer(dims: &[MatrixDims], depth: usize, layer: usize) -> Vec<usize> {
    (0..dims.len())
        .filter(|&m| dims[m].log_height + layer == depth)
        .collect()
}

/// A mixed-height tree built in memory: the reference an out-of-core builder must match.
#[derive(Clone, Debug)]
pub struct MixedTree {
    dims: Vec<MatrixDims>,
    /// `layers[0]` are the leaves, the last layer is the root, every layer with its injections.
    layers: Vec<Vec<Digest>>,
}

impl MixedTree {
    /// Commits to `matrices`, each of a power-of-two height, in this order.
    pub fn new(matrices: &[RowMajorMatrixView<'_, F>]) -> Result<MixedTree, String> {
        let mut dims = Vec::with_capacity(matrices.len());
        for (i, m) in matrices.iter().enumerate() {
            let h = m.height();
            if !h.is_power_of_two() {
                return Err(format!("matrix {i} has {h} rows, not a power of two"));
            }
            dims.push(MatrixDims {
                log_height: h.trailing_zeros() as usize,
                width: m.width(),
            });
        }
        let depth = check_dims(&dims)?;
        let rows_of = |ms: &[usize], i: usize| {
            hash_rows(
                ms.iter()
                    .map(|&m| &matrices[m].values[i * dims[m].width..(i + 1) * dims[m].width]),
            )
        };
        let tallest = at_layer(&dims, depth, 0);
        let mut layers = vec![(0..1usize << depth).map(|i| rows_of(&tallest, i)).collect()];
        for layer in 1..=depth {
            let prev: &Vec<Digest> = layers.last().expect("the leaves");
            let injected = at_layer(&dims, depth, layer);
            let next = prev
                .chunks_exact(2)
                .enumerate()
                .map(|(i, pair)| {
                    let node = hash_node(&pair[0], &pair[1]);
                    if injected.is_empty() {
                        node
                    } else {
                        hash_inject(&node, &rows_of(&injected, i))
                    }
                })
                .collect();
            layers.push(next);
        }
        Ok(MixedTree { dims, layers })
    }

    pub fn root(&self) -> Digest {
        self.layers.last().expect("a root")[0]
    }

    /// log2 of the tallest matrix's height.
    pub fn depth(&self) -> usize {
        self.layers.len() - 1
    }

    pub fn dims(&self) -> &[MatrixDims] {
        &self.dims
    }

    /// Opens `matrices` (those the tree was built from) at the queries `indices` of the tallest
    /// domain (sorted, distinct, below `2^depth`).
    pub fn open(
        &self,
        matrices: &[RowMajorMatrixView<'_, F>],
        indices: &[usize],
    ) -> Result<MixedOpening, String> {
        let depth = self.depth();
        check_indices(indices, depth)?;
        if matrices.len() != self.dims.len() {
            return Err(format!(
                "{} matrices for a tree of {}",
                matrices.len(),
                self.dims.len()
            ));
        }
        let rows = matrices
            .iter()
            .zip(&self.dims)
            .map(|(m, d)| {
                query_rows(indices, depth, d.log_height)
                    .into_iter()
                    .map(|r| m.values[r * d.width..(r + 1) * d.width].to_vec())
                    .collect()
            })
            .collect();
        let siblings = batch_siblings_by(depth, indices, |layer, i| self.layers[layer][i]);
        Ok(MixedOpening { rows, siblings })
    }
}

fn check_indices(indices: &[usize], depth: usize) -> Result<(), String> {
    if indices.is_empty() {
        return Err("no queries to open".into());
    }
    if indices.windows(2).any(|w| w[0] >= w[1]) {
        return Err("query positions are not strictly increasing".into());
    }
    if indices[indices.len() - 1] >> depth != 0 {
        return Err(format!(
            "query position {} is outside 2^{depth} rows",
            indices[indices.len() - 1]
        ));
    }
    Ok(())
}

/// A batch opening of a [`MixedTree`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MixedOpening {
    /// Per matrix, its distinct opened rows in increasing order.
    pub rows: Vec<Vec<Vec<F>>>,
    /// The siblings the opened nodes do not supply, bottom-up, increasing within a layer.
    pub siblings: Vec<Digest>,
}

/// Checks `opening` against `root` for matrices of shapes `dims` (in commitment order) queried
/// at `indices` of the tallest domain. Any mismatch (a row, a sibling too many or too few, a
/// row count or width, an index) is `false`; nothing here panics on garbage.
pub fn verify_mixed(
    root: &Digest,
    dims: &[MatrixDims],
    indices: &[usize],
    opening: &MixedOpening,
) -> bool {
    let Ok(depth) = check_dims(dims) else {
        return false;
    };
    if check_indices(indices, depth).is_err() || opening.rows.len() != dims.len() {
        return false;
    }
    for (rows, d) in opening.rows.iter().zip(dims) {
        let want = query_rows(indices, depth, d.log_height).len();
        if rows.len() != want || rows.iter().any(|r| r.len() != d.width) {
            return false;
        }
    }
    let rows_of = |ms: &[usize], k: usize| hash_rows(ms.iter().map(|&m| &opening.rows[m][k][..]));
    let tallest = at_layer(dims, depth, 0);
    let mut cur: Vec<(usize, Digest)> = indices
        .iter()
        .enumerate()
        .map(|(k, &q)| (q, rows_of(&tallest, k)))
        .collect();
    let mut siblings = opening.siblings.iter();
    for layer in 1..=depth {
        let Some(mut next) = hash_layer_up(&cur, &mut siblings) else {
            return false;
        };
        let injected = at_layer(dims, depth, layer);
        if !injected.is_empty() {
            // The nodes of this layer are the matrices' opened rows, in the same order.
            for (k, node) in next.iter_mut().enumerate() {
                node.1 = hash_inject(&node.1, &rows_of(&injected, k));
            }
        }
        cur = next;
    }
    siblings.next().is_none() && cur.len() == 1 && cur[0].1 == *root
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::MerkleTree;
    use p3_matrix::dense::RowMajorMatrix;

    fn matrix(log_height: usize, width: usize, seed: u64) -> RowMajorMatrix<F> {
        let values = (0..(width << log_height) as u64)
            .map(|v| F::new(v.wrapping_mul(0x9e37_79b9) ^ seed))
            .collect();
        RowMajorMatrix::new(values, width)
    }

    fn views(ms: &[RowMajorMatrix<F>]) -> Vec<RowMajorMatrixView<'_, F>> {
        ms.iter().map(|m| m.as_view()).collect()
    }

    #[test]
    fn one_matrix_is_the_plain_tree() {
        let m = matrix(5, 3, 1);
        let mixed = MixedTree::new(&[m.as_view()]).unwrap();
        let plain = MerkleTree::from_rows(&m.values, 3);
        assert_eq!(mixed.root(), plain.root());
        let q = [1, 2, 9, 30];
        let opening = mixed.open(&views(std::slice::from_ref(&m)), &q).unwrap();
        assert_eq!(opening.siblings, plain.batch_siblings(&q));
    }

    #[test]
    fn mixed_heights_open_and_verify() {
        // Two tallest matrices, one a quarter as tall, one of a single row, two in between
        // given out of height order.
        let ms = vec![
            matrix(6, 2, 1),
            matrix(4, 3, 2),
            matrix(6, 1, 3),
            matrix(0, 2, 4),
            matrix(5, 4, 5),
            matrix(4, 1, 6),
        ];
        let tree = MixedTree::new(&views(&ms)).unwrap();
        assert_eq!(tree.depth(), 6);
        let dims = tree.dims().to_vec();
        for q in [
            vec![0],
            vec![5, 6, 7, 40, 63],
            (0..64).collect::<Vec<_>>(),
            vec![13, 14],
        ] {
            let opening = tree.open(&views(&ms), &q).unwrap();
            assert!(verify_mixed(&tree.root(), &dims, &q, &opening), "{q:?}");
            // One row per distinct folded index, per matrix.
            assert_eq!(opening.rows[1].len(), query_rows(&q, 6, 4).len());
            assert_eq!(opening.rows[3].len(), 1);
            // Every part of the opening is bound.
            let mut bad = opening.clone();
            bad.rows[1][0][0] += F::new(1);
            assert!(!verify_mixed(&tree.root(), &dims, &q, &bad));
            let mut bad = opening.clone();
            bad.rows[3][0][1] += F::new(1);
            assert!(!verify_mixed(&tree.root(), &dims, &q, &bad));
            if !opening.siblings.is_empty() {
                let mut bad = opening.clone();
                bad.siblings[0][0] ^= 1;
                assert!(!verify_mixed(&tree.root(), &dims, &q, &bad));
                let mut bad = opening.clone();
                bad.siblings.pop();
                assert!(!verify_mixed(&tree.root(), &dims, &q, &bad));
            }
            let mut bad = opening.clone();
            bad.siblings.push([0; 32]);
            assert!(!verify_mixed(&tree.root(), &dims, &q, &bad));
            // Shapes the verifier is told must be the committed ones.
            let mut wrong = dims.clone();
            wrong[1].log_height = 5;
            assert!(!verify_mixed(&tree.root(), &wrong, &q, &opening));
            let mut wrong = dims.clone();
            wrong.swap(0, 2);
            assert!(!verify_mixed(&tree.root(), &wrong, &q, &opening));
            assert!(!verify_mixed(&tree.root(), &dims[..5], &q, &opening));
        }
        // Indices out of order, repeated or out of range.
        let opening = tree.open(&views(&ms), &[3, 4]).unwrap();
        assert!(!verify_mixed(&tree.root(), &dims, &[4, 3], &opening));
        assert!(!verify_mixed(&tree.root(), &dims, &[3, 3], &opening));
        assert!(!verify_mixed(&tree.root(), &dims, &[3, 64], &opening));
        assert!(!verify_mixed(&tree.root(), &dims, &[], &opening));
        assert!(tree.open(&views(&ms), &[64]).is_err());
        // A moved row: the same values in another order commit to another root.
        let mut moved = ms.clone();
        moved.swap(1, 5);
        assert_ne!(MixedTree::new(&views(&moved)).unwrap().root(), tree.root());
    }

    #[test]
    fn shared_siblings_beat_one_tree_per_matrix() {
        let ms = vec![matrix(10, 4, 1), matrix(10, 4, 2), matrix(9, 4, 3)];
        let q: Vec<usize> = (0..40).map(|i| (i * 379 + 11) % 1024).collect();
        let mut q = q;
        q.sort_unstable();
        q.dedup();
        let mixed = MixedTree::new(&views(&ms))
            .unwrap()
            .open(&views(&ms), &q)
            .unwrap();
        let separate: usize = ms
            .iter()
            .map(|m| {
                let shift = 10 - m.height().trailing_zeros() as usize;
                MerkleTree::from_rows(&m.values, 4)
                    .batch_siblings(&query_rows(&q, 10, 10 - shift))
                    .len()
            })
            .sum();
        assert!(
            mixed.siblings.len() * 2 < separate,
            "{} vs {separate}",
            mixed.siblings.len()
        );
    }

    #[test]
    fn garbage_is_refused() {
        assert!(MixedTree::new(&[]).is_err());
        let m = matrix(3, 2, 1);
        let three = RowMajorMatrixView::new(&m.values[..6], 2);
        assert!(MixedTree::new(&[three]).is_err());
        let dims = [MatrixDims {
            log_height: 70,
            width: 1,
        }];
        let opening = MixedOpening {
            rows: vec![vec![vec![F::new(0)]]],
            siblings: vec![],
        };
        assert!(!verify_mixed(&[0; 32], &dims, &[0], &opening));
        let dims = [MatrixDims {
            log_height: 3,
            width: 0,
        }];
        assert!(!verify_mixed(&[0; 32], &dims, &[0], &opening));
        let dims = [MatrixDims {
            log_height: 3,
            width: 2,
        }];
        assert!(!verify_mixed(&[0; 32], &dims, &[0], &opening));
    }
}
