//! What the passes share: the items that flow between stages, the per-instance records,
//! the context every stage reads, and the stages more than one pass uses.

use std::collections::HashMap;
use std::sync::Arc;

use formats::SegmentMeta;
use pipeline::{BoxError, Chunk, ChunkDescriptor, Graph, Metrics, Port, SpillDir};
use stark::merkle::Digest;
use stark::pass_tree::JoinNodes;
use stark::proof::{InstanceShape, TreeOpening};
use stark::prover::{self, Committed, InstanceLdes, InstanceTraces};
use stark::{F, RowMajorMatrix, Table};
use vm::Program;
use vm::air::Rv32Air;

use super::PipelineConfig;
use crate::error::Error;
use crate::generate::{Instance, generate};
use crate::store::{KEPT_LEVEL, KeepLdes, Matrix, read_digests, write_digests, write_matrix};

/// What flows between stages: an instance's descriptor (name, rows, the segments written for
/// it so far), its canonical index, and what one stage hands the next.
pub(super) struct Item<T> {
    pub(super) index: usize,
    pub(super) desc: ChunkDescriptor,
    pub(super) data: T,
}

impl<T> Item<T> {
    pub(super) fn with<U>(self, data: U) -> Item<U> {
        Item {
            index: self.index,
            desc: self.desc,
            data,
        }
    }

    pub(super) fn map_data<U>(self, f: impl FnOnce(T) -> U) -> Item<U> {
        Item {
            index: self.index,
            desc: self.desc,
            data: f(self.data),
        }
    }
}

impl<T: Send + 'static> Chunk for Item<T> {
    fn chunk_label(&self) -> String {
        self.desc.chunk_label()
    }
    fn chunk_rows(&self) -> u64 {
        self.desc.rows
    }
}

/// Segment kinds, as named in descriptors and in the spill dir's file names.
pub(super) mod kind {
    pub const TRACE: &str = "trace";
    pub const MAIN_LDE: &str = "main-lde";
    pub const MAIN_LEVEL: &str = "main-level";
    pub const AUX_TRACE: &str = "aux-trace";
    pub const AUX_LDE: &str = "aux-lde";
    pub const AUX_LEVEL: &str = "aux-level";
    pub const QUOTIENT_COEFFS: &str = "quotient-coeffs";
    pub const QUOTIENT_LDE: &str = "quotient-lde";
    pub const QUOTIENT_LEVEL: &str = "quotient-level";
}

/// What the passes learn about an instance, kept (small) for the whole run: its descriptor
/// gathers the segments each pass writes.
#[derive(Clone)]
pub(super) struct Record {
    pub(super) desc: ChunkDescriptor,
    pub(super) log_height: u8,
    pub(super) main_root: Digest,
    /// What joins the main pass tree.
    pub(super) main_join: JoinNodes,
    /// The chunk's LDEs are spilled (decided in pass 1, see [`KeepLdes`]); if not, they are
    /// recomputed from its traces.
    pub(super) ldes_kept: bool,
}

impl Record {
    pub(super) fn table(&self) -> usize {
        self.desc.table_id as usize
    }
    pub(super) fn rows(&self) -> usize {
        1usize << self.log_height
    }
}

/// Spill-dir bytes of one chunk's artifacts, for planning the room ([`KeepLdes`]).
pub(super) struct ChunkBytes {
    /// Main LDE and its tree level (pass 1).
    pub(super) main: u64,
    /// Aux and quotient LDEs with their levels, when the LDEs are kept (passes 2-3).
    pub(super) later_kept: u64,
    /// Aux trace and quotient coefficients, when they are not (passes 2-3).
    pub(super) later_recomputed: u64,
}

impl ChunkBytes {
    pub(super) fn new(table: &Table, rows: usize, log_b: usize) -> ChunkBytes {
        // Arrow framing and padding, generously.
        const FRAMING: u64 = 8192;
        let cells = |width: usize, rows: usize| (width * rows) as u64 * 8 + FRAMING;
        let lde =
            |width: usize| cells(width, rows << log_b) + cells(4, (rows << log_b) >> KEPT_LEVEL);
        let (aux, q) = (table.aux_width(), table.quotient_width());
        ChunkBytes {
            main: lde(table.main_width),
            later_kept: if aux > 0 { lde(aux) } else { 0 } + lde(q),
            later_recomputed: if aux > 0 { cells(aux, rows) } else { 0 } + cells(q, rows),
        }
    }
}

