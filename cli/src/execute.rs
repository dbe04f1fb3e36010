//! `stark-pipe execute`: run a program without proving it.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use vm::{InstructionMix, Machine, Opcode, Program};

use crate::units::parse_count;

/// Exit status for errors of stark-pipe itself (bad ELF, execution error), distinct from the
/// program's own exit codes in every fixture.
pub const ERROR_STATUS: u8 = 125;

#[derive(clap::Args)]
pub struct ExecuteArgs {
    /// The program: a static RV32IM ELF executable.
    pub program: PathBuf,
    #[command(flatten)]
    pub input: InputArgs,
    /// Stop with an error after this many instructions (e.g. 1000000, 2^30, 500M).
    #[arg(long, value_parser = parse_count, default_value = "2^40")]
    pub max_cycles: u64,
    /// Also report how many times each instruction executed.
    #[arg(long)]
    pub mix: bool,
    /// Print no report on stderr (the program's own fd-2 output still goes there).
    #[arg(long, short)]
    pub quiet: bool,
}

/// Where the program's private input stream (fd 0) comes from.
#[derive(clap::Args)]
pub struct InputArgs {
    /// File whose raw bytes are the input stream (fd 0); `-` reads stark-pipe's own stdin, as
    /// `qemu-riscv32 PROGRAM < FILE` would. Without an input option the stream is empty.
    #[arg(long, value_name = "FILE", conflicts_with = "input_u32")]
    pub input: Option<PathBuf>,
    /// Input stream of one 4-byte little-endian word, e.g. fib_iterative's n
    /// (`--input-u32 1000000`, `--input-u32 16M`).
    #[arg(long, value_name = "N", value_parser = parse_u32)]
    pub input_u32: Option<u32>,
}

fn parse_u32(text: &str) -> Result<u32, String> {
    let n = parse_count(text)?;
    u32::try_from(n).map_err(|_| format!("{n} does not fit in 32 bits"))
}

impl InputArgs {
    /// The input stream's bytes.
    pub fn bytes(&self) -> anyhow::Result<Vec<u8>> {
        match (&self.input, self.input_u32) {
            (Some(path), _) if path.as_os_str() == "-" => {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
                    .context("cannot read the input stream from stdin")?;
                Ok(bytes)
            }
            (Some(path), _) => std::fs::read(path)
                .with_context(|| format!("cannot read input file {}", path.display())),
            (None, Some(n)) => Ok(n.to_le_bytes().to_vec()),
            (None, None) => Ok(Vec::new()),
        }
    }
}

/// Loads an ELF, naming the file in any error.
pub fn load_program(path: &std::path::Path) -> anyhow::Result<Program> {
    Program::from_file(path)
        .with_context(|| format!("{} is not a program stark-pipe can run", path.display()))
}

pub fn run(args: ExecuteArgs) -> anyhow::Result<ExitCode> {
    let failed = |err: anyhow::Error| {
        eprintln!("stark-pipe: error: {err:#}");
        Ok(ExitCode::from(ERROR_STATUS))
    };
    let program = match load_program(&args.program) {
        Ok(p) => Arc::new(p),
        Err(e) => return failed(e),
    };
    let input = args.input.bytes()?;
    let mut machine = Machine::new(program, Arc::from(input));
    machine.set_max_cycles(args.max_cycles);
    let mut mix = InstructionMix::default();
    let start = Instant::now();
    let result = if args.mix {
        machine.run_with_mix(&mut mix)
    } else {
        machine.run()
    };
    let elapsed = start.elapsed().as_secs_f64();
    // The program's output is shown even when it then failed, as a real run would have shown it.
    std::io::stdout().write_all(&machine.stdout)?;
    std::io::stdout().flush()?;
    std::io::stderr().write_all(&machine.stderr)?;
    let exit = match result {
        Ok(exit) => exit,
        Err(e) => {
            return failed(anyhow::Error::new(e).context(format!(
                "{} failed after {} instructions",
                args.program.display(),
                machine.cycle
            )));
        }
    };
    if !args.quiet {
        eprintln!(
            "stark-pipe: exit code {} after {} instructions in {:.3} s ({:.1} M instructions/s)",
            exit.code,
            exit.cycles,
            elapsed,
            exit.cycles as f64 / elapsed.max(1e-9) / 1e6
        );
        if args.mix {
            print_mix(&mix, exit.cycles);
        }
    }
    Ok(ExitCode::from((exit.code & 0xff) as u8))
}

fn print_mix(mix: &InstructionMix, total: u64) {
    let mut rows: Vec<(Opcode, u64)> = Opcode::ALL
        .iter()
        .map(|&op| (op, mix.counts[op as usize]))
        .filter(|&(_, n)| n > 0)
        .collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    eprintln!("{:<10} {:>14} {:>8}", "opcode", "count", "share");
    for (op, n) in rows {
        eprintln!(
            "{:<10} {:>14} {:>7.2}%",
            op.mnemonic(),
            n,
            100.0 * n as f64 / total.max(1) as f64
        );
    }
}
