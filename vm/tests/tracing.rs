//! Tracing mode and chunk checkpoints on the committed fixtures: chunked traces agree with plain
//! runs and with each other whatever the chunk size, and every chunk re-executed from its
//! (serialized) checkpoint reproduces exactly the same steps, I/O and exit.

use std::path::PathBuf;
use std::sync::Arc;

use vm::{Checkpoint, Machine, Program, Step, TraceChunk, VmError};

fn fixture(name: &str) -> Arc<Program> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/elf")
        .join(format!("{name}.elf"));
    Arc::new(Program::from_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

fn cases() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("fib_iterative", 300u32.to_le_bytes().to_vec()),
        ("sort", 200u32.to_le_bytes().to_vec()),
        (
            "sha256",
            b"The quick brown fox jumps over the lazy dog, twice over and then some".to_vec(),
        ),
        ("rv32i_selftest", Vec::new()),
        ("rv32m_selftest", Vec::new()),
        ("sub", Vec::new()),
    ]
}

/// Traces a whole run in chunks of `rows`, returning every chunk.
fn trace_all(program: &Arc<Program>, input: &[u8], rows: usize) -> Vec<TraceChunk> {
    let mut m = Machine::new(Arc::clone(program), Arc::from(input));
    let mut chunks = Vec::new();
    loop {
        let mut chunk = TraceChunk::default();
        let done = m.trace_chunk(rows, &mut chunk).unwrap();
        assert!(chunk.steps.len() <= rows);
        chunks.push(chunk);
        if done {
            return chunks;
        }
    }
}

#[test]
fn chunked_traces_match_plain_runs() {
    for (name, input) in cases() {
        let program = fixture(name);
        let mut plain = Machine::new(Arc::clone(&program), Arc::from(&input[..]));
        let exit = plain.run().unwrap();
        let reference: Vec<Step> = trace_all(&program, &input, 1 << 24)
            .into_iter()
            .flat_map(|c| c.steps)
            .collect();
        assert_eq!(reference.len() as u64, exit.cycles, "{name}");
        for rows in [1, 7, 64, 1000] {
            let chunks = trace_all(&program, &input, rows);
            let steps: Vec<Step> = chunks.iter().flat_map(|c| c.steps.clone()).collect();
            assert_eq!(steps, reference, "{name} with {rows}-row chunks");
            assert_eq!(chunks.last().unwrap().exit, Some(exit), "{name}");
            // Steps chain: each next_pc is the following step's pc.
            for w in steps.windows(2) {
                assert_eq!(w[0].next_pc, w[1].pc, "{name}");
            }
            let written: Vec<u8> = chunks
                .iter()
                .flat_map(|c| &c.io)
                .filter(|e| e.fd == 1)
                .flat_map(|e| e.data.clone())
                .collect();
            assert_eq!(written, plain.stdout, "{name}");
        }
    }
}

#[test]
fn every_chunk_re_executes_from_its_checkpoint() {
    for (name, input) in cases() {
        let program = fixture(name);
        for rows in [5, 97, 4096] {
            for original in trace_all(&program, &input, rows) {
                let bytes = original.checkpoint.to_bytes();
                let checkpoint = Checkpoint::from_bytes(&bytes).unwrap();
                assert_eq!(checkpoint, original.checkpoint);
                let mut m =
                    Machine::resume(Arc::clone(&program), &checkpoint, Arc::from(&input[..]));
                let mut again = TraceChunk::default();
                let done = m.trace_chunk(rows, &mut again).unwrap();
                let ctx = format!("{name}, {rows}-row chunk {}", original.index);
                assert_eq!(done, original.exit.is_some(), "{ctx}");
                assert_eq!(again.index, original.index, "{ctx}");
                assert_eq!(again.start_cycle, original.start_cycle, "{ctx}");
                assert_eq!(again.steps, original.steps, "{ctx}");
                assert_eq!(again.io, original.io, "{ctx}");
                assert_eq!(again.exit, original.exit, "{ctx}");
                assert_eq!(again.checkpoint, original.checkpoint, "{ctx}");
            }
        }
    }
}

#[test]
fn checkpoints_hold_only_touched_pages() {
    // fib's loop touches no memory: its middle chunks need no pages at all.
    let program = fixture("fib_iterative");
    let chunks = trace_all(&program, &100_000u32.to_le_bytes(), 1 << 12);
    assert!(chunks.len() > 50);
    for c in &chunks[1..chunks.len() - 1] {
        assert!(
            c.checkpoint.pages.is_empty(),
            "chunk {} holds {} pages",
            c.index,
            c.checkpoint.pages.len()
        );
    }
    assert!(!chunks[0].checkpoint.pages.is_empty());
}

#[test]
fn a_checkpoint_missing_a_page_is_detected() {
    let program = fixture("sort");
    let input = 200u32.to_le_bytes();
    let chunks = trace_all(&program, &input, 500);
    let victim = chunks
        .iter()
        .find(|c| !c.checkpoint.pages.is_empty() && c.index > 0)
        .unwrap();
    let mut checkpoint = victim.checkpoint.clone();
    checkpoint.pages.pop();
    let mut m = Machine::resume(Arc::clone(&program), &checkpoint, Arc::from(&input[..]));
    let err = m.trace_chunk(500, &mut TraceChunk::default()).unwrap_err();
    assert!(matches!(err, VmError::CheckpointDiverged { .. }), "{err}");
}

#[test]
fn malformed_checkpoints_are_rejected() {
    let program = fixture("sort");
    let chunks = trace_all(&program, &200u32.to_le_bytes(), 500);
    let bytes = chunks[1].checkpoint.to_bytes();
    for len in [0, 7, 100, bytes.len() - 1] {
        assert!(
            Checkpoint::from_bytes(&bytes[..len]).is_err(),
            "truncated to {len}"
        );
    }
    let mut bad = bytes.clone();
    bad[0] ^= 1;
    assert!(Checkpoint::from_bytes(&bad).is_err());
    let mut extra = bytes;
    extra.push(0);
    assert!(Checkpoint::from_bytes(&extra).is_err());
}
