//! The transcript schedule shared by prover and verifier: what is absorbed, in which order,
//! and which challenge is drawn at each barrier. Both sides call these same functions.

use crate::air::BusTerm;
use crate::constraints::{NUM_LOOKUP_CHALLENGES, Table};
use crate::field::{EF, canonical};
use crate::merkle::Digest;
use crate::params::ProofParams;
use crate::proof::{InstanceOod, InstanceShape};
use crate::transcript::Transcript;

/// Protocol identifier absorbed first.
pub const PROTOCOL_ID: &[u8] = b"stark-pipe/v1 goldilocks^2 blake3 logup deep-fri";

/// What the verifier knows about the statement: a digest binding it (program, output, ...),
/// and the bus terms the statement contributes to the LogUp sum.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublicInputs {
    pub statement: Digest,
    pub boundary: Vec<BusTerm>,
}

/// Starts the transcript: parameters, statement, public bus terms, every table's constraint
/// digest, every instance's shape.
pub fn start(
    tables: &[Table],
    params: &ProofParams,
    public: &PublicInputs,
    shapes: &[InstanceShape],
) -> Transcript {
    let mut t = Transcript::new(PROTOCOL_ID);
    t.absorb(
        b"params",
        &[params.log_blowup, params.pow_bits, params.log_join_rows],
    );
    t.absorb_u64(b"queries", params.num_queries as u64);
    t.absorb_digest(b"statement", &public.statement);
    t.absorb_u64(b"boundary terms", public.boundary.len() as u64);
    for term in &public.boundary {
        let mut bytes = term.bus.to_le_bytes().to_vec();
        bytes.extend_from_slice(&canonical(term.multiplicity).to_le_bytes());
        bytes.extend_from_slice(&(term.tuple.len() as u64).to_le_bytes());
        term.tuple
            .iter()
            .for_each(|v| bytes.extend_from_slice(&canonical(*v).to_le_bytes()));
        t.absorb(b"boundary", &bytes);
    }
    t.absorb_u64(b"tables", tables.len() as u64);
    for table in tables {
        t.absorb_digest(b"table", &table.digest);
    }
    t.absorb_u64(b"instances", shapes.len() as u64);
    for s in shapes {
        let mut bytes = s.table.to_le_bytes().to_vec();
        bytes.push(s.log_height);
        t.absorb(b"shape", &bytes);
    }
    t
}

/// Pass 1: the preprocessed pass root (when a table has preprocessed columns; the verifier
/// recomputes it) and the main pass root.
pub fn observe_main(t: &mut Transcript, preprocessed_root: Option<&Digest>, main_root: &Digest) {
    if let Some(r) = preprocessed_root {
        t.absorb_digest(b"preprocessed root", r);
    }
    t.absorb_digest(b"main root", main_root);
}

/// Barrier after pass 1: LogUp challenges (gamma, tuple combiner alpha).
pub fn draw_lookup_challenges(t: &mut Transcript) -> [EF; NUM_LOOKUP_CHALLENGES] {
    [
        t.challenge_ext(b"logup gamma"),
        t.challenge_ext(b"logup alpha"),
    ]
}

/// Pass 2: the aux pass root (when a table has buses), then every instance's claimed partial
/// sum in canonical order (none for an instance of a table without buses).
pub fn observe_aux(t: &mut Transcript, root: Option<&Digest>, claimed_sums: &[Option<EF>]) {
    if let Some(r) = root {
        t.absorb_digest(b"aux root", r);
    }
    for s in claimed_sums.iter().flatten() {
        t.absorb_ext(b"claimed sum", &[*s]);
    }
}

/// Barrier after pass 2: the constraint composition challenge.
pub fn draw_composition_challenge(t: &mut Transcript) -> EF {
    t.challenge_ext(b"composition")
}

/// Pass 3: the quotient pass root.
pub fn observe_quotient(t: &mut Transcript, root: &Digest) {
    t.absorb_digest(b"quotient root", root);
}

