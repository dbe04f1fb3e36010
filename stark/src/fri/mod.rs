//! FRI over mixed heights, each committed layer folded 2, 4 or 8 to one.
//!
//! The largest DEEP codeword starts the fold. Every fold is two-to-one with its own challenge,
//! `f'(x^2) = (f(x) + f(-x))/2 + beta (f(x) - f(-x))/(2x)`, and only some folds' inputs are
//! committed: a committed layer ([`FriLayer`], scheduled by [`crate::protocol::fri_layers`])
//! covers up to three folds, and a leaf of its tree is the `2^log_arity` adjacent values (in
//! bit-reversed order) those folds take to one value of the next layer, so a query opens one
//! leaf per committed layer and the verifier folds it itself. The DEEP codeword of a smaller
//! height joins (with weight the square of the layer's last challenge) where the fold reaches
//! its size, which the schedule makes the start of a committed layer. Folding ends at size
//! blowup, where an honest word is constant: that constant is sent in clear.
//!
//! A word that is a degree-<d polynomial evaluated on the coset g*D is also a degree-<d
//! polynomial on g^(2^l)*D (substitute y -> y * g^(1 - 2^l)), so adding it to the folded word
//! index by index keeps the degree bound; the verifier evaluates each DEEP term at its own
//! point and each fold at the folded coset's point.

use std::collections::BTreeMap;

use rayon::prelude::*;

use crate::domain::lde_shift;
use crate::field::{
    EF, F, Field, PrimeCharacteristicRing, TwoAdicField, batch_inverse, bit_reverse_in_place,
    coords,
};
use crate::merkle::{Digest, MerkleTree, hash_row};
use crate::proof::FriLayerOpening;
use crate::protocol::{self, FriLayer, MAX_FRI_LOG_ARITY};
use crate::prover::ProveError;
use crate::transcript::Transcript;

pub mod chunked;

/// A committed layer, kept for the query phase: its word (bit-reversed) and tree.
pub struct CommittedLayer {
    pub layer: FriLayer,
    pub word: Vec<EF>,
    pub tree: MerkleTree,
}

/// The prover's FRI layers, kept for the query phase.
pub struct FriProver {
    pub layers: Vec<CommittedLayer>,
    pub roots: Vec<Digest>,
    pub final_value: EF,
}

/// Leaf hash of a committed layer's leaf: its `2^log_arity` values, in order.
pub fn leaf_hash(values: &[EF]) -> Digest {
    let mut flat = [F::ZERO; 2 << MAX_FRI_LOG_ARITY];
    for (i, v) in values.iter().enumerate() {
        flat[2 * i..2 * i + 2].copy_from_slice(&coords(*v));
    }
    hash_row(&flat[..2 * values.len()])
}

/// x for pair i of a word of size 2^log_s at fold level l (coset shift g^(2^l)).
pub fn fold_point(log_s: usize, level: usize, i: usize) -> F {
    let shift = lde_shift().exp_power_of_2(level);
    shift * F::two_adic_generator(log_s).exp_u64(crate::field::reverse_bits(i, log_s - 1) as u64)
}

/// One fold: f'(x^2) = (f(x) + f(-x))/2 + beta (f(x) - f(-x)) / (2x).
#[inline]
pub fn fold_pair(pair: &[EF; 2], beta: EF, inv_x: F) -> EF {
    let (e, o) = (pair[0], pair[1]);
    let half = F::TWO.inverse();
    ((e + o) + beta * (e - o) * inv_x) * half
}

/// A committed layer's folds of one leaf: `values` (leaf `leaf` of the layer, whose word has
/// size `2^log_s`) folded by `betas` in turn, down to the one value of the next layer. `None`
/// if the leaf is not `2^betas.len()` values of a word that many folds can take, or a fold
/// point is zero (it never is on a coset of the shift).
pub fn fold_leaf(
    values: &[EF],
    layer: FriLayer,
    log_s: usize,
    leaf: usize,
    betas: &[EF],
) -> Option<EF> {
    if betas.len() > MAX_FRI_LOG_ARITY || values.len() != 1 << betas.len() || betas.len() >= log_s {
        return None;
    }
    let mut cur = values.to_vec();
    for (k, beta) in betas.iter().enumerate() {
        let pairs = cur.len() / 2;
        cur = cur
            .chunks_exact(2)
            .enumerate()
            .map(|(j, p)| {
                let x = fold_point(log_s - k, layer.level + k, leaf * pairs + j);
                Some(fold_pair(&[p[0], p[1]], *beta, x.try_inverse()?))
            })
            .collect::<Option<Vec<EF>>>()?;
    }
    (cur.len() == 1).then(|| cur[0])
}

