//! `stark-pipe run` (prove) and `stark-pipe verify`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use stark::{ProofParams, VerifierParams};
use stark_pipe::{Program, Progress, ProgressMode, Proof, Prover, Store, verify_with};

use crate::execute::InputArgs;
use crate::units::parse_count;

#[derive(clap::Args)]
pub struct RunArgs {
    /// The program: a static RV32IM ELF executable.
    pub program: PathBuf,
    #[command(flatten)]
    pub input: InputArgs,
    /// Rows per chunk: the blocks every pass streams through memory (a power of two >= 2, e.g.
    /// 2^17). Memory grows with it; the proof does not depend on it (with --chunked, every chunk
    /// is an instance: smaller chunks then make larger proofs). At least the square root of
    /// --instance-rows unless --chunked (2^13 for 2^26: fewer rows would only cost time).
    /// Default: from --mem-budget when given, else 2^17 (the fastest; --chunked: 2^20), lowered
    /// to fit a cgroup memory limit.
    #[arg(long, value_parser = parse_count)]
    pub chunk_rows: Option<u64>,
    /// The most rows of one instance (a power of two from 2 to 2^26; default 2^26, the tallest
    /// the verifier accepts): every table is one instance, and one taller than this is split
    /// into several (a few more openings in the proof).
    #[arg(long, value_parser = parse_count)]
    pub instance_rows: Option<u64>,
    /// Make every chunk of every table its own instance (the chunked pipeline): faster on short
    /// runs, with --store policies for small disks, but the proof grows with the run (about
    /// 1.7 MB per million instructions at 2^17-row chunks) and depends on --chunk-rows.
    #[arg(long, conflicts_with = "instance_rows")]
    pub chunked: bool,
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
    /// Prove with every instance in RAM (the reference prover) instead of out of core: the same
    /// proof bytes, and memory that grows with the run.
    #[arg(long)]
    pub in_memory: bool,
    /// With --chunked: what the first passes spill for the later ones instead of recomputing
    /// it (default auto; a single-instance run keeps every LDE): `auto`
    /// (each chunk's main, aux and quotient LDEs with a level of their Merkle trees, while
    /// the spill dir has room for them; the other chunks are recomputed, and a run that cannot
    /// fit even so stops after pass 1), `lde` (every chunk's, whatever the room), `recompute` (no LDEs: about a quarter of the
    /// disk of `lde`, 1.6 times the time), or `trace` alone or with one of those
    /// (`trace,auto`): also the main traces, so that nothing is re-executed.
    #[arg(long, value_name = "POLICY", requires = "chunked")]
    pub store: Option<Store>,
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
    /// Continue a run that was killed or failed, from its spill dir: give the
    /// first run's command with `--resume DIR` added. The program, input and settings are
    /// checked against the dir, every kept segment against its checksum; the passes it
    /// finished (main, aux, quotient, ood, deep) are not done again, nor the instances a killed
    /// quotient pass had committed, and the proof is the same bytes. A failed single-instance
    /// run keeps its finished passes for this (and says so).
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with_all = ["spill_dir", "chunked", "in_memory"]
    )]
    pub resume: Option<PathBuf>,
    /// Hash every segment against its recorded checksum when it is read back.
    #[arg(long)]
    pub verify_segments: bool,
    /// Progress display on stderr: auto (bars on a terminal, log lines otherwise), always, never.
    #[arg(long, value_name = "MODE", default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
    /// With --chunked: chunks waiting between two stages. 0 (hand-over: a stage's finished chunk waits until
    /// the next stage takes it) measured as fast as 1 and lighter (fib_iterative, 1M
    /// instructions, 2^17-row chunks: peak RssAnon 209-213 MiB against 218-231 MiB with 1);
    /// more may help when stages' speeds vary a lot.
    #[arg(long, value_name = "N", requires = "chunked")]
    pub channel_capacity: Option<usize>,
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

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let program = Program::open(&args.program)?;
    let input = args.input.bytes()?;
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
    let mut prover = Prover::new(program)
        .input(input)
        .max_cycles(args.max_cycles)
        .security(args.queries, args.pow_bits)
        .keep_spill(args.keep_spill)
        .verify_segments(args.verify_segments)
        .chunked(args.chunked)
        .in_memory(args.in_memory)
        .progress(Progress::new(args.progress))
        .output(&out_path);
    if let Some(rows) = args.chunk_rows {
        prover = prover.chunk_rows(usize::try_from(rows).context("--chunk-rows too large")?);
    }
    if let Some(bytes) = args.mem_budget {
        prover = prover.mem_budget(bytes);
    }
    if let Some(rows) = args.instance_rows {
        prover = prover.instance_rows(usize::try_from(rows).context("--instance-rows too large")?);
    }
    if let Some(store) = args.store {
        prover = prover.store(store);
    }
    if let Some(n) = args.channel_capacity {
        prover = prover.channel_capacity(n);
    }
    if let Some(dir) = &args.spill_dir {
        prover = prover.spill_dir(dir);
    }
    if let Some(dir) = &args.resume {
        prover = prover.resume(dir);
    }
    if let Some(limit) = args.spill_limit {
        prover = prover.spill_limit(limit);
    }
    let proof = prover.prove()?;
    let report = proof.report().expect("a proof just made has its report");
    let s = proof.statement();
    let chunk_rows = report.chunk_rows;
    let proof_bytes = proof.size_bytes();
    let security_bits = proof.security_bits();
    if args.json {
        let json = crate::json::proven(
            s,
            &out_path.display().to_string(),
            proof_bytes,
            security_bits,
            report,
        );
        println!("{json}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("exit code:   {}", s.exit_code);
    println!("output:      {}", show_output(&s.output));
    println!("cycles:      {}", s.cycles);
    match (args.chunked, args.in_memory) {
        (true, true) => println!(
            "chunks:      {} instances of at most {chunk_rows} rows (in memory)",
            report.instances
        ),
        (true, false) => println!(
            "chunks:      {} instances of at most {chunk_rows} rows (store: {}, LDEs kept for {})",
            report.instances,
            args.store.unwrap_or_default(),
            report.ldes_kept
        ),
        (false, true) => println!("instances:   {} (in memory)", report.instances),
        (false, false) => println!(
            "instances:   {}, built in blocks of {chunk_rows} rows",
            report.instances
        ),
    }
    println!(
        "proof:       {} ({proof_bytes} bytes, {security_bits} bits conjectured security)",
        out_path.display(),
    );
    if let Some(dir) = &report.spill_dir_kept {
        println!("spill dir:   {} (kept)", dir.display());
    }
    if args.widths {
        print_widths(&report.widths, s.cycles);
    }
    print!("{}", report.summary);
    println!("{:<12} {proof_bytes} bytes", "proof size");
    println!("{:<12} {security_bits} bits (conjectured)", "security");
    if args.stage_stats {
        print!("{}", report.summary.stage_table());
    }
    Ok(ExitCode::SUCCESS)
}

fn print_widths(widths: &[stark_pipe::TableWidth], cycles: u64) {
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

pub fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let start = Instant::now();
    let checked = Proof::read(&args.proof).and_then(|proof| {
        let program = Program::open(&args.program)?;
        verify_with(&proof, &program, args.min_security)
    });
    let seconds = start.elapsed().as_secs_f64();
    let verified = match checked {
        Ok(v) => v,
        Err(e) if args.json => {
            println!("{}", crate::json::refused(&e.to_string()));
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(path) = &args.output_file {
        formats::atomic_write(path, &verified.output)
            .with_context(|| format!("cannot write the output to {}", path.display()))?;
    }
    if args.json {
        println!("{}", crate::json::verified(&verified, seconds));
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "verified:    {} runs {} instructions and exits with {}",
        args.program.display(),
        verified.cycles,
        verified.exit_code
    );
    println!("output:      {}", show_output(&verified.output));
    println!("time:        {seconds:.3} s");
    Ok(ExitCode::SUCCESS)
}
