//! The out-of-core prover: the passes of DESIGN.md section 3, each a [`pipeline::Graph`] of
//! stages on bounded channels, producing the same proof bytes as [`crate::prove_in_memory`].
//!
//! ```text
//! main      execute -> commit (LDE + Merkle root) -> spill (store=trace) -> collect
//!           => transcript: shapes, preprocessed + main roots (canonical order); LogUp challenges
//! aux       traces -> aux (LogUp columns: spill them, LDE, root, claimed sum) -> collect
//!           => aux roots and sums; composition challenge
//! quotient  traces -> lde (main; aux from its segment) -> quotient (evaluate, commit, spill
//!           the pieces' coefficients) -> collect
//!           => quotient roots; OOD point z
//! ood       traces -> ood (barycentric over the traces, Horner over the quotient) -> collect
//!           => OOD values; DEEP challenge
//! deep      traces -> load (aux, quotient coefficients) -> deep (combine on the trace domain,
//!           extend one codeword per instance, add it to its height's)
//! fri       in memory: the DEEP codewords are one chunk's size, not the run's
//! open      traces -> commit (main + aux LDEs and trees) -> open (quotient tree from its
//!           coefficients, rows, siblings) -> collect
//! ```
//! `traces` is the store policy's source ([`Store`]): segments mapped in canonical order, or a
//! re-execution that emits instances in generation order. Stages compute in whatever order
//! items arrive; each pass's sink files results under the instance's canonical index and the
//! driver absorbs them in (table, chunk) order after the pass, so the transcript never depends
//! on thread timing or channel capacity. Between passes only small per-instance data is held
//! (roots, claimed sums, OOD values, openings) plus the fixed tables' preprocessed
//! commitments; peak memory is set by the chunk size and the channel capacity.
//!
//! Store or recompute, per artifact, measured on fib_iterative (2 cores shared with other
//! work, chunks of 2^17 rows). The main trace is what `--store` decides. At 4M instructions,
//! two runs each: `recompute` 64.6 / 82.9 s wall, 114 / 107 CPU-s, peak RssAnon 481 / 494 MiB,
//! 1.2 GiB spilled; `trace` 60.8 / 79.5 s, 109 / 112 CPU-s, 406 / 453 MiB, 2.3 GiB spilled.
//! Re-executing the run in each later pass costs about what writing and mapping back the
//! traces costs (the difference is inside the run-to-run noise), mapped traces count as page
//! cache rather than anonymous memory, and storing doubles the disk footprint, which grows
//! with the run. `recompute` is the default (disk is the resource that runs out on long runs,
//! DESIGN.md section 3); `--store trace` is there for short runs and for inspecting traces.
//! The wide LDEs are recomputed where they are needed (the quotient and open passes; an LDE
//! costs about as much to recompute as to read back, and would need blowup x the disk); the
//! OOD and DEEP passes need none (they work on the traces and quotient coefficients).
//! Two artifacts are always spilled because rebuilding them costs more than reading them: the
//! aux trace (a batch inversion per bus interaction and row; spilling it cut the run from 33 to
//! 28 CPU-seconds) and the quotient pieces' coefficients (constraint evaluation on the
//! quotient domain; n rows, half the size of the quotient LDE).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use formats::SegmentMeta;
use pipeline::{BoxError, Chunk, Graph, Metrics, Port, Progress, SegmentRef, SpillDir};
use stark::field::EF;
use stark::merkle::Digest;
use stark::proof::{AuxCommitment, InstanceOod, InstanceOpening, InstanceShape, Proof};
use stark::protocol;
use stark::prover::{self, Committed, DeepAccumulator, InstanceLdes, InstanceTraces};
use stark::{F, ProofParams, RowMajorMatrix, Table};
use vm::Program;
use vm::air::{Rv32Air, Statement};

use crate::error::Error;
use crate::generate::{Instance, generate};
use crate::store::{Matrix, Store, write_matrix};

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
}

/// What flows between stages: one instance's data, with its canonical index.
struct Item<T> {
    index: usize,
    label: String,
    rows: u64,
    data: T,
}

impl<T: Send + 'static> Chunk for Item<T> {
    fn chunk_label(&self) -> String {
        self.label.clone()
    }
    fn chunk_rows(&self) -> u64 {
        self.rows
    }
}

