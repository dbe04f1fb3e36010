//! `stark-pipe bench programs`: proves each real-workload fixture (and fib_iterative for
//! comparison) at the same chunk rows, each in its own process so that its peak memory is its
//! own, and prints one table from the runs' `--json` reports. With `--runs N` every program runs
//! N times, in rounds (each program once per round, so that a slow spell of the machine hits
//! them alike), and the table shows each program's median run and the spread of its wall times.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};
use pipeline::metrics::human_bytes;
use serde_json::Value;

use crate::units::parse_count;

#[derive(clap::Args)]
pub struct ProgramsBench {
    /// Rows per chunk, the same for every program.
    #[arg(long, value_parser = parse_count, default_value = "2^18")]
    pub chunk_rows: u64,
    /// Only the programs whose names contain one of these (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Runs of each program, in rounds; the table shows the median run by wall time (of an
    /// even count, the slower middle one) and the spread, (slowest - fastest) / median.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=99))]
    pub runs: u32,
}

/// A benchmark program with its input, embedded so that the bench runs from any directory.
struct Workload {
    name: &'static str,
    what: &'static str,
    elf: &'static [u8],
    input: &'static [u8],
}

macro_rules! fixture {
    ($name:literal, $what:literal, $input:expr) => {
        Workload {
            name: $name,
            what: $what,
            elf: include_bytes!(concat!("../../fixtures/elf/", $name, ".elf")),
            input: $input,
        }
    };
}

/// fib_iterative's n for about 2.4M instructions: the reference the others are compared with.
const FIB_N: u32 = 600_000;

const WORKLOADS: [Workload; 6] = [
    Workload {
        name: "fib_iterative",
        what: "hand-written loop (reference)",
        elf: crate::bench::FIB_ELF,
        input: &FIB_N.to_le_bytes(),
    },
    fixture!(
        "rs_sha256",
        "Rust, sha2 crate, 15 KiB",
        include_bytes!("../../fixtures/guests/inputs/text.txt")
    ),
    fixture!(
        "rs_json",
        "Rust, serde_json, 26 KiB",
        include_bytes!("../../fixtures/guests/inputs/orders.json")
    ),
    fixture!(
        "rs_bigint",
        "Rust, num-bigint modpow",
        include_bytes!("../../fixtures/guests/inputs/bigint.txt")
    ),
    fixture!(
        "c_wordfreq",
        "C, picolibc stdio + malloc",
        include_bytes!("../../fixtures/guests/inputs/words.txt")
    ),
    fixture!("rs_memsort", "Rust, sort + HashMap, 1 MiB", b""),
];

/// What one run reported.
struct Figures {
    cycles: u64,
    wall: f64,
    anon: u64,
    spilled: u64,
    proof: u64,
    cells: u64,
    /// The tables with the most committed cells, largest first: (name, share).
    mix: Vec<(String, f64)>,
}

fn one_run(exe: &Path, tmp: &Path, w: &Workload, chunk_rows: u64) -> anyhow::Result<Figures> {
    let elf = tmp.join(format!("{}.elf", w.name));
    let input = tmp.join(format!("{}.input", w.name));
    std::fs::write(&elf, w.elf)?;
    std::fs::write(&input, w.input)?;
    let out = Command::new(exe)
        .arg("run")
        .arg(&elf)
        .arg("--input")
        .arg(&input)
        .args(["--chunk-rows", &chunk_rows.to_string()])
        .args(["--progress", "never", "--json", "-o"])
        .arg(tmp.join("bench.proof"))
        .output()
        .context("cannot start stark-pipe run")?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            w.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: Value = serde_json::from_slice(&out.stdout).context("run --json printed no JSON")?;
    let u = |v: &Value| v.as_u64().context("a number in run --json");
    let mut tables: Vec<(String, u64)> = v["tables"]
        .as_array()
        .context("no tables in run --json")?
        .iter()
        .map(|t| {
            Ok((
                t["name"].as_str().unwrap_or("?").to_string(),
                u(&t["committed_cells"])?,
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    tables.sort_by_key(|t| std::cmp::Reverse(t.1));
    let cells: u64 = tables.iter().map(|t| t.1).sum();
    Ok(Figures {
        cycles: u(&v["statement"]["cycles"])?,
        wall: v["wall_seconds"].as_f64().context("wall_seconds")?,
        anon: u(&v["peak_rss_anon_bytes"])?,
        spilled: u(&v["spilled_bytes"])?,
        proof: u(&v["proof"]["bytes"])?,
        cells,
        mix: tables
            .into_iter()
            .take(3)
            .map(|(n, c)| (n, c as f64 / cells.max(1) as f64))
            .collect(),
    })
}

pub fn run(args: ProgramsBench) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the stark-pipe binary")?;
    println!(
        "programs benchmark: chunk rows {}, {} cores, {} run{} each (the median shown); \
         instructions/s relative to fib_iterative",
        args.chunk_rows,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        args.runs,
        if args.runs == 1 { "" } else { "s" },
    );
    let chosen: Vec<&Workload> = WORKLOADS
        .iter()
        .filter(|w| {
            w.name == "fib_iterative"
                || args.only.is_empty()
                || args.only.iter().any(|o| w.name.contains(o.as_str()))
        })
        .collect();
    if chosen.len() == 1 && !args.only.is_empty() {
        let names: Vec<&str> = WORKLOADS.iter().map(|w| w.name).collect();
        bail!(
            "--only {} matches no program ({})",
            args.only.join(","),
            names.join(", ")
        );
    }
    let tmp = std::env::temp_dir().join(format!("stark-pipe-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let result = (|| {
        let mut runs: Vec<Vec<Figures>> = chosen.iter().map(|_| Vec::new()).collect();
        for round in 1..=args.runs {
            for (i, &w) in chosen.iter().enumerate() {
                let f = one_run(&exe, &tmp, w, args.chunk_rows)?;
                if args.runs > 1 {
                    eprintln!("round {round}/{}: {} {:.1} s", args.runs, w.name, f.wall);
                }
                runs[i].push(f);
            }
        }
        println!(
            "{:<14} {:>12} {:>8} {:>7} {:>10} {:>7} {:>10} {:>10} {:>10} {:>10}  largest tables (share of cells)",
            "program",
            "instructions",
            "wall s",
            "spread",
            "instr/s",
            "vs fib",
            "cells/ins",
            "RssAnon",
            "spilled",
            "proof B",
        );
        let mut fib_rate = None;
        for (&w, mut all) in chosen.iter().zip(runs) {
            all.sort_by(|a, b| a.wall.total_cmp(&b.wall));
            let spread = (all[all.len() - 1].wall - all[0].wall) / all[all.len() / 2].wall;
            let f = all.swap_remove(all.len() / 2);
            let rate = f.cycles as f64 / f.wall.max(1e-9);
            let fib = *fib_rate.get_or_insert(rate);
            let mix = f
                .mix
                .iter()
                .map(|(n, s)| format!("{n} {:.0}%", 100.0 * s))
                .collect::<Vec<_>>()
                .join(", ");
            println!(
                "{:<14} {:>12} {:>8.1} {:>6.0}% {:>10.0} {:>7.2} {:>10.1} {:>10} {:>10} {:>10}  {mix}",
                w.name,
                f.cycles,
                f.wall,
                100.0 * spread,
                rate,
                rate / fib,
                f.cells as f64 / f.cycles.max(1) as f64,
                human_bytes(f.anon),
                human_bytes(f.spilled),
                f.proof,
            );
        }
        println!();
        for w in &chosen {
            println!("{:<14} {}", w.name, w.what);
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    result
}