/// What the verifier's FRI chain for one query reads: the query's position `q` in the largest
/// word (`2^log_max_lde`), the committed layers and their openings (`leaves[l]` the leaf
/// indices layer `l` opens, increasing), each layer's fold challenges and the final value.
pub struct FriQuery<'a> {
    pub q: usize,
    pub log_max_lde: usize,
    pub layers: &'a [FriLayer],
    pub openings: &'a [FriLayerOpening],
    pub leaves: &'a [Vec<usize>],
    pub betas: &'a [Vec<EF>],
    pub final_value: EF,
}

/// The verifier's FRI chain for one query, given its DEEP values by log2 word size. The value
/// starts as the largest word's DEEP value; each committed layer's opened leaf must hold it at
/// the query's place, and the leaf's folds by the layer's challenges give the next value, plus
/// (with weight the last challenge squared) the DEEP value of a word that joins there. The
/// last value must be the final one, with every DEEP value used. `Err(l)` names the first
/// layer whose check fails (`layers.len()` for the final value); a missing leaf, a leaf of the
/// wrong size and a zero fold point fail their layer.
pub fn check_query(f: &FriQuery, mut deep_at: BTreeMap<usize, EF>) -> Result<(), usize> {
    let mut expected = deep_at.remove(&f.log_max_lde).unwrap_or_default();
    for (l, fl) in f.layers.iter().enumerate() {
        let log_s = fl.log_size(f.log_max_lde);
        let pos = f.q >> fl.level;
        let (leaf, n) = (pos >> fl.log_arity, 1usize << fl.log_arity);
        let values = f.leaves.get(l).and_then(|idx| {
            let k = idx.binary_search(&leaf).ok()?;
            f.openings.get(l)?.values.get(k * n..(k + 1) * n)
        });
        let betas = f.betas.get(l).filter(|b| b.len() == fl.log_arity);
        let (Some(values), Some(betas)) = (values, betas) else {
            return Err(l);
        };
        if values[pos & (n - 1)] != expected {
            return Err(l);
        }
        expected = fold_leaf(values, *fl, log_s, leaf, betas).ok_or(l)?;
        if let Some(d) = deep_at.remove(&(log_s - fl.log_arity)) {
            expected += betas[fl.log_arity - 1].square() * d;
        }
    }
    if expected != f.final_value || !deep_at.is_empty() {
        return Err(f.layers.len());
    }
    Ok(())
}

/// Commits all layers (absorbing each root, drawing each fold's challenge) and absorbs the
/// final value. `codewords` maps log2 size to the DEEP codeword of that height.
pub fn prove(
    codewords: BTreeMap<usize, Vec<EF>>,
    t: &mut Transcript,
    log_blowup: usize,
) -> Result<FriProver, ProveError> {
    let schedule = protocol::fri_layers(codewords.keys().copied(), log_blowup);
    let mut codewords = codewords;
    let Some((log_s, cur)) = codewords.pop_last() else {
        return Err(ProveError::Shape(
            "FRI needs at least one DEEP codeword".into(),
        ));
    };
    if log_s <= log_blowup
        || cur.len() != 1 << log_s
        || codewords
            .iter()
            .any(|(l, c)| c.len() != 1 << l || *l <= log_blowup)
    {
        return Err(ProveError::Shape(
            "DEEP codeword sizes do not match their keys".into(),
        ));
    }
    let mut layers = Vec::new();
    let mut roots = Vec::new();
    let final_value = fold_in_memory(
        Layer {
            cur,
            log_s,
            level: 0,
        },
        codewords,
        &schedule,
        t,
        &mut layers,
        &mut roots,
    );
    Ok(FriProver {
        layers,
        roots,
        final_value,
    })
}

/// A bit-reversed word about to be committed: its codeword, log2 size and fold level.
struct Layer {
    cur: Vec<EF>,
    log_s: usize,
    level: usize,
}

/// One two-to-one fold by `beta` of a bit-reversed word of size `2^log_s` at fold level `level`.
fn fold_word(cur: &[EF], log_s: usize, level: usize, beta: EF) -> Vec<EF> {
    // x_i = shift^(2^level) * w_S^rev(i) for i < S/2.
    let half = 1usize << (log_s - 1);
    let shift = lde_shift().exp_power_of_2(level);
    let mut xs = crate::field::geometric(shift, F::two_adic_generator(log_s), half);
    bit_reverse_in_place(&mut xs);
    let inv = batch_inverse(&xs).expect("coset points are nonzero");
    cur.par_chunks_exact(2)
        .zip(inv.par_iter())
        .map(|(p, ix)| fold_pair(&[p[0], p[1]], beta, *ix))
        .collect()
}

