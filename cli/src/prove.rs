//! `stark-pipe run` (prove) and `stark-pipe verify`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use formats::ProofFile;
use pipeline::{Keep, MemoryLimit, Metrics, Progress, ProgressMode, SpillDir, SpillOptions};
use stages::{PipelineConfig, Store};
use stark::{Proof, ProofParams, VerifierParams};
use vm::air::{Statement, verify_execution};

use crate::execute::{InputArgs, load_program};
use crate::units::parse_count;

#[derive(clap::Args)]
pub struct RunArgs {
    /// The program: a static RV32IM ELF executable.
    pub program: PathBuf,
    #[command(flatten)]
    pub input: InputArgs,
    /// Rows per chunk: every table is split into instances of at most this many rows (a power
    /// of two >= 2, e.g. 2^20). Smaller chunks use less memory and make larger proofs.
    /// Default: from --mem-budget when given, else 2^20 (lowered to fit a cgroup memory limit).
    #[arg(long, value_parser = parse_count)]
    pub chunk_rows: Option<u64>,
    /// Memory to plan for (e.g. 2Gi): picks --chunk-rows from the widest table's bytes per row
    /// and the channel capacity. Capped by the cgroup limit (memory.max) when there is one.
    #[arg(long, value_name = "SIZE", value_parser = parse_count, conflicts_with = "chunk_rows")]
    pub mem_budget: Option<u64>,
    /// Where to write the proof (default: PROGRAM with the extension .proof, in the current
    /// directory). Written to a temporary name, then renamed.
    #[arg(short, long, value_name = "PROOF")]
    pub output: Option<PathBuf>,
    /// Stop with an error after this many instructions.
    #[arg(long, value_parser = parse_count, default_value = "2^40")]
    pub max_cycles: u64,
    /// FRI queries (the default, with blowup 2 and 16 grinding bits, gives 100 conjectured bits).
    #[arg(long, default_value_t = ProofParams::default().num_queries)]
    pub queries: u16,
    /// Proof-of-work bits ground before the queries are drawn.
    #[arg(long, default_value_t = ProofParams::default().pow_bits)]
    pub pow_bits: u8,
    /// Also print each table's instances, rows and committed columns.
    #[arg(long)]
    pub widths: bool,
    /// Prove with every instance in RAM (the reference prover) instead of the pipeline.
    #[arg(long)]
    pub in_memory: bool,
    /// What the first passes spill for the later ones instead of recomputing it: `auto`
    /// (each chunk's main, aux and quotient LDEs with a level of their Merkle trees, while
    /// the spill dir has room for them; the other chunks are recomputed, and a run that cannot
    /// fit even so stops after pass 1), `lde` (every chunk's, whatever the room), `recompute` (no LDEs: about a quarter of the
    /// disk of `lde`, 1.6 times the time), or `trace` alone or with one of those
    /// (`trace,auto`): also the main traces, so that nothing is re-executed.
    #[arg(long, value_name = "POLICY", default_value_t = Store::default())]
    pub store: Store,
    /// Directory for spilled segments (default: a fresh temp dir on disk, never tmpfs).
    #[arg(long, value_name = "DIR")]
    pub spill_dir: Option<PathBuf>,
    /// Most bytes the spill dir may hold (e.g. 20Gi). `--store auto` keeps LDEs only while
    /// they fit (the free space on its filesystem counts too); going past the limit anyway is
    /// an error naming the segment.
    #[arg(long, value_name = "SIZE", value_parser = parse_count)]
    pub spill_limit: Option<u64>,
    /// Keep the spill dir after the run (see `stark-pipe inspect DIR`).
    #[arg(long)]
    pub keep_spill: bool,
    /// Hash every segment against its recorded checksum when it is read back.
    #[arg(long)]
    pub verify_segments: bool,
    /// Progress display on stderr: auto (bars on a terminal, log lines otherwise), always, never.
    #[arg(long, value_name = "MODE", default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
    /// Chunks waiting between two stages. 0 (hand-over: a stage's finished chunk waits until
    /// the next stage takes it) measured as fast as 1 and lighter (fib_iterative, 1M
    /// instructions, 2^17-row chunks: peak RssAnon 209-213 MiB against 218-231 MiB with 1);
    /// more may help when stages' speeds vary a lot.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub channel_capacity: usize,
    /// After the summary, print each pass's stages: chunks in and out, seconds busy, waiting
    /// for input and blocked on a full output channel (which stage bounds a pass).
    #[arg(long)]
    pub stage_stats: bool,
    /// Print one JSON object on stdout instead of the text report: the statement, the proof's
    /// path, size and security, and per-pass figures (fields in docs/json.md).
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The proof file written by `stark-pipe run`.
    pub proof: PathBuf,
    /// The program the proof claims to be about; its tables are rebuilt from this ELF.
    pub program: PathBuf,
    /// Refuse proofs whose conjectured security is below this many bits.
    #[arg(long, default_value_t = VerifierParams::default().min_security_bits)]
    pub min_security: u32,
    /// Print one JSON object on stdout instead of text: `valid`, the proven `statement`
    /// (digest, exit code, cycles, output as hex and as text when UTF-8), `security_bits`, or
    /// `error` when refused (fields in docs/json.md).
    #[arg(long)]
    pub json: bool,
    /// Write the proven output (the bytes the program wrote to fd 1) to FILE, exactly; only when
    /// the proof is valid.
    #[arg(long, value_name = "FILE")]
    pub output_file: Option<PathBuf>,
}

