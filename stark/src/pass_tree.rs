//! One commitment per pass: the Merkle trees of every instance committed in a pass (its main
//! traces, or its aux traces, ...), joined into one tree at a fixed layer, so that a query
//! opens one shared path above that layer instead of one path per instance.
//!
//! # The tree
//! A pass has members (an instance's matrix; member `m`'s LDE has `2^n_m` rows), each with its
//! own tree ([`crate::merkle::MerkleTree::from_rows`] of its bit-reversed LDE, or the same tree
//! built in chunks, [`crate::chunk_tree`]). The proof's `log_join_rows` and blowup set the join
//! layer: its width is `2^j`, `j = min(log_join_rows + log_blowup, max n_m)`.
//! - A member with `n_m >= j` gives the `2^j` nodes of its own tree at level `n_m - j`; one
//!   with `n_m < j` gives its `2^n_m` leaves.
//! - The base layer (`2^j` nodes) joins the nodes of the members with `n_m >= j`: node `i` is
//!   [`join`] of their nodes `i`, in member order.
//! - A layer of width `2^l < 2^j` is hashed from the one below ([`hash_node`]); where members
//!   have `n_m = l`, node `i` is then `inject(node, join(their leaves i))`.
//! - `join` of one digest is that digest, of several a keyed hash of them; injection has a key
//!   of its own. So a pass of one member commits to that member's own root, and no node of one
//!   kind can be passed off as another.
//!
//! The heights are not in the tree: the verifier takes them from the proof's instance shapes,
//! which the transcript absorbed before any root.
//!
//! An out-of-core prover keeps a level of each instance's tree at or below the join layer
//! (`log_join_rows` is at most the log of the block rows), so the join needs no more than what
//! it keeps; the tree above is `2^(j+1)` digests in memory.
//!
//! # Openings
//! Query position `q` of the largest LDE (`2^log_max`) opens row `q >> (log_max - n_m)` of each
//! member ([`crate::protocol::query_row`]). Each member's opening holds its rows and the
//! siblings of its own batch opening ([`crate::merkle::MerkleTree::batch_siblings`]) below its
//! join level, which [`trim_siblings`] keeps of the whole; the pass sends once the siblings
//! that rebuild the root from the base nodes at `q >> (log_max - j)` ([`PassTree::siblings`]).

use crate::merkle::{Digest, MerkleTree, batch_siblings_by, hash_layer_up, hash_node, hash_up};
use crate::proof::{InstanceOpening, PassSiblings, TreeOpening};

const JOIN_KEY: &[u8; 32] = b"stark-pipe/v1/merkle/join-nodes!";
const INJECT_KEY: &[u8; 32] = b"stark-pipe/v1/merkle/inject-row!";

/// The digests of several members at one node position, as one.
pub fn join(digests: &[Digest]) -> Digest {
    if let [one] = digests {
        return *one;
    }
    let mut hasher = blake3::Hasher::new_keyed(JOIN_KEY);
    for d in digests {
        hasher.update(d);
    }
    *hasher.finalize().as_bytes()
}

/// A node with the leaves of the members of its layer's height injected.
fn inject(node: &Digest, leaves: &Digest) -> Digest {
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(node);
    buf[32..].copy_from_slice(leaves);
    *blake3::keyed_hash(INJECT_KEY, &buf).as_bytes()
}

/// log2 of the join layer's width for members of LDE heights `2^log_ldes` (0 without members).
pub fn join_log(log_join_lde: usize, log_ldes: impl IntoIterator<Item = usize>) -> usize {
    log_join_lde.min(log_ldes.into_iter().max().unwrap_or(0))
}

/// The level of a member's own tree (LDE of `2^log_lde` rows) that joins a pass tree whose
/// join layer is `2^join` wide: 0 (its leaves) for a member no taller than the layer.
pub fn join_level(join: usize, log_lde: usize) -> usize {
    log_lde.saturating_sub(join)
}