/// The commit phase from `layer` on, in memory: commits each layer of `schedule` (the layers
/// still to commit, the first at `layer`'s level; pushing it and its root), folds it, joins the
/// smaller `codewords` (bit-reversed, keyed by log2 size) where they fit, and absorbs and
/// returns the final value.
fn fold_in_memory(
    layer: Layer,
    mut codewords: BTreeMap<usize, Vec<EF>>,
    schedule: &[FriLayer],
    t: &mut Transcript,
    layers: &mut Vec<CommittedLayer>,
    roots: &mut Vec<Digest>,
) -> EF {
    let Layer {
        mut cur,
        mut log_s,
        mut level,
    } = layer;
    for &fl in schedule {
        debug_assert_eq!(fl.level, level, "the schedule starts where the fold is");
        let leaves: Vec<Digest> = cur
            .par_chunks_exact(1 << fl.log_arity)
            .map(leaf_hash)
            .collect();
        let tree = MerkleTree::from_leaves(leaves);
        let betas = protocol::observe_fri_layer(t, &tree.root(), fl);
        roots.push(tree.root());
        let mut next = fold_word(&cur, log_s, level, betas[0]);
        for (k, beta) in betas.iter().enumerate().skip(1) {
            next = fold_word(&next, log_s - k, level + k, *beta);
        }
        log_s -= fl.log_arity;
        level += fl.log_arity;
        if codewords.last_key_value().is_some_and(|(&l, _)| l == log_s) {
            let d = codewords.pop_last().unwrap().1;
            let b2 = betas[fl.log_arity - 1].square();
            next.par_iter_mut()
                .zip(d.par_iter())
                .for_each(|(a, v)| *a += b2 * *v);
        }
        layers.push(CommittedLayer {
            layer: fl,
            word: cur,
            tree,
        });
        cur = next;
    }
    debug_assert!(codewords.is_empty(), "every DEEP codeword joined");
    let final_value = cur[0];
    protocol::observe_fri_final(t, final_value);
    final_value
}