/// The public output as a person reads it: text when it is printable UTF-8, hex otherwise.
fn show_output(bytes: &[u8]) -> String {
    const SHOWN: usize = 512;
    let head = &bytes[..bytes.len().min(SHOWN)];
    let text = match std::str::from_utf8(head) {
        Ok(s) if s.chars().all(|c| !c.is_control() || c == '\n' || c == '\t') => format!("{s:?}"),
        _ => head.iter().map(|b| format!("{b:02x}")).collect::<String>(),
    };
    if bytes.len() > SHOWN {
        format!("{text}... ({} bytes)", bytes.len())
    } else {
        text
    }
}

/// Chunk rows from the flags: --chunk-rows, else --mem-budget, else 2^20; a cgroup memory
/// limit caps the budget (and lowers the default to fit).
fn choose_chunk_rows(
    args: &RunArgs,
    program: &Arc<vm::Program>,
    params: &ProofParams,
) -> anyhow::Result<usize> {
    if let Some(rows) = args.chunk_rows {
        let rows = usize::try_from(rows).context("--chunk-rows too large")?;
        if rows < 2 || !rows.is_power_of_two() {
            bail!("--chunk-rows must be a power of two >= 2 (e.g. 2^20), not {rows}");
        }
        return Ok(rows);
    }
    let limit = MemoryLimit::read();
    let cgroup_budget = limit.cgroup.map(|c| c / 10 * 8);
    let budget = match (args.mem_budget, cgroup_budget) {
        (Some(b), Some(c)) if b > c => {
            eprintln!(
                "note: --mem-budget {b} is above 80% of the cgroup limit ({}); using {c}",
                limit.cgroup.unwrap_or(0)
            );
            Some(c)
        }
        (Some(b), _) => Some(b),
        (None, c) => c,
    };
    let default = 1usize << 20;
    let Some(budget) = budget else {
        return Ok(default);
    };
    let rows =
        stages::budget::chunk_rows_for_budget(program, params, args.channel_capacity, budget)
            .map_err(|e| anyhow::anyhow!("--mem-budget: {e}"))?;
    Ok(if args.mem_budget.is_some() {
        rows
    } else {
        rows.min(default)
    })
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let program = Arc::new(load_program(&args.program)?);
    let input: Arc<[u8]> = Arc::from(args.input.bytes()?);
    let out_path = args.output.clone().unwrap_or_else(|| {
        let stem = args
            .program
            .file_stem()
            .map_or("program".into(), |s| s.to_string_lossy().into_owned());
        PathBuf::from(format!("{stem}.proof"))
    });
    // A proof that cannot be written is found out now, not after the proving.
    formats::probe_writable(&out_path)
        .with_context(|| format!("cannot write the proof to {}", out_path.display()))?;
    let params = ProofParams {
        num_queries: args.queries,
        pow_bits: args.pow_bits,
        ..ProofParams::default()
    };
    params
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid proof parameters: {e}"))?;
    let chunk_rows = choose_chunk_rows(&args, &program, &params)?;
    if args.in_memory {
        return run_in_memory(args, program, input, chunk_rows, params, out_path);
    }
    if args.spill_dir.is_none() {
        clean_interrupted_spill_dirs();
    }
    let spill = Arc::new(
        SpillDir::create(&SpillOptions {
            dir: args.spill_dir.clone(),
            keep: if args.keep_spill {
                Keep::Always
            } else {
                Keep::Never
            },
            verify_segments: args.verify_segments,
            limit: args.spill_limit,
        })
        .context("cannot set up the spill dir")?,
    );
    for w in spill.warnings() {
        eprintln!("warning: {w}");
    }
    let metrics = Metrics::start(Some(spill.bytes_counter()));
    let config = PipelineConfig {
        chunk_rows,
        max_cycles: args.max_cycles,
        params,
        store: args.store,
        channel_capacity: args.channel_capacity,
        progress: Progress::new(args.progress),
    };
    // The pipeline's errors already carry their causes in their message (stage, chunk, file,
    // OS error): shown once, not again as an error chain.
    let proven = stages::prove_pipeline(program, input, config, Arc::clone(&spill), &metrics)
        .map_err(|e| anyhow::anyhow!("cannot prove {}: {e}", args.program.display()))
        .and_then(|mut run| {
            let security_bits = run
                .proof
                .params
                .conjectured_security_bits(run.proof.max_log_lde());
            let proof = run.proof.to_bytes();
            // The openings, most of a long run's proof (100 MB at 64M instructions), are not
            // needed once serialized.
            drop(std::mem::take(&mut run.proof.openings));
            drop(std::mem::take(&mut run.proof.fri_openings));
            let file = ProofFile {
                statement: run.statement.to_bytes(),
                proof,
            };
            file.write(&out_path)?;
            drop(file);
            let len = std::fs::metadata(&out_path)
                .with_context(|| format!("cannot read back {}", out_path.display()))?
                .len();
            Ok((run, len, security_bits))
        });
    let (run, proof_bytes, security_bits) = match proven {
        Ok(v) => v,
        Err(e) => {
            match spill.fail(&format!("{e:#}")) {
                Ok(Some(kept)) => eprintln!("spill dir kept: {}", kept.display()),
                Ok(None) => {}
                Err(ce) => eprintln!("warning: cannot clean up the spill dir: {ce}"),
            }
            return Err(e);
        }
    };
    let kept = spill.finish().context("cannot close the spill dir")?;
    let s = &run.statement;
    if args.json {
        let summary = metrics.summary(Vec::new());
        let report = crate::json::proven(
            s,
            &out_path.display().to_string(),
            proof_bytes,
            security_bits,
            run.instances,
            &summary,
        );
        println!("{report}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("exit code:   {}", s.exit_code);
    println!("output:      {}", show_output(&s.output));
    println!("cycles:      {}", s.cycles);
    println!(
        "chunks:      {} instances of at most {chunk_rows} rows (store: {}, LDEs kept for {})",
        run.instances, args.store, run.ldes_kept
    );
    println!(
        "proof:       {} ({proof_bytes} bytes, {security_bits} bits conjectured security)",
        out_path.display(),
    );
    if let Some(dir) = kept {
        println!("spill dir:   {} (kept)", dir.display());
    }
    if args.widths {
        print_widths(&run.widths, s.cycles);
    }
    let summary = metrics.summary(vec![
        ("proof size".into(), format!("{proof_bytes} bytes")),
        (
            "security".into(),
            format!("{security_bits} bits (conjectured)"),
        ),
    ]);
    print!("{summary}");
    if args.stage_stats {
        print!("{}", summary.stage_table());
    }
    Ok(ExitCode::SUCCESS)
}

/// Removes the default-location spill dirs of runs that were killed (their manifest says in
/// progress and their process is gone), so that interrupted runs do not fill the disk over
/// time. Dirs of failed runs are only there when kept on purpose and are left alone.
fn clean_interrupted_spill_dirs() {
    let (parent, _) = pipeline::spill::default_spill_parent();
    for stale in pipeline::find_stale_spill_dirs(&parent) {
        if stale.manifest.status != formats::RunStatus::InProgress {
            continue;
        }
        match std::fs::remove_dir_all(&stale.path) {
            Ok(()) => eprintln!(
                "note: removed {} (left by interrupted run {})",
                stale.path.display(),
                stale.manifest.run_id
            ),
            Err(e) => eprintln!(
                "warning: cannot remove {} (left by an interrupted run): {e}",
                stale.path.display()
            ),
        }
    }
}

fn run_in_memory(
    args: RunArgs,
    program: Arc<vm::Program>,
    input: Arc<[u8]>,
    chunk_rows: usize,
    params: ProofParams,
    out_path: PathBuf,
) -> anyhow::Result<ExitCode> {
    let start = Instant::now();
    let metrics = Metrics::start(None);
    let timer = metrics.pass("in-memory");
    let run = stages::prove_in_memory(program, input, chunk_rows, args.max_cycles, &params)
        .with_context(|| format!("cannot prove {}", args.program.display()))?;
    let file = ProofFile {
        statement: run.statement.to_bytes(),
        proof: run.proof.to_bytes(),
    };
    file.write(&out_path)?;
    timer.finish();
    let total = start.elapsed().as_secs_f64();
    let s = &run.statement;
    let summary = run.proof.summary(&[]);
    let proof_bytes = file.size_bytes();
    if args.json {
        let instances = run.proof.instances.len();
        let report = crate::json::proven(
            s,
            &out_path.display().to_string(),
            proof_bytes,
            summary.security_bits,
            instances,
            &metrics.summary(Vec::new()),
        );
        println!("{report}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("exit code:   {}", s.exit_code);
    println!("output:      {}", show_output(&s.output));
    println!("cycles:      {}", s.cycles);
    println!(
        "time:        {total:.2} s (execute + witness {:.2} s, prove {:.2} s)",
        run.execute_witness_secs, run.prove_secs
    );
    println!(
        "proof:       {} ({} bytes, {} bits conjectured security)",
        out_path.display(),
        proof_bytes,
        summary.security_bits
    );
    if args.widths {
        print_widths(&run.widths, s.cycles);
    }
    let summary = metrics.summary(vec![
        ("proof size".into(), format!("{proof_bytes} bytes")),
        (
            "security".into(),
            format!("{} bits (conjectured)", summary.security_bits),
        ),
    ]);
    print!("{summary}");
    Ok(ExitCode::SUCCESS)
}

fn print_widths(widths: &[stages::TableWidth], cycles: u64) {
    println!(
        "{:<10} {:>9} {:>12} {:>6} {:>6} {:>6} {:>14}",
        "table", "instances", "rows", "main", "aux", "prep", "cells"
    );
    let mut total = 0;
    for w in widths {
        total += w.cells();
        println!(
            "{:<10} {:>9} {:>12} {:>6} {:>6} {:>6} {:>14}",
            w.name,
            w.instances,
            w.rows,
            w.main_width,
            w.aux_width,
            w.prep_width,
            w.cells()
        );
    }
    println!(
        "committed witness cells (main + aux): {total}, {:.1} per instruction",
        total as f64 / cycles.max(1) as f64
    );
}

fn read_proof(path: &Path) -> anyhow::Result<(Statement, Proof)> {
    let file = ProofFile::read(path)?;
    let statement = Statement::from_bytes(&file.statement)
        .with_context(|| format!("{}: bad statement section", path.display()))?;
    let proof = Proof::from_bytes(&file.proof)
        .with_context(|| format!("{}: bad proof section", path.display()))?;
    Ok((statement, proof))
}

pub fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let start = Instant::now();
    let checked = read_proof(&args.proof).and_then(|(statement, proof)| {
        let program = Arc::new(load_program(&args.program)?);
        let params = VerifierParams {
            min_security_bits: args.min_security,
            ..VerifierParams::default()
        };
        let verified =
            verify_execution(program, &statement, &proof, &params).with_context(|| {
                format!(
                    "{} is not a valid proof for {}",
                    args.proof.display(),
                    args.program.display()
                )
            })?;
        Ok((statement, verified))
    });
    let seconds = start.elapsed().as_secs_f64();
    let (statement, verified) = match checked {
        Ok(v) => v,
        Err(e) if args.json => {
            println!("{}", crate::json::refused(&format!("{e:#}")));
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => return Err(e),
    };
    if let Some(path) = &args.output_file {
        formats::atomic_write(path, &statement.output)
            .with_context(|| format!("cannot write the output to {}", path.display()))?;
    }
    if args.json {
        println!(
            "{}",
            crate::json::verified(&statement, verified.security_bits, seconds)
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "verified:    {} runs {} instructions and exits with {}",
        args.program.display(),
        statement.cycles,
        statement.exit_code
    );
    println!("output:      {}", show_output(&statement.output));
    println!("time:        {seconds:.3} s");
    Ok(ExitCode::SUCCESS)
}
