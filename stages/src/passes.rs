//! The out-of-core prover: the passes of `docs/architecture.md`, each a [`pipeline::Graph`] of
//! stages on bounded channels, producing the same proof bytes as [`crate::prove_in_memory`].
//!
//! For chunks that keep their LDEs (the default store, `auto`, while the spill dir has room):
//! ```text
//! main      execute -> commit (LDE, tree) -> spill (LDE + tree level) -> collect
//!           => transcript: shapes, preprocessed + main roots (canonical order); LogUp challenges
//! aux       execute -> aux (LogUp columns, claimed sum) -> commit -> spill -> collect
//!           => aux roots and sums; composition challenge
//! quotient  read -> map (main + aux LDEs) -> quotient (evaluate, commit) -> spill -> collect
//!           => quotient roots; OOD point z
//! ood       read -> map (main, aux, quotient LDEs) -> ood (barycentric) -> collect
//!           => OOD values; DEEP challenge
//! deep      read -> map -> deep (one codeword per LDE height, added in arrival order)
//! fri       in memory: the DEEP codewords are one chunk's size, not the run's
//! open      read -> open (rows from the mapped LDEs, trees rebuilt from their kept level and
//!           the opened rows' subtrees, checked against the roots) -> collect
//! check     the finished proof is verified before it is handed out
//! ```
//! `execute` re-executes the program and emits instances in generation order (or, with
//! `--store trace`, maps the traces pass 1 wrote); `read` hands out descriptors in canonical
//! order. A chunk that does not keep its LDEs spills its aux trace and quotient coefficients
//! instead; the passes after aux then re-execute to get its trace back, recompute its LDEs
//! (quotient, open) or work from its traces (OOD: barycentric and Horner; DEEP: combined on
//! the trace domain, only the combination extended). Items carry the instance's [`ChunkDescriptor`], which gathers the segments each pass
//! writes for it. Stages compute in whatever order items arrive; each pass's sink files results
//! under the instance's canonical index and the driver absorbs them in (table, chunk) order
//! after the pass, so the transcript never depends on thread timing or channel capacity.
//! Between passes only small per-instance data is held (descriptors, roots, claimed sums, OOD
//! values, openings) plus the fixed tables' preprocessed commitments; peak memory is set by
//! the chunk size and the channel capacity.
//!
//! Store or recompute ([`Store`]), measured on fib_iterative at 1M instructions, 2^17-row
//! chunks, 2 cores (in RAM: 6.4-7.1 s wall, 11.2-12.0 CPU-s):
//!
//! | store     | wall s    | CPU s     | spilled | later passes                                 |
//! |-----------|-----------|-----------|---------|----------------------------------------------|
//! | recompute | 11.9-13.1 | 21.7-22.9 | 262 MiB | re-execute 5 times, LDEs twice, trees in open |
//! | lde       | 7.2-8.4   | 12.8-14.6 | 1.1 GiB | map LDEs; re-execute once (aux)              |
//! | trace,lde | 9.6       | 15.6      | 1.6 GiB | map traces and LDEs                          |
//!
//! Recomputing an LDE costs more than writing it and mapping it back: the quotient pass took
//! 4.0 s recomputing main and aux LDEs and 2.2 s mapping them, the open pass 3.5 s rebuilding
//! every tree and 0.08 s opening from kept LDEs and tree levels. Keeping only one level of each
//! tree (1/16 of the leaf digests, [`crate::store::KEPT_LEVEL`]) costs 16 rows rehashed per
//! opened row instead of writing the whole tree. Once the LDEs are kept, the OOD and DEEP
//! passes use them too (0.38 s each, against 0.53-0.58 s from the traces with a
//! re-execution each), and neither the aux trace nor the quotient coefficients need spilling.
//! Re-executing the program for the aux pass (0.2-0.3 s per 1M instructions on its own
//! thread) is cheaper than writing the traces (writing to the page cache costs more than the
//! copy on this machine's VM: 0.5-2 GB/s for fresh pages). `lde` writes about 1.1 KB per instruction
//! of fib_iterative and `recompute` 0.26 KB, so a 64M-instruction run needs about 70 GB to
//! keep every LDE: more than a laptop's free disk. `auto` therefore decides per chunk in pass
//! 1, keeping a main LDE while an eighth of the room stays free; after pass 1, when every
//! chunk's shape is known, it checks that passes 2 and 3 fit and gives up kept LDEs (last
//! chunks first) until they do, or stops with an error before the long passes if even
//! recomputing everything would not fit. The proof is the same whatever is kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use formats::SegmentMeta;
use pipeline::{BoxError, Chunk, ChunkDescriptor, Graph, Metrics, Port, Progress, SpillDir};
use stark::field::EF;
use stark::merkle::Digest;
use stark::proof::{
    AuxCommitment, InstanceOod, InstanceOpening, InstanceShape, Proof, TreeOpening,
};
use stark::protocol;
use stark::prover::{self, Committed, DeepAccumulator, InstanceLdes, InstanceTraces};
use stark::{F, ProofParams, RowMajorMatrix, Table};
use vm::Program;
use vm::air::{Rv32Air, Statement};