impl FriProver {
    /// Every layer's leaves at the query positions (of the largest codeword), batch-opened.
    pub fn open(&self, positions: &[usize]) -> Vec<FriLayerOpening> {
        self.layers
            .iter()
            .map(|c| {
                let idx = protocol::fri_group_indices(positions, c.layer);
                let n = 1 << c.layer.log_arity;
                FriLayerOpening {
                    values: idx
                        .iter()
                        .flat_map(|&i| c.word[i * n..(i + 1) * n].iter().copied())
                        .collect(),
                    siblings: c.tree.batch_siblings(&idx),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::ext;

    fn next(x: &mut u64) -> F {
        *x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        F::from_u64(*x >> 1)
    }

    /// A random polynomial of degree < 2^log_n on the FRI domain of size 2^(log_n + log_b),
    /// bit-reversed.
    fn low_degree_word(log_n: usize, log_b: usize, seed: u64) -> Vec<EF> {
        let mut x = seed;
        let coeffs: Vec<EF> = (0..1 << log_n)
            .map(|_| ext(next(&mut x), next(&mut x)))
            .collect();
        let log_s = log_n + log_b;
        let w = F::two_adic_generator(log_s);
        (0..1usize << log_s)
            .map(|i| {
                let p = lde_shift() * w.exp_u64(crate::field::reverse_bits(i, log_s) as u64);
                coeffs.iter().rev().fold(EF::ZERO, |acc, c| acc * p + *c)
            })
            .collect()
    }

    struct Run {
        words: BTreeMap<usize, Vec<EF>>,
        layers: Vec<FriLayer>,
        openings: Vec<FriLayerOpening>,
        leaves: Vec<Vec<usize>>,
        betas: Vec<Vec<EF>>,
        final_value: EF,
        positions: Vec<usize>,
    }

    /// Proves FRI over `words` (log_b 1) and replays the transcript as the verifier does.
    fn run(words: BTreeMap<usize, Vec<EF>>) -> Run {
        let log_b = 1;
        let mut t = Transcript::new(b"fri unit");
        let fri = prove(words.clone(), &mut t, log_b).unwrap();
        let layers = protocol::fri_layers(words.keys().copied(), log_b);
        let mut v = Transcript::new(b"fri unit");
        let betas: Vec<Vec<EF>> = fri
            .roots
            .iter()
            .zip(&layers)
            .map(|(r, l)| protocol::observe_fri_layer(&mut v, r, *l))
            .collect();
        let log_max = *words.keys().last().unwrap();
        let positions: Vec<usize> = (0..1usize << log_max).step_by(7).collect();
        Run {
            openings: fri.open(&positions),
            leaves: layers
                .iter()
                .map(|l| protocol::fri_group_indices(&positions, *l))
                .collect(),
            words,
            layers,
            betas,
            final_value: fri.final_value,
            positions,
        }
    }

    /// Every query's chain, `Err(layer)` where it fails.
    fn checks(r: &Run) -> Vec<Result<(), usize>> {
        let log_max = *r.words.keys().last().unwrap();
        r.positions
            .iter()
            .map(|&q| {
                let deep_at = r
                    .words
                    .iter()
                    .map(|(&l, w)| (l, w[q >> (log_max - l)]))
                    .collect();
                let f = FriQuery {
                    q,
                    log_max_lde: log_max,
                    layers: &r.layers,
                    openings: &r.openings,
                    leaves: &r.leaves,
                    betas: &r.betas,
                    final_value: r.final_value,
                };
                check_query(&f, deep_at)
            })
            .collect()
    }

    fn words() -> BTreeMap<usize, Vec<EF>> {
        [(8, 1), (6, 2), (3, 3)]
            .into_iter()
            .map(|(log_n, seed)| (log_n + 1, low_degree_word(log_n, 1, seed)))
            .collect()
    }

    #[test]
    fn honest_chains_pass_through_leaves_of_four_and_eight() {
        let r = run(words());
        let arities: Vec<usize> = r.layers.iter().map(|l| l.log_arity).collect();
        assert_eq!(arities, [2, 3, 3]);
        assert!(checks(&r).iter().all(|c| c.is_ok()));
        // Each layer opens whole leaves of 2^log_arity values.
        for (l, fl) in r.layers.iter().enumerate() {
            assert_eq!(
                r.openings[l].values.len(),
                r.leaves[l].len() << fl.log_arity
            );
        }
    }

    #[test]
    fn every_fold_of_a_leaf_is_checked() {
        // A wrong challenge for the second or third fold inside a leaf fails every query there.
        for (l, k) in [(0, 1), (1, 1), (1, 2), (2, 2)] {
            let mut r = run(words());
            r.betas[l][k] += EF::ONE;
            assert!(
                checks(&r).iter().all(|c| *c == Err(l + 1) || *c == Err(l)),
                "layer {l} fold {k}"
            );
        }
        // A leaf value away from the query's own place changes the fold: every query whose
        // leaf it is, and whose own place is another, fails at the next layer.
        let mut r = run(words());
        let (l, k) = (1, 3);
        let fl = r.layers[l];
        r.openings[l].values[k] += EF::ONE;
        let (leaf, n) = (r.leaves[l][k >> fl.log_arity], 1 << fl.log_arity);
        let mut hit = 0;
        for (q, c) in r.positions.iter().zip(checks(&r)) {
            let pos = q >> fl.level;
            if pos >> fl.log_arity == leaf && pos & (n - 1) != k & (n - 1) {
                assert_eq!(c, Err(l + 1), "query {q}");
                hit += 1;
            } else if pos >> fl.log_arity != leaf {
                assert_eq!(c, Ok(()), "query {q}");
            }
        }
        assert!(
            hit > 0,
            "some query's leaf holds the changed value elsewhere"
        );
        // A short leaf, and challenges of the wrong count, fail their layer.
        let mut r = run(words());
        r.openings[2].values.truncate(3);
        assert!(checks(&r).contains(&Err(2)));
        let mut r = run(words());
        r.betas[0].pop();
        assert!(checks(&r).iter().all(|c| *c == Err(0)));
    }

    #[test]
    fn a_word_far_from_low_degree_or_a_missing_join_fails() {
        let mut w = words();
        let mut x = 99;
        w.get_mut(&9)
            .unwrap()
            .iter_mut()
            .for_each(|v| *v = ext(next(&mut x), next(&mut x)));
        let r = run(w);
        let failed = checks(&r).iter().filter(|c| c.is_err()).count();
        assert!(
            failed * 4 >= r.positions.len(),
            "{failed} of {}",
            r.positions.len()
        );
        // The chain without the smaller words' DEEP values.
        let mut r = run(words());
        r.words.remove(&4);
        assert!(checks(&r).iter().all(|c| c.is_err()));
    }
}
