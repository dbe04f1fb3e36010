//! `stark-pipe bench`: benchmarks that print a table. Speed and memory targets live here, never in
//! timed tests.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, ensure};
use vm::{Machine, Program, TraceChunk};

use crate::units::parse_count;

/// fib_iterative, built from fixtures/src/fib_iterative.s: the benchmark program scales with n
/// (4 instructions per iteration) and is embedded so that `bench` runs from any directory.
pub const FIB_ELF: &[u8] = include_bytes!("../../fixtures/elf/fib_iterative.elf");

#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// Executor speed on fib_iterative (one core): plain instructions/s, tracing records/s, and
    /// the time to re-execute one chunk from its checkpoint.
    Executor {
        /// Approximate number of instructions to run (e.g. 100M, 2^26).
        #[arg(long, value_parser = parse_count, default_value = "100M")]
        instructions: u64,
        /// Rows per traced chunk.
        #[arg(long, value_parser = parse_count, default_value = "2^20")]
        chunk_rows: u64,
    },
    /// fib_iterative at several sizes through the pipeline and in RAM (where it fits): wall,
    /// CPU, VmHWM, peak RssAnon, spilled bytes, the most the spill dir held (and per
    /// instruction), proof size. Each run is its own process.
    Pipeline(crate::bench_pipeline::PipelineBench),
    /// The real-workload fixtures (Rust guests using sha2, serde_json, num-bigint and a 1 MiB
    /// sort; a C program on picolibc) and fib_iterative, at the same chunk rows: instructions/s
    /// (and relative to fib), committed cells per instruction, the largest tables, peak
    /// RssAnon, spilled bytes, proof size. Each run is its own process.
    Programs(crate::bench_programs::ProgramsBench),
    /// The LDE and Merkle commitment of one tall instance: out of core (the four-step over
    /// chunk segments, as single-instance tables will be committed) and in RAM at full height:
    /// wall, CPU, peak RssAnon, bytes written, LDE MB/s, opening time.
    Lde(crate::bench_lde::LdeBench),
}

pub fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Executor {
            instructions,
            chunk_rows,
        } => executor(instructions, chunk_rows),
        BenchCommand::Pipeline(args) => crate::bench_pipeline::run(args),
        BenchCommand::Programs(args) => crate::bench_programs::run(args),
        BenchCommand::Lde(args) => crate::bench_lde::run(args),
    }
}

fn executor(instructions: u64, chunk_rows: u64) -> anyhow::Result<()> {
    ensure!(chunk_rows > 0, "--chunk-rows must be positive");
    let program = Arc::new(Program::from_elf(FIB_ELF).context("embedded fib_iterative.elf")?);
    let n = u32::try_from(instructions / 4).context("--instructions too large for fib's n")?;
    let input: Arc<[u8]> = Arc::from(n.to_le_bytes().to_vec());

    // Plain mode.
    let mut m = Machine::new(Arc::clone(&program), Arc::clone(&input));
    let t = Instant::now();
    let exit = m.run()?;
    let plain_s = t.elapsed().as_secs_f64();
    let cycles = exit.cycles;

    // Tracing mode, chunk by chunk, keeping the middle chunk's checkpoint and steps.
    let middle = (cycles / chunk_rows) / 2;
    let mut m = Machine::new(Arc::clone(&program), Arc::clone(&input));
    let mut chunk = TraceChunk::default();
    let mut kept: Option<TraceChunk> = None;
    let (mut records, mut chunks, mut ckpt_bytes, mut ckpt_max) = (0u64, 0u64, 0u64, 0usize);
    let t = Instant::now();
    loop {
        let done = m.trace_chunk(chunk_rows as usize, &mut chunk)?;
        records += chunk.steps.len() as u64;
        chunks += 1;
        let len = chunk.checkpoint.serialized_len();
        ckpt_bytes += len as u64;
        ckpt_max = ckpt_max.max(len);
        if chunk.index == middle {
            kept = Some(chunk.clone());
        }
        if done {
            break;
        }
    }
    let trace_s = t.elapsed().as_secs_f64();
    ensure!(
        records == cycles,
        "tracing saw {records} steps, plain mode {cycles}"
    );

    // Re-execution of the middle chunk from its checkpoint (after a serialization round trip).
    let kept = kept.context("no middle chunk")?;
    let checkpoint = vm::Checkpoint::from_bytes(&kept.checkpoint.to_bytes())?;
    let t = Instant::now();
    let mut again = Machine::resume(Arc::clone(&program), &checkpoint, Arc::clone(&input));
    let mut redo = TraceChunk::default();
    again.trace_chunk(chunk_rows as usize, &mut redo)?;
    let reexec_s = t.elapsed().as_secs_f64();
    ensure!(
        redo.steps == kept.steps,
        "re-execution diverged from the original chunk"
    );

    println!("executor benchmark: fib_iterative n = {n}, {cycles} instructions, one core");
    println!("{:<36} {:>12} {:>16}", "mode", "seconds", "rate");
    println!(
        "{:<36} {:>12.3} {:>11.1} M/s",
        "plain",
        plain_s,
        cycles as f64 / plain_s / 1e6
    );
    println!(
        "{:<36} {:>12.3} {:>11.1} M/s",
        "tracing (records)",
        trace_s,
        records as f64 / trace_s / 1e6
    );
    println!(
        "{:<36} {:>12.4} {:>11.1} M/s",
        format!("re-execute chunk {middle} ({} rows)", redo.steps.len()),
        reexec_s,
        redo.steps.len() as f64 / reexec_s / 1e6
    );
    println!(
        "chunks: {chunks} of {chunk_rows} rows; checkpoints: {ckpt_bytes} bytes in all, {ckpt_max} at most"
    );
    if let Some(hwm) = pipeline::metrics::read_proc_status()
        .ok()
        .and_then(|s| s.vm_hwm)
    {
        println!("peak RSS (VmHWM): {}", pipeline::metrics::human_bytes(hwm));
    }
    Ok(())
}