/// A pass's tree above the join layer, with every injection: what the prover opens.
#[derive(Clone, Debug)]
pub struct PassTree {
    /// `layers[0]` is the join layer, the last the root.
    layers: Vec<Vec<Digest>>,
}

impl PassTree {
    /// Joins `members`, each `(log_lde, nodes)`: the member's nodes at [`join_level`], in
    /// member order. `log_join_lde` is `log_join_rows + log_blowup`.
    pub fn new(log_join_lde: usize, members: &[(usize, &[Digest])]) -> Result<PassTree, String> {
        if members.is_empty() {
            return Err("a pass without members".into());
        }
        let j = join_log(log_join_lde, members.iter().map(|m| m.0));
        if j >= usize::BITS as usize - 1 {
            return Err(format!("a join layer of 2^{j} nodes"));
        }
        for (m, (log_lde, nodes)) in members.iter().enumerate() {
            let want = 1usize << (*log_lde).min(j);
            if nodes.len() != want {
                return Err(format!(
                    "member {m} gives {} nodes, not {want}",
                    nodes.len()
                ));
            }
        }
        let at = |l: usize| -> Vec<&[Digest]> {
            members
                .iter()
                .filter(|m| if l == j { m.0 >= j } else { m.0 == l })
                .map(|m| m.1)
                .collect()
        };
        let joined =
            |ms: &[&[Digest]], i: usize| join(&ms.iter().map(|m| m[i]).collect::<Vec<_>>());
        let base = at(j);
        let mut layers = vec![
            (0..1usize << j)
                .map(|i| joined(&base, i))
                .collect::<Vec<_>>(),
        ];
        for l in (0..j).rev() {
            let injected = at(l);
            let prev = layers.last().expect("the join layer");
            let next = prev
                .chunks_exact(2)
                .enumerate()
                .map(|(i, pair)| {
                    let node = hash_node(&pair[0], &pair[1]);
                    if injected.is_empty() {
                        node
                    } else {
                        inject(&node, &joined(&injected, i))
                    }
                })
                .collect();
            layers.push(next);
        }
        Ok(PassTree { layers })
    }

    pub fn root(&self) -> Digest {
        self.layers.last().expect("a root")[0]
    }

    /// Keeps of a member's whole batch opening (`siblings`, of its leaves at `rows`; its LDE
    /// has `2^log_lde` rows) the part below its join level.
    pub fn trim(&self, siblings: &mut Vec<Digest>, rows: &[usize], log_lde: usize) {
        trim_siblings(siblings, rows, self.join(), log_lde);
    }

    /// log2 of the join layer's width.
    pub fn join(&self) -> usize {
        self.layers.len() - 1
    }

    /// The siblings that rebuild the root from the join-layer nodes at the query `positions`
    /// of the largest LDE (`2^log_max` rows), in batch order.
    pub fn siblings(&self, positions: &[usize], log_max: usize) -> Vec<Digest> {
        let base = join_positions(positions, log_max, self.join());
        batch_siblings_by(self.join(), &base, |layer, i| self.layers[layer][i])
    }
}

/// What a prover that commits an instance before it knows the others keeps of its tree for
/// the pass tree: the nodes at the highest level the join layer can ask for (the layer is
/// never wider than `2^log_join_lde`), from which any level it does ask for is hashed up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinNodes {
    pub log_lde: usize,
    level: usize,
    nodes: Vec<Digest>,
}

impl JoinNodes {
    /// What to keep of `tree`, an LDE's whole tree.
    pub fn of(tree: &MerkleTree, log_join_lde: usize) -> JoinNodes {
        let log_lde = tree.depth();
        let level = log_lde.saturating_sub(log_join_lde);
        JoinNodes::from_level(log_lde, level, tree.level(level).to_vec(), log_join_lde)
    }

