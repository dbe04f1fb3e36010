//! Pass 5, deep: read -> map -> deep (one codeword per LDE height).

use std::sync::Arc;

use pipeline::{BoxError, Metrics};
use stark::field::EF;
use stark::proof::InstanceOod;
use stark::prover::DeepAccumulator;

use crate::error::Error;

use super::common::*;

/// Pass 5: DEEP codewords (one per LDE height), accumulated in the sink in arrival order
/// (the accumulator's coefficients depend on the instance index only).
pub(super) fn pass_deep(
    run: &Run,
    metrics: &Metrics,
    z: EF,
    beta: EF,
    oods: Arc<Vec<InstanceOod>>,
) -> Result<DeepAccumulator, Error> {
    let ctx = &run.ctx;
    ctx.spill.begin_pass("deep")?;
    let mut g = graph(ctx, "deep", Some(run.records.len() as u64));
    let src = evaluations(&mut g, run);
    let deep = DeepAccumulator::new(&ctx.tables, &run.shapes, z, beta, ctx.log_b);
    let (deep, stats) = g
        .run_with_stats("deep", src, deep, |deep, it: Item<Evaluations>| {
            let i = it.index;
            let table = &ctx.tables[run.records[i].table()];
            let e = &it.data;
            let q = e.quotient().view();
            match (e.ldes(run.prep(i)), e.traces(run.prep(i))) {
                (Some(ldes), _) => deep.add(table, i, ldes, q, &oods[i]),
                (_, Some(traces)) => deep.add_from_traces(table, i, traces, q, &oods[i]),
                (None, None) => unreachable!("evaluations are LDEs or traces"),
            }
            .map_err(BoxError::from)
        })
        .map_err(pipeline_err("deep"))?;
    metrics.record_stages("deep", stats);
    ctx.spill.end_pass("deep")?;
    Ok(deep)
}
