use std::time::{Duration, Instant};

use pipeline::budget::{parse_cgroup_limit, parse_cgroup_v2_path, parse_meminfo_total};
use pipeline::metrics::{cpu_time, parse_proc_status, read_proc_status};
use std::path::PathBuf;

use formats::{SegmentData, SegmentMeta};
use pipeline::{
    BudgetError, Keep, MemoryLimit, Metrics, RssSampler, SpillDir, SpillOptions,
    chunk_rows_for_budget,
};

const SAMPLE_STATUS: &str = "Name:\tstark-pipe
Umask:\t0022
State:\tR (running)
VmPeak:\t 2345676 kB
VmSize:\t 2345672 kB
VmHWM:\t  812344 kB
VmRSS:\t  640000 kB
RssAnon:\t  123456 kB
RssFile:\t  516544 kB
RssShmem:\t       0 kB
Threads:\t5
";

#[test]
fn parses_proc_status() {
    let s = parse_proc_status(SAMPLE_STATUS);
    assert_eq!(s.vm_hwm, Some(812344 * 1024));
    assert_eq!(s.vm_rss, Some(640000 * 1024));
    assert_eq!(s.rss_anon, Some(123456 * 1024));
    assert_eq!(s.rss_file, Some(516544 * 1024));
    assert_eq!(s.rss_shmem, Some(0));
    assert_eq!(parse_proc_status("garbage\nVmHWM: x kB\n").vm_hwm, None);
}

#[test]
fn live_memory_and_cpu_readings() {
    let s = read_proc_status().unwrap();
    assert!(s.vm_hwm.unwrap() > 0 && s.rss_anon.unwrap() > 0, "{s:?}");
    assert!(s.vm_hwm.unwrap() >= s.vm_rss.unwrap());

    let sampler = RssSampler::start(Duration::from_millis(5));
    let before = sampler.peak();
    let cpu0 = cpu_time();
    // Touch 64 MiB of anonymous memory and burn a little CPU.
    let mut big = vec![0u8; 64 << 20];
    for i in (0..big.len()).step_by(4096) {
        big[i] = i as u8;
    }
    let t = Instant::now();
    let mut x = 0u64;
    while t.elapsed() < Duration::from_millis(50) {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
    }
    std::hint::black_box((x, &big));
    std::thread::sleep(Duration::from_millis(30));
    let peak = sampler.stop();
    assert!(peak >= before + (60 << 20), "peak {peak} before {before}");
    assert!(cpu_time() - cpu0 >= Duration::from_millis(30));
}

/// Writes a segment of one column of `rows` words.
fn segment(spill: &SpillDir, chunk: u64, rows: usize) -> pipeline::SegmentRef {
    let col: Vec<u64> = (0..rows as u64).collect();
    let meta = SegmentMeta::new("cpu", chunk, "main", "trace");
    spill
        .write_segment(&meta, SegmentData::Columns(&[&col]))
        .unwrap()
}

#[test]
fn metrics_summary_table() {
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("metrics-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let spill = SpillDir::create(&SpillOptions {
        dir: Some(dir),
        keep: Keep::Never,
        verify_segments: false,
        limit: None,
    })
    .unwrap();
    let metrics = Metrics::start(Some(spill.bytes_counter()));
    // Pass "main" writes three segments of 1 MiB and removes two: it held 3 MiB at its peak.
    let p = metrics.pass("main");
    let segs: Vec<_> = (0..3).map(|c| segment(&spill, c, 1 << 17)).collect();
    let one = segs[0].bytes;
    assert!(one >= 1 << 20);
    segs[1..]
        .iter()
        .for_each(|s| spill.remove_segment(s).unwrap());
    let buf = vec![1u8; 16 << 20];
    std::hint::black_box(&buf);
    let main = p.finish();
    drop(buf);
    assert_eq!(main.spilled_bytes, 3 * one);
    assert_eq!(main.peak_spill_held, 3 * one);
    assert!(main.peak_rss_anon >= 16 << 20);
    // Pass "aux" writes one more: its peak is what it started with plus that one.
    let p = metrics.pass("aux");
    segment(&spill, 3, 1 << 17);
    let aux = p.finish();
    assert_eq!(aux.spilled_bytes, one);
    assert_eq!(aux.peak_spill_held, 2 * one);
    let summary = metrics.summary();
    assert_eq!(summary.passes.len(), 2);
    assert_eq!(summary.spilled_bytes, 4 * one);
    assert_eq!(summary.peak_spill_held, 3 * one);
    assert!(summary.peak_rss.unwrap() >= summary.passes[0].peak_rss_anon / 2);
    let text = summary.to_string();
    println!("{text}");
    for needle in ["pass", "main", "aux", "total", "spill held", "3.0 MiB"] {
        assert!(text.contains(needle), "{needle:?} missing in\n{text}");
    }
    spill.finish().unwrap();
}

#[test]
fn memory_limits() {
    assert_eq!(parse_cgroup_limit("max\n"), None);
    assert_eq!(parse_cgroup_limit("1073741824\n"), Some(1 << 30));
    assert_eq!(parse_cgroup_limit("9223372036854771712\n"), None); // v1 "unlimited"
    assert_eq!(
        parse_meminfo_total("MemTotal:       16314708 kB\nMemFree: 1 kB\n"),
        Some(16314708 * 1024)
    );
    assert_eq!(
        parse_cgroup_v2_path("12:memory:/x\n0::/user.slice/job-7\n"),
        Some("/user.slice/job-7".into())
    );
    let limit = MemoryLimit::read();
    println!("{limit:?}");
    assert!(limit.mem_total.unwrap() > 0);
    assert!(limit.effective().unwrap() <= limit.mem_total.unwrap());
    assert_eq!(limit.budget_bytes(1.0), limit.effective());
    assert!(limit.budget_bytes(0.5).unwrap() <= limit.effective().unwrap() / 2 + 1);
}

#[test]
fn chunk_rows_from_a_budget() {
    // 1 GiB, 32 columns of u64 (256 B/row), 4 chunks in flight: 2^20 rows exactly.
    assert_eq!(chunk_rows_for_budget(1 << 30, 256, 4), Ok(1 << 20));
    assert_eq!(chunk_rows_for_budget((1 << 30) - 1, 256, 4), Ok(1 << 19));
    assert_eq!(chunk_rows_for_budget(1000, 100, 3), Ok(2));
    assert!(matches!(
        chunk_rows_for_budget(100, 100, 3),
        Err(BudgetError::TooSmall { .. })
    ));
    assert_eq!(chunk_rows_for_budget(1 << 30, 0, 4), Err(BudgetError::Zero));
    assert_eq!(chunk_rows_for_budget(u64::MAX, 1, 1), Ok(1 << 63));
}