/// Read-only state every stage shares.
pub(super) struct Ctx {
    pub(super) air: Rv32Air,
    pub(super) tables: Vec<Table>,
    pub(super) names: Vec<String>,
    pub(super) log_b: usize,
    pub(super) program: Arc<Program>,
    pub(super) input: Arc<[u8]>,
    pub(super) config: PipelineConfig,
    pub(super) spill: Arc<SpillDir>,
    /// An eighth of the spill dir's room at the start: what pass 1 leaves free when it decides
    /// to keep a chunk's main LDE under `--store auto`.
    pub(super) margin: u64,
}

impl Ctx {
    /// Whether pass 1 keeps the LDEs of a chunk of `table` with `rows` rows.
    pub(super) fn keep_ldes(&self, table: usize, rows: usize) -> bool {
        match self.config.store.ldes {
            KeepLdes::Never => false,
            KeepLdes::Always => true,
            KeepLdes::WhileRoom => {
                let need = ChunkBytes::new(&self.tables[table], rows, self.log_b).main;
                let room = self.spill.available_bytes().unwrap_or(u64::MAX);
                room >= need.saturating_add(self.margin)
            }
        }
    }

    pub(super) fn descriptor(&self, table: usize, chunk: u64, rows: usize) -> ChunkDescriptor {
        ChunkDescriptor::new(&self.names[table], table as u32, chunk, rows as u64, "main")
    }

    /// Maps the `kind` segment of a chunk, `width` columns of `rows` rows.
    pub(super) fn open(
        &self,
        desc: &ChunkDescriptor,
        kind: &str,
        width: usize,
        rows: usize,
    ) -> Result<Matrix, Error> {
        let seg = desc
            .segment(kind)
            .ok_or_else(|| Error::Config(format!("{}: no {kind} segment", desc.chunk_label())))?;
        Matrix::open(&self.spill, seg, width, rows)
    }

    /// Writes `m` as the `kind` segment of `desc`'s chunk in `pass`.
    pub(super) fn write(
        &self,
        desc: &ChunkDescriptor,
        pass: &str,
        kind: &str,
        m: &mut RowMajorMatrix<F>,
    ) -> Result<ChunkDescriptor, Error> {
        let meta = SegmentMeta::new(&*desc.table, desc.chunk, pass, kind);
        Ok(desc
            .in_pass(pass)
            .with_segment(write_matrix(&self.spill, &meta, m)?))
    }

    /// Writes a committed LDE and its tree's [`KEPT_LEVEL`] as `<what>-lde` / `<what>-level`.
    pub(super) fn write_committed(
        &self,
        desc: &ChunkDescriptor,
        pass: &str,
        (lde_kind, level_kind): (&str, &str),
        mut c: Committed,
    ) -> Result<ChunkDescriptor, Error> {
        let desc = self.write(desc, pass, lde_kind, &mut c.lde)?;
        let meta = SegmentMeta::new(&*desc.table, desc.chunk, pass, level_kind);
        let level = write_digests(&self.spill, &meta, c.tree.level(KEPT_LEVEL))?;
        Ok(desc.with_segment(level))
    }

    /// Opens `rows` of a kept LDE against `root` through its kept tree level.
    pub(super) fn open_kept(
        &self,
        desc: &ChunkDescriptor,
        (lde_kind, level_kind): (&str, &str),
        width: usize,
        lde_rows: usize,
        root: &Digest,
        rows: &[usize],
    ) -> Result<TreeOpening, Error> {
        let lde = self.open(desc, lde_kind, width, lde_rows)?;
        let level_rows = lde_rows >> KEPT_LEVEL.min(lde_rows.trailing_zeros() as usize);
        let level = read_digests(&self.open(desc, level_kind, 4, level_rows)?);
        prover::open_rows_from_level(lde.view(), &level, root, rows).map_err(|msg| {
            let path = |k: &str| desc.segment(k).map(|s| s.path.display().to_string());
            Error::BadSegment {
                path: path(lde_kind).unwrap_or_default(),
                msg: format!(
                    "{msg} (tree level {})",
                    path(level_kind).unwrap_or_default()
                ),
            }
        })
    }
}

