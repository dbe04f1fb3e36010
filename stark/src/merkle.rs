//! BLAKE3 Merkle trees over the rows of a row-major matrix.
//!
//! Leaves hash a row's canonical little-endian bytes under a leaf key; inner nodes hash the two
//! children under a node key, so a leaf can never be passed off as a node.

use crate::field::{F, canonical};
use rayon::prelude::*;

/// A 32-byte BLAKE3 digest.
pub type Digest = [u8; 32];

pub(crate) const LEAF_KEY: &[u8; 32] = b"stark-pipe/v1/merkle/leaf-hash!!";
const NODE_KEY: &[u8; 32] = b"stark-pipe/v1/merkle/node-hash!!";

/// Hashes one row of base-field values into a leaf digest.
pub fn hash_row(row: &[F]) -> Digest {
    let mut buf = Vec::with_capacity(row.len() * 8);
    hash_row_into(&mut buf, row)
}

/// [`hash_row`] with a caller-owned byte buffer (reused across rows).
pub fn hash_row_into(buf: &mut Vec<u8>, row: &[F]) -> Digest {
    buf.clear();
    for v in row {
        buf.extend_from_slice(&canonical(*v).to_le_bytes());
    }
    *blake3::keyed_hash(LEAF_KEY, buf).as_bytes()
}

/// Hashes two children into their parent.
pub fn hash_node(left: &Digest, right: &Digest) -> Digest {
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(left);
    buf[32..].copy_from_slice(right);
    *blake3::keyed_hash(NODE_KEY, &buf).as_bytes()
}

/// The nodes `levels` levels above `nodes` (a power-of-two count, at least `2^levels`).
pub fn hash_up(mut nodes: Vec<Digest>, levels: usize) -> Vec<Digest> {
    for _ in 0..levels {
        nodes = nodes
            .par_chunks_exact(2)
            .with_min_len(512)
            .map(|p| hash_node(&p[0], &p[1]))
            .collect();
    }
    nodes
}

/// A full binary tree; `layers[0]` are the leaves, the last layer is the root.
#[derive(Clone, Debug)]
pub struct MerkleTree {
    layers: Vec<Vec<Digest>>,
}

impl MerkleTree {
    /// Commits to the rows of a row-major matrix of `width` columns; the row count must be a
    /// power of two.
    pub fn from_rows(values: &[F], width: usize) -> Self {
        assert!(width > 0 && values.len().is_multiple_of(width));
        let leaves: Vec<Digest> = values
            .par_chunks(width)
            .with_min_len(256)
            .map_init(|| Vec::with_capacity(width * 8), hash_row_into)
            .collect();
        Self::from_leaves(leaves)
    }

    /// Builds the tree above a power-of-two number of leaf digests.
    pub fn from_leaves(leaves: Vec<Digest>) -> Self {
        assert!(leaves.len().is_power_of_two());
        let mut layers = vec![leaves];
        while layers.last().unwrap().len() > 1 {
            let prev = layers.last().unwrap();
            let next: Vec<Digest> = prev
                .par_chunks_exact(2)
                .with_min_len(512)
                .map(|p| hash_node(&p[0], &p[1]))
                .collect();
            layers.push(next);
        }
        MerkleTree { layers }
    }

    /// The nodes `level` layers above the leaves (0 = the leaf digests); what an out-of-core
    /// prover keeps of a tree (see [`PartialTree`]).
    pub fn level(&self, level: usize) -> &[Digest] {
        &self.layers[level.min(self.depth())]
    }

    pub fn root(&self) -> Digest {
        self.layers.last().unwrap()[0]
    }

    /// log2 of the leaf count (= path length).
    pub fn depth(&self) -> usize {
        self.layers.len() - 1
    }

    /// Sibling digests from the leaf up to (excluding) the root.
    pub fn path(&self, mut index: usize) -> Vec<Digest> {
        let mut path = Vec::with_capacity(self.depth());
        for layer in &self.layers[..self.layers.len() - 1] {
            path.push(layer[index ^ 1]);
            index >>= 1;
        }
        path
    }
}

