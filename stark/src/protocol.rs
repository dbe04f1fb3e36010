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

/// FRI (per layer): the layer root, then its folding challenge.
pub fn observe_fri_layer(t: &mut Transcript, root: &Digest) -> EF {
    t.absorb_digest(b"fri root", root);
    t.challenge_ext(b"fri fold")
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

/// The distinct pair (leaf) indices the queries open in FRI layer `layer`, increasing.
pub fn fri_pair_indices(positions: &[usize], layer: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = positions.iter().map(|&q| q >> (layer + 1)).collect();
    idx.sort_unstable();
    idx.dedup();
    idx
}