/// What pass 1 learns about an instance, kept (small) for the whole run.
#[derive(Clone)]
struct Record {
    table: usize,
    chunk: u64,
    log_height: u8,
    main_root: Digest,
    trace: Option<SegmentRef>,
    /// The LogUp aux trace, spilled in pass 2 (tables with buses only).
    aux_trace: Option<SegmentRef>,
    quotient: Option<SegmentRef>,
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
}

impl Ctx {
    fn label(&self, table: usize, chunk: u64) -> String {
        format!("{}#{chunk}", self.names[table])
    }
}

/// Pass-1 results plus what later passes derive from them.
struct Run {
    ctx: Arc<Ctx>,
    records: Arc<Vec<Record>>,
    shapes: Vec<InstanceShape>,
    /// Preprocessed trace and commitment per (table, log height): the fixed tables only.
    prep: Arc<PrepCache>,
}

/// Preprocessed trace and its commitment per (table, log height).
type PrepCache = HashMap<(usize, u8), (RowMajorMatrix<F>, Committed)>;

impl Run {
    fn prep(&self, i: usize) -> Option<&(RowMajorMatrix<F>, Committed)> {
        let r = &self.records[i];
        self.prep.get(&(r.table, r.log_height))
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
        config,
        spill,
    });

    // Pass 1: main.
    let timer = metrics.pass("main");
    let (records, statement) = pass_main(&ctx)?;
    timer.finish();
    let shapes: Vec<InstanceShape> = records
        .iter()
        .map(|r| InstanceShape {
            table: r.table as u32,
            log_height: r.log_height,
        })
        .collect();
    let mut prep = HashMap::new();
    for r in &records {
        let table = &ctx.tables[r.table];
        if table.prep_width > 0 && !prep.contains_key(&(r.table, r.log_height)) {
            let airs = ctx.air.tables();
            let m = prover::preprocessed_trace(airs[r.table], table, r.log_height)
                .map_err(|msg| Error::Prove(stark::ProveError::Shape(msg)))?
                .expect("prep_width > 0");
            let c = prover::commit_trace(m.clone(), log_b);
            prep.insert((r.table, r.log_height), (m, c));
        }
    }
    let public = statement.public_inputs();
    let mut t = protocol::start(&ctx.tables, &ctx.config.params, &public, &shapes);
    for r in &records {
        let p = prep.get(&(r.table, r.log_height)).map(|p| p.1.root());
        protocol::observe_main(&mut t, p.as_ref(), &r.main_root);
    }
    let lookup = protocol::draw_lookup_challenges(&mut t);
    let mut run = Run {
        ctx: Arc::clone(&ctx),
        records: Arc::new(records),
        shapes,
        prep: Arc::new(prep),
    };
    let n = run.records.len();

    // Pass 2: aux.
    let timer = metrics.pass("aux");
    let aux_results = pass_aux(&run, lookup)?;
    timer.finish();
    let mut records = (*run.records).clone();
    let mut aux = Vec::with_capacity(n);
    for (r, (a, seg)) in records.iter_mut().zip(aux_results) {
        protocol::observe_aux(&mut t, a.as_ref());
        r.aux_trace = seg;
        aux.push(a);
    }
    run.records = Arc::new(records);
    let composition = protocol::draw_composition_challenge(&mut t);
    let claimed: Arc<Vec<EF>> = Arc::new(
        aux.iter()
            .map(|a| a.map(|a| a.claimed_sum).unwrap_or_default())
            .collect(),
    );

    // Pass 3: quotient.
    let timer = metrics.pass("quotient");
    let quotients = pass_quotient(&run, lookup, Arc::clone(&claimed), composition)?;
    timer.finish();
    let mut records = (*run.records).clone();
    for (r, (root, seg)) in records.iter_mut().zip(&quotients) {
        protocol::observe_quotient(&mut t, root);
        r.quotient = Some(seg.clone());
    }
    run.records = Arc::new(records);
    let quotient_roots: Vec<Digest> = quotients.into_iter().map(|q| q.0).collect();
    let z = protocol::draw_ood_point(&mut t);

    // Pass 4: ood.
    let timer = metrics.pass("ood");
    let oods = pass_ood(&run, z)?;
    timer.finish();
    for o in &oods {
        protocol::observe_ood(&mut t, o);
    }
    let beta = protocol::draw_deep_challenge(&mut t);

    // Pass 5: deep.
    let timer = metrics.pass("deep");
    let oods = Arc::new(oods);
    let deep = pass_deep(&run, z, beta, Arc::clone(&oods))?;
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
    let openings = pass_open(&run, Arc::new(positions), log_max_lde)?;
    timer.finish();

    let oods = Arc::try_unwrap(oods).unwrap_or_else(|a| (*a).clone());
    let proof = Proof {
        params: ctx.config.params,
        statement: public.statement,
        instances: run.shapes.clone(),
        main_roots: run.records.iter().map(|r| r.main_root).collect(),
        aux,
        quotient_roots,
        ood: oods,
        fri_roots: fri.roots.clone(),
        fri_final: fri.final_value,
        pow_nonce,
        openings,
        fri_openings,
    };
    Ok(PipelineRun {
        proof,
        statement,
        instances: n,
    })
}

