//! The in-memory prover: the per-instance steps of [`crate::prover`] composed pass by pass.

use std::collections::HashMap;

use p3_matrix::dense::RowMajorMatrix;

use crate::air::Air;
use crate::constraints::compile_all;
use crate::field::F;
use crate::fri;
use crate::merkle::MerkleTree;
use crate::params::ProofParams;
use crate::pass_tree::{JoinNodes, PassTree, PassTrees};
use crate::proof::{InstanceOpening, InstanceShape, Proof};
use crate::protocol::{self, PublicInputs};
use crate::prover::{
    AuxTrace, Committed, DeepAccumulator, InstanceLdes, ProveError, aux_trace, check_trace,
    commit_lde, commit_trace, commit_trace_view, ood, preprocessed_trace, quotient,
};

/// One instance (chunk) of a table: its table index and main trace (natural row order).
#[derive(Clone, Debug)]
pub struct InstanceTrace {
    pub table: usize,
    pub trace: RowMajorMatrix<F>,
}

/// Test hook: lets a test corrupt the witness between steps (to check every check bites).
#[doc(hidden)]
pub enum Tamper<'a> {
    /// Before the main commitment.
    Main {
        instance: usize,
        trace: &'a mut RowMajorMatrix<F>,
    },
    /// Before the aux commitment (the claimed sum may be changed too).
    Aux {
        instance: usize,
        aux: &'a mut AuxTrace,
    },
}

/// Proves that `traces` (sorted by table, then chunk) satisfy `airs` and balance every bus
/// together with the public boundary terms. It proves whatever it is given: a witness that
/// does not satisfy the AIRs yields a proof the verifier rejects (see [`prove_checked`]).
pub fn prove(
    airs: &[&dyn Air],
    traces: Vec<InstanceTrace>,
    public: &PublicInputs,
    params: &ProofParams,
) -> Result<Proof, ProveError> {
    prove_inner(airs, traces, public, params, false, None)
}

/// [`prove`], but a witness that does not satisfy the AIRs is reported as
/// [`ProveError::Unsatisfied`] (buses checked after the aux pass, constraints at the OOD point,
/// exactly as the verifier would) instead of producing a proof that fails to verify.
pub fn prove_checked(
    airs: &[&dyn Air],
    traces: Vec<InstanceTrace>,
    public: &PublicInputs,
    params: &ProofParams,
) -> Result<Proof, ProveError> {
    prove_inner(airs, traces, public, params, true, None)
}

