//! The out-of-core prover against the in-memory reference: same proof bytes for both store
//! policies and any channel capacity, and the witness builder's early hand-out of instances.

use std::path::PathBuf;
use std::sync::Arc;

use pipeline::{Keep, Metrics, Progress, SpillDir, SpillOptions};
use stages::{PipelineConfig, Store, prove_in_memory, prove_pipeline};
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
        ..ProofParams::default()
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("stages-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn pipeline_bytes(
    prog: &Arc<Program>,
    input: &Arc<[u8]>,
    chunk_rows: usize,
    store: Store,
    capacity: usize,
    keep: Keep,
    dir: &PathBuf,
) -> Vec<u8> {
    let spill = Arc::new(
        SpillDir::create(&SpillOptions {
            dir: Some(dir.clone()),
            keep,
            verify_segments: true,
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
    )
    .unwrap();
    spill.finish().unwrap();
    run.proof.to_bytes()
}

#[test]
fn pipeline_proofs_are_byte_identical_to_the_in_memory_prover() {
    let prog = program("fib_iterative");
    let input: Arc<[u8]> = Arc::from(&300u32.to_le_bytes()[..]);
    for chunk_rows in [1 << 5, 1 << 8] {
        let reference = prove_in_memory(
            Arc::clone(&prog),
            Arc::clone(&input),
            chunk_rows,
            1 << 30,
            &fast(),
        )
        .unwrap()
        .proof
        .to_bytes();
        for (store, capacity) in [(Store::Trace, 1), (Store::Recompute, 8), (Store::Trace, 0)] {
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
