//! `stark-pipe inspect PATH`: explain a proof file or a spill dir.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use formats::inspect::RunState;
use formats::{MANIFEST_FILE, ProofFile};
use stark::Proof;
use stark::proof::TreeOpening;
use vm::air::{Rv32Air, Statement};

#[derive(clap::Args)]
pub struct InspectArgs {
    /// A proof file (written by `stark-pipe run`) or a spill dir (kept with --keep-spill, or
    /// left by a failed or interrupted run).
    pub path: PathBuf,
    /// For a spill dir: hash every segment and compare with the manifest's checksum.
    #[arg(long)]
    pub verify: bool,
    /// Print one JSON object on stdout instead of text (fields in docs/json.md).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let path = &args.path;
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.is_dir() {
        if !path.join(MANIFEST_FILE).exists() {
            bail!(
                "{} is a directory without {MANIFEST_FILE}: not a stark-pipe spill dir",
                path.display()
            );
        }
        return spill_dir(path, args.verify, args.json);
    }
    proof(path, args.json)
}

fn spill_dir(path: &Path, verify: bool, json: bool) -> anyhow::Result<ExitCode> {
    let report = formats::inspect_spill_dir(path, verify)?;
    if json {
        let segments: Vec<serde_json::Value> = report
            .segments
            .iter()
            .map(|(r, status)| {
                let mut v = serde_json::to_value(r).expect("a segment record serializes");
                v["status"] = status.to_string().into();
                v["ok"] = status.is_ok().into();
                v
            })
            .collect();
        let value = serde_json::json!({
            "kind": "spill-dir",
            "dir": path.display().to_string(),
            "state": match &report.state {
                RunState::Finished => "finished",
                RunState::Failed { .. } => "failed",
                RunState::Running { .. } => "running",
                RunState::Interrupted { .. } => "interrupted",
            },
            "owner_pid": report.manifest.owner.pid,
            "run_id": report.manifest.run_id,
            "status": serde_json::to_value(report.manifest.status).expect("serializes"),
            "error": report.manifest.error,
            "passes": serde_json::to_value(&report.manifest.passes).expect("serializes"),
            "segments": segments,
            "verified": report.verified,
            "partial_files": report.partial_files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        });
        emit(&format!("{value}\n"));
    } else {
        emit(&report.to_string());
    }
    let bad: Vec<String> = report
        .segments
        .iter()
        .filter(|(_, s)| !s.is_ok())
        .map(|(r, s)| format!("{} ({s})", path.join(&r.file).display()))
        .collect();
    if bad.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        bail!("{} bad segment file(s): {}", bad.len(), bad.join(", "))
    }
}

/// The machine's table names, by table index. They do not depend on the program, so the
/// embedded benchmark program serves to build the table set.
fn table_names() -> Vec<String> {
    let program = vm::Program::from_elf(crate::bench::FIB_ELF).expect("the embedded ELF loads");
    let air = Rv32Air::new(Arc::new(program));
    air.tables().iter().map(|t| t.name().to_string()).collect()
}