use crate::error::Error;
use crate::generate::{Instance, generate};
use crate::store::{
    KEPT_LEVEL, KeepLdes, Matrix, Store, read_digests, write_digests, write_matrix,
};
use crate::widths::{TableWidth, table_widths};

/// How to run the pipeline.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    /// Rows per instance (and steps per executor chunk); a power of two >= 2.
    pub chunk_rows: usize,
    pub max_cycles: u64,
    pub params: ProofParams,
    pub store: Store,
    /// Items waiting between two stages (0 = hand-over only).
    pub channel_capacity: usize,
    pub progress: Progress,
}

/// A proof made by the pipeline.
pub struct PipelineRun {
    pub proof: Proof,
    pub statement: Statement,
    /// Instances over all tables.
    pub instances: usize,
    /// Instances whose LDEs were spilled rather than recomputed ([`KeepLdes`]).
    pub ldes_kept: usize,
    pub widths: Vec<TableWidth>,
}

/// What flows between stages: an instance's descriptor (name, rows, the segments written for
/// it so far), its canonical index, and what one stage hands the next.
struct Item<T> {
    index: usize,
    desc: ChunkDescriptor,
    data: T,
}

impl<T> Item<T> {
    fn with<U>(self, data: U) -> Item<U> {
        Item {
            index: self.index,
            desc: self.desc,
            data,
        }
    }