/// Like [`prove`], calling `tamper` between steps (tests only).
#[doc(hidden)]
pub fn prove_with_tamper(
    airs: &[&dyn Air],
    traces: Vec<InstanceTrace>,
    public: &PublicInputs,
    params: &ProofParams,
    tamper: &mut dyn FnMut(Tamper<'_>),
) -> Result<Proof, ProveError> {
    prove_inner(airs, traces, public, params, false, Some(tamper))
}

fn prove_inner(
    airs: &[&dyn Air],
    mut traces: Vec<InstanceTrace>,
    public: &PublicInputs,
    params: &ProofParams,
    self_check: bool,
    mut tamper: Option<&mut dyn FnMut(Tamper<'_>)>,
) -> Result<Proof, ProveError> {
    let mut tamper = |t: Tamper<'_>| {
        if let Some(f) = tamper.as_mut() {
            f(t)
        }
    };
    params.validate().map_err(ProveError::Params)?;
    let tables = compile_all(airs)?;
    let log_b = params.log_blowup as usize;
    let shapes = instance_shapes(&tables, &traces, log_b)?;
    let mut t = protocol::start(&tables, params, public, &shapes);

    // Pass 1: main commitments (preprocessed ones are shared per (table, height)).
    let mut prep: HashMap<(usize, u8), (RowMajorMatrix<F>, Committed)> = HashMap::new();
    let mut mains = Vec::with_capacity(traces.len());
    for (i, it) in traces.iter_mut().enumerate() {
        let s = shapes[i];
        let table = &tables[it.table];
        if table.prep_width > 0 && !prep.contains_key(&(it.table, s.log_height)) {
            let m = preprocessed_trace(airs[it.table], table, s.log_height)
                .map_err(|msg| ProveError::Instance { index: i, msg })?
                .unwrap();
            let c = commit_trace_view(m.as_view(), log_b);
            prep.insert((it.table, s.log_height), (m, c));
        }
        tamper(Tamper::Main {
            instance: i,
            trace: &mut it.trace,
        });
        mains.push(commit_trace_view(it.trace.as_view(), log_b));
    }
    let prep_of = |i: usize| prep.get(&(shapes[i].table as usize, shapes[i].log_height));
    let log_lde = |i: usize| shapes[i].log_height as usize + log_b;
    let prep_pass = join_trees(
        params,
        (0..shapes.len()).filter_map(|i| prep_of(i).map(|p| (log_lde(i), &p.1.tree))),
    )?;
    let main_pass = join_trees(
        params,
        mains.iter().enumerate().map(|(i, c)| (log_lde(i), &c.tree)),
    )?
    .expect("an instance");
    protocol::observe_main(
        &mut t,
        prep_pass.as_ref().map(|p| p.root()).as_ref(),
        &main_pass.root(),
    );
    let lookup = protocol::draw_lookup_challenges(&mut t);

    // Pass 2: LogUp aux columns.
    let mut auxs: Vec<Option<(Committed, crate::field::EF)>> = Vec::with_capacity(traces.len());
    for (i, it) in traces.iter().enumerate() {
        let table = &tables[it.table];
        let p = prep.get(&(it.table, shapes[i].log_height)).map(|p| &p.0);
        let entry = match aux_trace(table, it.trace.as_view(), p.map(|p| p.as_view()), &lookup)? {
            None => None,
            Some(mut a) => {
                tamper(Tamper::Aux {
                    instance: i,
                    aux: &mut a,
                });
                Some((commit_trace(a.trace, log_b), a.claimed_sum))
            }
        };
        auxs.push(entry);
    }
    drop(traces);
    let aux_pass = join_trees(
        params,
        auxs.iter()
            .enumerate()
            .filter_map(|(i, a)| a.as_ref().map(|a| (log_lde(i), &a.0.tree))),
    )?;
    let claimed_sums: Vec<_> = auxs.iter().map(|a| a.as_ref().map(|a| a.1)).collect();
    protocol::observe_aux(
        &mut t,
        aux_pass.as_ref().map(|p| p.root()).as_ref(),
        &claimed_sums,
    );
    if self_check {
        let arity = crate::constraints::bus_arities(&tables)?;
        if let Some(term) = public
            .boundary
            .iter()
            .find(|t| arity.get(&t.bus) != Some(&t.tuple.len()))
        {
            return Err(ProveError::Unsatisfied(format!(
                "public term on bus {}: no such bus or wrong tuple length",
                term.bus
            )));
        }
        let claimed: Vec<_> = claimed_sums.iter().flatten().copied().collect();
        let total = crate::verifier::logup_total(&claimed, public, &lookup)
            .map_err(|_| ProveError::Degenerate("zero public fingerprint"))?;
        if total != <crate::field::EF as crate::field::PrimeCharacteristicRing>::ZERO {
            return Err(ProveError::Unsatisfied(
                "the buses do not balance (see stark::debug::check_buses)".into(),
            ));
        }
    }
    let composition = protocol::draw_composition_challenge(&mut t);

    let ldes = |i: usize| InstanceLdes {
        main: mains[i].lde.as_view(),
        prep: prep
            .get(&(shapes[i].table as usize, shapes[i].log_height))
            .map(|p| p.1.lde.as_view()),
        aux: auxs[i].as_ref().map(|a| a.0.lde.as_view()),
    };

    // Pass 3: quotients.
    let mut quotients = Vec::with_capacity(shapes.len());
    for (i, s) in shapes.iter().enumerate() {
        let table = &tables[s.table as usize];
        let claimed = claimed_sums[i].unwrap_or_default();
        let q = quotient(
            table,
            s.log_height as usize,
            ldes(i),
            &lookup,
            claimed,
            composition,
            log_b,
        )?;
        quotients.push(commit_lde(q));
    }
    let quotient_pass = join_trees(
        params,
        quotients
            .iter()
            .enumerate()
            .map(|(i, c)| (log_lde(i), &c.tree)),
    )?
    .expect("an instance");
    protocol::observe_quotient(&mut t, &quotient_pass.root());
    let z = protocol::draw_ood_point(&mut t);

    // Pass 4: out-of-domain values.
    let mut oods = Vec::with_capacity(shapes.len());
    for (i, s) in shapes.iter().enumerate() {
        let o = ood(
            &tables[s.table as usize],
            s.log_height as usize,
            ldes(i),
            quotients[i].lde.as_view(),
            z,
        )?;
        if self_check {
            let table = &tables[s.table as usize];
            let claimed = claimed_sums[i].unwrap_or_default();
            let ok = crate::verifier::constraints_hold_at_z(
                table,
                s.log_height as usize,
                &o,
                &lookup,
                claimed,
                composition,
                z,
            )
            .map_err(|_| ProveError::Degenerate("z on the trace domain"))?;
            if !ok {
                return Err(ProveError::Unsatisfied(format!(
                    "instance {i} ({}): constraints do not hold (see stark::debug::check_constraints)",
                    table.name
                )));
            }
        }
        protocol::observe_ood(&mut t, &o);
        oods.push(o);
    }
    let beta = protocol::draw_deep_challenge(&mut t);

    // Pass 5: DEEP codewords per height.
    let mut deep = DeepAccumulator::new(&tables, &shapes, z, beta, log_b);
    for (i, s) in shapes.iter().enumerate() {
        deep.add(
            &tables[s.table as usize],
            i,
            ldes(i),
            quotients[i].lde.as_view(),
            &oods[i],
        )?;
    }

    // Pass 6: FRI, grinding, queries.
    let fri = fri::prove(std::mem::take(&mut deep.codewords), &mut t, log_b)?;
    let protocol::Queries {
        pow_nonce,
        positions,
        log_max_lde,
    } = protocol::grind_and_sample_queries(&mut t, params, &shapes);

    // Pass 7: openings, batched per tree, trimmed to below the pass trees' join layers.
    let mut openings: Vec<InstanceOpening> = (0..shapes.len())
        .map(|i| {
            let rows = protocol::query_rows(&positions, log_max_lde, log_lde(i));
            InstanceOpening {
                main: mains[i].open(&rows),
                prep: prep_of(i).map(|p| p.1.open(&rows)),
                aux: auxs[i].as_ref().map(|a| a.0.open(&rows)),
                quotient: quotients[i].open(&rows),
            }
        })
        .collect();
    let passes = PassTrees {
        prep: prep_pass.as_ref(),
        main: &main_pass,
        aux: aux_pass.as_ref(),
        quotient: &quotient_pass,
    };
    let log_ldes: Vec<usize> = (0..shapes.len()).map(log_lde).collect();
    let pass_siblings = passes.open(&mut openings, &log_ldes, &positions, log_max_lde);
    let fri_openings = fri.open(&positions);

    Ok(Proof {
        params: *params,
        statement: public.statement,
        instances: shapes,
        main_root: main_pass.root(),
        aux_root: aux_pass.as_ref().map(|p| p.root()),
        claimed_sums,
        quotient_root: quotient_pass.root(),
        ood: oods,
        fri_roots: fri.roots.clone(),
        fri_final: fri.final_value,
        pow_nonce,
        openings,
        pass_siblings,
        fri_openings,
    })
}

/// The pass tree over in-memory trees (each an instance's LDE height and tree, in instance
/// order): `None` without members.
pub(crate) fn join_trees<'a>(
    params: &ProofParams,
    members: impl IntoIterator<Item = (usize, &'a MerkleTree)>,
) -> Result<Option<PassTree>, ProveError> {
    let log_join = params.log_join_lde();
    let nodes: Vec<JoinNodes> = members
        .into_iter()
        .map(|(_, tree)| JoinNodes::of(tree, log_join))
        .collect();
    JoinNodes::join(log_join, &nodes).map_err(ProveError::Shape)
}

/// The instances' shapes, checked: known tables, sorted by table, traces that fit their table,
/// LDEs within the field's two-adicity.
pub(crate) fn instance_shapes(
    tables: &[crate::constraints::Table],
    traces: &[InstanceTrace],
    log_b: usize,
) -> Result<Vec<InstanceShape>, ProveError> {
    if traces.is_empty() {
        return Err(ProveError::Params("no instances".into()));
    }
    let mut shapes = Vec::with_capacity(traces.len());
    for (i, it) in traces.iter().enumerate() {
        let Some(table) = tables.get(it.table) else {
            return Err(ProveError::Instance {
                index: i,
                msg: format!("unknown table {}", it.table),
            });
        };
        if i > 0 && it.table < traces[i - 1].table {
            return Err(ProveError::Instance {
                index: i,
                msg: "instances must be sorted by table".into(),
            });
        }
        let log_height = check_trace(table, &it.trace, i)?;
        if log_height as usize + log_b > crate::domain::MAX_LOG_LDE {
            return Err(ProveError::Instance {
                index: i,
                msg: "LDE larger than the field's two-adicity".into(),
            });
        }
        shapes.push(InstanceShape {
            table: it.table as u32,
            log_height,
        });
    }
    Ok(shapes)
}