fn proof(path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let file = ProofFile::read(path).with_context(|| {
        format!(
            "{} is neither a stark-pipe proof file nor a spill dir",
            path.display()
        )
    })?;
    let statement = Statement::from_bytes(&file.statement)
        .with_context(|| format!("{}: bad statement section", path.display()))?;
    let proof = Proof::from_bytes(&file.proof)
        .with_context(|| format!("{}: bad proof section", path.display()))?;
    let names = table_names();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    if json {
        let summary = proof.summary(&refs);
        let sizes = summary.sizes;
        let value = serde_json::json!({
            "kind": "proof",
            "file": path.display().to_string(),
            "file_bytes": file.size_bytes(),
            "format_version": summary.version,
            "statement": crate::json::statement(&statement),
            "params": {
                "log_blowup": summary.params.log_blowup,
                "num_queries": summary.params.num_queries,
                "pow_bits": summary.params.pow_bits,
            },
            "security_bits": summary.security_bits,
            "tables": summary.tables.iter().map(|t| serde_json::json!({
                "table": t.table, "name": t.name, "log_heights": t.log_heights,
            })).collect::<Vec<_>>(),
            "fri_layers": summary.fri_layers,
            "sizes": {
                "header": sizes.header,
                "commitments": sizes.commitments,
                "ood": sizes.ood,
                "fri_commitments": sizes.fri_commitments,
                "trace_openings": sizes.trace_openings,
                "fri_openings": sizes.fri_openings,
            },
        });
        emit(&format!("{value}\n"));
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = String::new();
    writeln!(
        out,
        "file         {} ({} bytes)",
        path.display(),
        file.size_bytes()
    )?;
    let digest: String = statement
        .program_digest
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    writeln!(
        out,
        "program      {digest} (entry {:#010x})",
        statement.entry
    )?;
    writeln!(
        out,
        "statement    {} instructions, exit code {}, {} output bytes",
        statement.cycles,
        statement.exit_code,
        statement.output.len()
    )?;
    write!(out, "{}", proof.summary(&refs))?;
    print_breakdown(&mut out, &proof, &refs)?;
    emit(&out);
    Ok(ExitCode::SUCCESS)
}

/// An opening's bytes: the opened values, and the Merkle siblings.
fn tree_bytes(t: &TreeOpening) -> (usize, usize) {
    (
        t.rows.iter().map(|r| r.len() * 8).sum::<usize>(),
        t.siblings.len() * 32,
    )
}

/// Where the proof's bytes go: commitments, OOD values and openings per table, FRI.
fn print_breakdown(out: &mut String, proof: &Proof, names: &[&str]) -> std::fmt::Result {
    writeln!(
        out,
        "size breakdown (bytes, approximate: framing counts omitted; siblings: the Merkle \
         paths' part of the openings)"
    )?;
    writeln!(
        out,
        "  {:<12} {:>9} {:>12} {:>9} {:>12} {:>12}",
        "table", "instances", "commitments", "ood", "openings", "(siblings)"
    )?;
    let mut totals = (0usize, 0usize, 0usize, 0usize);
    let mut i = 0;
    while i < proof.instances.len() {
        let table = proof.instances[i].table;
        let (mut n, mut commit, mut ood, mut open, mut siblings) = (0, 0, 0, 0, 0);
        while i < proof.instances.len() && proof.instances[i].table == table {
            n += 1;
            commit += proof.claimed_sums[i].map_or(0, |_| 16);
            let o = &proof.ood[i];
            ood += 16 * o.columns().iter().map(|v| v.len()).sum::<usize>();
            let op = &proof.openings[i];
            let trees = [
                Some(&op.main),
                op.prep.as_ref(),
                op.aux.as_ref(),
                Some(&op.quotient),
            ];
            for (values, hashes) in trees.into_iter().flatten().map(tree_bytes) {
                open += values + hashes;
                siblings += hashes;
            }
            i += 1;
        }
        let name = names.get(table as usize).copied().unwrap_or("?");
        writeln!(
            out,
            "  {name:<12} {n:>9} {commit:>12} {ood:>9} {open:>12} {siblings:>12}"
        )?;
        totals.0 += commit;
        totals.1 += ood;
        totals.2 += open;
        totals.3 += siblings;
    }
    let p = &proof.pass_siblings;
    let tops = [&p.prep, &p.main, &p.aux, &p.quotient];
    let pass_siblings: usize = tops.iter().map(|t| t.len() * 32).sum();
    let roots = 32 * (2 + usize::from(proof.aux_root.is_some()));
    writeln!(
        out,
        "  {:<12} {:>9} {roots:>12} {:>9} {pass_siblings:>12} {pass_siblings:>12}",
        "pass trees", "", ""
    )?;
    totals.0 += roots;
    totals.2 += pass_siblings;
    totals.3 += pass_siblings;
    let fri: usize = proof.fri_roots.len() * 32
        + 16
        + proof
            .fri_openings
            .iter()
            .map(|l| l.values.len() * 16 + l.siblings.len() * 32)
            .sum::<usize>();
    writeln!(
        out,
        "  {:<12} {:>9} {:>12} {:>9} {:>12} {:>12}",
        "total",
        proof.instances.len(),
        totals.0,
        totals.1,
        totals.2,
        totals.3
    )?;
    writeln!(
        out,
        "  {:<12} {fri} ({} layers)",
        "fri",
        proof.fri_roots.len()
    )?;
    // Each committed layer: its word's size, the values a leaf holds, what its opening costs.
    let log_b = proof.params.log_blowup as usize;
    let logs = || {
        proof
            .instances
            .iter()
            .map(|s| s.log_height as usize + log_b)
    };
    let log_max = logs().max().unwrap_or(0);
    writeln!(
        out,
        "  {:<12} {:>9} {:>6} {:>10} {:>12}",
        "fri layer", "word", "leaf", "values", "(siblings)"
    )?;
    for (l, (fl, lo)) in stark::protocol::fri_layers(logs(), log_b)
        .iter()
        .zip(&proof.fri_openings)
        .enumerate()
    {
        writeln!(
            out,
            "  {:<12} {:>9} {:>6} {:>10} {:>12}",
            l,
            format!("2^{}", fl.log_size(log_max)),
            1 << fl.log_arity,
            lo.values.len() * 16,
            lo.siblings.len() * 32
        )?;
    }
    Ok(())
}

/// Writes to stdout; a closed pipe (`inspect ... | head`) is not an error worth a panic.
fn emit(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}
