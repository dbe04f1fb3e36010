//! Pass 4, ood: read -> map -> ood (barycentric) -> collect.

use std::sync::Arc;

use pipeline::Metrics;
use stark::field::EF;
use stark::proof::InstanceOod;
use stark::prover;

use crate::error::Error;

use super::common::*;

/// Pass 4: out-of-domain values of every column at z and z*g.
pub(super) fn pass_ood(run: &Run, metrics: &Metrics, z: EF) -> Result<Vec<InstanceOod>, Error> {
    let ctx = &run.ctx;
    ctx.spill.begin_pass("ood")?;
    let mut g = graph(ctx, "ood", Some(run.records.len() as u64));
    let src = evaluations(&mut g, run);
    let (c, records, prep) = (
        Arc::clone(ctx),
        Arc::clone(&run.records),
        Arc::clone(&run.prep),
    );
    let out = g.map("ood", src, move |it: Item<Evaluations>| {
        let r = &records[it.index];
        let (table, log_height) = (&c.tables[r.table()], r.log_height as usize);
        let p = prep.get(&(r.table(), r.log_height));
        let e = &it.data;
        let q = e.quotient().view();
        let o = match (e.ldes(p), e.traces(p)) {
            (Some(ldes), _) => prover::ood(table, log_height, ldes, q, z)?,
            (_, Some(traces)) => prover::ood_from_traces(table, log_height, traces, q, z)?,
            (None, None) => unreachable!("evaluations are LDEs or traces"),
        };
        Ok::<_, Error>(it.with(o))
    });
    let o = collect_indexed(g, metrics, "ood", out, run.records.len())?;
    ctx.spill.end_pass("ood")?;
    Ok(o)
}
