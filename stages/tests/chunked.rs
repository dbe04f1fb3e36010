//! One instance per table on the RV32IM machine's real tables, every table and bus of a run:
//! the chunk-by-chunk reference prover (`stark::chunked::prove`) and the single-instance prover
//! on segments (`stages::instance`) give the in-memory prover's proof bytes at several chunk
//! sizes, and the proof verifies.

use std::sync::Arc;

use stark::ProofParams;
use vm::air::{Rv32Air, Statement, Witness};
use vm::{Machine, Program, TraceChunk};

fn fixture(name: &str) -> Arc<Program> {
    let path = format!("{}/../fixtures/elf/{name}.elf", env!("CARGO_MANIFEST_DIR"));
    Arc::new(Program::from_elf(&std::fs::read(&path).unwrap()).unwrap())
}

/// The instances of at most `rows` rows that `Witness::new` builds for a run of `program`.
fn instances(program: &Arc<Program>, rows: usize) -> (Vec<stark::InstanceTrace>, Statement) {
    let air = Rv32Air::new(Arc::clone(program));
    let mut witness = Witness::new(&air, rows).unwrap();
    let mut machine = Machine::new(Arc::clone(program), Arc::from(Vec::new()));
    let mut chunk = TraceChunk::default();
    while !machine.trace_chunk(rows, &mut chunk).unwrap() {
        witness.push_chunk(&chunk).unwrap();
    }
    witness.push_chunk(&chunk).unwrap();
    witness.finish().unwrap()
}

mod common;
use common::spill_dir;

#[test]
fn real_tables_give_the_in_memory_proof_chunk_by_chunk() {
    let params = ProofParams {
        num_queries: 24,
        pow_bits: 4,
        // At most the smallest block rows (2^4): every chunk size keeps its trees from there up.
        log_join_rows: 4,
        ..ProofParams::default()
    };
    for name in ["rv32m_selftest", "rv32i_selftest"] {
        let program = fixture(name);
        let air = Rv32Air::new(Arc::clone(&program));
        // Instances of up to 2^16 rows: one per table for these runs.
        let (traces, statement) = instances(&program, 1 << 16);
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
    for (block_rows, instance_rows) in [(1 << 8, 1 << 16), (1 << 7, 1 << 9)] {
        let program = fixture("rv32i_selftest");
        let spill = spill_dir(&format!("instance-main-{block_rows}"));
        let config = stages::instance::InstanceConfig {
            block_rows,
            instance_rows,
            max_cycles: 1 << 30,
            params: ProofParams::default(),
            progress: pipeline::Progress::hidden(),
        };
        let (committed, statement) = stages::instance::main::commit_main(
            Arc::clone(&program),
            Arc::from(Vec::new()),
            &config,
            1,
            &spill,
        )
        .unwrap();

        let (traces, expected) = instances(&program, instance_rows);
        assert_eq!(statement, expected);
        assert_eq!(committed.len(), traces.len());
        assert!(
            committed.iter().any(|c| c.lde.geo.chunks() > 1),
            "some instance spans blocks"
        );
        for (c, it) in committed.iter().zip(&traces) {
            assert_eq!(c.table, it.table);
            let rows = it.trace.values.len() / it.trace.width;
            assert_eq!(1usize << c.lde.geo.log_height, rows);
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

/// The single-instance prover on segments gives the in-memory prover's bytes for the same
/// instances: with one instance per table (blocks of 2^8 rows), and with tables split into
/// instances of 2^9 rows in blocks of 2^4 (more chunks than rows a chunk); the proof verifies.
#[test]
fn the_single_instance_prover_on_segments_gives_the_in_memory_proof() {
    let params = ProofParams {
        num_queries: 24,
        pow_bits: 4,
        // At most the smallest block rows (2^4): every chunk size keeps its trees from there up.
        log_join_rows: 4,
        ..ProofParams::default()
    };
    let verifier = stark::VerifierParams {
        min_security_bits: 0,
        ..stark::VerifierParams::default()
    };
    let program = fixture("rv32m_selftest");
    let air = Rv32Air::new(Arc::clone(&program));
    for (block_rows, instance_rows) in [(1 << 8, 1 << 16), (1 << 4, 1 << 9)] {
        let (traces, statement) = instances(&program, instance_rows);
        let reference =
            stark::prove(&air.tables(), traces, &statement.public_inputs(), &params).unwrap();
        let spill = spill_dir(&format!("instance-prove-{block_rows}"));
        let config = stages::instance::InstanceConfig {
            block_rows,
            instance_rows,
            max_cycles: 1 << 30,
            params,
            progress: pipeline::Progress::hidden(),
        };
        let metrics = pipeline::Metrics::start(None);
        let input = Arc::from(Vec::new());
        let run = stages::instance::prove(Arc::clone(&program), input, &config, &spill, &metrics)
            .unwrap();
        assert_eq!(run.statement, statement);
        let at = format!("blocks of {block_rows}, instances of at most {instance_rows} rows");
        let p = &run.proof;
        assert_eq!(p.main_root, reference.main_root, "{at}: pass 1");
        assert_eq!(p.aux_root, reference.aux_root, "{at}: pass 2");
        assert_eq!(p.claimed_sums, reference.claimed_sums, "{at}: pass 2");
        assert_eq!(p.quotient_root, reference.quotient_root, "{at}: pass 3");
        assert_eq!(p.ood, reference.ood, "{at}: pass 4");
        assert_eq!(p.fri_roots, reference.fri_roots, "{at}: passes 5-6");
        assert_eq!(p.to_bytes(), reference.to_bytes(), "{at}: openings");
        vm::air::verify_execution(Arc::clone(&program), &statement, p, &verifier).unwrap();
        spill.finish().unwrap();
    }
}
