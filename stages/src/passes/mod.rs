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
//! The passes live one per module (`main`, `aux`, `quotient`, `ood`, `deep`, `fri`, `open`,
//! `check`), with what they share in `common`; [`prove_pipeline`] is the driver, the transcript
//! schedule between them.
//!
//! `execute` re-executes the program and emits instances in generation order (or, with
//! `--store trace`, maps the traces pass 1 wrote); `read` hands out descriptors in canonical
//! order. A chunk that does not keep its LDEs spills its aux trace and quotient coefficients
//! instead; the passes after aux then re-execute to get its trace back, recompute its LDEs
//! (quotient, open) or work from its traces (OOD: barycentric and Horner; DEEP: combined on
//! the trace domain, only the combination extended). Items carry the instance's [`pipeline::ChunkDescriptor`], which gathers the segments each pass
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

mod aux;
pub(crate) mod check;
mod common;
mod deep;
mod fri;
mod main;
mod ood;
mod open;
mod quotient;

use std::collections::HashMap;
use std::sync::Arc;

use pipeline::{Metrics, Progress, SpillDir};
use stark::pass_tree::{JoinNodes, PassTrees};
use stark::proof::{InstanceShape, Proof};
use stark::protocol;
use stark::prover;
use stark::{Digest, ProofParams};
use vm::Program;
use vm::air::{Rv32Air, Statement};

use crate::clock::PassClock;
use crate::error::Error;
use crate::store::Store;
use crate::widths::{TableWidth, table_widths};

use aux::pass_aux;
use check::pass_check;
use common::*;
use deep::pass_deep;
use fri::pass_fri;
use main::{pass_main, plan_room};
use ood::pass_ood;
use open::pass_open;
use quotient::pass_quotient;

/// The passes in order, with the share of a run's wall time each took (fib_iterative, 4M
/// instructions, default chunk rows, `--store auto`, 2 cores): the overall progress bar's
/// weights. Other store policies shift time to the later passes (`recompute`: about 1.6 times
/// as long in all), so the ETA runs short early and corrects itself as passes end.
const PASS_WEIGHTS: [(&str, f64); 8] = [
    ("main", 0.274),
    ("aux", 0.247),
    ("quotient", 0.333),
    ("ood", 0.069),
    ("deep", 0.061),
    ("fri", 0.009),
    ("open", 0.005),
    ("check", 0.002),
];

fn begin<'m>(ctx: &Ctx, metrics: &'m Metrics, name: &'static str) -> PassClock<'m> {
    PassClock::begin(&ctx.config.progress, metrics, name)
}

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
    /// Instances whose LDEs were spilled rather than recomputed ([`crate::store::KeepLdes`]).
    pub ldes_kept: usize,
    pub widths: Vec<TableWidth>,
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

    ctx.config.progress.plan(&PASS_WEIGHTS);

    // Pass 1: main.
    let timer = begin(&ctx, metrics, "main");
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
    let params = ctx.config.params;
    let log_join = params.log_join_lde();
    let joined =
        |members: Vec<&JoinNodes>| JoinNodes::join(log_join, members).map_err(Error::Config);
    let prep_joins: Vec<JoinNodes> = records
        .iter()
        .filter_map(|r| prep.get(&(r.table(), r.log_height)))
        .map(|p| JoinNodes::of(&p.1.tree, log_join))
        .collect();
    let prep_pass = joined(prep_joins.iter().collect())?;
    let main_pass = joined(records.iter().map(|r| &r.main_join).collect())?
        .ok_or_else(|| Error::Config("no instances".into()))?;
    let mut t = protocol::start(&ctx.tables, &params, &public, &shapes);
    protocol::observe_main(
        &mut t,
        prep_pass.as_ref().map(|p| p.root()).as_ref(),
        &main_pass.root(),
    );
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
    let timer = begin(&ctx, metrics, "aux");
    let (aux, descs): (Vec<_>, Vec<_>) = pass_aux(&run, metrics, lookup)?.into_iter().unzip();
    timer.finish();
    run.update(descs);
    let aux_pass = joined(aux.iter().flatten().map(|a| &a.join).collect())?;
    let claimed_sums: Vec<_> = aux
        .iter()
        .map(|a| a.as_ref().map(|a| a.claimed_sum))
        .collect();
    protocol::observe_aux(
        &mut t,
        aux_pass.as_ref().map(|p| p.root()).as_ref(),
        &claimed_sums,
    );
    run.aux = Arc::new(aux);
    let composition = protocol::draw_composition_challenge(&mut t);

    // Pass 3: quotient.
    let timer = begin(&ctx, metrics, "quotient");
    let (quotients, descs): (Vec<QuotientCommit>, Vec<_>) =
        pass_quotient(&run, metrics, lookup, composition)?
            .into_iter()
            .unzip();
    timer.finish();
    run.update(descs);
    let quotient_pass = joined(quotients.iter().map(|q| &q.join).collect())?
        .ok_or_else(|| Error::Config("no instances".into()))?;
    protocol::observe_quotient(&mut t, &quotient_pass.root());
    let quotient_roots: Vec<Digest> = quotients.iter().map(|q| q.root).collect();
    let z = protocol::draw_ood_point(&mut t);

    // Pass 4: ood.
    let timer = begin(&ctx, metrics, "ood");
    let oods = pass_ood(&run, metrics, z)?;
    timer.finish();
    for o in &oods {
        protocol::observe_ood(&mut t, o);
    }
    let beta = protocol::draw_deep_challenge(&mut t);

    // Pass 5: deep.
    let timer = begin(&ctx, metrics, "deep");
    let oods = Arc::new(oods);
    let deep = pass_deep(&run, metrics, z, beta, Arc::clone(&oods))?;
    timer.finish();

    // Pass 6: FRI, grinding, queries.
    let timer = begin(&ctx, metrics, "fri");
    let fri = pass_fri(&run, deep.codewords, &mut t)?;
    timer.finish();

    // Pass 7: open.
    let timer = begin(&ctx, metrics, "open");
    let positions = Arc::new(fri.positions);
    let mut openings = pass_open(
        &run,
        metrics,
        &quotient_roots,
        Arc::clone(&positions),
        fri.log_max_lde,
    )?;
    let passes = PassTrees {
        prep: prep_pass.as_ref(),
        main: &main_pass,
        aux: aux_pass.as_ref(),
        quotient: &quotient_pass,
    };
    let log_ldes: Vec<usize> = run.records.iter().map(|r| r.main_join.log_lde).collect();
    let pass_siblings = passes.open(&mut openings, &log_ldes, &positions, fri.log_max_lde);
    timer.finish();

    let oods = Arc::try_unwrap(oods).unwrap_or_else(|a| (*a).clone());
    let proof = Proof {
        params: ctx.config.params,
        statement: public.statement,
        instances: run.shapes.clone(),
        main_root: main_pass.root(),
        aux_root: aux_pass.as_ref().map(|p| p.root()),
        claimed_sums,
        quotient_root: quotient_pass.root(),
        ood: oods,
        fri_roots: fri.roots,
        fri_final: fri.final_value,
        pow_nonce: fri.pow_nonce,
        openings,
        pass_siblings,
        fri_openings: fri.openings,
    };

    // Check: the finished proof verifies.
    let timer = begin(&ctx, metrics, "check");
    pass_check(&ctx.program, &statement, &proof)?;
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
