//! Pass 2, aux: execute -> aux (LogUp columns, claimed sum) -> commit -> spill -> collect.

use stark::pass_tree::JoinNodes;
use std::sync::Arc;

use pipeline::{ChunkDescriptor, Metrics};
use stark::field::EF;
use stark::prover::{self, Committed};
use stark::{F, RowMajorMatrix};

use crate::error::Error;
use crate::store::Matrix;

use super::common::*;

/// Pass 2: LogUp aux columns; their roots and claimed partial sums. What is spilled depends
/// on the store: with kept LDEs the aux LDE and a level of its tree (later passes work on
/// LDEs), otherwise the aux trace (rebuilding it, a batch inversion per bus interaction and
/// row, costs more than reading it back).
pub(super) fn pass_aux(
    run: &Run,
    metrics: &Metrics,
    lookup: [EF; 2],
) -> Result<Vec<(Option<AuxCommit>, ChunkDescriptor)>, Error> {
    let ctx = &run.ctx;
    ctx.spill.begin_pass("aux")?;
    let mut g = graph(ctx, "aux", Some(run.records.len() as u64));
    let src = traces(&mut g, run, |_| true);
    let (c, records, prep) = (
        Arc::clone(ctx),
        Arc::clone(&run.records),
        Arc::clone(&run.prep),
    );
    let aux = g.map("aux", src, move |it: Item<Option<Matrix>>| {
        let r = &records[it.index];
        let p = prep.get(&(r.table(), r.log_height)).map(|p| p.0.as_view());
        let trace = trace_of(&it)?.view();
        let a = prover::aux_trace(&c.tables[r.table()], trace, p, &lookup)?;
        Ok::<_, Error>(it.with(a))
    });
    let (c, records) = (Arc::clone(ctx), Arc::clone(&run.records));
    let committed = g.map("commit", aux, move |it: Item<Option<prover::AuxTrace>>| {
        let Item { index, desc, data } = it;
        let Some(a) = data else {
            return Ok::<_, Error>(Item {
                index,
                desc,
                data: None,
            });
        };
        let claimed_sum = a.claimed_sum;
        let kept = records[index].ldes_kept;
        let (committed, trace) = if kept {
            (prover::commit_trace(a.trace, c.log_b), None)
        } else {
            (
                prover::commit_trace_view(a.trace.as_view(), c.log_b),
                Some(a.trace),
            )
        };
        let commitment = AuxCommit {
            root: committed.root(),
            join: JoinNodes::of(&committed.tree, c.config.params.log_join_lde()),
            claimed_sum,
        };
        let keep = kept.then_some(committed);
        let data = Some((commitment, trace, keep));
        Ok::<_, Error>(Item { index, desc, data })
    });
    let c = Arc::clone(ctx);
    type AuxCommitted = Option<(AuxCommit, Option<RowMajorMatrix<F>>, Option<Committed>)>;
    let out = g.map("spill", committed, move |it: Item<AuxCommitted>| {
        let Item { index, desc, data } = it;
        let Some((commitment, trace, committed)) = data else {
            let data = (None, desc.clone());
            return Ok::<_, Error>(Item { index, desc, data });
        };
        let mut desc = desc;
        if let Some(mut trace) = trace {
            desc = c.write(&desc, "aux", kind::AUX_TRACE, &mut trace)?;
        }
        if let Some(committed) = committed {
            desc = c.write_committed(&desc, "aux", AUX, committed)?;
        }
        let data = (Some(commitment), desc.clone());
        Ok::<_, Error>(Item { index, desc, data })
    });
    let aux = collect_indexed(g, metrics, "aux", out, run.records.len())?;
    ctx.spill.end_pass("aux")?;
    Ok(aux)
}
