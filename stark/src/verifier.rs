//! The verifier. Every length and index read from the proof is checked against the shape the
//! AIRs and parameters imply before use; all work is bounded by the proof's size and
//! [`VerifierParams`]; every failure is an `Err`, never a panic.

use std::collections::{BTreeMap, HashMap};

use crate::air::{Air, MAX_TUPLE_LEN, When};
use crate::constraints::{AirError, PointValues, Table, compile_all};
use crate::domain::{MAX_LOG_LDE, last_row_selector_scale, lde_point};
use crate::field::{EF, F, Field, PrimeCharacteristicRing, TwoAdicField, ext};
use crate::fri::{self, FriQuery, leaf_hash};
use crate::merkle::{Digest, hash_row, verify_batch};
use crate::params::MAX_TOTAL_ROWS;
use crate::params::VerifierParams;
use crate::pass_tree::{self, PassFault, PassTree};
use crate::proof::{InstanceOod, InstanceOpening, Proof, TreeOpening};
use crate::protocol::{self, PublicInputs};
use crate::prover::{commit_preprocessed, deep_columns, deep_sums, opened_next};

/// Why a proof was rejected.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum VerifyError {
    #[error(transparent)]
    Air(#[from] AirError),
    #[error("invalid parameters: {0}")]
    Params(String),
    #[error("conjectured security {bits} bits is below the required {min}")]
    InsufficientSecurity { bits: u32, min: u32 },
    #[error("the proof is for another statement")]
    Statement,
    #[error("malformed proof: {0}")]
    Shape(String),
    #[error("preprocessed columns: {0}")]
    Preprocessed(String),
    #[error("proof-of-work nonce is invalid")]
    ProofOfWork,
    #[error("LogUp partial sums and public terms do not add up to zero")]
    LogUpSum,
    #[error("instance {0}: constraints do not match the quotient at the OOD point")]
    Constraints(usize),
    #[error("instance {instance}: {what} opening does not match its commitment")]
    Merkle { instance: usize, what: &'static str },
    #[error("the {0} pass tree's opening does not match its root")]
    PassMerkle(&'static str),
    #[error("FRI layer {0}: opening does not match its commitment")]
    FriOpening(usize),
    #[error("query {query}: FRI layer {layer} is inconsistent")]
    Fri { query: usize, layer: usize },
    #[error("a challenge hit a degenerate value")]
    Degenerate,
    #[error("the proof has {value} {what}, above the bound {bound} the soundness argument assumes")]
    Bound {
        what: &'static str,
        value: u64,
        bound: u64,
    },
}

/// A successful verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verified {
    pub security_bits: u32,
}

fn shape_err<T>(msg: impl Into<String>) -> Result<T, VerifyError> {
    Err(VerifyError::Shape(msg.into()))
}

/// Preprocessed commitments the verifier has computed, kept across verifications against the
/// same AIRs: each table's tree nodes at the level that joins the preprocessed pass tree, which
/// depend only on the table, its height, the blowup and that level. Recomputing them (an LDE
/// and a Merkle tree of every fixed table) is most of the work of verifying a small proof.
/// Use one cache per AIR list.
#[derive(Clone, Debug, Default)]
pub struct PreprocessedCache {
    nodes: HashMap<(u32, u8, u8, u8), Vec<Digest>>,
}

/// Verifies `proof` for `airs` and the public inputs.
pub fn verify(
    airs: &[&dyn Air],
    proof: &Proof,
    public: &PublicInputs,
    vp: &VerifierParams,
) -> Result<Verified, VerifyError> {
    verify_cached(airs, proof, public, vp, &mut PreprocessedCache::default())
}

/// [`verify`], reusing (and extending) `cache`, which must only ever have seen these `airs`.
pub fn verify_cached(
    airs: &[&dyn Air],
    proof: &Proof,
    public: &PublicInputs,
    vp: &VerifierParams,
    cache: &mut PreprocessedCache,
) -> Result<Verified, VerifyError> {
    let params = proof.params;
    params.validate().map_err(VerifyError::Params)?;
    let log_b = params.log_blowup as usize;
    let n_inst = proof.instances.len();
    if n_inst == 0 || n_inst > vp.max_instances {
        return shape_err(format!("{n_inst} instances"));
    }
    for (i, s) in proof.instances.iter().enumerate() {
        if s.table as usize >= airs.len() {
            return shape_err(format!("instance {i}: unknown table {}", s.table));
        }
        if i > 0 && s.table < proof.instances[i - 1].table {
            return shape_err("instances are not in canonical order");
        }
        if s.log_height < 1
            || s.log_height > vp.max_log_height
            || s.log_height as usize + log_b > MAX_LOG_LDE
        {
            return shape_err(format!("instance {i}: log height {}", s.log_height));
        }
    }
    let total_rows: u64 = proof
        .instances
        .iter()
        .fold(0u64, |acc, s| acc.saturating_add(1 << s.log_height));
    if total_rows > MAX_TOTAL_ROWS {
        return Err(VerifyError::Bound {
            what: "rows in all instances",
            value: total_rows,
            bound: MAX_TOTAL_ROWS,
        });
    }
    let log_max_lde = proof
        .instances
        .iter()
        .map(|s| s.log_height as usize)
        .max()
        .unwrap_or(0)
        + log_b;
    let bits = params.conjectured_security_bits(log_max_lde as u32);
    if bits < vp.min_security_bits {
        return Err(VerifyError::InsufficientSecurity {
            bits,
            min: vp.min_security_bits,
        });
    }
    if proof.statement != public.statement {
        return Err(VerifyError::Statement);
    }
    let tables = compile_all(airs)?;
    let table_of = |i: usize| &tables[proof.instances[i].table as usize];
    // FRI's committed layers follow from the instances' heights alone.
    let fri_layers = protocol::fri_layers(
        proof
            .instances
            .iter()
            .map(|s| s.log_height as usize + log_b),
        log_b,
    );
    check_shape(proof, &tables, fri_layers.len())?;

    // The preprocessed pass root is recomputed, never read from the proof.
    let log_join = params.log_join_lde();
    let log_lde = |i: usize| proof.instances[i].log_height as usize + log_b;
    let prep_members: Vec<usize> = (0..n_inst)
        .filter(|&i| table_of(i).prep_width > 0)
        .collect();
    let prep_join = pass_tree::join_log(log_join, prep_members.iter().map(|&i| log_lde(i)));
    let prep_key = |i: usize| {
        let s = &proof.instances[i];
        let level = pass_tree::join_level(prep_join, log_lde(i));
        (s.table, s.log_height, log_b as u8, level as u8)
    };
    for &i in &prep_members {
        let key = prep_key(i);
        if let std::collections::hash_map::Entry::Vacant(slot) = cache.nodes.entry(key) {
            let s = &proof.instances[i];
            let c = commit_preprocessed(airs[s.table as usize], table_of(i), s.log_height, log_b)
                .map_err(VerifyError::Preprocessed)?
                .ok_or_else(|| VerifyError::Preprocessed("missing".into()))?;
            slot.insert(c.tree.level(key.3 as usize).to_vec());
        }
    }
    let prep_root = if prep_members.is_empty() {
        None
    } else {
        let members: Vec<(usize, &[Digest])> = prep_members
            .iter()
            .map(|&i| (log_lde(i), cache.nodes[&prep_key(i)].as_slice()))
            .collect();
        let tree = PassTree::new(log_join, &members).map_err(VerifyError::Preprocessed)?;
        Some(tree.root())
    };

    // Replay the transcript.
    let mut t = protocol::start(&tables, &params, public, &proof.instances);
    protocol::observe_main(&mut t, prep_root.as_ref(), &proof.main_root);
    let lookup = protocol::draw_lookup_challenges(&mut t);
    protocol::observe_aux(&mut t, proof.aux_root.as_ref(), &proof.claimed_sums);
    let composition = protocol::draw_composition_challenge(&mut t);
    protocol::observe_quotient(&mut t, &proof.quotient_root);
    let z = protocol::draw_ood_point(&mut t);
    proof
        .ood
        .iter()
        .for_each(|o| protocol::observe_ood(&mut t, o));
    let beta = protocol::draw_deep_challenge(&mut t);
    let fri_betas: Vec<Vec<EF>> = proof
        .fri_roots
        .iter()
        .zip(&fri_layers)
        .map(|(r, fl)| protocol::observe_fri_layer(&mut t, r, *fl))
        .collect();
    protocol::observe_fri_final(&mut t, proof.fri_final);
    if !t.check_pow(params.pow_bits as u32, proof.pow_nonce) {
        return Err(VerifyError::ProofOfWork);
    }
    let positions = protocol::observe_pow_and_sample_queries(
        &mut t,
        proof.pow_nonce,
        params.num_queries as usize,
        log_max_lde,
    );

    // LogUp: partial sums plus public terms vanish.
    let arity = crate::constraints::bus_arities(&tables)?;
    for term in &public.boundary {
        if term.tuple.len() > MAX_TUPLE_LEN || arity.get(&term.bus) != Some(&term.tuple.len()) {
            return Err(VerifyError::Shape(format!(
                "public term on bus {}: no such bus or wrong tuple length",
                term.bus
            )));
        }
    }
    let claimed: Vec<EF> = proof.claimed_sums.iter().flatten().copied().collect();
    if logup_total(&claimed, public, &lookup)? != EF::ZERO {
        return Err(VerifyError::LogUpSum);
    }

    // Constraints at z, per instance.
    for (i, s) in proof.instances.iter().enumerate() {
        let claimed = proof.claimed_sums[i].unwrap_or_default();
        let ok = constraints_hold_at_z(
            table_of(i),
            s.log_height as usize,
            &proof.ood[i],
            &lookup,
            claimed,
            composition,
            z,
        )?;
        if !ok {
            return Err(VerifyError::Constraints(i));
        }
    }

    // DEEP coefficients and opened sums per instance.
    let mut offset = 0usize;
    let mut deep: Vec<(Vec<EF>, EF, EF, EF)> = Vec::with_capacity(n_inst);
    for i in 0..n_inst {
        let cols = deep_columns(table_of(i));
        let coeffs: Vec<EF> = beta
            .shifted_powers(beta.exp_u64(offset as u64))
            .take(cols)
            .collect();
        let (a, q) = deep_sums(&coeffs, &proof.ood[i]);
        let nx = opened_next(&coeffs, &proof.ood[i]);
        deep.push((
            coeffs,
            a + q,
            nx,
            z * F::two_adic_generator(proof.instances[i].log_height as usize),
        ));
        offset += cols;
    }

    // Batch Merkle openings: every pass tree, every FRI layer.
    let rows_of: Vec<Vec<usize>> = (0..n_inst)
        .map(|i| protocol::query_rows(&positions, log_max_lde, log_lde(i)))
        .collect();
    let check_pass = |what: &'static str,
                      root: Option<&Digest>,
                      top: &[Digest],
                      pick: fn(&InstanceOpening) -> Option<&TreeOpening>,
                      width: fn(&Table) -> usize|
     -> Result<(), VerifyError> {
        let mut members = Vec::new();
        let mut index = Vec::new();
        for (i, op) in proof.openings.iter().enumerate() {
            let err = VerifyError::Merkle { instance: i, what };
            let w = width(table_of(i));
            let o = match (w, pick(op)) {
                (0, None) => continue,
                (0, Some(_)) | (_, None) => return Err(err),
                (_, Some(o)) => o,
            };
            if o.rows.len() != rows_of[i].len() || o.rows.iter().any(|r| r.len() != w) {
                return Err(err);
            }
            members.push(pass_tree::MemberCheck {
                log_lde: log_lde(i),
                leaves: rows_of[i]
                    .iter()
                    .zip(&o.rows)
                    .map(|(&r, v)| (r, hash_row(v)))
                    .collect(),
                siblings: &o.siblings,
            });
            index.push(i);
        }
        let fault = VerifyError::PassMerkle(what);
        let (Some(root), false) = (root, members.is_empty()) else {
            return if members.is_empty() && root.is_none() && top.is_empty() {
                Ok(())
            } else {
                Err(fault)
            };
        };
        pass_tree::verify_pass(root, log_join, log_max_lde, &positions, &members, top).map_err(
            |f| match f {
                PassFault::Member(m) => VerifyError::Merkle {
                    instance: index[m],
                    what,
                },
                PassFault::Pass => fault,
            },
        )
    };
    let tops = &proof.pass_siblings;
    check_pass(
        "main",
        Some(&proof.main_root),
        &tops.main,
        |o| Some(&o.main),
        |t| t.main_width,
    )?;
    check_pass(
        "preprocessed",
        prep_root.as_ref(),
        &tops.prep,
        |o| o.prep.as_ref(),
        |t| t.prep_width,
    )?;
    check_pass(
        "aux",
        proof.aux_root.as_ref(),
        &tops.aux,
        |o| o.aux.as_ref(),
        |t| t.aux_width(),
    )?;
    check_pass(
        "quotient",
        Some(&proof.quotient_root),
        &tops.quotient,
        |o| Some(&o.quotient),
        |t| t.quotient_width(),
    )?;
    let mut leaves_of: Vec<Vec<usize>> = Vec::with_capacity(fri_layers.len());
    for (l, (lo, fl)) in proof.fri_openings.iter().zip(&fri_layers).enumerate() {
        let idx = protocol::fri_group_indices(&positions, *fl);
        let n = 1 << fl.log_arity;
        if lo.values.len() != idx.len() * n {
            return Err(VerifyError::FriOpening(l));
        }
        let leaves: Vec<(usize, Digest)> = idx
            .iter()
            .zip(lo.values.chunks_exact(n))
            .map(|(&i, v)| (i, leaf_hash(v)))
            .collect();
        if !verify_batch(
            &proof.fri_roots[l],
            fl.log_size(log_max_lde) - fl.log_arity,
            &leaves,
            &lo.siblings,
        ) {
            return Err(VerifyError::FriOpening(l));
        }
        leaves_of.push(idx);
    }
    let find = |list: &[usize], x: usize| {
        list.binary_search(&x)
            .map_err(|_| VerifyError::Shape("opening lookup".into()))
    };

    // Per query: DEEP from the opened rows, then the FRI folding chain.
    for (qi, &q) in positions.iter().enumerate() {
        let mut deep_at: BTreeMap<usize, EF> = BTreeMap::new();
        for (i, (s, op)) in proof.instances.iter().zip(&proof.openings).enumerate() {
            let log_lde = s.log_height as usize + log_b;
            let row = protocol::query_row(q, log_max_lde, log_lde);
            let k = find(&rows_of[i], row)?;
            let (coeffs, v_z, v_zg, zg) = &deep[i];
            let x = lde_point(log_lde, row);
            let mut a = EF::ZERO;
            let mut c = 0;
            let opened = op.main.rows[k]
                .iter()
                .chain(op.prep.iter().flat_map(|o| &o.rows[k]))
                .chain(op.aux.iter().flat_map(|o| &o.rows[k]));
            for v in opened {
                a += coeffs[c] * *v;
                c += 1;
            }
            let mut aq = EF::ZERO;
            for v in &op.quotient.rows[k] {
                aq += coeffs[c] * *v;
                c += 1;
            }
            let inv_z = (z - x).try_inverse().ok_or(VerifyError::Degenerate)?;
            let inv_zg = (*zg - x).try_inverse().ok_or(VerifyError::Degenerate)?;
            let d = (*v_z - a - aq) * inv_z + (*v_zg - a) * inv_zg;
            *deep_at.entry(log_lde).or_insert(EF::ZERO) += d;
        }
        fri::check_query(
            &FriQuery {
                q,
                log_max_lde,
                layers: &fri_layers,
                openings: &proof.fri_openings,
                leaves: &leaves_of,
                betas: &fri_betas,
                final_value: proof.fri_final,
            },
            deep_at,
        )
        .map_err(|layer| VerifyError::Fri { query: qi, layer })?;
    }
    Ok(Verified {
        security_bits: bits,
    })
}

/// Checks every vector length in the proof against the shape the tables and parameters imply.
fn check_shape(proof: &Proof, tables: &[Table], fri_layers: usize) -> Result<(), VerifyError> {
    let n = proof.instances.len();
    if proof.claimed_sums.len() != n || proof.ood.len() != n {
        return shape_err("per-instance vectors have the wrong length");
    }
    let any_aux = proof
        .instances
        .iter()
        .any(|s| tables[s.table as usize].has_aux());
    if proof.aux_root.is_some() != any_aux {
        return shape_err("aux pass root presence");
    }
    for (i, s) in proof.instances.iter().enumerate() {
        let t = &tables[s.table as usize];
        if proof.claimed_sums[i].is_some() != t.has_aux() {
            return shape_err(format!("instance {i}: claimed sum presence"));
        }
        let o: &InstanceOod = &proof.ood[i];
        let lens = [
            (o.main.len(), t.main_width),
            (o.main_next.len(), t.main_width),
            (o.prep.len(), t.prep_width),
            (o.prep_next.len(), t.prep_width),
            (o.aux.len(), t.aux_width()),
            (o.aux_next.len(), t.aux_width()),
            (o.quotient.len(), t.quotient_width()),
        ];
        if lens.iter().any(|(a, b)| a != b) {
            return shape_err(format!("instance {i}: OOD value counts"));
        }
    }
    if proof.fri_roots.len() != fri_layers {
        return shape_err("FRI layer count");
    }
    if proof.openings.len() != n || proof.fri_openings.len() != fri_layers {
        return shape_err("opening counts");
    }
    Ok(())
}

/// Sum of the claimed partial sums and the public bus terms (zero for an honest proof).
pub fn logup_total(
    claimed: &[EF],
    public: &PublicInputs,
    lookup: &[EF; 2],
) -> Result<EF, VerifyError> {
    let [gamma, alpha] = *lookup;
    let mut total: EF = claimed.iter().copied().sum();
    for term in &public.boundary {
        let mut acc = EF::from(F::from_u64(term.bus as u64));
        let mut pw = alpha;
        for v in &term.tuple {
            acc += pw * *v;
            pw *= alpha;
        }
        let inv = (gamma - acc).try_inverse().ok_or(VerifyError::Degenerate)?;
        total += inv * term.multiplicity;
    }
    Ok(total)
}

/// Whether an instance's OOD values satisfy `C(z) = Q(z) * (selector terms)`: every constraint,
/// combined with powers of `composition`, against the quotient pieces at z. `ood` must have the
/// table's shape (checked by the caller).
pub fn constraints_hold_at_z(
    table: &Table,
    log_height: usize,
    o: &InstanceOod,
    lookup: &[EF; 2],
    claimed: EF,
    composition: EF,
    z: EF,
) -> Result<bool, VerifyError> {
    let u = ext(F::ZERO, F::ONE);
    let pair = |v: &[EF]| -> Vec<EF> { v.chunks_exact(2).map(|c| c[0] + u * c[1]).collect() };
    let (aux, aux_next) = (pair(&o.aux), pair(&o.aux_next));
    let w_last = F::two_adic_generator(log_height).inverse();
    let zn = z.exp_power_of_2(log_height);
    let zh_inv = (zn - EF::ONE)
        .try_inverse()
        .ok_or(VerifyError::Degenerate)?;
    let first_inv = (z - EF::ONE).try_inverse().ok_or(VerifyError::Degenerate)?;
    let last_inv = (z - w_last).try_inverse().ok_or(VerifyError::Degenerate)?;
    let is_last = (zn - EF::ONE) * last_inv * last_row_selector_scale(log_height);
    let vals = PointValues {
        main: &o.main,
        main_next: &o.main_next,
        prep: &o.prep,
        prep_next: &o.prep_next,
        aux: &aux,
        aux_next: &aux_next,
        challenges: lookup,
        claimed,
        is_last,
    };
    let Some(outs) = table.constraints.eval_point(&vals) else {
        return Ok(false);
    };
    let mut acc = EF::ZERO;
    let mut pw = EF::ONE;
    for ((when, _), v) in table.constraints.outputs.iter().zip(outs) {
        let sel = match when {
            When::EveryRow => zh_inv,
            When::Transition => (z - w_last) * zh_inv,
            When::FirstRow => first_inv,
            When::LastRow => last_inv,
        };
        acc += pw * v * sel;
        pw *= composition;
    }
    let mut q = EF::ZERO;
    let mut zp = EF::ONE;
    for c in o.quotient.chunks_exact(2) {
        q += zp * (c[0] + u * c[1]);
        zp *= zn;
    }
    Ok(q == acc)
}
