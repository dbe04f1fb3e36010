//! Pass 7, open: read -> open (rows and batched Merkle paths) -> collect.

use std::sync::Arc;

use pipeline::Metrics;
use stark::merkle::Digest;
use stark::proof::InstanceOpening;
use stark::protocol;
use stark::prover;

use crate::error::Error;
use crate::store::Matrix;

use super::common::*;

/// Pass 7: openings at the query rows. A chunk with kept LDEs: rows read from the mapped
/// LDEs, each tree rebuilt from its kept level and the subtrees over the opened rows (checked
/// against the roots, so a corrupted spill is an error naming the segment). Otherwise every
/// tree is rebuilt: main and aux from recomputed LDEs, quotient by extending its coefficients.
pub(super) fn pass_open(
    run: &Run,
    metrics: &Metrics,
    quotient_roots: &[Digest],
    positions: Arc<Vec<usize>>,
    log_max_lde: usize,
) -> Result<Vec<InstanceOpening>, Error> {
    let ctx = &run.ctx;
    ctx.spill.begin_pass("open")?;
    let mut g = graph(ctx, "open", Some(run.records.len() as u64));
    let (c, records, prep, aux) = (
        Arc::clone(ctx),
        Arc::clone(&run.records),
        Arc::clone(&run.prep),
        Arc::clone(&run.aux),
    );
    let quotient_roots: Arc<[Digest]> = quotient_roots.into();
    let open_prep = move |r: &Record, rows: &[usize]| {
        prep.get(&(r.table(), r.log_height)).map(|p| p.1.open(rows))
    };
    let src = instances(&mut g, run);
    let out = g.map("open", src, move |it: Item<Option<Matrix>>| {
        let r = &records[it.index];
        let table = &c.tables[r.table()];
        let lde_rows = r.rows() << c.log_b;
        let rows =
            protocol::query_rows(&positions, log_max_lde, lde_rows.trailing_zeros() as usize);
        let opening = if r.ldes_kept {
            let d = &r.desc;
            let q_width = table.quotient_width();
            let q_root = &quotient_roots[it.index];
            InstanceOpening {
                main: c.open_kept(d, MAIN, table.main_width, lde_rows, &r.main_root, &rows)?,
                prep: open_prep(r, &rows),
                aux: match &aux[it.index] {
                    None => None,
                    Some(a) => {
                        let w = table.aux_width();
                        Some(c.open_kept(d, AUX, w, lde_rows, &a.root, &rows)?)
                    }
                },
                quotient: c.open_kept(d, QUOTIENT, q_width, lde_rows, q_root, &rows)?,
            }
        } else {
            let (main, aux) = recompute_ldes(&c, r, trace_of(&it)?)?;
            let q = c.open(
                &r.desc,
                kind::QUOTIENT_COEFFS,
                table.quotient_width(),
                r.rows(),
            )?;
            let q_lde = stark::domain::coeffs_to_lde(
                q.to_owned_for_lde(c.log_b),
                lde_rows.trailing_zeros() as usize,
            );
            InstanceOpening {
                main: prover::commit_lde(main).open(&rows),
                prep: open_prep(r, &rows),
                aux: aux.map(|a| prover::commit_lde(a).open(&rows)),
                quotient: prover::commit_lde(q_lde).open(&rows),
            }
        };
        Ok::<_, Error>(it.with(opening))
    });
    let o = collect_indexed(g, metrics, "open", out, run.records.len())?;
    ctx.spill.end_pass("open")?;
    Ok(o)
}
