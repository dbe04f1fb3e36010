//! Witness checks for AIR authors: evaluate constraints row by row on the trace and balance
//! every bus as plain multisets, with messages that name the failing row. Not part of the
//! protocol; the prover does not call them.

use std::collections::{BTreeMap, HashMap};

use p3_matrix::dense::RowMajorMatrix;

use crate::air::{Air, When};
use crate::constraints::{BlockScratch, RowSource, Table, compile};
use crate::field::{EF, F, PrimeCharacteristicRing, canonical};
use crate::protocol::PublicInputs;
use crate::prove::InstanceTrace;

/// Checks the AIR's own constraints (not LogUp) on every row of one instance.
pub fn check_constraints(air: &dyn Air, trace: &RowMajorMatrix<F>) -> Result<(), String> {
    let table = compile(air).map_err(|e| e.to_string())?;
    let n = trace.values.len() / trace.width.max(1);
    if trace.width != table.main_width || !n.is_power_of_two() || n < 2 {
        return Err(format!(
            "{}: trace shape {}x{} does not fit",
            table.name, n, trace.width
        ));
    }
    let prep = crate::prover::preprocessed_trace(air, &table, n.trailing_zeros() as u8)?;
    let aux = vec![F::ZERO; n * table.aux_width()];
    let empty = Vec::new();
    let src = RowSource {
        main: &trace.values,
        main_width: table.main_width,
        prep: prep.as_ref().map(|p| &p.values).unwrap_or(&empty),
        prep_width: table.prep_width,
        aux: &aux,
        aux_width: table.aux_width(),
    };
    let prog = &table.constraints;
    let mut s = BlockScratch::new(prog, 1);
    let challenges = [EF::ONE; crate::constraints::NUM_LOOKUP_CHALLENGES];
    for r in 0..n {
        let is_last = [F::from_bool(r + 1 == n)];
        prog.eval_block(
            &src,
            &[r],
            &[(r + 1) % n],
            &challenges,
            EF::ZERO,
            &is_last,
            &mut s,
        );
        for c in 0..table.num_air_constraints {
            let applies = match prog.outputs[c].0 {
                When::EveryRow => true,
                When::Transition => r + 1 < n,
                When::FirstRow => r == 0,
                When::LastRow => r + 1 == n,
            };
            if applies && prog.output(&s, c, 0) != EF::ZERO {
                return Err(format!(
                    "{}: constraint {c} ({:?}) fails on row {r}",
                    table.name, prog.outputs[c].0
                ));
            }
        }
    }
    Ok(())
}

/// Sums every bus tuple's signed multiplicity over all instances and public terms; reports
/// the first tuples that do not cancel.
pub fn check_buses(
    airs: &[&dyn Air],
    traces: &[InstanceTrace],
    public: &PublicInputs,
) -> Result<(), String> {
    let bad: Vec<String> = bus_imbalance(airs, traces, public)?
        .iter()
        .take(5)
        .map(|((bus, t), m)| format!("bus {bus} tuple {t:?}: net multiplicity {}", canonical(*m)))
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(bad.join("; "))
    }
}

/// Every (bus, tuple) whose signed multiplicities (sends positive, public terms included) do
/// not cancel, with its net multiplicity.
pub fn bus_imbalance(
    airs: &[&dyn Air],
    traces: &[InstanceTrace],
    public: &PublicInputs,
) -> Result<BTreeMap<(u32, Vec<u64>), F>, String> {
    let tables: Vec<Table> = airs
        .iter()
        .map(|a| compile(*a))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let mut sums: HashMap<(u32, Vec<u64>), F> = HashMap::new();
    for term in &public.boundary {
        *sums
            .entry((term.bus, term.tuple.iter().map(|v| canonical(*v)).collect()))
            .or_insert(F::ZERO) += term.multiplicity;
    }
    for it in traces {
        let table = tables.get(it.table).ok_or("unknown table")?;
        let n = it.trace.values.len() / table.main_width;
        let prep =
            crate::prover::preprocessed_trace(airs[it.table], table, n.trailing_zeros() as u8)?;
        let empty = Vec::new();
        let src = RowSource {
            main: &it.trace.values,
            main_width: table.main_width,
            prep: prep.as_ref().map(|p| &p.values).unwrap_or(&empty),
            prep_width: table.prep_width,
            aux: &[],
            aux_width: 0,
        };
        let prog = &table.interaction_values;
        let mut s = BlockScratch::new(prog, 1);
        for r in 0..n {
            prog.eval_block(&src, &[r], &[r], &[], EF::ZERO, &[], &mut s);
            let mut o = 0;
            for inter in &table.interactions {
                let len = inter.values.len();
                let m = prog.output_base(&s, o + len, 0);
                if m != F::ZERO {
                    let tuple: Vec<u64> = (0..len)
                        .map(|k| canonical(prog.output_base(&s, o + k, 0)))
                        .collect();
                    *sums.entry((inter.bus, tuple)).or_insert(F::ZERO) +=
                        if inter.is_send { m } else { -m };
                }
                o += len + 1;
            }
        }
    }
    Ok(sums.into_iter().filter(|(_, m)| *m != F::ZERO).collect())
}