impl MerkleTree {
    /// The sibling digests that, with the leaves at `indices` (sorted, distinct), rebuild the
    /// root: a batch opening, where paths that meet share their upper nodes.
    pub fn batch_siblings(&self, indices: &[usize]) -> Vec<Digest> {
        batch_siblings_by(self.depth(), indices, |layer, i| self.layers[layer][i])
    }
}

/// [`MerkleTree::batch_siblings`] over any source of nodes (`node(layer, index)`, layer 0 =
/// leaves), so a tree that is only partly in memory opens to the same bytes.
pub(crate) fn batch_siblings_by(
    depth: usize,
    indices: &[usize],
    node: impl Fn(usize, usize) -> Digest,
) -> Vec<Digest> {
    let mut cur = indices.to_vec();
    let mut out = Vec::new();
    for layer in 0..depth {
        let mut next = Vec::with_capacity(cur.len());
        let mut i = 0;
        while i < cur.len() {
            let idx = cur[i];
            if idx & 1 == 0 && cur.get(i + 1) == Some(&(idx + 1)) {
                i += 2;
            } else {
                out.push(node(layer, idx ^ 1));
                i += 1;
            }
            next.push(idx >> 1);
        }
        cur = next;
    }
    out
}

/// A tree rebuilt from one of its levels: the layers above it are hashed up from the level,
/// and only the subtrees below it that hold opened rows are hashed again from those rows.
///
/// An out-of-core prover keeps level `k` of each tree (1/2^k of the leaf digests) next to the
/// spilled LDE instead of the whole tree: opening then reads 2^k rows per query and hashes
/// them, rather than mapping the tree or rehashing the whole LDE. Rebuilding checks every
/// subtree root against the kept level and the top against the committed root, so a
/// corrupted LDE or level is an error here, never a bad opening.
pub struct PartialTree {
    level: usize,
    upper: MerkleTree,
    /// Subtrees under level-`level` nodes, by node index.
    lower: std::collections::HashMap<usize, MerkleTree>,
}

impl PartialTree {
    /// Rebuilds what opening `rows` (sorted, distinct) of the `width`-wide row-major `values`
    /// needs, from the tree's nodes at `level` and its `root`.
    pub fn rebuild(
        values: &[F],
        width: usize,
        level_nodes: &[Digest],
        root: &Digest,
        rows: &[usize],
    ) -> Result<Self, String> {
        let leaves = values.len().checked_div(width).unwrap_or(0);
        if width == 0 || leaves * width != values.len() || !leaves.is_power_of_two() {
            return Err(format!(
                "{} values are not a power-of-two number of rows of {width}",
                values.len()
            ));
        }
        let block = width * (leaves / level_nodes.len().max(1));
        Self::rebuild_by(leaves, width, level_nodes, root, rows, |node| {
            Ok(values[node * block..(node + 1) * block].to_vec())
        })
    }

