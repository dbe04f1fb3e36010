//! `stark-pipe bench pipeline`: fib_iterative at several sizes through the out-of-core prover,
//! the in-RAM prover where it fits (the same proof bytes) and, with `--chunked`, the chunked
//! pipeline, each run in its own process so that its peak memory is its own. Prints one table.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};
use pipeline::MemoryLimit;
use pipeline::metrics::human_bytes;

use crate::units::parse_count;

#[derive(clap::Args)]
pub struct PipelineBench {
    /// Instruction counts to prove (fib_iterative n = instructions / 4), comma-separated.
    #[arg(long, value_delimiter = ',', value_parser = parse_count, default_value = "1M,4M,16M")]
    pub instructions: Vec<u64>,
    /// Rows per chunk, the same for every size.
    #[arg(long, value_parser = parse_count, default_value = "2^17")]
    pub chunk_rows: u64,
    /// The most rows of one instance (`run --instance-rows`; default the prover's, 2^26).
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub instance_rows: Option<u64>,
    /// Also prove each size with the chunked pipeline (`run --chunked`: an instance per chunk).
    #[arg(long)]
    pub chunked: bool,
    /// Store policy of the chunked runs (see `run --help`).
    #[arg(long, default_value_t = stages::Store::default())]
    pub store: stages::Store,
    /// Also prove in RAM when the estimate (about 2.5 KB per instruction) fits in 60% of memory.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub in_memory: bool,
    /// FRI queries and grinding bits of every run (defaults: the prover's).
    #[arg(long)]
    pub queries: Option<u16>,
    #[arg(long)]
    pub pow_bits: Option<u8>,
}

/// The in-RAM prover's peak memory per instruction (fib_iterative 4M: 9.1 GiB).
const IN_RAM_BYTES_PER_INSTRUCTION: u64 = 2500;

/// Figures read from one `stark-pipe run --json` report, formatted for the table.
struct Figures {
    wall: String,
    cpu: String,
    hwm: String,
    anon: String,
    spilled: String,
    /// The most the spill dir held at once, and that per instruction.
    held: String,
    held_per_instruction: String,
    proof: String,
    instances: String,
    /// Chunks whose LDEs were spilled (pipeline runs).
    kept: String,
}

fn figures(report: &serde_json::Value) -> anyhow::Result<Figures> {
    let num = |v: &serde_json::Value, what: &str| {
        v.as_u64()
            .with_context(|| format!("run --json has no {what}"))
    };
    let secs = |v: &serde_json::Value, what: &str| {
        v.as_f64()
            .map(|s| format!("{s:.3}"))
            .with_context(|| format!("run --json has no {what}"))
    };
    let held = num(&report["peak_spill_held_bytes"], "peak_spill_held_bytes")?;
    let cycles = num(&report["statement"]["cycles"], "statement.cycles")?;
    Ok(Figures {
        wall: secs(&report["wall_seconds"], "wall_seconds")?,
        cpu: secs(&report["cpu_seconds"], "cpu_seconds")?,
        hwm: report["peak_rss_bytes"]
            .as_u64()
            .map_or("-".into(), human_bytes),
        anon: human_bytes(num(&report["peak_rss_anon_bytes"], "peak_rss_anon_bytes")?),
        spilled: human_bytes(num(&report["spilled_bytes"], "spilled_bytes")?),
        held: human_bytes(held),
        held_per_instruction: format!("{:.0}", held as f64 / cycles.max(1) as f64),
        proof: num(&report["proof"]["bytes"], "proof.bytes")?.to_string(),
        instances: num(&report["proof"]["instances"], "proof.instances")?.to_string(),
        kept: report["proof"]["ldes_kept"]
            .as_u64()
            .map_or("-".into(), |k| k.to_string()),
    })
}

