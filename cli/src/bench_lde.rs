//! `stark-pipe bench lde`: the LDE and Merkle commitment of one tall instance, out of core
//! (`stages::lde`, the four-step over chunk segments) and in RAM (`stark::prover::commit_trace`
//! at full height), on pseudo-random columns. Each measurement runs in its own process, so
//! its peak memory is its own. Prints one table.

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use formats::SegmentMeta;
use pipeline::metrics::{RssSampler, cpu_time, human_bytes};
use pipeline::{Keep, MemoryLimit, SpillDir, SpillOptions};
use stages::lde::{self, LdeName};
use stages::store::write_matrix;
use stark::ntt::{ChunkGeometry, Extension};
use stark::{F, RowMajorMatrix};

use crate::units::parse_count;

#[derive(clap::Args)]
pub struct LdeBench {
    /// Instance heights (rows), comma-separated powers of two.
    #[arg(long, value_delimiter = ',', value_parser = parse_count, default_value = "2^20,2^22,2^24")]
    pub rows: Vec<u64>,
    /// Columns of the instance (the cpu table commits about 80 main columns).
    #[arg(long, default_value_t = 64)]
    pub width: usize,
    /// Rows per chunk segment.
    #[arg(long, value_parser = parse_count, default_value = "2^17")]
    pub chunk_rows: u64,
    /// log2 of the blowup.
    #[arg(long, default_value_t = 1)]
    pub log_blowup: usize,
    /// Also commit in RAM where the LDE and tree (about 2.5 x the LDE) fit in 60% of memory.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub in_memory: bool,
    /// Where the segments go (default: a new dir under TMPDIR or /tmp, removed afterwards).
    #[arg(long)]
    pub spill_dir: Option<std::path::PathBuf>,
    /// Run one measurement and print it as JSON (what the table's child processes do).
    #[arg(long, hide = true, value_parser = ["pipeline", "in-ram"])]
    pub one: Option<String>,
}

/// One measurement, as a child process prints it.
#[derive(Debug)]
struct Figures {
    wall: f64,
    cpu: f64,
    anon: u64,
    written: u64,
    open_ms: f64,
}

