//! `stark-pipe run` (prove) and `stark-pipe verify`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use formats::ProofFile;
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
    #[arg(long, value_parser = parse_count, default_value = "2^20")]
    pub chunk_rows: u64,
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
    let chunk_rows = usize::try_from(args.chunk_rows).context("--chunk-rows too large")?;
    if chunk_rows < 2 || !chunk_rows.is_power_of_two() {
        bail!("--chunk-rows must be a power of two >= 2 (e.g. 2^20), not {chunk_rows}");
    }
    let program = Arc::new(load_program(&args.program)?);
    let input: Arc<[u8]> = Arc::from(args.input.bytes()?);
    let out_path = args.output.clone().unwrap_or_else(|| {
        let stem = args
            .program
            .file_stem()
            .map_or("program".into(), |s| s.to_string_lossy().into_owned());
        PathBuf::from(format!("{stem}.proof"))
    });
    let params = ProofParams {
        num_queries: args.queries,
        pow_bits: args.pow_bits,
        ..ProofParams::default()
    };
    params
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid proof parameters: {e}"))?;
    let start = Instant::now();
    let run = stages::prove_in_memory(program, input, chunk_rows, args.max_cycles, &params)
        .with_context(|| format!("cannot prove {}", args.program.display()))?;
    let file = ProofFile {
        statement: run.statement.to_bytes(),
        proof: run.proof.to_bytes(),
    };
    file.write(&out_path)?;
    let total = start.elapsed().as_secs_f64();
    let s = &run.statement;
    let summary = run.proof.summary(&[]);
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
        file.to_bytes().len(),
        summary.security_bits
    );
    if args.widths {
        print_widths(&run.widths, s.cycles);
    }
    if let Some(hwm) = peak_rss_kib() {
        println!("peak RSS:    {:.1} MiB (VmHWM)", hwm as f64 / 1024.0);
    }
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

/// Peak resident set size in KiB, from /proc/self/status.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
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
    let (statement, proof) = read_proof(&args.proof)?;
    let program = Arc::new(load_program(&args.program)?);
    let params = VerifierParams {
        min_security_bits: args.min_security,
        ..VerifierParams::default()
    };
    let start = Instant::now();
    verify_execution(program, &statement, &proof, &params).with_context(|| {
        format!(
            "{} is not a valid proof for {}",
            args.proof.display(),
            args.program.display()
        )
    })?;
    println!(
        "verified:    {} runs {} instructions and exits with {}",
        args.program.display(),
        statement.cycles,
        statement.exit_code
    );
    println!("output:      {}", show_output(&statement.output));
    println!("time:        {:.3} s", start.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}
