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