pub fn run(args: LdeBench) -> anyhow::Result<()> {
    ensure!(
        args.width > 0 && args.chunk_rows >= 2 && args.chunk_rows.is_power_of_two(),
        "--width must be positive and --chunk-rows a power of two >= 2"
    );
    for &rows in &args.rows {
        ensure!(
            rows >= 2 && rows.is_power_of_two(),
            "--rows {rows} is not a power of two >= 2"
        );
    }
    if let Some(mode) = &args.one {
        let f = measure(&args, args.rows[0], mode == "in-ram")?;
        println!(
            "{}",
            serde_json::json!({
                "wall": f.wall, "cpu": f.cpu, "anon": f.anon,
                "written": f.written, "open_ms": f.open_ms,
            })
        );
        return Ok(());
    }
    let exe = std::env::current_exe().context("cannot find the stark-pipe binary")?;
    let memory = MemoryLimit::read().effective();
    println!(
        "LDE benchmark: {} columns, chunk rows {}, blowup {}, {} cores{}",
        args.width,
        args.chunk_rows,
        1 << args.log_blowup,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory.map_or(String::new(), |m| format!(", memory {}", human_bytes(m)))
    );
    println!(
        "{:>10} {:>7} {:<9} {:>11} {:>9} {:>9} {:>11} {:>11} {:>10} {:>9}",
        "rows",
        "chunks",
        "prover",
        "LDE",
        "wall s",
        "cpu s",
        "RssAnon",
        "written",
        "LDE MB/s",
        "open ms"
    );
    for &rows in &args.rows {
        let lde_bytes = (rows * args.width as u64 * 8) << args.log_blowup;
        let chunks = (rows / args.chunk_rows).max(1);
        let mut modes = vec![false];
        if args.in_memory && memory.is_none_or(|m| lde_bytes / 2 * 5 < m / 10 * 6) {
            modes.push(true);
        }
        for in_ram in modes {
            let mut cmd = Command::new(&exe);
            cmd.args([
                "bench",
                "lde",
                "--one",
                if in_ram { "in-ram" } else { "pipeline" },
            ])
            .args([
                "--rows",
                &rows.to_string(),
                "--width",
                &args.width.to_string(),
            ])
            .args(["--chunk-rows", &args.chunk_rows.to_string()])
            .args(["--log-blowup", &args.log_blowup.to_string()]);
            if let Some(dir) = &args.spill_dir {
                cmd.arg("--spill-dir").arg(dir);
            }
            let out = cmd.output().context("cannot start stark-pipe bench lde")?;
            if !out.status.success() {
                bail!(
                    "the {rows}-row measurement failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            let v: serde_json::Value =
                serde_json::from_slice(&out.stdout).context("the child printed no JSON")?;
            let num = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
            println!(
                "{:>10} {:>7} {:<9} {:>11} {:>9.2} {:>9.2} {:>11} {:>11} {:>10.0} {:>9.1}",
                rows,
                if in_ram { 1 } else { chunks },
                if in_ram { "in-RAM" } else { "pipeline" },
                human_bytes(lde_bytes),
                num("wall"),
                num("cpu"),
                human_bytes(num("anon") as u64),
                human_bytes(num("written") as u64),
                lde_bytes as f64 / num("wall") / 1e6,
                num("open_ms"),
            );
        }
    }
    Ok(())
}

/// A pseudo-random block of `rows` rows starting at row `first` (xorshift per value, so any
/// block can be made on its own).
fn block(first: u64, rows: usize, width: usize) -> RowMajorMatrix<F> {
    let values = (0..rows * width)
        .map(|i| {
            let mut x = (first * width as u64 + i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            F::new(x)
        })
        .collect();
    RowMajorMatrix::new(values, width)
}

/// The queries a proof opens at the default security, spread over the LDE.
const QUERIES: usize = 100;

fn measure(args: &LdeBench, rows: u64, in_ram: bool) -> anyhow::Result<Figures> {
    let log_height = rows.trailing_zeros() as usize;
    let geo = ChunkGeometry::new(
        log_height,
        args.chunk_rows.trailing_zeros() as usize,
        args.log_blowup,
    );
    let lde_rows = 1usize << (log_height + args.log_blowup);
    let mut queries: Vec<usize> = (0..QUERIES)
        .map(|q| (q.wrapping_mul(0x9e37_79b9) ^ (q << 7)) % lde_rows)
        .collect();
    queries.sort_unstable();
    queries.dedup();
    let sampler = RssSampler::start(std::time::Duration::from_millis(20));
    if in_ram {
        let trace = block(0, rows as usize, args.width);
        let (t, cpu) = (Instant::now(), cpu_time());
        let committed = stark::prover::commit_trace(trace, args.log_blowup);
        let (wall, cpu) = (t.elapsed().as_secs_f64(), (cpu_time() - cpu).as_secs_f64());
        let t = Instant::now();
        let opening = committed.open(&queries);
        let open_ms = t.elapsed().as_secs_f64() * 1e3;
        ensure!(opening.rows.len() == queries.len(), "opened every query");
        return Ok(Figures {
            wall,
            cpu,
            anon: sampler.stop(),
            written: 0,
            open_ms,
        });
    }
    let spill = Arc::new(SpillDir::create(&SpillOptions {
        dir: args.spill_dir.clone(),
        keep: Keep::Never,
        verify_segments: false,
        limit: None,
    })?);
    // The source chunks, written one at a time as the executor would.
    let b = geo.chunk_rows();
    let source = (0..geo.chunks())
        .map(|c| {
            let meta = SegmentMeta::new("bench", c as u64, "main", "trace");
            write_matrix(&spill, &meta, &mut block((c * b) as u64, b, args.width))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let before = spill.bytes_written();
    let name = LdeName {
        table: "bench",
        pass: "main",
        kind: "main-lde",
    };
    let (t, cpu) = (Instant::now(), cpu_time());
    let out = lde::extend(&spill, name, geo, &Extension::lde(&geo), source, args.width)?;
    let (wall, cpu) = (t.elapsed().as_secs_f64(), (cpu_time() - cpu).as_secs_f64());
    let written = spill.bytes_written() - before;
    let t = Instant::now();
    let opening = lde::open(&spill, &out, &queries)?;
    let open_ms = t.elapsed().as_secs_f64() * 1e3;
    ensure!(opening.rows.len() == queries.len(), "opened every query");
    spill.finish()?;
    Ok(Figures {
        wall,
        cpu,
        anon: sampler.stop(),
        written,
        open_ms,
    })
}