    fn map_data<U>(self, f: impl FnOnce(T) -> U) -> Item<U> {
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
mod kind {
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
struct Record {
    desc: ChunkDescriptor,
    log_height: u8,
    main_root: Digest,
    /// The chunk's LDEs are spilled (decided in pass 1, see [`KeepLdes`]); if not, they are
    /// recomputed from its traces.
    ldes_kept: bool,
}

impl Record {
    fn table(&self) -> usize {
        self.desc.table_id as usize
    }
    fn rows(&self) -> usize {
        1usize << self.log_height
    }
}

/// Spill-dir bytes of one chunk's artifacts, for planning the room ([`KeepLdes`]).
struct ChunkBytes {
    /// Main LDE and its tree level (pass 1).
    main: u64,
    /// Aux and quotient LDEs with their levels, when the LDEs are kept (passes 2-3).
    later_kept: u64,
    /// Aux trace and quotient coefficients, when they are not (passes 2-3).
    later_recomputed: u64,
}

impl ChunkBytes {
    fn new(table: &Table, rows: usize, log_b: usize) -> ChunkBytes {
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
struct Ctx {
    air: Rv32Air,
    tables: Vec<Table>,
    names: Vec<String>,
    log_b: usize,
    program: Arc<Program>,
    input: Arc<[u8]>,
    config: PipelineConfig,
    spill: Arc<SpillDir>,
    /// An eighth of the spill dir's room at the start: what pass 1 leaves free when it decides
    /// to keep a chunk's main LDE under `--store auto`.
    margin: u64,
}

impl Ctx {
    /// Whether pass 1 keeps the LDEs of a chunk of `table` with `rows` rows.
    fn keep_ldes(&self, table: usize, rows: usize) -> bool {
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

    fn descriptor(&self, table: usize, chunk: u64, rows: usize) -> ChunkDescriptor {
        ChunkDescriptor::new(&self.names[table], table as u32, chunk, rows as u64, "main")
    }

    /// Maps the `kind` segment of a chunk, `width` columns of `rows` rows.
    fn open(
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
    fn write(
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
    fn write_committed(
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
    fn open_kept(
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

const MAIN: (&str, &str) = (kind::MAIN_LDE, kind::MAIN_LEVEL);
const AUX: (&str, &str) = (kind::AUX_LDE, kind::AUX_LEVEL);
const QUOTIENT: (&str, &str) = (kind::QUOTIENT_LDE, kind::QUOTIENT_LEVEL);

/// Pass-1 results plus what later passes derive from them.
struct Run {
    ctx: Arc<Ctx>,
    records: Arc<Vec<Record>>,
    shapes: Vec<InstanceShape>,
    /// Preprocessed trace and commitment per (table, log height): the fixed tables only.
    prep: Arc<PrepCache>,
    /// Aux commitments (tables with buses), by instance; filled after pass 2.
    aux: Arc<Vec<Option<AuxCommitment>>>,
}

/// Preprocessed trace and its commitment per (table, log height).
type PrepCache = HashMap<(usize, u8), (RowMajorMatrix<F>, Committed)>;

impl Run {
    fn prep(&self, i: usize) -> Option<&(RowMajorMatrix<F>, Committed)> {
        let r = &self.records[i];
        self.prep.get(&(r.table(), r.log_height))
    }

    /// Replaces the records' descriptors with the ones a pass returned.
    fn update(&mut self, descs: Vec<ChunkDescriptor>) {
        let records = self
            .records
            .iter()
            .zip(descs)
            .map(|(r, desc)| Record { desc, ..r.clone() })
            .collect();
        self.records = Arc::new(records);
    }
}

/// Proves `program` on `input` through the pipeline, spilling into `spill` and timing each
/// pass in `metrics`. The caller owns the spill dir's fate (finish or fail) and the proof file.
pub fn prove_pipeline(
    program: Arc<Program>,
    input: Arc<[u8]>,
    config: PipelineConfig,
    spill: Arc<SpillDir>,
    metrics: &Metrics,
) -> Result<PipelineRun, Error> {
    config.params.validate().map_err(Error::Config)?;
    if config.chunk_rows < 2 || !config.chunk_rows.is_power_of_two() {
        return Err(Error::Config(format!(
            "chunk rows must be a power of two >= 2, not {}",
            config.chunk_rows
        )));
    }
    let air = Rv32Air::new(Arc::clone(&program));
    let tables = stark::compile_all(&air.tables()).map_err(stark::ProveError::from)?;
    let names = air.tables().iter().map(|t| t.name().to_string()).collect();
    let log_b = config.params.log_blowup as usize;
    let ctx = Arc::new(Ctx {
        air,
        tables,
        names,
        log_b,
        program,
        input,
        margin: spill.available_bytes().unwrap_or(u64::MAX) / 8,
        config,
        spill,
    });

    // Pass 1: main.
    let timer = metrics.pass("main");
    let (mut records, statement) = pass_main(&ctx, metrics)?;
    plan_room(&ctx, &mut records)?;
    timer.finish();
    let shapes: Vec<InstanceShape> = records
        .iter()
        .map(|r| InstanceShape {
            table: r.table() as u32,
            log_height: r.log_height,
        })
        .collect();
    let mut prep = HashMap::new();
    for r in &records {
        let table = &ctx.tables[r.table()];
        if table.prep_width > 0 && !prep.contains_key(&(r.table(), r.log_height)) {
            let airs = ctx.air.tables();
            let m = prover::preprocessed_trace(airs[r.table()], table, r.log_height)
                .map_err(|msg| Error::Prove(stark::ProveError::Shape(msg)))?
                .expect("prep_width > 0");
            let c = prover::commit_trace(m.clone(), log_b);
            prep.insert((r.table(), r.log_height), (m, c));
        }
    }
    let public = statement.public_inputs();
    let mut t = protocol::start(&ctx.tables, &ctx.config.params, &public, &shapes);
    for r in &records {
        let p = prep.get(&(r.table(), r.log_height)).map(|p| p.1.root());
        protocol::observe_main(&mut t, p.as_ref(), &r.main_root);
    }
    let lookup = protocol::draw_lookup_challenges(&mut t);
    let n = records.len();
    let mut run = Run {
        ctx: Arc::clone(&ctx),
        records: Arc::new(records),
        shapes,
        prep: Arc::new(prep),
        aux: Arc::new(Vec::new()),
    };

    // Pass 2: aux.
    let timer = metrics.pass("aux");
    let (aux, descs): (Vec<_>, Vec<_>) = pass_aux(&run, metrics, lookup)?.into_iter().unzip();
    timer.finish();
    run.update(descs);
    for a in &aux {
        protocol::observe_aux(&mut t, a.as_ref());
    }
    run.aux = Arc::new(aux);
    let composition = protocol::draw_composition_challenge(&mut t);

    // Pass 3: quotient.
    let timer = metrics.pass("quotient");
    let (quotient_roots, descs): (Vec<_>, Vec<_>) =
        pass_quotient(&run, metrics, lookup, composition)?
            .into_iter()
            .unzip();
    timer.finish();
    run.update(descs);
    for root in &quotient_roots {
        protocol::observe_quotient(&mut t, root);
    }
    let z = protocol::draw_ood_point(&mut t);

    // Pass 4: ood.
    let timer = metrics.pass("ood");
    let oods = pass_ood(&run, metrics, z)?;
    timer.finish();
    for o in &oods {
        protocol::observe_ood(&mut t, o);
    }
    let beta = protocol::draw_deep_challenge(&mut t);

    // Pass 5: deep.
    let timer = metrics.pass("deep");
    let oods = Arc::new(oods);
    let deep = pass_deep(&run, metrics, z, beta, Arc::clone(&oods))?;
    timer.finish();

    // Pass 6: FRI, grinding, queries.
    let timer = metrics.pass("fri");
    let fri = stark::fri::prove(deep.codewords, &mut t, log_b)?;
    let pow_nonce = t.grind(ctx.config.params.pow_bits as u32);
    let log_max_lde = run
        .shapes
        .iter()
        .map(|s| s.log_height as usize)
        .max()
        .expect("at least one instance")
        + log_b;
    let positions = protocol::observe_pow_and_sample_queries(
        &mut t,
        pow_nonce,
        ctx.config.params.num_queries as usize,
        log_max_lde,
    );
    let fri_openings = fri.open(&positions);
    timer.finish();

    // Pass 7: open.
    let timer = metrics.pass("open");
    let openings = pass_open(
        &run,
        metrics,
        &quotient_roots,
        Arc::new(positions),
        log_max_lde,
    )?;
    timer.finish();

    let oods = Arc::try_unwrap(oods).unwrap_or_else(|a| (*a).clone());
    let proof = Proof {
        params: ctx.config.params,
        statement: public.statement,
        instances: run.shapes.clone(),
        main_roots: run.records.iter().map(|r| r.main_root).collect(),
        aux: run.aux.to_vec(),
        quotient_roots,
        ood: oods,
        fri_roots: fri.roots.clone(),
        fri_final: fri.final_value,
        pow_nonce,
        openings,
        fri_openings,
    };

    // Check: the proof was assembled from spilled segments. Verifying it (milliseconds per
    // instance) catches a segment changed on disk during the run before a proof file is
    // written; a segment the passes read in full is not otherwise rehashed (unless
    // --verify-segments), and the open pass's tree checks only see the opened rows.
    let timer = metrics.pass("check");
    crate::check::self_check(&ctx.program, &statement, &proof)
        .map_err(|e| Error::SelfCheck(e.to_string()))?;
    timer.finish();
    let widths = table_widths(
        &ctx.air,
        run.records.iter().map(|r| (r.table(), r.rows() as u64)),
    );
    Ok(PipelineRun {
        proof,
        statement,
        instances: n,
        ldes_kept: run.records.iter().filter(|r| r.ldes_kept).count(),
        widths,
    })
}

/// After pass 1, when every chunk's shape is known: checks that the spill dir has room for
/// what passes 2 and 3 will write, and under `--store auto` gives up kept main LDEs (the last
/// chunks first, deleting their segments) until it has. Failing here, before the long passes,
/// beats running out of disk in the middle of them.
fn plan_room(ctx: &Ctx, records: &mut [Record]) -> Result<(), Error> {
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

fn graph(ctx: &Ctx, pass: &str, total: Option<u64>) -> Graph {
    Graph::new(ctx.config.channel_capacity)
        .named(pass)
        .with_progress(&ctx.config.progress, total)
}

fn pipeline_err(pass: &'static str) -> impl FnOnce(pipeline::PipelineError) -> Error {
    move |source| Error::Pipeline { pass, source }
}

/// Pass 1: execute, build instances, commit each, spill what the store policy keeps (the
/// trace; the LDE and a level of its tree). Returns the records in canonical order.
fn pass_main(ctx: &Arc<Ctx>, metrics: &Metrics) -> Result<(Vec<Record>, Statement), Error> {
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
                root,
                keep,
            )
        }))
    });
    let c = Arc::clone(ctx);
    /// Table, rows, trace (when kept), log height, root, LDE and tree (unless never kept).
    type MainCommitted = (
        usize,
        usize,
        Option<RowMajorMatrix<F>>,
        u8,
        Digest,
        Option<Committed>,
    );
    let spilled = g.map("spill", committed, move |it: Item<MainCommitted>| {
        let (table, rows, trace, log_height, main_root, committed) = it.data;
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

/// The source of the passes after aux: every instance in canonical order, with its main
/// trace when its LDEs were not kept (they are recomputed from it). When every chunk kept its
/// LDEs, only descriptors are handed out and nothing is re-executed.
fn instances(g: &mut Graph, run: &Run) -> Port<Item<Option<Matrix>>> {
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
fn traces(g: &mut Graph, run: &Run, needed: fn(&Record) -> bool) -> Port<Item<Option<Matrix>>> {
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
fn trace_of<T>(it: &Item<Option<T>>) -> Result<&T, Error> {
    it.data.as_ref().ok_or_else(|| no_trace(&it.desc))
}

fn no_trace(desc: &ChunkDescriptor) -> Error {
    Error::Config(format!("{}: no trace was handed out", desc.chunk_label()))
}

/// Collects one result per instance, filed under its canonical index.
fn collect_indexed<T: Send + 'static>(
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

/// Pass 2: LogUp aux columns; their roots and claimed partial sums. What is spilled depends
/// on the store: with kept LDEs the aux LDE and a level of its tree (later passes work on
/// LDEs), otherwise the aux trace (rebuilding it, a batch inversion per bus interaction and
/// row, costs more than reading it back).
fn pass_aux(
    run: &Run,
    metrics: &Metrics,
    lookup: [EF; 2],
) -> Result<Vec<(Option<AuxCommitment>, ChunkDescriptor)>, Error> {
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
        let commitment = AuxCommitment {
            root: committed.root(),
            claimed_sum,
        };
        let keep = kept.then_some(committed);
        let data = Some((commitment, trace, keep));
        Ok::<_, Error>(Item { index, desc, data })
    });
    let c = Arc::clone(ctx);
    type AuxCommitted = Option<(AuxCommitment, Option<RowMajorMatrix<F>>, Option<Committed>)>;
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

/// An instance's main and aux LDEs: mapped from their segments, or recomputed.
struct Ldes {
    main: Matrix,
    aux: Option<Matrix>,
}

impl Ldes {
    /// Maps the LDEs pass 1 and 2 kept.
    fn map(ctx: &Ctx, r: &Record) -> Result<Ldes, Error> {
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
    fn recompute(ctx: &Ctx, r: &Record, trace: &Matrix) -> Result<Ldes, Error> {
        let (main, aux) = recompute_ldes(ctx, r, trace)?;
        Ok(Ldes {
            main: Matrix::Owned(main),
            aux: aux.map(Matrix::Owned),
        })
    }
}

/// The main LDE from the trace, and the aux LDE from the spilled aux trace.
fn recompute_ldes(
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
fn ldes(g: &mut Graph, run: &Run) -> Port<Item<Ldes>> {
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

/// Pass 3: quotients. With kept LDEs the quotient LDE and a level of its tree are spilled
/// (the OOD, DEEP and open passes map it); otherwise the pieces' coefficients (n rows, half
/// the LDE): the OOD and DEEP passes read them instead of evaluating the constraints again,
/// and the open pass extends them to rebuild the tree.
fn pass_quotient(
    run: &Run,
    metrics: &Metrics,
    lookup: [EF; 2],
    composition: EF,
) -> Result<Vec<(Digest, ChunkDescriptor)>, Error> {
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
        let claimed = aux[it.index].map(|a| a.claimed_sum).unwrap_or_default();
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
            let root = committed.root();
            let desc = if records[index].ldes_kept {
                c.write_committed(&desc, "quotient", QUOTIENT, committed)?
            } else {
                c.write(&desc, "quotient", kind::QUOTIENT_COEFFS, &mut coeffs)?
            };
            let data = (root, desc.clone());
            Ok::<_, Error>(Item { index, desc, data })
        },
    );
    let q = collect_indexed(g, metrics, "quotient", out, run.records.len())?;
    ctx.spill.end_pass("quotient")?;
    Ok(q)
}

/// What the OOD and DEEP passes evaluate: the LDEs when the store keeps them (what the
/// in-memory prover uses), else the traces and quotient coefficients (no LDE needed: OOD
/// values by barycentric and Horner evaluation, DEEP combined on the trace domain).
enum Evaluations {
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
    fn ldes<'a>(
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

    fn traces<'a>(
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

    fn quotient(&self) -> &Matrix {
        match self {
            Evaluations::Ldes { quotient, .. } => quotient,
            Evaluations::Traces { coeffs, .. } => coeffs,
        }
    }
}

/// Every instance's [`Evaluations`], for the OOD and DEEP passes.
fn evaluations(g: &mut Graph, run: &Run) -> Port<Item<Evaluations>> {
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

/// Pass 4: out-of-domain values of every column at z and z*g.
fn pass_ood(run: &Run, metrics: &Metrics, z: EF) -> Result<Vec<InstanceOod>, Error> {
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

/// Pass 5: DEEP codewords (one per LDE height), accumulated in the sink in arrival order
/// (the accumulator's coefficients depend on the instance index only).
fn pass_deep(
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

/// Pass 7: openings at the query rows. A chunk with kept LDEs: rows read from the mapped
/// LDEs, each tree rebuilt from its kept level and the subtrees over the opened rows (checked
/// against the roots, so a corrupted spill is an error naming the segment). Otherwise every
/// tree is rebuilt: main and aux from recomputed LDEs, quotient by extending its coefficients.
fn pass_open(
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
                aux: match aux[it.index] {
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
