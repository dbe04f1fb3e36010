//! Memory budget: how much memory the process may use, and the chunk size that fits in it.
//!
//! Peak memory of a run is about `chunk_rows x bytes_per_row x in_flight_chunks` plus fixed
//! costs, because bounded channels cap how many chunks exist at once. So the chunk size is the
//! knob: pick the largest power of two that fits the budget.

use std::fs;
use std::path::{Path, PathBuf};

/// The memory limits that apply to this process, in bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryLimit {
    /// Smallest cgroup `memory.max` (v2) or `memory.limit_in_bytes` (v1) on our cgroup path.
    pub cgroup: Option<u64>,
    /// The file the cgroup limit came from.
    pub cgroup_file: Option<PathBuf>,
    /// Physical memory (/proc/meminfo MemTotal).
    pub mem_total: Option<u64>,
}

impl MemoryLimit {
    /// Read the limits of the running process.
    pub fn read() -> MemoryLimit {
        let mem_total = fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|t| parse_meminfo_total(&t));
        let (cgroup, cgroup_file) = read_cgroup_limit(Path::new("/sys/fs/cgroup"))
            .map_or((None, None), |(l, f)| (Some(l), Some(f)));
        MemoryLimit {
            cgroup,
            cgroup_file,
            mem_total,
        }
    }

    /// `fraction` of the binding limit, e.g. 0.5 to leave room for the page cache and the rest
    /// of the system.
    pub fn budget_bytes(&self, fraction: f64) -> Option<u64> {
        self.effective()
            .map(|l| (l as f64 * fraction.clamp(0.0, 1.0)) as u64)
    }

    /// The binding limit: the smaller of the cgroup limit and physical memory.
    pub fn effective(&self) -> Option<u64> {
        match (self.cgroup, self.mem_total) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// `memory.max` / `memory.limit_in_bytes` contents: `None` for "max" or an absurdly large
/// value (cgroup v1 writes ~2^63 for "no limit").
pub fn parse_cgroup_limit(text: &str) -> Option<u64> {
    let t = text.trim();
    if t == "max" {
        return None;
    }
    t.parse::<u64>().ok().filter(|&v| v < (1 << 60))
}

/// MemTotal from /proc/meminfo, in bytes.
pub fn parse_meminfo_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut parts = line.split_whitespace().skip(1);
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") | None => Some(value * 1024),
        _ => None,
    }
}

/// Our cgroup v2 path from /proc/self/cgroup text (the `0::/path` line).
pub fn parse_cgroup_v2_path(proc_self_cgroup: &str) -> Option<String> {
    proc_self_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| p.trim().to_string())
}

/// Smallest limit on the way from our cgroup up to the root (a parent's limit binds too), or
/// the v1 memory controller's limit.
fn read_cgroup_limit(root: &Path) -> Option<(u64, PathBuf)> {
    let mut best: Option<(u64, PathBuf)> = None;
    let mut consider = |file: PathBuf| {
        if let Some(limit) = fs::read_to_string(&file)
            .ok()
            .and_then(|t| parse_cgroup_limit(&t))
            && best.as_ref().is_none_or(|(b, _)| limit < *b)
        {
            best = Some((limit, file));
        }
    };
    if let Some(rel) = fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|t| parse_cgroup_v2_path(&t))
    {
        let mut dir = root.join(rel.trim_start_matches('/'));
        loop {
            consider(dir.join("memory.max"));
            if dir == root || !dir.pop() || !dir.starts_with(root) {
                break;
            }
        }
        // Inside a container the namespace root is our own cgroup.
        consider(root.join("memory.max"));
    }
    consider(root.join("memory/memory.limit_in_bytes"));
    best
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    #[error(
        "memory budget of {budget} bytes cannot hold even one row of {bytes_per_row} bytes x {in_flight} chunks in flight"
    )]
    TooSmall {
        budget: u64,
        bytes_per_row: u64,
        in_flight: u64,
    },
    #[error("bytes per row and chunks in flight must be positive")]
    Zero,
}

/// The largest power-of-two chunk row count with
/// `rows x bytes_per_row x in_flight_chunks <= budget_bytes`.
pub fn chunk_rows_for_budget(
    budget_bytes: u64,
    bytes_per_row: u64,
    in_flight_chunks: u64,
) -> Result<u64, BudgetError> {
    if bytes_per_row == 0 || in_flight_chunks == 0 {
        return Err(BudgetError::Zero);
    }
    let per_row = bytes_per_row.saturating_mul(in_flight_chunks);
    let max_rows = budget_bytes / per_row;
    if max_rows == 0 {
        return Err(BudgetError::TooSmall {
            budget: budget_bytes,
            bytes_per_row,
            in_flight: in_flight_chunks,
        });
    }
    Ok(1 << (63 - max_rows.leading_zeros()))
}