    /// The tree's nodes at `level` (at or above the kept one).
    pub fn at(&self, level: usize) -> Result<Vec<Digest>, String> {
        if level < self.level || level > self.log_lde {
            return Err(format!(
                "level {level} of a tree kept at level {}",
                self.level
            ));
        }
        Ok(hash_up(self.nodes.clone(), level - self.level))
    }

    /// What to keep of a tree over `2^log_lde` leaves of which the prover keeps the `nodes` at
    /// `level`: those hashed up to the highest level the join can ask for, or kept as they are
    /// when that is below them (a join there is refused, see [`check_join`]).
    pub fn from_level(
        log_lde: usize,
        level: usize,
        nodes: Vec<Digest>,
        log_join_lde: usize,
    ) -> JoinNodes {
        let top = log_lde.saturating_sub(log_join_lde).max(level);
        JoinNodes {
            log_lde,
            level: top,
            nodes: hash_up(nodes, top - level),
        }
    }

    /// The pass tree over `members` (in instance order): `None` without members.
    pub fn join<'a>(
        log_join_lde: usize,
        members: impl IntoIterator<Item = &'a JoinNodes>,
    ) -> Result<Option<PassTree>, String> {
        let members: Vec<&JoinNodes> = members.into_iter().collect();
        if members.is_empty() {
            return Ok(None);
        }
        let j = join_log(log_join_lde, members.iter().map(|m| m.log_lde));
        let nodes = members
            .iter()
            .map(|m| m.at(join_level(j, m.log_lde)))
            .collect::<Result<Vec<_>, _>>()?;
        let members: Vec<(usize, &[Digest])> = members
            .iter()
            .zip(&nodes)
            .map(|(m, n)| (m.log_lde, n.as_slice()))
            .collect();
        PassTree::new(log_join_lde, &members).map(Some)
    }
}

/// Whether trees kept from the level over one row of each `2^log_block`-row block (an
/// out-of-core tree, [`crate::chunk_tree`]) reach the pass trees' join layer:
/// `log_join_rows <= log_block`, so the join layer lies at or above the kept level.
pub fn check_join(params: &crate::ProofParams, log_block: usize) -> Result<(), String> {
    if params.log_join_rows as usize > log_block {
        return Err(format!(
            "the pass trees join at 2^{} rows, below blocks of 2^{log_block} rows: the join \
             rows must be at most the block rows",
            params.log_join_rows
        ));
    }
    Ok(())
}

/// A proof's four pass trees, as the prover opens them.
pub struct PassTrees<'a> {
    pub prep: Option<&'a PassTree>,
    pub main: &'a PassTree,
    pub aux: Option<&'a PassTree>,
    pub quotient: &'a PassTree,
}

impl PassTrees<'_> {
    /// Trims `openings` (each instance's whole batch openings of its own trees; its LDE has
    /// `2^log_ldes[i]` rows) to below each pass's join layer, and gives each pass's siblings
    /// above it, for the query `positions` of the largest LDE (`2^log_max` rows).
    pub fn open(
        &self,
        openings: &mut [InstanceOpening],
        log_ldes: &[usize],
        positions: &[usize],
        log_max: usize,
    ) -> PassSiblings {
        for (o, &log_lde) in openings.iter_mut().zip(log_ldes) {
            let rows = crate::protocol::query_rows(positions, log_max, log_lde);
            let trim = |pass: Option<&PassTree>, t: Option<&mut TreeOpening>| {
                if let (Some(p), Some(t)) = (pass, t) {
                    p.trim(&mut t.siblings, &rows, log_lde);
                }
            };
            trim(self.prep, o.prep.as_mut());
            trim(Some(self.main), Some(&mut o.main));
            trim(self.aux, o.aux.as_mut());
            trim(Some(self.quotient), Some(&mut o.quotient));
        }
        let top = |p: Option<&PassTree>| p.map_or(Vec::new(), |p| p.siblings(positions, log_max));
        PassSiblings {
            prep: top(self.prep),
            main: top(Some(self.main)),
            aux: top(self.aux),
            quotient: top(Some(self.quotient)),
        }
    }
}

