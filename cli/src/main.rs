//! `stark-pipe`: prove, verify, execute and inspect RV32IM programs.

mod bench;
mod bench_lde;
mod bench_pipeline;
mod bench_programs;
mod execute;
mod inspect;
mod json;
mod new;
mod prove;
mod units;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The version line: the crate's, and the formats of the proofs it writes and reads.
static VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "{} (proof file format {}, STARK proof format {})",
        env!("CARGO_PKG_VERSION"),
        formats::proof_file::VERSION,
        stark::proof::FORMAT_VERSION
    )
});

/// Out-of-core STARK prover and verifier for RV32IM programs.
///
/// stark-pipe proves that a static RV32IM ELF ran to completion on a given input and produced a
/// given output. Programs use the Linux RISC-V system calls read (fd 0: the private input),
/// write (fd 1: the public output; fd 2: diagnostics) and exit, so they run unchanged under
/// qemu-riscv32.
#[derive(Parser)]
#[command(name = "stark-pipe", version = VERSION.as_str(), max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a program without proving it, like `qemu-riscv32 PROGRAM < INPUT`.
    ///
    /// The program's fd-1 output goes to stdout and its fd-2 output to stderr; stark-pipe exits
    /// with the program's exit code (its low 8 bits). A report (cycles, speed) goes to stderr.
    /// A refused ELF or an execution error (illegal instruction, misaligned access, unknown
    /// system call, cycle limit) is printed with the file or the pc at fault, and stark-pipe
    /// exits with status 125, a status the fixtures never use.
    Execute(execute::ExecuteArgs),
    /// Execute a program and prove the run through the out-of-core pipeline; write the proof.
    ///
    /// Prints the exit code, the public output (what the program wrote to fd 1), the cycle count,
    /// the proof's size and security, and a table of time, CPU, memory, spilled bytes and the most the spill dir held (the disk the run needs) per pass. The input stream stays private: the proof does not reveal it.
    Run(prove::RunArgs),
    /// Check a proof against a program's ELF; print the proven output and exit code.
    ///
    /// Exits 0 when the proof is valid for this program, 1 with a message saying why otherwise.
    Verify(prove::VerifyArgs),
    /// Explain a proof file (parameters, security, tables and instances, size breakdown) or a
    /// spill dir (run state, passes, segments and their checksum status).
    ///
    /// Exits 1 when the path is neither, or when a spill dir holds missing or corrupt segments
    /// (each named).
    Inspect(inspect::InspectArgs),
    /// Write a new guest program project (Rust or C) that builds, runs and proves as it is.
    ///
    /// Like `cargo new`: `stark-pipe new hello` writes ./hello with the runtime (entry point,
    /// heap, input/output, panic handler), a linker script and build settings; its README.md
    /// gives the commands from there to a verified proof.
    New(new::NewArgs),
    /// Benchmarks that print a table (speed and memory figures live here, not in tests).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

/// Big buffers on huge pages: see [`pipeline::HugePageAlloc`].
#[global_allocator]
static ALLOCATOR: pipeline::HugePageAlloc = pipeline::HugePageAlloc;

fn main() -> ExitCode {
    pipeline::configure_allocator();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Execute(args) => execute::run(args),
        Command::Run(args) => prove::run(args),
        Command::Verify(args) => prove::verify(args),
        Command::Inspect(args) => inspect::run(args),
        Command::New(args) => new::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Bench(cmd) => bench::run(cmd).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("stark-pipe: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