    /// [`PartialTree::rebuild`] for leaves that are not one slice: `subtree(node)` returns the
    /// rows under kept node `node` (2^level rows of `width`, in leaf order), from wherever the
    /// caller keeps them.
    pub fn rebuild_by(
        leaves: usize,
        width: usize,
        level_nodes: &[Digest],
        root: &Digest,
        rows: &[usize],
        mut subtree: impl FnMut(usize) -> Result<Vec<F>, String>,
    ) -> Result<Self, String> {
        if level_nodes.is_empty()
            || !level_nodes.len().is_power_of_two()
            || !leaves.is_power_of_two()
            || level_nodes.len() > leaves
        {
            return Err(format!(
                "{} kept nodes do not form a level of a tree over {leaves} rows",
                level_nodes.len()
            ));
        }
        let level = (leaves / level_nodes.len()).trailing_zeros() as usize;
        let upper = MerkleTree::from_leaves(level_nodes.to_vec());
        if upper.root() != *root {
            return Err("the kept level does not hash to the committed root".into());
        }
        let mut lower = std::collections::HashMap::new();
        for &r in rows {
            if r >= leaves {
                return Err(format!("row {r} is outside the {leaves} rows"));
            }
            let node = r >> level;
            if lower.contains_key(&node) {
                continue;
            }
            let values = subtree(node)?;
            if width == 0 || values.len() != width << level {
                return Err(format!(
                    "node {node}: {} values are not {} rows of {width}",
                    values.len(),
                    1usize << level
                ));
            }
            let sub = MerkleTree::from_rows(&values, width);
            if sub.root() != level_nodes[node] {
                return Err(format!(
                    "rows {}..{} do not hash to node {node} of the kept level",
                    node << level,
                    (node + 1) << level
                ));
            }
            lower.insert(node, sub);
        }
        Ok(PartialTree {
            level,
            upper,
            lower,
        })
    }

    /// The same siblings [`MerkleTree::batch_siblings`] gives for the whole tree; `indices`
    /// must be among the rows passed to [`PartialTree::rebuild`].
    pub fn batch_siblings(&self, indices: &[usize]) -> Vec<Digest> {
        let depth = self.level + self.upper.depth();
        batch_siblings_by(depth, indices, |layer, i| {
            if layer < self.level {
                let shift = self.level - layer;
                self.lower[&(i >> shift)].layers[layer][i & ((1 << shift) - 1)]
            } else {
                self.upper.layers[layer - self.level][i]
            }
        })
    }
}

/// Checks a batch opening: `leaves` are (index, leaf digest) with strictly increasing indices
/// below 2^depth, and `siblings` must be consumed exactly.
pub fn verify_batch(
    root: &Digest,
    depth: usize,
    leaves: &[(usize, Digest)],
    siblings: &[Digest],
) -> bool {
    if leaves.is_empty() || depth >= usize::BITS as usize {
        return false;
    }
    if leaves.windows(2).any(|w| w[0].0 >= w[1].0) || (leaves[leaves.len() - 1].0 >> depth) != 0 {
        return false;
    }
    let mut cur = leaves.to_vec();
    let mut sib = siblings.iter();
    for _ in 0..depth {
        let Some(next) = hash_layer_up(&cur, &mut sib) else {
            return false;
        };
        cur = next;
    }
    sib.next().is_none() && cur.len() == 1 && cur[0].1 == *root
}

/// One step of checking a batch opening: the (index, digest) nodes of a layer (strictly
/// increasing) to their parents, taking each missing sibling from `siblings` in order; `None`
/// when the siblings run out.
pub(crate) fn hash_layer_up<'a>(
    cur: &[(usize, Digest)],
    siblings: &mut impl Iterator<Item = &'a Digest>,
) -> Option<Vec<(usize, Digest)>> {
    let mut next = Vec::with_capacity(cur.len());
    let mut i = 0;
    while i < cur.len() {
        let (idx, h) = cur[i];
        let (l, r) = if idx & 1 == 0 && cur.get(i + 1).is_some_and(|n| n.0 == idx + 1) {
            i += 2;
            (h, cur[i - 1].1)
        } else {
            let s = siblings.next()?;
            i += 1;
            if idx & 1 == 0 { (h, *s) } else { (*s, h) }
        };
        next.push((idx >> 1, hash_node(&l, &r)));
    }
    Some(next)
}