pub(super) const MAIN: (&str, &str) = (kind::MAIN_LDE, kind::MAIN_LEVEL);
pub(super) const AUX: (&str, &str) = (kind::AUX_LDE, kind::AUX_LEVEL);
pub(super) const QUOTIENT: (&str, &str) = (kind::QUOTIENT_LDE, kind::QUOTIENT_LEVEL);

/// Pass-1 results plus what later passes derive from them.
pub(super) struct Run {
    pub(super) ctx: Arc<Ctx>,
    pub(super) records: Arc<Vec<Record>>,
    pub(super) shapes: Vec<InstanceShape>,
    /// Preprocessed trace and commitment per (table, log height): the fixed tables only.
    pub(super) prep: Arc<PrepCache>,
    /// Aux commitments (tables with buses), by instance; filled after pass 2.
    pub(super) aux: Arc<Vec<Option<AuxCommit>>>,
}

/// One instance's aux commitment: its tree's root (what its kept level is checked against),
/// what joins the aux pass tree, and the LogUp partial sum it claims.
#[derive(Clone)]
pub(super) struct AuxCommit {
    pub(super) root: Digest,
    pub(super) join: JoinNodes,
    pub(super) claimed_sum: stark::EF,
}

/// One instance's quotient commitment: its tree's root and what joins the quotient pass tree.
#[derive(Clone)]
pub(super) struct QuotientCommit {
    pub(super) root: Digest,
    pub(super) join: JoinNodes,
}

/// Preprocessed trace and its commitment per (table, log height).
pub(super) type PrepCache = HashMap<(usize, u8), (RowMajorMatrix<F>, Committed)>;

impl Run {
    pub(super) fn prep(&self, i: usize) -> Option<&(RowMajorMatrix<F>, Committed)> {
        let r = &self.records[i];
        self.prep.get(&(r.table(), r.log_height))
    }

    /// Replaces the records' descriptors with the ones a pass returned.
    pub(super) fn update(&mut self, descs: Vec<ChunkDescriptor>) {
        let records = self
            .records
            .iter()
            .zip(descs)
            .map(|(r, desc)| Record { desc, ..r.clone() })
            .collect();
        self.records = Arc::new(records);
    }
}

pub(super) fn graph(ctx: &Ctx, pass: &str, total: Option<u64>) -> Graph {
    Graph::new(ctx.config.channel_capacity)
        .named(pass)
        .with_progress(&ctx.config.progress, total)
}

pub(super) fn pipeline_err(pass: &'static str) -> impl FnOnce(pipeline::PipelineError) -> Error {
    move |source| Error::Pipeline { pass, source }
}

/// The source of the passes after aux: every instance in canonical order, with its main
/// trace when its LDEs were not kept (they are recomputed from it). When every chunk kept its
/// LDEs, only descriptors are handed out and nothing is re-executed.
pub(super) fn instances(g: &mut Graph, run: &Run) -> Port<Item<Option<Matrix>>> {
    if run.records.iter().any(|r| !r.ldes_kept) {
        return traces(g, run, |r| !r.ldes_kept);
    }
    let records = Arc::clone(&run.records);
    g.source("read", move |out| {
        for (index, r) in records.iter().enumerate() {
            out.emit(Item {
                index,
                desc: r.desc.clone(),
                data: None,
            })?;
        }
        Ok::<(), BoxError>(())
    })
}

