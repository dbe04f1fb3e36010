//! The chunk-by-chunk reference prover (`stark::chunked::prove`) on the RV32IM machine's real
//! tables: one instance per table, every table and bus of a run, the same proof bytes as the
//! in-memory prover at several chunk sizes, and the proof verifies.

use std::sync::Arc;

use stark::ProofParams;
use vm::air::{Rv32Air, Witness};
use vm::{Machine, Program, TraceChunk};

fn fixture(name: &str) -> Arc<Program> {
    let path = format!("{}/../fixtures/elf/{name}.elf", env!("CARGO_MANIFEST_DIR"));
    Arc::new(Program::from_elf(&std::fs::read(&path).unwrap()).unwrap())
}

#[test]
fn real_tables_give_the_in_memory_proof_chunk_by_chunk() {
    let params = ProofParams {
        num_queries: 24,
        pow_bits: 4,
        ..ProofParams::default()
    };
    for name in ["rv32m_selftest", "rv32i_selftest"] {
        let program = fixture(name);
        let air = Rv32Air::new(Arc::clone(&program));
        // Instances of up to 2^16 rows: one per table for these runs.
        let rows = 1 << 16;
        let mut witness = Witness::new(&air, rows).unwrap();
        let mut machine = Machine::new(Arc::clone(&program), Arc::from(Vec::new()));
        let mut chunk = TraceChunk::default();
        while !machine.trace_chunk(rows, &mut chunk).unwrap() {
            witness.push_chunk(&chunk).unwrap();
        }
        witness.push_chunk(&chunk).unwrap();
        let (traces, statement) = witness.finish().unwrap();
        let mut tables_seen: Vec<usize> = traces.iter().map(|t| t.table).collect();
        tables_seen.dedup();
        assert_eq!(
            tables_seen.len(),
            traces.len(),
            "{name}: one instance per table"
        );
        let public = statement.public_inputs();
        let airs = air.tables();
        let reference = stark::prove(&airs, traces.clone(), &public, &params).unwrap();
        for log_chunk in [4, 9] {
            let chunked =
                stark::chunked::prove(&airs, traces.clone(), &public, &params, log_chunk).unwrap();
            assert_eq!(
                chunked.to_bytes(),
                reference.to_bytes(),
                "{name} at 2^{log_chunk}-row chunks"
            );
        }
        let verifier = stark::VerifierParams {
            min_security_bits: 0,
            ..stark::VerifierParams::default()
        };
        vm::air::verify_execution(Arc::clone(&program), &statement, &reference, &verifier).unwrap();
    }
}

/// Pass 1 of the single-instance driver on real tables: instances streamed as trace blocks and
/// committed out of core have the main roots of the in-memory commitment of the instances
/// `Witness::new` builds, with one instance per table and with several.
#[test]
fn instances_streamed_in_blocks_commit_to_the_in_memory_roots() {
    use pipeline::{Keep, SpillDir, SpillOptions};
    for (block_rows, instance_rows) in [(1 << 8, 1 << 16), (1 << 7, 1 << 9)] {
        let program = fixture("rv32i_selftest");
        let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("instance-main-{block_rows}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let spill = SpillDir::create(&SpillOptions {
            dir: Some(dir),
            keep: Keep::Never,
            verify_segments: true,
            limit: None,
        })
        .unwrap();
        let (committed, statement) = stages::instance_main::commit_main(
            Arc::clone(&program),
            Arc::from(Vec::new()),
            block_rows,
            instance_rows,
            1 << 30,
            1,
            &spill,
        )
        .unwrap();

        let air = Rv32Air::new(Arc::clone(&program));
        let mut witness = Witness::new(&air, instance_rows).unwrap();
        let mut machine = Machine::new(Arc::clone(&program), Arc::from(Vec::new()));
        let mut chunk = TraceChunk::default();
        while !machine.trace_chunk(instance_rows, &mut chunk).unwrap() {
            witness.push_chunk(&chunk).unwrap();
        }
        witness.push_chunk(&chunk).unwrap();
        let (traces, expected) = witness.finish().unwrap();
        assert_eq!(statement, expected);
        assert_eq!(committed.len(), traces.len());
        assert!(
            committed.iter().any(|c| c.trace.len() > 1),
            "some instance spans blocks"
        );
        for (c, it) in committed.iter().zip(&traces) {
            assert_eq!(c.table, it.table);
            let rows = it.trace.values.len() / it.trace.width;
            assert_eq!(1usize << c.log_height, rows);
            let root = stark::prover::commit_trace(it.trace.clone(), 1).root();
            assert_eq!(
                c.lde.root(),
                root,
                "table {} instance {}",
                c.table,
                c.instance
            );
        }
        spill.finish().unwrap();
    }
}