/// The distinct join-layer positions (`2^join` wide) of the query `positions`, increasing.
fn join_positions(positions: &[usize], log_max: usize, join: usize) -> Vec<usize> {
    crate::protocol::query_rows(positions, log_max, join)
}

/// How many of a batch opening's siblings ([`crate::merkle::MerkleTree::batch_siblings`] order)
/// lie in its lowest `levels` layers, for the leaves at `indices` (sorted, distinct).
pub fn siblings_below(indices: &[usize], levels: usize) -> usize {
    batch_siblings_by(levels, indices, |_, _| [0; 32]).len()
}

/// Keeps of a member's whole batch opening (`siblings`, of the leaves at `rows`) the part below
/// its join level: what the member's opening in a proof holds.
pub fn trim_siblings(siblings: &mut Vec<Digest>, rows: &[usize], join: usize, log_lde: usize) {
    siblings.truncate(siblings_below(rows, join_level(join, log_lde)));
}

/// One member's opening, as the verifier checks it: its LDE height and the (row, leaf digest)
/// pairs it opens (strictly increasing rows), with its own siblings below the join level.
pub struct MemberCheck<'a> {
    pub log_lde: usize,
    pub leaves: Vec<(usize, Digest)>,
    pub siblings: &'a [Digest],
}

/// Why a pass opening does not check: the member at fault, or the pass's own part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PassFault {
    Member(usize),
    Pass,
}