/// Every instance with its main trace where `needed(record)`: mapped from its segment
/// (canonical order) or rebuilt by re-executing the program (generation order).
pub(super) fn traces(
    g: &mut Graph,
    run: &Run,
    needed: fn(&Record) -> bool,
) -> Port<Item<Option<Matrix>>> {
    let ctx = Arc::clone(&run.ctx);
    let records = Arc::clone(&run.records);
    if ctx.config.store.traces {
        return g.source("read", move |out| {
            for (index, r) in records.iter().enumerate() {
                let width = ctx.tables[r.table()].main_width;
                let m = match needed(r) {
                    true => Some(ctx.open(&r.desc, kind::TRACE, width, r.rows())?),
                    false => None,
                };
                out.emit(Item {
                    index,
                    desc: r.desc.clone(),
                    data: m,
                })?;
            }
            Ok::<(), BoxError>(())
        });
    }
    g.source("execute", move |out| {
        let index_of: HashMap<(u32, u64), usize> = records
            .iter()
            .enumerate()
            .map(|(i, r)| (r.desc.order_key(), i))
            .collect();
        let mut seen = 0usize;
        generate(
            Arc::clone(&ctx.program),
            Arc::clone(&ctx.input),
            ctx.config.chunk_rows,
            ctx.config.max_cycles,
            |inst: Instance| {
                let label = format!("{}#{}", ctx.names[inst.table], inst.chunk);
                let index = *index_of
                    .get(&(inst.table as u32, inst.chunk))
                    .ok_or_else(|| Error::Diverged {
                        what: label.clone(),
                        expected: "no such instance".into(),
                    })?;
                let r = &records[index];
                let rows = inst.rows();
                if rows != r.rows() {
                    return Err(Error::Diverged {
                        what: format!("{label} with {rows} rows"),
                        expected: format!("{} rows", r.rows()),
                    }
                    .into());
                }
                seen += 1;
                out.emit(Item {
                    index,
                    desc: r.desc.clone(),
                    data: needed(r).then_some(Matrix::Owned(inst.trace)),
                })
                .map_err(BoxError::from)
            },
        )?;
        if seen != records.len() {
            return Err(Error::Diverged {
                what: format!("{seen} instances"),
                expected: format!("{}", records.len()),
            }
            .into());
        }
        Ok::<(), BoxError>(())
    })
}

/// The trace an item must carry (by construction of its source).
pub(super) fn trace_of<T>(it: &Item<Option<T>>) -> Result<&T, Error> {
    it.data.as_ref().ok_or_else(|| no_trace(&it.desc))
}

pub(super) fn no_trace(desc: &ChunkDescriptor) -> Error {
    Error::Config(format!("{}: no trace was handed out", desc.chunk_label()))
}

/// Collects one result per instance, filed under its canonical index.
pub(super) fn collect_indexed<T: Send + 'static>(
    g: Graph,
    metrics: &Metrics,
    pass: &'static str,
    port: Port<Item<T>>,
    n: usize,
) -> Result<Vec<T>, Error> {
    let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
    let ((), stats) = g
        .run_with_stats("collect", port, (), |_, it: Item<T>| {
            out[it.index] = Some(it.data);
            Ok::<(), BoxError>(())
        })
        .map_err(pipeline_err(pass))?;
    metrics.record_stages(pass, stats);
    out.into_iter()
        .enumerate()
        .map(|(i, v)| {
            v.ok_or_else(|| Error::Config(format!("pass {pass}: instance {i} never arrived")))
        })
        .collect()
}

/// An instance's main and aux LDEs: mapped from their segments, or recomputed.
pub(super) struct Ldes {
    pub(super) main: Matrix,
    pub(super) aux: Option<Matrix>,
}

impl Ldes {
    /// Maps the LDEs pass 1 and 2 kept.
    pub(super) fn map(ctx: &Ctx, r: &Record) -> Result<Ldes, Error> {
        let table = &ctx.tables[r.table()];
        let rows = r.rows() << ctx.log_b;
        Ok(Ldes {
            main: ctx.open(&r.desc, kind::MAIN_LDE, table.main_width, rows)?,
            aux: match table.aux_width() {
                0 => None,
                w => Some(ctx.open(&r.desc, kind::AUX_LDE, w, rows)?),
            },
        })
    }

    /// Recomputes the LDEs ([`recompute_ldes`]).
    pub(super) fn recompute(ctx: &Ctx, r: &Record, trace: &Matrix) -> Result<Ldes, Error> {
        let (main, aux) = recompute_ldes(ctx, r, trace)?;
        Ok(Ldes {
            main: Matrix::Owned(main),
            aux: aux.map(Matrix::Owned),
        })
    }
}

