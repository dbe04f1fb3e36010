//! Peak memory does not grow with the number of chunks: a toy three-stage pipeline over real
//! segment files, run for an increasing number of chunks.
//!
//!     cargo run --release -p pipeline --example flat_memory -- [log2_rows] [columns] [spill_dir]
//!
//! Stages: `tracegen` builds a chunk's columns in memory and spills them as a columnar segment;
//! `extend` maps it and writes a 2x taller row-major segment in place (mapped writer); `fold`
//! maps that and reduces it with rayon. Channels hold 2 items. `CHUNKS=4,16,64` sets the runs,
//! `SHOW_STAGES=1` prints where each stage's time went.

use std::path::PathBuf;
use std::sync::Arc;

use formats::{Layout, SegmentData, SegmentMeta};
use pipeline::metrics::human_bytes;
use pipeline::{
    BoxError, ChunkDescriptor, Graph, Keep, Metrics, Progress, ProgressMode, SpillDir, SpillOptions,
};
use rayon::prelude::*;

fn run(chunks: u64, rows: usize, columns: usize, dir: Option<PathBuf>) -> Result<(), BoxError> {
    let spill = Arc::new(SpillDir::create(&SpillOptions {
        dir,
        keep: Keep::Never,
        verify_segments: false,
        limit: None,
    })?);
    for w in spill.warnings() {
        eprintln!("warning: {w}");
    }
    let metrics = Metrics::start(Some(spill.bytes_counter()));
    let pass = metrics.pass("main");
    spill.begin_pass("main")?;

    let progress = Progress::new(ProgressMode::Never);
    let mut g = Graph::new(2).with_progress(&progress, Some(chunks));
    let src = g.source_iter(
        "execute",
        (0..chunks).map(move |c| ChunkDescriptor::new("toy", 0, c, rows as u64, "main")),
    );
    let sp = spill.clone();
    let traced = g.map("tracegen", src, move |d: ChunkDescriptor| {
        let cols: Vec<Vec<u64>> = (0..columns)
            .into_par_iter()
            .map(|c| {
                (0..rows as u64)
                    .map(|r| r * 31 + c as u64 + d.chunk)
                    .collect()
            })
            .collect();
        let slices: Vec<&[u64]> = cols.iter().map(|c| c.as_slice()).collect();
        let seg = sp.write_segment(
            &SegmentMeta::new("toy", d.chunk, "main", "trace"),
            SegmentData::Columns(&slices),
        )?;
        Ok::<_, BoxError>(d.with_segment(seg))
    });
    let sp = spill.clone();
    let extended = g.map("extend", traced, move |d: ChunkDescriptor| {
        let trace = d.open("trace", false)?;
        let cols = trace.column_slices()?;
        let meta = SegmentMeta::new("toy", d.chunk, "main", "lde");
        let mut w = sp.create_mapped_segment(&meta, Layout::RowMajor, 2 * rows, columns)?;
        w.values_mut()?
            .par_chunks_mut(columns)
            .enumerate()
            .for_each(|(r, row)| {
                for (c, v) in row.iter_mut().enumerate() {
                    *v = cols[c][r / 2].wrapping_mul(r as u64 + 1);
                }
            });
        let lde = sp.record_segment(&w.finish()?)?;
        Ok::<_, BoxError>(d.with_segment(lde))
    });
    let folded = g.map("fold", extended, |d: ChunkDescriptor| {
        let lde = d.open("lde", false)?;
        let s = lde
            .row_major_values()?
            .par_iter()
            .fold(|| 0u64, |a, &b| a.wrapping_add(b))
            .reduce(|| 0, u64::wrapping_add);
        Ok::<_, BoxError>((d, s))
    });
    let (digest, stats) = g.run_with_stats(
        "commit",
        folded,
        0u64,
        |acc, (_, s): (ChunkDescriptor, u64)| {
            *acc = acc.rotate_left(7) ^ s;
            Ok::<_, BoxError>(())
        },
    )?;
    spill.end_pass("main")?;
    pass.finish();
    spill.finish()?;
    let summary = metrics.summary();
    let cells = chunks * rows as u64 * columns as u64;
    println!(
        "{chunks:>7} {:>12} {:>11} {:>10.2} {:>11} {:>11}   {digest:016x}",
        cells,
        human_bytes(summary.spilled_bytes),
        summary.wall.as_secs_f64(),
        human_bytes(summary.peak_rss_anon),
        summary.peak_rss.map_or("-".into(), human_bytes),
    );
    if std::env::var_os("SHOW_STAGES").is_some() {
        print!("{}", pipeline::graph::stats_table(&stats));
    }
    Ok(())
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let log_rows: u32 = args.get(1).map_or(16, |s| s.parse().expect("log2 rows"));
    let columns: usize = args.get(2).map_or(16, |s| s.parse().expect("columns"));
    let dir = args.get(3).map(PathBuf::from);
    let rows = 1usize << log_rows;
    println!(
        "chunk = 2^{log_rows} rows x {columns} u64 = {} trace + {} extended; channel capacity 2",
        human_bytes((rows * columns * 8) as u64),
        human_bytes((2 * rows * columns * 8) as u64)
    );
    println!(
        "{:>7} {:>12} {:>11} {:>10} {:>11} {:>11}   digest",
        "chunks", "cells", "spilled", "wall s", "peak anon", "peak rss"
    );
    let counts: Vec<u64> = std::env::var("CHUNKS")
        .unwrap_or_else(|_| "4,16,64".into())
        .split(',')
        .map(|c| c.trim().parse().expect("CHUNKS=4,16,64"))
        .collect();
    for chunks in counts {
        run(chunks, rows, columns, dir.clone())?;
    }
    Ok(())
}
