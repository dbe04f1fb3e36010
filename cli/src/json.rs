//! The JSON objects `run --json` and `verify --json` print (one per command, on stdout); their
//! fields are documented in `docs/json.md`.

use serde_json::{Value, json};

use stark_pipe::{Report, Statement, Verified};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The statement's fields: what a proof proves.
pub fn statement(s: &Statement) -> Value {
    json!({
        "program_digest": hex(&s.program_digest),
        "entry": s.entry,
        "exit_code": s.exit_code,
        "cycles": s.cycles,
        "output_len": s.output.len(),
        "output_hex": hex(&s.output),
        "output_text": std::str::from_utf8(&s.output).ok(),
    })
}

/// `verify --json` for a valid proof.
pub fn verified(v: &Verified, seconds: f64) -> Value {
    json!({
        "valid": true,
        "statement": statement(&Statement {
            program_digest: v.program_digest,
            entry: v.entry,
            exit_code: v.exit_code,
            output: v.output.clone(),
            cycles: v.cycles,
        }),
        "security_bits": v.security_bits,
        "verify_seconds": seconds,
    })
}

/// `verify --json` for a refused proof (or one that could not be read).
pub fn refused(error: &str) -> Value {
    json!({ "valid": false, "error": error })
}

/// `run --json`.
pub fn proven(
    s: &Statement,
    proof_path: &str,
    proof_bytes: u64,
    security_bits: u32,
    report: &Report,
) -> Value {
    let summary = &report.summary;
    let tables: Vec<Value> = report
        .widths
        .iter()
        .map(|w| {
            json!({
                "name": w.name,
                "instances": w.instances,
                "rows": w.rows,
                "main_columns": w.main_width,
                "aux_columns": w.aux_width,
                "preprocessed_columns": w.prep_width,
                "committed_cells": w.cells(),
            })
        })
        .collect();
    let passes: Vec<Value> = summary
        .passes
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "wall_seconds": p.wall.as_secs_f64(),
                "cpu_seconds": p.cpu.as_secs_f64(),
                "spilled_bytes": p.spilled_bytes,
                "peak_spill_held_bytes": p.peak_spill_held,
                "peak_rss_anon_bytes": p.peak_rss_anon,
                "peak_rss_bytes": p.peak_rss,
            })
        })
        .collect();
    json!({
        "statement": statement(s),
        "proof": { "path": proof_path, "bytes": proof_bytes, "security_bits": security_bits, "instances": report.instances, "ldes_kept": report.ldes_kept, "chunk_rows": report.chunk_rows },
        "wall_seconds": summary.wall.as_secs_f64(),
        "cpu_seconds": summary.cpu.as_secs_f64(),
        "peak_rss_anon_bytes": summary.peak_rss_anon,
        "peak_rss_bytes": summary.peak_rss,
        "spilled_bytes": summary.spilled_bytes,
        "peak_spill_held_bytes": summary.peak_spill_held,
        "passes": passes,
        "tables": tables,
    })
}
