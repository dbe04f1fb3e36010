//! Run metrics: wall and CPU time per pass, peak memory, bytes spilled and the most held.
//!
//! Two peak-memory figures, because they answer different questions: the resident set (VmRSS,
//! whose run peak is VmHWM) counts the pages of mapped segment files the kernel happened to keep
//! resident, which is reclaimable page cache; `RssAnon` counts only anonymous memory (heap,
//! stacks), i.e. what the process really holds. Per-pass peaks come from a background thread
//! sampling both; the kernel's counters are never reset, so VmHWM, getrusage and
//! `/usr/bin/time -v` agree with the run's own peak.

use std::fmt;
use std::fs;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::graph::{StageStats, stats_table};
use crate::spill::SpillBytes;
use crossbeam_channel::{Sender, bounded};

/// Memory fields of /proc/self/status, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcStatus {
    pub vm_hwm: Option<u64>,
    pub vm_rss: Option<u64>,
    pub rss_anon: Option<u64>,
    pub rss_file: Option<u64>,
    pub rss_shmem: Option<u64>,
}

/// Parse the `kB` memory lines of a `/proc/<pid>/status` text.
pub fn parse_proc_status(text: &str) -> ProcStatus {
    let mut s = ProcStatus::default();
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let field = match key {
            "VmHWM" => &mut s.vm_hwm,
            "VmRSS" => &mut s.vm_rss,
            "RssAnon" => &mut s.rss_anon,
            "RssFile" => &mut s.rss_file,
            "RssShmem" => &mut s.rss_shmem,
            _ => continue,
        };
        let mut parts = rest.split_whitespace();
        if let (Some(v), Some("kB")) = (
            parts.next().and_then(|v| v.parse::<u64>().ok()),
            parts.next(),
        ) {
            *field = Some(v * 1024);
        }
    }
    s
}

pub fn read_proc_status() -> io::Result<ProcStatus> {
    Ok(parse_proc_status(&fs::read_to_string("/proc/self/status")?))
}