/// The main LDE from the trace, and the aux LDE from the spilled aux trace.
pub(super) fn recompute_ldes(
    ctx: &Ctx,
    r: &Record,
    trace: &Matrix,
) -> Result<(RowMajorMatrix<F>, Option<RowMajorMatrix<F>>), Error> {
    let log_b = ctx.log_b;
    let aux = match ctx.tables[r.table()].aux_width() {
        0 => None,
        w => {
            let m = ctx.open(&r.desc, kind::AUX_TRACE, w, r.rows())?;
            Some(stark::domain::lde(m.to_owned_for_lde(log_b), log_b))
        }
    };
    let main = stark::domain::lde(trace.to_owned_for_lde(log_b), log_b);
    Ok((main, aux))
}

/// The LDEs of every instance, for the quotient pass: mapped where kept, else recomputed
/// from the trace.
pub(super) fn ldes(g: &mut Graph, run: &Run) -> Port<Item<Ldes>> {
    let c = Arc::clone(&run.ctx);
    let records = Arc::clone(&run.records);
    let src = instances(g, run);
    g.map("lde", src, move |it: Item<Option<Matrix>>| {
        let r = &records[it.index];
        let l = match r.ldes_kept {
            true => Ldes::map(&c, r)?,
            false => Ldes::recompute(&c, r, trace_of(&it)?)?,
        };
        Ok::<_, Error>(it.with(l))
    })
}

/// What the OOD and DEEP passes evaluate: the LDEs when the store keeps them (what the
/// in-memory prover uses), else the traces and quotient coefficients (no LDE needed: OOD
/// values by barycentric and Horner evaluation, DEEP combined on the trace domain).
pub(super) enum Evaluations {
    Ldes {
        ldes: Ldes,
        quotient: Matrix,
    },
    Traces {
        main: Matrix,
        aux: Option<Matrix>,
        coeffs: Matrix,
    },
}

impl Evaluations {
    pub(super) fn ldes<'a>(
        &'a self,
        prep: Option<&'a (RowMajorMatrix<F>, Committed)>,
    ) -> Option<InstanceLdes<'a>> {
        match self {
            Evaluations::Ldes { ldes, .. } => Some(InstanceLdes {
                main: ldes.main.view(),
                prep: prep.map(|p| p.1.lde.as_view()),
                aux: ldes.aux.as_ref().map(|a| a.view()),
            }),
            Evaluations::Traces { .. } => None,
        }
    }

    pub(super) fn traces<'a>(
        &'a self,
        prep: Option<&'a (RowMajorMatrix<F>, Committed)>,
    ) -> Option<InstanceTraces<'a>> {
        match self {
            Evaluations::Traces { main, aux, .. } => Some(InstanceTraces {
                main: main.view(),
                prep: prep.map(|p| p.0.as_view()),
                aux: aux.as_ref().map(|a| a.view()),
            }),
            Evaluations::Ldes { .. } => None,
        }
    }

    pub(super) fn quotient(&self) -> &Matrix {
        match self {
            Evaluations::Ldes { quotient, .. } => quotient,
            Evaluations::Traces { coeffs, .. } => coeffs,
        }
    }
}

/// Every instance's [`Evaluations`], for the OOD and DEEP passes.
pub(super) fn evaluations(g: &mut Graph, run: &Run) -> Port<Item<Evaluations>> {
    let c = Arc::clone(&run.ctx);
    let records = Arc::clone(&run.records);
    let src = instances(g, run);
    g.map("load", src, move |it: Item<Option<Matrix>>| {
        let Item { index, desc, data } = it;
        let r = &records[index];
        let table = &c.tables[r.table()];
        let e = if r.ldes_kept {
            let rows = r.rows() << c.log_b;
            Evaluations::Ldes {
                ldes: Ldes::map(&c, r)?,
                quotient: c.open(&r.desc, kind::QUOTIENT_LDE, table.quotient_width(), rows)?,
            }
        } else {
            let aux = match table.aux_width() {
                0 => None,
                w => Some(c.open(&r.desc, kind::AUX_TRACE, w, r.rows())?),
            };
            let width = table.quotient_width();
            let coeffs = c.open(&r.desc, kind::QUOTIENT_COEFFS, width, r.rows())?;
            let main = data.ok_or_else(|| no_trace(&desc))?;
            Evaluations::Traces { main, aux, coeffs }
        };
        Ok::<_, Error>(Item {
            index,
            desc,
            data: e,
        })
    })
}