fn graph(ctx: &Ctx, total: Option<u64>) -> Graph {
    Graph::new(ctx.config.channel_capacity).with_progress(&ctx.config.progress, total)
}

fn pipeline_err(pass: &'static str) -> impl FnOnce(pipeline::PipelineError) -> Error {
    move |source| Error::Pipeline { pass, source }
}

/// Pass 1: execute, build instances, commit each (root only; the LDE and tree are dropped),
/// spill the trace when storing traces. Returns the records in canonical order.
fn pass_main(ctx: &Arc<Ctx>) -> Result<(Vec<Record>, Statement), Error> {
    ctx.spill.begin_pass("main")?;
    let mut g = graph(ctx, None);
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
                    label: c.label(inst.table, inst.chunk),
                    rows: inst.rows() as u64,
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
        let inst = &it.data;
        let table = &c.tables[inst.table];
        let log_height = prover::check_trace(table, &inst.trace, 0)?;
        if log_height as usize + c.log_b > stark::domain::MAX_LOG_LDE {
            return Err(Error::Config(format!(
                "{}: LDE larger than the field's two-adicity",
                it.label
            )));
        }
        let root = prover::commit_trace_view(inst.trace.as_view(), c.log_b).root();
        Ok::<_, Error>(Item {
            data: (it.data, log_height, root),
            index: it.index,
            label: it.label,
            rows: it.rows,
        })
    });
    let c = Arc::clone(ctx);
    let spilled = g.map(
        "spill",
        committed,
        move |it: Item<(Instance, u8, Digest)>| {
            let (inst, log_height, main_root) = it.data;
            let trace = match c.config.store {
                Store::Trace => Some(write_matrix(
                    &c.spill,
                    &SegmentMeta::new(&c.names[inst.table], inst.chunk, "main", "trace"),
                    inst.trace.as_view(),
                )?),
                Store::Recompute => None,
            };
            Ok::<_, Error>(Item {
                index: it.index,
                label: it.label,
                rows: it.rows,
                data: Record {
                    table: inst.table,
                    chunk: inst.chunk,
                    log_height,
                    main_root,
                    trace,
                    aux_trace: None,
                    quotient: None,
                },
            })
        },
    );
    let mut records: Vec<Record> = g
        .collect("collect", spilled)
        .map_err(pipeline_err("main"))?
        .into_iter()
        .map(|it| it.data)
        .collect();
    records.sort_by_key(|r| (r.table, r.chunk));
    ctx.spill.end_pass("main")?;
    let statement = statement
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .ok_or_else(|| Error::Config("the execute stage ended without a statement".into()))?;
    Ok((records, statement))
}

