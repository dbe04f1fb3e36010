//! The out-of-core prover against the in-memory reference: same proof bytes for every store
//! policy and any channel capacity, and the witness builder's early hand-out of instances.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pipeline::{Keep, Metrics, Progress, SpillDir, SpillOptions};
use stages::{PipelineConfig, PipelineRun, Store, prove_in_memory, prove_pipeline};
use stark::ProofParams;
use vm::air::{Rv32Air, Witness};
use vm::{Machine, Program, TraceChunk};

fn program(name: &str) -> Arc<Program> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/elf")
        .join(format!("{name}.elf"));
    Arc::new(Program::from_elf(&std::fs::read(&path).unwrap()).unwrap())
}

fn fast() -> ProofParams {
    ProofParams {
        num_queries: 24,
        pow_bits: 4,
        // At most the smallest block rows a test runs the single-instance prover with.
        log_join_rows: 4,
        ..ProofParams::default()
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("stages-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The reference proof of the in-memory prover.
fn in_memory_bytes(prog: &Arc<Program>, input: &Arc<[u8]>, chunk_rows: usize) -> Vec<u8> {
    let run = prove_in_memory(
        Arc::clone(prog),
        Arc::clone(input),
        chunk_rows,
        1 << 30,
        &fast(),
    );
    run.unwrap().proof.to_bytes()
}

fn pipeline_bytes(
    prog: &Arc<Program>,
    input: &Arc<[u8]>,
    chunk_rows: usize,
    store: Store,
    capacity: usize,
    keep: Keep,
    dir: &Path,
) -> Vec<u8> {
    let (run, _) = run_pipeline(prog, input, chunk_rows, store, capacity, keep, None, dir);
    run.unwrap().proof.to_bytes()
}

/// A pipeline run and the bytes it wrote into its spill dir (which is closed either way).
#[allow(clippy::too_many_arguments)]
fn run_pipeline(
    prog: &Arc<Program>,
    input: &Arc<[u8]>,
    chunk_rows: usize,
    store: Store,
    capacity: usize,
    keep: Keep,
    limit: Option<u64>,
    dir: &Path,
) -> (Result<PipelineRun, stages::Error>, u64) {
    let spill = Arc::new(
        SpillDir::create(&SpillOptions {
            dir: Some(dir.to_path_buf()),
            keep,
            verify_segments: true,
            limit,
        })
        .unwrap(),
    );
    let metrics = Metrics::start(Some(spill.bytes_counter()));
    let config = PipelineConfig {
        chunk_rows,
        max_cycles: 1 << 30,
        params: fast(),
        store,
        channel_capacity: capacity,
        progress: Progress::hidden(),
    };
    let run = prove_pipeline(
        Arc::clone(prog),
        Arc::clone(input),
        config,
        Arc::clone(&spill),
        &metrics,
    );
    match &run {
        Ok(_) => spill.finish().unwrap(),
        Err(e) => spill.fail(e).unwrap(),
    };
    (run, spill.bytes_written())
}

#[test]
fn store_auto_keeps_the_ldes_that_fit_and_recomputes_the_rest() {
    let prog = program("fib_iterative");
    let input: Arc<[u8]> = Arc::from(&300u32.to_le_bytes()[..]);
    let chunk_rows = 1 << 6;
    let reference = in_memory_bytes(&prog, &input, chunk_rows);
    let run = |store: &str, limit: Option<u64>| {
        let dir = scratch(&format!("auto-{store}-{limit:?}"));
        let store = store.parse().unwrap();
        run_pipeline(
            &prog,
            &input,
            chunk_rows,
            store,
            0,
            Keep::Never,
            limit,
            &dir,
        )
    };
    let (all, lde_bytes) = run("lde", None);
    let (none, recompute_bytes) = run("recompute", None);
    let (all, none) = (all.unwrap(), none.unwrap());
    assert_eq!((all.ldes_kept, none.ldes_kept), (all.instances, 0));
    assert!(
        recompute_bytes < lde_bytes / 2,
        "{recompute_bytes} vs {lde_bytes}"
    );

    // Room for about half the LDEs: some chunks keep them, the others recompute, same proof.
    let limit = (lde_bytes + recompute_bytes) / 2;
    let (auto, written) = run("auto", Some(limit));
    let auto = auto.unwrap();
    assert!(
        0 < auto.ldes_kept && auto.ldes_kept < auto.instances,
        "kept {} of {}",
        auto.ldes_kept,
        auto.instances
    );
    assert!(
        auto.proof.to_bytes() == reference,
        "auto: the proof differs"
    );
    assert!(written > recompute_bytes, "{written}");

    // `lde` in the same room stops after pass 1, saying why, before the long passes.
    let (err, _) = run("lde", Some(limit));
    let msg = err.err().expect("lde cannot fit").to_string();
    assert!(
        msg.contains("passes 2 and 3 need") && msg.contains("--store auto"),
        "{msg}"
    );

    // Less room than recomputing everything needs: no store policy can do it.
    let (err, _) = run("auto", Some(recompute_bytes / 2));
    assert!(err.is_err());
}

#[test]
fn pipeline_proofs_are_byte_identical_to_the_in_memory_prover() {
    let prog = program("fib_iterative");
    let input: Arc<[u8]> = Arc::from(&300u32.to_le_bytes()[..]);
    for chunk_rows in [1 << 5, 1 << 8] {
        let reference = in_memory_bytes(&prog, &input, chunk_rows);
        let stores =
            ["lde", "trace", "recompute", "trace,lde"].map(|s| s.parse::<Store>().unwrap());
        for (store, capacity) in [
            (stores[0], 0),
            (stores[1], 1),
            (stores[2], 8),
            (stores[3], 0),
        ] {
            let dir = scratch(&format!("ident-{chunk_rows}-{store}-{capacity}"));
            let bytes = pipeline_bytes(
                &prog,
                &input,
                chunk_rows,
                store,
                capacity,
                Keep::Never,
                &dir,
            );
            assert!(
                bytes == reference,
                "chunk rows {chunk_rows}, store {store}, capacity {capacity}: proof differs"
            );
            assert!(
                !dir.exists(),
                "the spill dir is removed after a successful run"
            );
        }
    }
}

#[test]
fn take_completed_then_finish_gives_the_same_instances_as_finish() {
    let prog = program("fib_iterative");
    let input: Arc<[u8]> = Arc::from(&50u32.to_le_bytes()[..]);
    let air = Rv32Air::new(Arc::clone(&prog));
    let chunk_rows = 16;
    let instances = |take: bool| {
        let mut w = Witness::new(&air, chunk_rows).unwrap();
        let mut m = Machine::new(Arc::clone(&prog), Arc::clone(&input));
        let mut chunk = TraceChunk::default();
        let mut out = Vec::new();
        loop {
            let done = m.trace_chunk(chunk_rows, &mut chunk).unwrap();
            w.push_chunk(&chunk).unwrap();
            if take {
                out.extend(w.take_completed());
            }
            if done {
                break;
            }
        }
        let (rest, statement) = w.finish().unwrap();
        out.extend(rest);
        out.sort_by_key(|it| it.table); // stable: chunk order within a table is kept
        let flat: Vec<(usize, Vec<stark::F>)> = out
            .into_iter()
            .map(|it| (it.table, it.trace.values))
            .collect();
        (flat, statement)
    };
    let (streamed, s1) = instances(true);
    let (whole, s2) = instances(false);
    assert_eq!(s1, s2);
    assert_eq!(streamed.len(), whole.len());
    assert!(streamed == whole, "instances differ");
    assert!(
        whole.len() > air.tables().len(),
        "several instances per table were cut"
    );
}

/// Runs `python3 -c script args...`; `None` when python3 or pyarrow is not installed.
fn python_pyarrow(script: &str, args: &[&str]) -> Option<String> {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import pyarrow"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        return None;
    }
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pyarrow failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

#[test]
fn spilled_trace_segments_open_in_pyarrow_with_the_trace_values() {
    let prog = program("fib_iterative");
    let input: Arc<[u8]> = Arc::from(&40u32.to_le_bytes()[..]);
    let chunk_rows = 1 << 5;
    let dir = scratch("pyarrow");
    pipeline_bytes(
        &prog,
        &input,
        chunk_rows,
        "trace".parse().unwrap(),
        2,
        Keep::Always,
        &dir,
    );

    // The instances as the witness builder makes them, canonical u64 per cell.
    let mut expected = std::collections::HashMap::new();
    stages::generate::generate(
        Arc::clone(&prog),
        Arc::clone(&input),
        chunk_rows,
        1 << 30,
        |inst: stages::generate::Instance| {
            use stark::field::PrimeField64;
            let values: Vec<u64> = inst
                .trace
                .values
                .iter()
                .map(|v| v.as_canonical_u64())
                .collect();
            expected.insert((inst.table, inst.chunk), (inst.trace.width, values));
            Ok::<(), stages::Error>(())
        },
    )
    .unwrap();

    let script = r#"
import sys, pyarrow.ipc as ipc
for path in sys.argv[1:]:
    t = ipc.open_file(path).read_all()
    md = {k.decode(): v.decode() for k, v in t.schema.metadata.items()}
    col = t.column("rows").combine_chunks()
    width = col.type.list_size
    flat = col.flatten().to_pylist()
    print(md["stark_pipe.table"], md["stark_pipe.chunk"], width, " ".join(map(str, flat)))
"#;
    let names: Vec<String> = Rv32Air::new(Arc::clone(&prog))
        .tables()
        .iter()
        .map(|t| t.name().to_string())
        .collect();
    let cases = [(vm::air::table::CPU, 1u64), (vm::air::table::ADD, 0)];
    let paths: Vec<String> = cases
        .iter()
        .map(|&(t, c)| {
            dir.join(format!("main/{}-{c:06}.trace.arrow", names[t]))
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let args: Vec<&str> = paths.iter().map(String::as_str).collect();
    let Some(out) = python_pyarrow(script, &args) else {
        eprintln!("skipped: python3 with pyarrow is not installed");
        return;
    };
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), cases.len());
    for (line, &(t, c)) in lines.iter().zip(&cases) {
        let mut f = line.split(' ');
        assert_eq!(f.next(), Some(names[t].as_str()));
        assert_eq!(f.next(), Some(c.to_string().as_str()));
        let width: usize = f.next().unwrap().parse().unwrap();
        let values: Vec<u64> = f.map(|v| v.parse().unwrap()).collect();
        let (w, v) = &expected[&(t, c)];
        assert_eq!(width, *w, "{} width", names[t]);
        assert!(values == *v, "{}#{c}: pyarrow reads other values", names[t]);
        assert!(values.iter().any(|&x| x > 1), "a trace with real values");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_memory_budget_picks_the_largest_chunk_whose_in_flight_instances_fit() {
    let prog = program("fib_iterative");
    let params = ProofParams::default();
    let per_row = stages::budget::bytes_per_row(&prog, &params);
    assert!(
        per_row > 8 * 40,
        "the CPU table alone is wider than 40 columns"
    );
    for capacity in [0, 1, 4] {
        let in_flight = stages::budget::in_flight(capacity);
        for budget in [64u64 << 20, 1 << 30] {
            let rows = stages::budget::chunk_rows_for_budget(&prog, &params, capacity, budget)
                .unwrap() as u64;
            assert!(rows.is_power_of_two());
            assert!(
                rows * per_row * in_flight <= budget,
                "{rows} rows overflow {budget}"
            );
            assert!(
                2 * rows * per_row * in_flight > budget,
                "{rows} rows is not the largest"
            );
        }
    }
    assert!(stages::budget::chunk_rows_for_budget(&prog, &params, 1, 1000).is_err());
}
