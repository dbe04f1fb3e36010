//! FRI with folding factor 2 over mixed heights.
//!
//! The largest DEEP codeword starts the fold; after each fold, the DEEP codeword of the
//! matching smaller height (if any) joins with weight beta_l^2. Codewords are in bit-reversed
//! order, so a layer's Merkle leaf is the adjacent pair (x, -x). Folding ends at size blowup,
//! where an honest word is constant: that constant is sent in clear.
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
use crate::prover::ProveError;
use crate::transcript::Transcript;

pub mod chunked;

/// The prover's FRI layers, kept for the query phase.
pub struct FriProver {
    /// Each committed layer's codeword and tree.
    pub layers: Vec<(Vec<EF>, MerkleTree)>,
    pub roots: Vec<Digest>,
    pub final_value: EF,
}

/// Leaf hash of a pair (x, -x).
pub fn pair_leaf(pair: &[EF; 2]) -> Digest {
    let [a, b] = coords(pair[0]);
    let [c, d] = coords(pair[1]);
    hash_row(&[a, b, c, d])
}

/// x for leaf i of a layer of size 2^log_s at fold level l (coset shift g^(2^l)).
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

/// Commits all layers (absorbing each root, drawing each beta) and absorbs the final value.
/// `codewords` maps log2 size to the DEEP codeword of that height.
pub fn prove(
    mut codewords: BTreeMap<usize, Vec<EF>>,
    t: &mut Transcript,
    log_blowup: usize,
) -> Result<FriProver, ProveError> {
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
        t,
        log_blowup,
        &mut layers,
        &mut roots,
    );
    Ok(FriProver {
        layers,
        roots,
        final_value,
    })
}

/// A bit-reversed layer about to be committed: its codeword, log2 size and fold level.
struct Layer {
    cur: Vec<EF>,
    log_s: usize,
    level: usize,
}

/// The commit phase from `layer` on, in memory: commits each layer (pushing it and its root),
/// folds, joins the smaller `codewords` (bit-reversed, keyed by log2 size) where they fit, and
/// absorbs and returns the final value.
fn fold_in_memory(
    layer: Layer,
    mut codewords: BTreeMap<usize, Vec<EF>>,
    t: &mut Transcript,
    log_blowup: usize,
    layers: &mut Vec<(Vec<EF>, MerkleTree)>,
    roots: &mut Vec<Digest>,
) -> EF {
    let Layer {
        mut cur,
        mut log_s,
        mut level,
    } = layer;
    while log_s > log_blowup {
        let leaves: Vec<Digest> = cur
            .par_chunks_exact(2)
            .map(|p| pair_leaf(&[p[0], p[1]]))
            .collect();
        let tree = MerkleTree::from_leaves(leaves);
        let beta = crate::protocol::observe_fri_layer(t, &tree.root());
        roots.push(tree.root());
        // x_i = shift^(2^level) * w_S^rev(i) for i < S/2.
        let half = 1usize << (log_s - 1);
        let shift = lde_shift().exp_power_of_2(level);
        let mut xs = crate::field::geometric(shift, F::two_adic_generator(log_s), half);
        bit_reverse_in_place(&mut xs);
        let inv = batch_inverse(&xs).expect("coset points are nonzero");
        let mut next: Vec<EF> = cur
            .par_chunks_exact(2)
            .zip(inv.par_iter())
            .map(|(p, ix)| fold_pair(&[p[0], p[1]], beta, *ix))
            .collect();
        debug_assert_eq!(next.len(), half);
        log_s -= 1;
        level += 1;
        if codewords.last_key_value().is_some_and(|(&l, _)| l == log_s) {
            let d = codewords.pop_last().unwrap().1;
            let b2 = beta.square();
            next.par_iter_mut()
                .zip(d.par_iter())
                .for_each(|(a, v)| *a += b2 * *v);
        }
        layers.push((cur, tree));
        cur = next;
    }
    let final_value = cur[0];
    crate::protocol::observe_fri_final(t, final_value);
    final_value
}

impl FriProver {
    /// Every layer's pairs at the query positions (of the largest codeword), batch-opened.
    pub fn open(&self, positions: &[usize]) -> Vec<FriLayerOpening> {
        self.layers
            .iter()
            .enumerate()
            .map(|(l, (cw, tree))| {
                let idx = crate::protocol::fri_pair_indices(positions, l);
                FriLayerOpening {
                    pairs: idx.iter().map(|&i| [cw[2 * i], cw[2 * i + 1]]).collect(),
                    siblings: tree.batch_siblings(&idx),
                }
            })
            .collect()
    }
}