/// The source of a later pass: every instance's main trace, from its segment (canonical order)
/// or from a re-execution (generation order).
fn traces(g: &mut Graph, run: &Run) -> Port<Item<Matrix>> {
    let ctx = Arc::clone(&run.ctx);
    let records = Arc::clone(&run.records);
    match ctx.config.store {
        Store::Trace => g.source("read", move |out| {
            for (index, r) in records.iter().enumerate() {
                let seg = r.trace.as_ref().ok_or_else(|| {
                    Error::Config(format!("{}: no trace segment", ctx.label(r.table, r.chunk)))
                })?;
                let rows = 1usize << r.log_height;
                let m = Matrix::open(&ctx.spill, seg, ctx.tables[r.table].main_width, rows)?;
                out.emit(Item {
                    index,
                    label: ctx.label(r.table, r.chunk),
                    rows: rows as u64,
                    data: m,
                })?;
            }
            Ok::<(), BoxError>(())
        }),
        Store::Recompute => g.source("execute", move |out| {
            let index_of: HashMap<(usize, u64), usize> = records
                .iter()
                .enumerate()
                .map(|(i, r)| ((r.table, r.chunk), i))
                .collect();
            let mut seen = 0usize;
            generate(
                Arc::clone(&ctx.program),
                Arc::clone(&ctx.input),
                ctx.config.chunk_rows,
                ctx.config.max_cycles,
                |inst: Instance| {
                    let label = ctx.label(inst.table, inst.chunk);
                    let index = *index_of.get(&(inst.table, inst.chunk)).ok_or_else(|| {
                        Error::Diverged {
                            what: label.clone(),
                            expected: "no such instance".into(),
                        }
                    })?;
                    let rows = inst.rows();
                    if rows != 1usize << records[index].log_height {
                        return Err(Error::Diverged {
                            what: format!("{label} with {rows} rows"),
                            expected: format!("{} rows", 1u64 << records[index].log_height),
                        }
                        .into());
                    }
                    seen += 1;
                    out.emit(Item {
                        index,
                        label,
                        rows: rows as u64,
                        data: Matrix::Owned(inst.trace),
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
        }),
    }
}

/// Collects one result per instance, filed under its canonical index.
fn collect_indexed<T: Send + 'static>(
    g: Graph,
    pass: &'static str,
    port: Port<Item<T>>,
    n: usize,
) -> Result<Vec<T>, Error> {
    let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
    g.run("collect", port, (), |_, it: Item<T>| {
        out[it.index] = Some(it.data);
        Ok::<(), BoxError>(())
    })
    .map_err(pipeline_err(pass))?;
    out.into_iter()
        .enumerate()
        .map(|(i, v)| {
            v.ok_or_else(|| Error::Config(format!("pass {pass}: instance {i} never arrived")))
        })
        .collect()
}

/// Pass 2: LogUp aux columns; their roots and claimed partial sums. The aux trace is spilled:
/// rebuilding it (a batch inversion per bus interaction and row) costs more than reading it
/// back, and passes 3-7 all need it.
#[allow(clippy::type_complexity)]
fn pass_aux(
    run: &Run,
    lookup: [EF; 2],
) -> Result<Vec<(Option<AuxCommitment>, Option<SegmentRef>)>, Error> {
    let ctx = &run.ctx;
    ctx.spill.begin_pass("aux")?;
    let mut g = graph(ctx, Some(run.records.len() as u64));
    let src = traces(&mut g, run);
    let (c, records, prep) = (
        Arc::clone(ctx),
        Arc::clone(&run.records),
        Arc::clone(&run.prep),
    );
    let out = g.map("aux", src, move |it: Item<Matrix>| {
        let r = &records[it.index];
        let p = prep.get(&(r.table, r.log_height)).map(|p| p.0.as_view());
        let a = prover::aux_trace(&c.tables[r.table], it.data.view(), p, &lookup)?;
        let data = match a {
            None => (None, None),
            Some(a) => {
                let seg = write_matrix(
                    &c.spill,
                    &SegmentMeta::new(&c.names[r.table], r.chunk, "aux", "aux-trace"),
                    a.trace.as_view(),
                )?;
                let commitment = AuxCommitment {
                    root: prover::commit_trace(a.trace, c.log_b).root(),
                    claimed_sum: a.claimed_sum,
                };
                (Some(commitment), Some(seg))
            }
        };
        Ok::<_, Error>(Item {
            index: it.index,
            label: it.label,
            rows: it.rows,
            data,
        })
    });
    let aux = collect_indexed(g, "aux", out, run.records.len())?;
    ctx.spill.end_pass("aux")?;
    Ok(aux)
}

/// An instance's main and aux LDEs, recomputed from its main trace.
struct Ldes {
    main: RowMajorMatrix<F>,
    aux: Option<RowMajorMatrix<F>>,
}

/// Recomputes the main LDE, and the aux LDE from the spilled aux trace, on the coset of size
/// `n << log_blowup` (`log_blowup` 0 gives the first n rows only, which is all OOD evaluation
/// reads).
fn recompute_ldes(ctx: &Ctx, r: &Record, trace: &Matrix, log_blowup: usize) -> Result<Ldes, Error> {
    let aux = match &r.aux_trace {
        None => None,
        Some(seg) => {
            let width = ctx.tables[r.table].aux_width();
            let m = Matrix::open(&ctx.spill, seg, width, 1usize << r.log_height)?;
            Some(stark::domain::lde(
                m.to_owned_for_lde(log_blowup),
                log_blowup,
            ))
        }
    };
    let main = stark::domain::lde(trace.to_owned_for_lde(log_blowup), log_blowup);
    Ok(Ldes { main, aux })
}

/// Pass 3: quotients. The quotient pieces' coefficients (n rows) are spilled: passes 4 and 5
/// read them instead of evaluating the constraints again, pass 7 extends them to rebuild the
/// quotient tree.
fn pass_quotient(
    run: &Run,
    lookup: [EF; 2],
    claimed: Arc<Vec<EF>>,
    composition: EF,
) -> Result<Vec<(Digest, SegmentRef)>, Error> {
    let ctx = &run.ctx;
    ctx.spill.begin_pass("quotient")?;
    let mut g = graph(ctx, Some(run.records.len() as u64));
    let src = traces(&mut g, run);
    let (c, records) = (Arc::clone(ctx), Arc::clone(&run.records));
    let ldes = g.map("lde", src, move |it: Item<Matrix>| {
        let r = &records[it.index];
        let l = recompute_ldes(&c, r, &it.data, c.log_b)?;
        Ok::<_, Error>(Item {
            index: it.index,
            label: it.label,
            rows: it.rows,
            data: l,
        })
    });
    let (c, records, prep) = (
        Arc::clone(ctx),
        Arc::clone(&run.records),
        Arc::clone(&run.prep),
    );
    let out = g.map("quotient", ldes, move |it: Item<Ldes>| {
        let r = &records[it.index];
        let table = &c.tables[r.table];
        let ldes = InstanceLdes {
            main: it.data.main.as_view(),
            prep: prep
                .get(&(r.table, r.log_height))
                .map(|p| p.1.lde.as_view()),
            aux: it.data.aux.as_ref().map(|a| a.as_view()),
        };
        let (q, coeffs) = prover::quotient_with_coeffs(
            table,
            r.log_height as usize,
            ldes,
            &lookup,
            claimed[it.index],
            composition,
            c.log_b,
        )?;
        let seg = write_matrix(
            &c.spill,
            &SegmentMeta::new(&c.names[r.table], r.chunk, "quotient", "quotient-coeffs"),
            coeffs.as_view(),
        )?;
        drop(coeffs);
        let root = prover::commit_lde(q).root();
        Ok::<_, Error>(Item {
            index: it.index,
            label: it.label,
            rows: it.rows,
            data: (root, seg),
        })
    });
    let q = collect_indexed(g, "quotient", out, run.records.len())?;
    ctx.spill.end_pass("quotient")?;
    Ok(q)
}

/// Maps an instance's spilled quotient coefficients (n rows, 2 columns per piece).
fn open_quotient(ctx: &Ctx, r: &Record) -> Result<Matrix, Error> {
    let seg = r.quotient.as_ref().ok_or_else(|| {
        Error::Config(format!(
            "{}: no quotient segment",
            ctx.label(r.table, r.chunk)
        ))
    })?;
    let table = &ctx.tables[r.table];
    Matrix::open(
        &ctx.spill,
        seg,
        table.quotient_width(),
        1usize << r.log_height,
    )
}

/// Maps an instance's spilled aux trace, if its table has one.
fn open_aux(ctx: &Ctx, r: &Record) -> Result<Option<Matrix>, Error> {
    r.aux_trace
        .as_ref()
        .map(|seg| {
            let width = ctx.tables[r.table].aux_width();
            Matrix::open(&ctx.spill, seg, width, 1usize << r.log_height)
        })
        .transpose()
}

/// Pass 4: out-of-domain values, straight from the main, aux and preprocessed traces and the
/// quotient coefficients ([`prover::ood_from_traces`]: barycentric and Horner, no DFT).
fn pass_ood(run: &Run, z: EF) -> Result<Vec<InstanceOod>, Error> {
    let ctx = &run.ctx;
    ctx.spill.begin_pass("ood")?;
    let mut g = graph(ctx, Some(run.records.len() as u64));
    let src = traces(&mut g, run);
    let (c, records, prep) = (
        Arc::clone(ctx),
        Arc::clone(&run.records),
        Arc::clone(&run.prep),
    );
    let out = g.map("ood", src, move |it: Item<Matrix>| {
        let r = &records[it.index];
        let aux = open_aux(&c, r)?;
        let q = open_quotient(&c, r)?;
        let traces = InstanceTraces {
            main: it.data.view(),
            prep: prep.get(&(r.table, r.log_height)).map(|p| p.0.as_view()),
            aux: aux.as_ref().map(|a| a.view()),
        };
        let o = prover::ood_from_traces(
            &c.tables[r.table],
            r.log_height as usize,
            traces,
            q.view(),
            z,
        )?;
        Ok::<_, Error>(Item {
            index: it.index,
            label: it.label,
            rows: it.rows,
            data: o,
        })
    });
    let o = collect_indexed(g, "ood", out, run.records.len())?;
    ctx.spill.end_pass("ood")?;
    Ok(o)
}

/// Pass 5: DEEP codewords (one per LDE height), accumulated in the sink in arrival order
/// (the accumulator's coefficients depend on the instance index only), from the traces and the
/// quotient coefficients ([`DeepAccumulator::add_from_traces`]: the columns are combined on
/// the trace domain and only the combination is extended).
fn pass_deep(
    run: &Run,
    z: EF,
    beta: EF,
    oods: Arc<Vec<InstanceOod>>,
) -> Result<DeepAccumulator, Error> {
    let ctx = &run.ctx;
    ctx.spill.begin_pass("deep")?;
    let mut g = graph(ctx, Some(run.records.len() as u64));
    let src = traces(&mut g, run);
    let (c, records) = (Arc::clone(ctx), Arc::clone(&run.records));
    let loaded = g.map("load", src, move |it: Item<Matrix>| {
        let r = &records[it.index];
        let aux = open_aux(&c, r)?;
        let q = open_quotient(&c, r)?;
        Ok::<_, Error>(Item {
            index: it.index,
            label: it.label,
            rows: it.rows,
            data: (it.data, aux, q),
        })
    });
    let deep = DeepAccumulator::new(&ctx.tables, &run.shapes, z, beta, ctx.log_b);
    let deep = g
        .run(
            "deep",
            loaded,
            deep,
            |deep, it: Item<(Matrix, Option<Matrix>, Matrix)>| {
                let i = it.index;
                let (main, aux, q) = &it.data;
                let traces = InstanceTraces {
                    main: main.view(),
                    prep: run.prep(i).map(|p| p.0.as_view()),
                    aux: aux.as_ref().map(|a| a.view()),
                };
                let table = &ctx.tables[run.records[i].table];
                deep.add_from_traces(table, i, traces, q.view(), &oods[i])
                    .map_err(BoxError::from)
            },
        )
        .map_err(pipeline_err("deep"))?;
    ctx.spill.end_pass("deep")?;
    Ok(deep)
}

/// Pass 7: openings at the query rows, every tree rebuilt (main and aux from recomputed LDEs,
/// quotient from its spilled LDE).
fn pass_open(
    run: &Run,
    positions: Arc<Vec<usize>>,
    log_max_lde: usize,
) -> Result<Vec<InstanceOpening>, Error> {
    let ctx = &run.ctx;
    ctx.spill.begin_pass("open")?;
    let mut g = graph(ctx, Some(run.records.len() as u64));
    let src = traces(&mut g, run);
    let (c, records) = (Arc::clone(ctx), Arc::clone(&run.records));
    let committed = g.map("commit", src, move |it: Item<Matrix>| {
        let r = &records[it.index];
        let l = recompute_ldes(&c, r, &it.data, c.log_b)?;
        let main = prover::commit_lde(l.main);
        let aux = l.aux.map(prover::commit_lde);
        Ok::<_, Error>(Item {
            index: it.index,
            label: it.label,
            rows: it.rows,
            data: (main, aux),
        })
    });
    let (c, records, prep) = (
        Arc::clone(ctx),
        Arc::clone(&run.records),
        Arc::clone(&run.prep),
    );
    let out = g.map(
        "open",
        committed,
        move |it: Item<(Committed, Option<Committed>)>| {
            let r = &records[it.index];
            let (main, aux) = &it.data;
            let rows =
                protocol::query_rows(&positions, log_max_lde, r.log_height as usize + c.log_b);
            let q = open_quotient(&c, r)?;
            let q_lde = prover::commit_lde(stark::domain::coeffs_to_lde(
                q.to_owned_for_lde(c.log_b),
                r.log_height as usize + c.log_b,
            ));
            let opening = InstanceOpening {
                main: main.open(&rows),
                prep: prep.get(&(r.table, r.log_height)).map(|p| p.1.open(&rows)),
                aux: aux.as_ref().map(|a| a.open(&rows)),
                quotient: q_lde.open(&rows),
            };
            Ok::<_, Error>(Item {
                index: it.index,
                label: it.label,
                rows: it.rows,
                data: opening,
            })
        },
    );
    let o = collect_indexed(g, "open", out, run.records.len())?;
    ctx.spill.end_pass("open")?;
    Ok(o)
}