/// Checks the openings of every member of a pass at the query `positions` of the largest LDE
/// (`2^log_max` rows) against `root`: each member's rows hashed up to its join level with its
/// own siblings (all of them used), the join layer rebuilt and, with `top` (all of it used),
/// the tree above it. Garbage is an error, never a panic.
pub fn verify_pass(
    root: &Digest,
    log_join_lde: usize,
    log_max: usize,
    positions: &[usize],
    members: &[MemberCheck<'_>],
    top: &[Digest],
) -> Result<(), PassFault> {
    if members.is_empty() || positions.is_empty() {
        return Err(PassFault::Pass);
    }
    let j = join_log(log_join_lde, members.iter().map(|m| m.log_lde));
    if members.iter().any(|m| m.log_lde > log_max) || j >= usize::BITS as usize - 1 {
        return Err(PassFault::Pass);
    }
    let mut nodes: Vec<Vec<(usize, Digest)>> = Vec::with_capacity(members.len());
    for (i, m) in members.iter().enumerate() {
        let fault = PassFault::Member(i);
        let want = crate::protocol::query_rows(positions, log_max, m.log_lde);
        if m.leaves.len() != want.len() || m.leaves.iter().zip(&want).any(|(l, r)| l.0 != *r) {
            return Err(fault);
        }
        let mut cur = m.leaves.clone();
        let mut siblings = m.siblings.iter();
        for _ in 0..join_level(j, m.log_lde) {
            cur = hash_layer_up(&cur, &mut siblings).ok_or(fault)?;
        }
        if siblings.next().is_some() {
            return Err(fault);
        }
        nodes.push(cur);
    }
    // The nodes of the members that enter layer `l`, per position (all members' positions
    // are the same list: they were derived from the same queries).
    let joined_at = |l: usize, k: usize| -> Digest {
        let ds: Vec<Digest> = members
            .iter()
            .zip(&nodes)
            .filter(|(m, _)| {
                if l == j {
                    m.log_lde >= j
                } else {
                    m.log_lde == l
                }
            })
            .map(|(_, n)| n[k].1)
            .collect();
        join(&ds)
    };
    let base = join_positions(positions, log_max, j);
    for (m, n) in members.iter().zip(&nodes) {
        let l = m.log_lde.min(j);
        let want = join_positions(positions, log_max, l);
        if n.len() != want.len() || n.iter().zip(&want).any(|(a, b)| a.0 != *b) {
            return Err(PassFault::Pass);
        }
    }
    let mut cur: Vec<(usize, Digest)> = base
        .iter()
        .enumerate()
        .map(|(k, &p)| (p, joined_at(j, k)))
        .collect();
    let mut siblings = top.iter();
    for l in (0..j).rev() {
        let mut next = hash_layer_up(&cur, &mut siblings).ok_or(PassFault::Pass)?;
        if members.iter().any(|m| m.log_lde == l) {
            for (k, node) in next.iter_mut().enumerate() {
                node.1 = inject(&node.1, &joined_at(l, k));
            }
        }
        cur = next;
    }
    if siblings.next().is_some() || cur.len() != 1 || cur[0].1 != *root {
        return Err(PassFault::Pass);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::F;
    use crate::merkle::{MerkleTree, hash_row};

    fn matrix(log_rows: usize, width: usize, seed: u64) -> Vec<F> {
        (0..(width << log_rows) as u64)
            .map(|v| F::new(v.wrapping_mul(0x9e37_79b9) ^ seed))
            .collect()
    }

    struct Member {
        log_lde: usize,
        width: usize,
        values: Vec<F>,
        tree: MerkleTree,
    }

    fn members(shapes: &[(usize, usize)]) -> Vec<Member> {
        shapes
            .iter()
            .enumerate()
            .map(|(s, &(log_lde, width))| {
                let values = matrix(log_lde, width, s as u64 + 1);
                let tree = MerkleTree::from_rows(&values, width);
                Member {
                    log_lde,
                    width,
                    values,
                    tree,
                }
            })
            .collect()
    }

    fn pass_tree(log_join: usize, ms: &[Member]) -> PassTree {
        let j = join_log(log_join, ms.iter().map(|m| m.log_lde));
        let nodes: Vec<(usize, &[Digest])> = ms
            .iter()
            .map(|m| (m.log_lde, m.tree.level(join_level(j, m.log_lde))))
            .collect();
        PassTree::new(log_join, &nodes).unwrap()
    }

    /// Each member's rows and trimmed siblings at `positions`, as a proof holds them.
    fn open(
        log_join: usize,
        ms: &[Member],
        positions: &[usize],
        log_max: usize,
    ) -> Vec<(Vec<usize>, Vec<Digest>)> {
        let j = join_log(log_join, ms.iter().map(|m| m.log_lde));
        ms.iter()
            .map(|m| {
                let rows = crate::protocol::query_rows(positions, log_max, m.log_lde);
                let mut sib = m.tree.batch_siblings(&rows);
                trim_siblings(&mut sib, &rows, j, m.log_lde);
                (rows, sib)
            })
            .collect()
    }

    fn check(
        root: &Digest,
        log_join: usize,
        ms: &[Member],
        positions: &[usize],
        log_max: usize,
        opened: &[(Vec<usize>, Vec<Digest>)],
        top: &[Digest],
    ) -> Result<(), PassFault> {
        let checks: Vec<MemberCheck<'_>> = ms
            .iter()
            .zip(opened)
            .map(|(m, (rows, sib))| MemberCheck {
                log_lde: m.log_lde,
                leaves: rows
                    .iter()
                    .map(|&r| (r, hash_row(&m.values[r * m.width..(r + 1) * m.width])))
                    .collect(),
                siblings: sib,
            })
            .collect();
        verify_pass(root, log_join, log_max, positions, &checks, top)
    }

    #[test]
    fn one_member_commits_to_its_own_root() {
        let ms = members(&[(9, 3)]);
        for log_join in [0, 4, 9, 12] {
            let tree = pass_tree(log_join, &ms);
            assert_eq!(tree.root(), ms[0].tree.root(), "join 2^{log_join}");
            let q = [1, 7, 8, 300, 511];
            let opened = open(log_join, &ms, &q, 9);
            let top = tree.siblings(&q, 9);
            let mut all = opened[0].1.clone();
            all.extend_from_slice(&top);
            assert_eq!(all, ms[0].tree.batch_siblings(&q));
            assert_eq!(
                check(&tree.root(), log_join, &ms, &q, 9, &opened, &top),
                Ok(())
            );
        }
    }

    #[test]
    fn members_of_every_height_open_and_verify() {
        // Two tallest, two below the join layer, one at it, one of two rows.
        let ms = members(&[(10, 2), (6, 3), (10, 1), (1, 2), (8, 4), (4, 1)]);
        let log_join = 8;
        let tree = pass_tree(log_join, &ms);
        assert_eq!(tree.join(), 8);
        for q in [
            vec![0],
            vec![5, 6, 7, 40, 1023],
            (0..1024).step_by(3).collect(),
            vec![13, 14],
        ] {
            let opened = open(log_join, &ms, &q, 10);
            let top = tree.siblings(&q, 10);
            let root = tree.root();
            assert_eq!(
                check(&root, log_join, &ms, &q, 10, &opened, &top),
                Ok(()),
                "{q:?}"
            );
            // A changed row of each member, a changed sibling of each, a sibling too many or
            // too few, the wrong root.
            for m in 0..ms.len() {
                let mut bad = members(&[(10, 2), (6, 3), (10, 1), (1, 2), (8, 4), (4, 1)]);
                let r = opened[m].0[0];
                let w = bad[m].width;
                bad[m].values[r * w] += F::new(1);
                assert!(check(&root, log_join, &bad, &q, 10, &opened, &top).is_err());
                if !opened[m].1.is_empty() {
                    let mut o = opened.clone();
                    o[m].1[0][5] ^= 1;
                    assert_eq!(
                        check(&root, log_join, &ms, &q, 10, &o, &top),
                        Err(PassFault::Pass)
                    );
                    let mut o = opened.clone();
                    o[m].1.pop();
                    assert_eq!(
                        check(&root, log_join, &ms, &q, 10, &o, &top),
                        Err(PassFault::Member(m))
                    );
                }
                let mut o = opened.clone();
                o[m].1.push([0; 32]);
                assert_eq!(
                    check(&root, log_join, &ms, &q, 10, &o, &top),
                    Err(PassFault::Member(m))
                );
            }
            if !top.is_empty() {
                let mut t = top.clone();
                t[0][0] ^= 1;
                assert!(check(&root, log_join, &ms, &q, 10, &opened, &t).is_err());
                assert!(check(&root, log_join, &ms, &q, 10, &opened, &top[1..]).is_err());
            }
            let mut t = top.clone();
            t.push([0; 32]);
            assert!(check(&root, log_join, &ms, &q, 10, &opened, &t).is_err());
            assert!(check(&[0; 32], log_join, &ms, &q, 10, &opened, &top).is_err());
            // The same members under another join layer is another root.
            assert_ne!(pass_tree(7, &ms).root(), root);
        }
    }

    #[test]
    fn a_pass_joins_its_members_in_order() {
        let ms = members(&[(6, 2), (6, 2), (3, 1)]);
        let mut swapped = members(&[(6, 2), (6, 2), (3, 1)]);
        swapped.swap(0, 1);
        assert_ne!(pass_tree(6, &ms).root(), pass_tree(6, &swapped).root());
        assert!(PassTree::new(4, &[]).is_err());
        let short = [[0u8; 32]; 3];
        assert!(PassTree::new(4, &[(6, &short[..])]).is_err());
    }

    #[test]
    fn siblings_below_counts_the_lowest_layers() {
        let t = MerkleTree::from_rows(&matrix(6, 1, 9), 1);
        for idx in [
            vec![0],
            vec![3, 4, 5, 63],
            (0..64).collect::<Vec<_>>(),
            vec![2, 7, 8, 9],
        ] {
            let all = t.batch_siblings(&idx);
            assert_eq!(siblings_below(&idx, 6), all.len());
            assert_eq!(siblings_below(&idx, 0), 0);
            assert!(siblings_below(&idx, 3) <= all.len());
        }
    }
}