pub fn run(args: PipelineBench) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the stark-pipe binary")?;
    let tmp = std::env::temp_dir().join(format!("stark-pipe-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let elf = tmp.join("fib_iterative.elf");
    std::fs::write(&elf, crate::bench::FIB_ELF)?;
    let memory = MemoryLimit::read().effective();
    println!(
        "pipeline benchmark: fib_iterative, chunk rows {}, instance rows {}, {} cores{}",
        args.chunk_rows,
        args.instance_rows
            .map_or(stark_pipe::max_instance_rows() as u64, |r| r),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory.map_or(String::new(), |m| format!(", memory {}", human_bytes(m)))
    );
    println!(
        "{:>12} {:<9} {:>9} {:>9} {:>9} {:>9} {:>11} {:>11} {:>11} {:>11} {:>8} {:>11}",
        "instructions",
        "prover",
        "instances",
        "LDEs kept",
        "wall s",
        "cpu s",
        "VmHWM",
        "RssAnon",
        "spilled",
        "spill held",
        "B/ins",
        "proof B"
    );
    let result = (|| {
        for &instructions in &args.instructions {
            let mut modes = vec![Mode::Pipeline];
            if args.chunked {
                modes.push(Mode::Chunked);
            }
            let fits = memory.is_none_or(|m| {
                instructions.saturating_mul(IN_RAM_BYTES_PER_INSTRUCTION) < m / 10 * 6
            });
            if args.in_memory && fits {
                modes.push(Mode::InRam);
            }
            for mode in modes {
                let f = one_run(&exe, &elf, &tmp, instructions, mode, &args)?;
                println!(
                    "{:>12} {:<9} {:>9} {:>9} {:>9} {:>9} {:>11} {:>11} {:>11} {:>11} {:>8} {:>11}",
                    instructions,
                    mode.name(),
                    f.instances,
                    f.kept,
                    f.wall,
                    f.cpu,
                    f.hwm,
                    f.anon,
                    f.spilled,
                    f.held,
                    f.held_per_instruction,
                    f.proof
                );
            }
            if args.in_memory && !fits {
                println!(
                    "{instructions:>12} {:<9} (skipped: would not fit in memory)",
                    "in-RAM"
                );
            }
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

/// Which prover a row of the table measures.
#[derive(Clone, Copy)]
enum Mode {
    /// The out-of-core prover (one instance per table, built in blocks of the chunk rows).
    Pipeline,
    /// `--chunked`: one instance per chunk, with the store policy.
    Chunked,
    /// `--in-memory`: the reference prover, the same instances as `Pipeline`.
    InRam,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Pipeline => "pipeline",
            Mode::Chunked => "chunked",
            Mode::InRam => "in-RAM",
        }
    }
}

fn one_run(
    exe: &Path,
    elf: &Path,
    tmp: &Path,
    instructions: u64,
    mode: Mode,
    args: &PipelineBench,
) -> anyhow::Result<Figures> {
    let n = (instructions / 4).to_string();
    let proof = tmp.join("bench.proof");
    let mut cmd = Command::new(exe);
    cmd.arg("run")
        .arg(elf)
        .args([
            "--input-u32",
            &n,
            "--chunk-rows",
            &args.chunk_rows.to_string(),
        ])
        .args(["--progress", "never", "--json"])
        .arg("-o")
        .arg(&proof);
    match mode {
        Mode::Chunked => {
            cmd.args(["--chunked", "--store", &args.store.to_string()]);
        }
        Mode::Pipeline | Mode::InRam => {
            if let Some(rows) = args.instance_rows {
                cmd.args(["--instance-rows", &rows.to_string()]);
            }
            if let Mode::InRam = mode {
                cmd.arg("--in-memory");
            }
        }
    }
    if let Some(q) = args.queries {
        cmd.args(["--queries", &q.to_string()]);
    }
    if let Some(b) = args.pow_bits {
        cmd.args(["--pow-bits", &b.to_string()]);
    }
    let out = cmd.output().context("cannot start stark-pipe run")?;
    if !out.status.success() {
        bail!(
            "run of {instructions} instructions failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    figures(&serde_json::from_slice(&out.stdout).context("run --json printed no JSON")?)
}