/// Barrier after pass 3: the out-of-domain point z.
pub fn draw_ood_point(t: &mut Transcript) -> EF {
    t.challenge_ext(b"ood point")
}

/// Pass 4 (per instance): the OOD values.
pub fn observe_ood(t: &mut Transcript, ood: &InstanceOod) {
    for (label, v) in [
        (&b"ood main"[..], &ood.main),
        (b"ood main next", &ood.main_next),
        (b"ood prep", &ood.prep),
        (b"ood prep next", &ood.prep_next),
        (b"ood aux", &ood.aux),
        (b"ood aux next", &ood.aux_next),
        (b"ood quotient", &ood.quotient),
    ] {
        t.absorb_ext(label, v);
    }
}

/// Barrier after pass 4: the DEEP batching challenge.
pub fn draw_deep_challenge(t: &mut Transcript) -> EF {
    t.challenge_ext(b"deep")
}

/// FRI (per committed layer): the layer root, then one folding challenge for each of the
/// layer's `2^log_arity`-to-one folds, in fold order.
pub fn observe_fri_layer(t: &mut Transcript, root: &Digest, layer: FriLayer) -> Vec<EF> {
    t.absorb_digest(b"fri root", root);
    (0..layer.log_arity)
        .map(|_| t.challenge_ext(b"fri fold"))
        .collect()
}

/// FRI: the final constant.
pub fn observe_fri_final(t: &mut Transcript, value: EF) {
    t.absorb_ext(b"fri final", &[value]);
}

/// After FRI: grinding nonce, then query positions in the largest LDE domain.
pub fn observe_pow_and_sample_queries(
    t: &mut Transcript,
    nonce: u64,
    num_queries: usize,
    log_max_lde: usize,
) -> Vec<usize> {
    t.absorb_u64(b"pow nonce", nonce);
    (0..num_queries)
        .map(|_| t.challenge_index(b"query", log_max_lde))
        .collect()
}

/// What the prover draws after FRI: its grinding nonce, and the query positions in the largest
/// LDE domain (2^log_max_lde rows).
pub struct Queries {
    pub pow_nonce: u64,
    pub positions: Vec<usize>,
    pub log_max_lde: usize,
}

/// The prover's side of [`observe_pow_and_sample_queries`]: grinds for a nonce first.
pub fn grind_and_sample_queries(
    t: &mut Transcript,
    params: &ProofParams,
    shapes: &[InstanceShape],
) -> Queries {
    let pow_nonce = t.grind(params.pow_bits as u32);
    let log_max_lde = shapes
        .iter()
        .map(|s| s.log_height as usize)
        .max()
        .unwrap_or(0)
        + params.log_blowup as usize;
    let positions =
        observe_pow_and_sample_queries(t, pow_nonce, params.num_queries as usize, log_max_lde);
    Queries {
        pow_nonce,
        positions,
        log_max_lde,
    }
}

/// The row of an instance's LDE (size 2^log_lde) opened for query position `q` of the largest
/// LDE (size 2^log_max_lde). With bit-reversed rows, row `q >> k` of the smaller domain is
/// the point whose subgroup part is the 2^k-th power of point `q`'s: where the k-th FRI fold
/// of query `q` lands, and so where that instance's DEEP word joins.
pub fn query_row(q: usize, log_max_lde: usize, log_lde: usize) -> usize {
    q >> (log_max_lde - log_lde)
}

/// The distinct rows of an instance's LDE that the queries open, increasing.
pub fn query_rows(positions: &[usize], log_max_lde: usize, log_lde: usize) -> Vec<usize> {
    let mut rows: Vec<usize> = positions
        .iter()
        .map(|&q| query_row(q, log_max_lde, log_lde))
        .collect();
    rows.sort_unstable();
    rows.dedup();
    rows
}

/// The most two-to-one folds one committed FRI layer covers: a leaf holds up to
/// `2^MAX_FRI_LOG_ARITY` values.
pub const MAX_FRI_LOG_ARITY: usize = 3;

