//! Pass 3, quotient: read -> map LDEs -> quotient (evaluate, split, commit) -> spill -> collect.

use stark::pass_tree::JoinNodes;
use std::sync::Arc;

use pipeline::{ChunkDescriptor, Metrics};
use stark::field::EF;
use stark::prover::{self, Committed, InstanceLdes};
use stark::{F, RowMajorMatrix};

use crate::error::Error;

use super::common::*;

/// Pass 3: quotients. With kept LDEs the quotient LDE and a level of its tree are spilled
/// (the OOD, DEEP and open passes map it); otherwise the pieces' coefficients (n rows, half
/// the LDE): the OOD and DEEP passes read them instead of evaluating the constraints again,
/// and the open pass extends them to rebuild the tree.
pub(super) fn pass_quotient(
    run: &Run,
    metrics: &Metrics,
    lookup: [EF; 2],
    composition: EF,
) -> Result<Vec<(QuotientCommit, ChunkDescriptor)>, Error> {
    let ctx = &run.ctx;
    ctx.spill.begin_pass("quotient")?;
    let mut g = graph(ctx, "quotient", Some(run.records.len() as u64));
    let src = ldes(&mut g, run);
    let (c, records, prep, aux) = (
        Arc::clone(ctx),
        Arc::clone(&run.records),
        Arc::clone(&run.prep),
        Arc::clone(&run.aux),
    );
    let quotients = g.map("quotient", src, move |it: Item<Ldes>| {
        let r = &records[it.index];
        let ldes = InstanceLdes {
            main: it.data.main.view(),
            prep: prep
                .get(&(r.table(), r.log_height))
                .map(|p| p.1.lde.as_view()),
            aux: it.data.aux.as_ref().map(|a| a.view()),
        };
        let claimed = aux[it.index]
            .as_ref()
            .map(|a| a.claimed_sum)
            .unwrap_or_default();
        let (q, coeffs) = prover::quotient_with_coeffs(
            &c.tables[r.table()],
            r.log_height as usize,
            ldes,
            &lookup,
            claimed,
            composition,
            c.log_b,
        )?;
        Ok::<_, Error>(it.with((prover::commit_lde(q), coeffs)))
    });
    let (c, records) = (Arc::clone(ctx), Arc::clone(&run.records));
    let out = g.map(
        "spill",
        quotients,
        move |it: Item<(Committed, RowMajorMatrix<F>)>| {
            let Item { index, desc, data } = it;
            let (committed, mut coeffs) = data;
            let commit = QuotientCommit {
                root: committed.root(),
                join: JoinNodes::of(&committed.tree, c.config.params.log_join_lde()),
            };
            let desc = if records[index].ldes_kept {
                c.write_committed(&desc, "quotient", QUOTIENT, committed)?
            } else {
                c.write(&desc, "quotient", kind::QUOTIENT_COEFFS, &mut coeffs)?
            };
            let data = (commit, desc.clone());
            Ok::<_, Error>(Item { index, desc, data })
        },
    );
    let q = collect_indexed(g, metrics, "quotient", out, run.records.len())?;
    ctx.spill.end_pass("quotient")?;
    Ok(q)
}