/// Checks that `leaf` sits at `index` under `root`, with a path of exactly `depth` siblings.
pub fn verify_path(
    root: &Digest,
    index: usize,
    leaf: Digest,
    path: &[Digest],
    depth: usize,
) -> bool {
    if path.len() != depth || depth >= usize::BITS as usize || (index >> depth) != 0 {
        return false;
    }
    let mut node = leaf;
    let mut i = index;
    for sibling in path {
        node = if i & 1 == 0 {
            hash_node(&node, sibling)
        } else {
            hash_node(sibling, &node)
        };
        i >>= 1;
    }
    node == *root
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_verify_and_bind() {
        let values: Vec<F> = (0..64u64).map(F::new).collect();
        let t = MerkleTree::from_rows(&values, 4);
        assert_eq!(t.depth(), 4);
        for i in 0..16 {
            let leaf = hash_row(&values[i * 4..i * 4 + 4]);
            let p = t.path(i);
            assert!(verify_path(&t.root(), i, leaf, &p, 4));
            assert!(!verify_path(&t.root(), i ^ 1, leaf, &p, 4));
            assert!(!verify_path(&t.root(), i, leaf, &p[..3], 3));
        }
        let leaf = |i: usize| (i, hash_row(&values[i * 4..i * 4 + 4]));
        for idx in [
            vec![0],
            vec![0, 1],
            vec![3, 4, 5, 15],
            (0..16).collect::<Vec<_>>(),
            vec![2, 7, 8, 9, 13],
        ] {
            let sib = t.batch_siblings(&idx);
            let leaves: Vec<_> = idx.iter().map(|&i| leaf(i)).collect();
            assert!(verify_batch(&t.root(), 4, &leaves, &sib));
            if !sib.is_empty() {
                assert!(!verify_batch(&t.root(), 4, &leaves, &sib[1..]));
                let mut bad = sib.clone();
                bad[0][3] ^= 1;
                assert!(!verify_batch(&t.root(), 4, &leaves, &bad));
            }
            let mut extra = sib.clone();
            extra.push([0; 32]);
            assert!(!verify_batch(&t.root(), 4, &leaves, &extra));
            let mut wrong = leaves.clone();
            wrong[0].1[0] ^= 1;
            assert!(!verify_batch(&t.root(), 4, &wrong, &sib));
        }
        assert!(!verify_batch(
            &t.root(),
            4,
            &[leaf(3), leaf(3)],
            &t.batch_siblings(&[3])
        ));
    }

    #[test]
    fn partial_tree_opens_like_the_whole_tree() {
        let width = 3;
        let values: Vec<F> = (0..64u64 * width as u64)
            .map(|v| F::new(v * 7 + 1))
            .collect();
        let t = MerkleTree::from_rows(&values, width);
        for level in 0..=t.depth() {
            for rows in [
                vec![0],
                vec![5, 6, 7, 40],
                (0..64).collect::<Vec<_>>(),
                vec![63],
            ] {
                let p =
                    PartialTree::rebuild(&values, width, t.level(level), &t.root(), &rows).unwrap();
                assert_eq!(
                    p.batch_siblings(&rows),
                    t.batch_siblings(&rows),
                    "level {level}"
                );
            }
        }
        // A changed row under an opened node, a changed kept node, a wrong root.
        let mut bad = values.clone();
        bad[10 * width] += F::new(1);
        let err = PartialTree::rebuild(&bad, width, t.level(2), &t.root(), &[9]).err();
        assert_eq!(
            err.as_deref(),
            Some("rows 8..12 do not hash to node 2 of the kept level")
        );
        assert!(PartialTree::rebuild(&bad, width, t.level(2), &t.root(), &[20]).is_ok());
        let mut level = t.level(2).to_vec();
        level[3][0] ^= 1;
        assert!(PartialTree::rebuild(&values, width, &level, &t.root(), &[1]).is_err());
        assert!(PartialTree::rebuild(&values, width, t.level(2), &[0; 32], &[1]).is_err());
        assert!(PartialTree::rebuild(&values, width, t.level(2), &t.root(), &[64]).is_err());
        assert!(PartialTree::rebuild(&values, width, &level[..3], &t.root(), &[1]).is_err());
        assert!(PartialTree::rebuild(&values[..5], width, t.level(2), &t.root(), &[1]).is_err());
    }
}