/// User + system CPU time of the whole process (all threads) so far.
pub fn cpu_time() -> Duration {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we pass.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// A background thread sampling RssAnon and VmRSS, keeping the run's peaks and a resettable
/// window peak of each. Sampling, rather than resetting the kernel's high-water mark
/// (`/proc/self/clear_refs`), leaves VmHWM, getrusage's maxrss and so `/usr/bin/time -v` true.
pub struct RssSampler {
    /// Peaks since start: RssAnon, VmRSS.
    peak: Arc<[AtomicU64; 2]>,
    /// Peaks since the last window: RssAnon, VmRSS.
    window_peak: Arc<[AtomicU64; 2]>,
    stop: Option<Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

/// The current (RssAnon, VmRSS), 0 where unreadable.
fn current_rss() -> [u64; 2] {
    read_proc_status().map_or([0, 0], |s| [s.rss_anon.unwrap_or(0), s.vm_rss.unwrap_or(0)])
}

impl RssSampler {
    pub fn start(interval: Duration) -> RssSampler {
        let peak: Arc<[AtomicU64; 2]> = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let window_peak: Arc<[AtomicU64; 2]> = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let sample = {
            let (peak, window_peak) = (peak.clone(), window_peak.clone());
            move || {
                for (k, v) in current_rss().into_iter().enumerate() {
                    peak[k].fetch_max(v, Ordering::Relaxed);
                    window_peak[k].fetch_max(v, Ordering::Relaxed);
                }
            }
        };
        let (stop, stopped) = bounded::<()>(0);
        sample();
        let handle = std::thread::Builder::new()
            .name("rss-sampler".into())
            .spawn(move || {
                // recv_timeout doubles as the sleep; a dropped sender stops the loop at once.
                while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(interval)
                {
                    sample();
                }
                sample();
            })
            .ok();
        RssSampler {
            peak,
            window_peak,
            stop: Some(stop),
            handle,
        }
    }

    /// Highest RssAnon seen since start.
    pub fn peak(&self) -> u64 {
        self.peak[0].load(Ordering::Relaxed)
    }

    /// Highest VmRSS seen since start.
    pub fn peak_rss(&self) -> u64 {
        self.peak[1].load(Ordering::Relaxed)
    }

    /// Highest (RssAnon, VmRSS) since the last call, then start a new window at the current
    /// values.
    pub fn take_window_peak(&self) -> [u64; 2] {
        let current = current_rss();
        let mut out = [0; 2];
        for k in 0..2 {
            self.peak[k].fetch_max(current[k], Ordering::Relaxed);
            out[k] = self.window_peak[k]
                .swap(current[k], Ordering::Relaxed)
                .max(current[k]);
        }
        out
    }

    /// Stop sampling and return the RssAnon peak.
    pub fn stop(mut self) -> u64 {
        self.shutdown();
        self.peak()
    }

    fn shutdown(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Figures for one pass.
#[derive(Clone, Debug, PartialEq)]
pub struct PassMetrics {
    pub name: String,
    pub wall: Duration,
    pub cpu: Duration,
    /// Bytes written to the spill dir during the pass.
    pub spilled_bytes: u64,
    /// The most bytes the spill dir held at once during the pass (exact: updated at every
    /// segment written).
    pub peak_spill_held: u64,
    /// Highest sampled RssAnon during the pass.
    pub peak_rss_anon: u64,
    /// Highest sampled VmRSS during the pass (mapped segments' resident pages included).
    pub peak_rss: Option<u64>,
}

/// Collects per-pass metrics for one run. Passes are timed one after the other.
pub struct Metrics {
    start: Instant,
    cpu_start: Duration,
    sampler: RssSampler,
    spilled: Option<Arc<SpillBytes>>,
    passes: Mutex<Vec<PassMetrics>>,
    stages: Mutex<Vec<(String, Vec<StageStats>)>>,
}

impl Metrics {
    /// Start measuring; `spilled` is the spill dir's byte counters, if any.
    pub fn start(spilled: Option<Arc<SpillBytes>>) -> Metrics {
        Metrics {
            start: Instant::now(),
            cpu_start: cpu_time(),
            sampler: RssSampler::start(Duration::from_millis(20)),
            spilled,
            passes: Mutex::new(Vec::new()),
            stages: Mutex::new(Vec::new()),
        }
    }

    fn spilled_now(&self) -> u64 {
        self.spilled.as_ref().map_or(0, |c| c.written())
    }

    fn take_peak_held(&self) -> u64 {
        self.spilled.as_ref().map_or(0, |c| c.take_peak_held())
    }

    /// Start timing a pass; call [`PassTimer::finish`] when it ends.
    pub fn pass(&self, name: &str) -> PassTimer<'_> {
        self.sampler.take_window_peak();
        self.take_peak_held();
        PassTimer {
            metrics: self,
            name: name.to_string(),
            start: Instant::now(),
            cpu_start: cpu_time(),
            spilled_start: self.spilled_now(),
        }
    }

    /// Passes finished so far.
    pub fn passes(&self) -> Vec<PassMetrics> {
        self.passes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Keeps a pass's per-stage figures ([`crate::Graph::run_with_stats`]) for the summary.
    pub fn record_stages(&self, pass: &str, stats: Vec<StageStats>) {
        self.stages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((pass.to_string(), stats));
    }

    /// Stop measuring. `extra` rows (e.g. proof size) are printed after the totals.
    pub fn summary(self) -> RunSummary {
        let passes = self.passes();
        // VmHWM is never reset, so it is the run's true peak (what /usr/bin/time reports);
        // the sampled VmRSS peak stands in where it cannot be read.
        let hwm = read_proc_status().ok().and_then(|s| s.vm_hwm);
        let spilled_bytes = self.spilled_now();
        RunSummary {
            wall: self.start.elapsed(),
            cpu: cpu_time().saturating_sub(self.cpu_start),
            peak_rss: Some(hwm.unwrap_or(0).max(self.sampler.peak_rss())).filter(|&v| v > 0),
            peak_rss_anon: self.sampler.stop(),
            spilled_bytes,
            peak_spill_held: passes.iter().map(|p| p.peak_spill_held).max().unwrap_or(0),
            passes,
            stages: std::mem::take(&mut *self.stages.lock().unwrap_or_else(|e| e.into_inner())),
        }
    }
}

/// Times one pass; see [`Metrics::pass`].
pub struct PassTimer<'a> {
    metrics: &'a Metrics,
    name: String,
    start: Instant,
    cpu_start: Duration,
    spilled_start: u64,
}

impl PassTimer<'_> {
    pub fn finish(self) -> PassMetrics {
        let m = self.metrics;
        let [anon, rss] = m.sampler.take_window_peak();
        let pass = PassMetrics {
            name: self.name,
            wall: self.start.elapsed(),
            cpu: cpu_time().saturating_sub(self.cpu_start),
            spilled_bytes: m.spilled_now().saturating_sub(self.spilled_start),
            peak_spill_held: m.take_peak_held(),
            peak_rss_anon: anon,
            peak_rss: Some(rss).filter(|&v| v > 0),
        };
        m.passes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(pass.clone());
        pass
    }
}

/// End-of-run figures, printed as a table.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSummary {
    pub passes: Vec<PassMetrics>,
    pub wall: Duration,
    pub cpu: Duration,
    /// Peak VmHWM (includes resident pages of mapped segments).
    pub peak_rss: Option<u64>,
    /// Peak sampled RssAnon (memory the process really holds).
    pub peak_rss_anon: u64,
    pub spilled_bytes: u64,
    /// The most bytes the spill dir held at once (the largest pass peak).
    pub peak_spill_held: u64,
    /// Per pass, where each stage's time went (busy, waiting for input, blocked on output):
    /// which stage bounds a pass. Not part of the `Display` table; see [`RunSummary::stage_table`].
    pub stages: Vec<(String, Vec<StageStats>)>,
}

impl RunSummary {
    /// The per-stage figures of every pass, one table.
    pub fn stage_table(&self) -> String {
        let mut out = String::new();
        for (pass, stats) in &self.stages {
            for line in stats_table(stats).lines() {
                let first = line.starts_with("stage ");
                if first && !out.is_empty() {
                    continue;
                }
                let label = if first { "pass" } else { pass.as_str() };
                out += &format!("{label:<9} {line}\n");
            }
        }
        out
    }
}

/// `1.5 GiB`-style sizes.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// One line of the [`RunSummary`] table.
struct Row {
    wall: Duration,
    cpu: Duration,
    spilled: u64,
    held: u64,
    anon: u64,
    rss: Option<u64>,
}

impl fmt::Display for RunSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opt = |v: Option<u64>| v.map_or("-".to_string(), human_bytes);
        writeln!(
            f,
            "{:<12} {:>9} {:>9} {:>6} {:>11} {:>11} {:>11} {:>11}",
            "pass", "wall s", "cpu s", "cpu/w", "spilled", "spill held", "peak anon", "peak rss"
        )?;
        let row = |f: &mut fmt::Formatter<'_>, name: &str, r: Row| {
            writeln!(
                f,
                "{:<12} {:>9.3} {:>9.3} {:>6.2} {:>11} {:>11} {:>11} {:>11}",
                name,
                r.wall.as_secs_f64(),
                r.cpu.as_secs_f64(),
                r.cpu.as_secs_f64() / r.wall.as_secs_f64().max(1e-9),
                human_bytes(r.spilled),
                human_bytes(r.held),
                human_bytes(r.anon),
                opt(r.rss)
            )
        };
        for p in &self.passes {
            let r = Row {
                wall: p.wall,
                cpu: p.cpu,
                spilled: p.spilled_bytes,
                held: p.peak_spill_held,
                anon: p.peak_rss_anon,
                rss: p.peak_rss,
            };
            row(f, &p.name, r)?;
        }
        let total = Row {
            wall: self.wall,
            cpu: self.cpu,
            spilled: self.spilled_bytes,
            held: self.peak_spill_held,
            anon: self.peak_rss_anon,
            rss: self.peak_rss,
        };
        row(f, "total", total)?;
        Ok(())
    }
}
