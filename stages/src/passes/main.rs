//! Pass 1, main: execute -> commit (LDE, tree) -> spill -> collect; then the room for
//! passes 2 and 3 is planned.

use stark::pass_tree::JoinNodes;
use std::sync::{Arc, Mutex};

use pipeline::{BoxError, Chunk, Metrics, Port};
use stark::merkle::Digest;
use stark::prover::{self, Committed};
use stark::{F, RowMajorMatrix};
use vm::air::Statement;

use crate::error::Error;
use crate::generate::{Instance, generate};
use crate::store::KeepLdes;

use super::common::*;

/// After pass 1, when every chunk's shape is known: checks that the spill dir has room for
/// what passes 2 and 3 will write, and under `--store auto` gives up kept main LDEs (the last
/// chunks first, deleting their segments) until it has. Failing here, before the long passes,
/// beats running out of disk in the middle of them.
pub(super) fn plan_room(ctx: &Ctx, records: &mut [Record]) -> Result<(), Error> {
    let bytes = |r: &Record| ChunkBytes::new(&ctx.tables[r.table()], r.rows(), ctx.log_b);
    let later = |r: &Record| {
        let b = bytes(r);
        if r.ldes_kept {
            b.later_kept
        } else {
            b.later_recomputed
        }
    };
    let mut need: u64 = records.iter().map(later).sum();
    let mut room = ctx.spill.available_bytes().unwrap_or(u64::MAX);
    if ctx.config.store.ldes == KeepLdes::WhileRoom {
        for r in records.iter_mut().rev() {
            if need <= room {
                break;
            }
            if !r.ldes_kept {
                continue;
            }
            let b = bytes(r);
            for kind in [kind::MAIN_LDE, kind::MAIN_LEVEL] {
                if let Some(seg) = r.desc.segment(kind) {
                    ctx.spill.remove_segment(seg)?;
                    room = room.saturating_add(seg.bytes);
                }
                r.desc = r.desc.without_segment(kind);
            }
            r.ldes_kept = false;
            need = need - b.later_kept + b.later_recomputed;
        }
    }
    if need > room {
        let hint = match ctx.config.store.ldes {
            KeepLdes::Always => "--store auto keeps only the LDEs that fit",
            KeepLdes::WhileRoom | KeepLdes::Never => {
                "give the run a --spill-dir on a larger disk (or a larger --spill-limit)"
            }
        };
        return Err(Error::NoRoom {
            dir: ctx.spill.path().display().to_string(),
            need,
            room,
            hint,
        });
    }
    Ok(())
}
/// Pass 1: execute, build instances, commit each, spill what the store policy keeps (the
/// trace; the LDE and a level of its tree). Returns the records in canonical order.
pub(super) fn pass_main(
    ctx: &Arc<Ctx>,
    metrics: &Metrics,
) -> Result<(Vec<Record>, Statement), Error> {
    ctx.spill.begin_pass("main")?;
    let mut g = graph(ctx, "main", None);
    let statement = Arc::new(Mutex::new(None));
    let c = Arc::clone(ctx);
    let st = Arc::clone(&statement);
    let instances: Port<Item<Instance>> = g.source("execute", move |out| {
        let s = generate(
            Arc::clone(&c.program),
            Arc::clone(&c.input),
            c.config.chunk_rows,
            c.config.max_cycles,
            |inst: Instance| {
                let item = Item {
                    index: 0,
                    desc: c.descriptor(inst.table, inst.chunk, inst.rows()),
                    data: inst,
                };
                out.emit(item).map_err(BoxError::from)
            },
        )?;
        *st.lock().unwrap_or_else(|e| e.into_inner()) = Some(s);
        Ok::<(), BoxError>(())
    });
    let c = Arc::clone(ctx);
    let committed = g.map("commit", instances, move |it: Item<Instance>| {
        let table = &c.tables[it.data.table];
        let log_height = prover::check_trace(table, &it.data.trace, 0)?;
        if log_height as usize + c.log_b > stark::domain::MAX_LOG_LDE {
            return Err(Error::Config(format!(
                "{}: LDE larger than the field's two-adicity",
                it.desc.chunk_label()
            )));
        }
        let committed = prover::commit_trace_view(it.data.trace.as_view(), c.log_b);
        let root = committed.root();
        let join = JoinNodes::of(&committed.tree, c.config.params.log_join_lde());
        // What will not be written is dropped here, not held in the channel.
        let keep = (c.config.store.ldes != KeepLdes::Never).then_some(committed);
        let traces = c.config.store.traces;
        Ok::<_, Error>(it.map_data(|inst| {
            let (table, rows) = (inst.table, inst.rows());
            (
                table,
                rows,
                traces.then_some(inst.trace),
                log_height,
                (root, join),
                keep,
            )
        }))
    });
    let c = Arc::clone(ctx);
    /// Table, rows, trace (when kept), log height, root and join nodes, LDE and tree (unless
    /// never kept).
    type MainCommitted = (
        usize,
        usize,
        Option<RowMajorMatrix<F>>,
        u8,
        (Digest, JoinNodes),
        Option<Committed>,
    );
    let spilled = g.map("spill", committed, move |it: Item<MainCommitted>| {
        let (table, rows, trace, log_height, (main_root, main_join), committed) = it.data;
        let mut desc = it.desc;
        if let Some(mut trace) = trace {
            desc = c.write(&desc, "main", kind::TRACE, &mut trace)?;
        }
        let committed = committed.filter(|_| c.keep_ldes(table, rows));
        let ldes_kept = committed.is_some();
        if let Some(committed) = committed {
            desc = c.write_committed(&desc, "main", MAIN, committed)?;
        }
        Ok::<_, Error>(Item {
            index: it.index,
            desc: desc.clone(),
            data: Record {
                desc,
                log_height,
                main_root,
                main_join,
                ldes_kept,
            },
        })
    });
    let (mut records, stats) = g
        .run_with_stats("collect", spilled, Vec::new(), |v, it: Item<Record>| {
            v.push(it.data);
            Ok::<(), BoxError>(())
        })
        .map_err(pipeline_err("main"))?;
    metrics.record_stages("main", stats);
    records.sort_by_key(|r| r.desc.order_key());
    ctx.spill.end_pass("main")?;
    let statement = statement
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .ok_or_else(|| Error::Config("the execute stage ended without a statement".into()))?;
    Ok((records, statement))
}