/// One committed FRI layer: the fold level it starts at (its word, of size
/// `2^(log_max_lde - level)`, is the DEEP codeword of the largest height folded `level` times)
/// and the two-to-one folds it covers. A leaf of its tree is the `2^log_arity` adjacent values
/// (in bit-reversed order) that those folds take to one value of the next layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FriLayer {
    pub level: usize,
    pub log_arity: usize,
}

impl FriLayer {
    /// log2 of the layer's word size, in a fold that starts at `2^log_max_lde`.
    pub fn log_size(&self, log_max_lde: usize) -> usize {
        log_max_lde - self.level
    }
}

/// FRI's committed layers over DEEP codewords of the log2 sizes `word_logs` (the largest starts
/// the fold; each smaller one joins where the fold reaches its size). Greedy: each layer folds
/// `MAX_FRI_LOG_ARITY` times, fewer where that would pass the size of a word still to join or
/// the final size `2^log_blowup` (where an honest word is constant). So a word joins only at a
/// committed layer, which is what lets a leaf's folds run without the words that join.
pub fn fri_layers(word_logs: impl IntoIterator<Item = usize>, log_blowup: usize) -> Vec<FriLayer> {
    let mut logs: Vec<usize> = word_logs.into_iter().collect();
    logs.sort_unstable();
    logs.dedup();
    let Some(&log_max) = logs.last() else {
        return Vec::new();
    };
    let mut layers = Vec::new();
    let mut log_s = log_max;
    while log_s > log_blowup {
        let join = logs.iter().rev().find(|&&l| l < log_s).copied();
        let next = (log_s.saturating_sub(MAX_FRI_LOG_ARITY))
            .max(log_blowup)
            .max(join.unwrap_or(0));
        layers.push(FriLayer {
            level: log_max - log_s,
            log_arity: log_s - next,
        });
        log_s = next;
    }
    layers
}

/// The distinct leaf (group) indices the queries open in a committed FRI layer, increasing.
pub fn fri_group_indices(positions: &[usize], layer: FriLayer) -> Vec<usize> {
    let mut idx: Vec<usize> = positions
        .iter()
        .map(|&q| q >> (layer.level + layer.log_arity))
        .collect();
    idx.sort_unstable();
    idx.dedup();
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arities(word_logs: &[usize], log_blowup: usize) -> Vec<usize> {
        let layers = fri_layers(word_logs.iter().copied(), log_blowup);
        let mut level = 0;
        for l in &layers {
            assert_eq!(l.level, level, "layers are contiguous");
            level += l.log_arity;
        }
        layers.iter().map(|l| l.log_arity).collect()
    }

    #[test]
    fn fri_layers_fold_by_eight_and_stop_at_every_join() {
        // One word: 20 folds to the final size 2, by 8 and then what is left.
        assert_eq!(arities(&[21], 1), [3, 3, 3, 3, 3, 3, 2]);
        // Words joining at 20, 19 and 16: layers end exactly there.
        assert_eq!(arities(&[21, 20, 19, 16, 4], 1), [1, 1, 3, 3, 3, 3, 3, 3]);
        let layers = fri_layers([21, 20, 19, 16, 4], 1);
        let ends: Vec<usize> = layers.iter().map(|l| 21 - l.level - l.log_arity).collect();
        for join in [20, 19, 16, 4] {
            assert!(ends.contains(&join), "a layer ends at {join}");
        }
        assert_eq!(arities(&[3, 3, 2], 2), [1]);
        assert_eq!(arities(&[2], 2), Vec::<usize>::new());
        assert!(fri_layers([], 1).is_empty());
    }

    #[test]
    fn group_indices_are_the_distinct_leaves() {
        let layer = FriLayer {
            level: 2,
            log_arity: 3,
        };
        assert_eq!(
            fri_group_indices(&[0, 31, 32, 64, 65, 1000], layer),
            [0, 1, 2, 31]
        );
    }
}
