//! The RV32 AIR end to end: executions of fixtures are proven and verified at several chunk
//! sizes, and forged witnesses or statements are rejected.

use std::path::PathBuf;
use std::sync::Arc;

use stark::{InstanceTrace, Proof, ProofParams, PublicInputs, VerifierParams};
use vm::air::{Rv32Air, Statement, Witness};
use vm::{Machine, Program, TraceChunk};

fn fixture(name: &str) -> Arc<Program> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/elf")
        .join(format!("{name}.elf"));
    Arc::new(Program::from_file(&path).unwrap())
}

/// Fast parameters for tests (the verifier's minimum security is lowered to match).
fn params() -> (ProofParams, VerifierParams) {
    let p = ProofParams {
        log_blowup: 1,
        num_queries: 20,
        pow_bits: 4,
    };
    let vp = VerifierParams {
        min_security_bits: 0,
        ..VerifierParams::default()
    };
    (p, vp)
}

fn witness(
    program: &Arc<Program>,
    input: &[u8],
    chunk_rows: usize,
) -> (Vec<InstanceTrace>, Statement) {
    let air = Rv32Air::new(Arc::clone(program));
    let mut w = Witness::new(&air, chunk_rows).unwrap();
    let mut m = Machine::new(Arc::clone(program), Arc::from(input));
    let mut chunk = TraceChunk::default();
    loop {
        let done = m.trace_chunk(chunk_rows, &mut chunk).unwrap();
        w.push_chunk(&chunk).unwrap();
        if done {
            break;
        }
    }
    w.finish().unwrap()
}

fn prove(program: &Arc<Program>, traces: Vec<InstanceTrace>, public: &PublicInputs) -> Proof {
    let air = Rv32Air::new(Arc::clone(program));
    stark::prove(&air.tables(), traces, public, &params().0).unwrap()
}

fn verify(program: &Arc<Program>, proof: &Proof, public: &PublicInputs) -> Result<(), String> {
    let air = Rv32Air::new(Arc::clone(program));
    stark::verify(&air.tables(), proof, public, &params().1)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Checks the witness row by row and bus by bus, naming what fails (clearer than a verifier error).
fn check_witness(program: &Arc<Program>, traces: &[InstanceTrace], public: &PublicInputs) {
    let air = Rv32Air::new(Arc::clone(program));
    let tables = air.tables();
    for t in traces {
        stark::debug::check_constraints(tables[t.table], &t.trace)
            .unwrap_or_else(|e| panic!("table {}: {e}", tables[t.table].name()));
    }
    stark::debug::check_buses(&tables, traces, public).unwrap();
}

#[test]
fn fixtures_prove_and_verify_at_two_chunk_sizes() {
    let cases: &[(&str, Vec<u8>, u32, &[u8])] = &[
        ("fib_iterative", 10u32.to_le_bytes().to_vec(), 0, b"55\n"),
        ("rv32i_selftest", vec![], 0, b"rv32i ok\n"),
    ];
    for (name, input, code, output) in cases {
        let program = fixture(name);
        for chunk_rows in [32, 1 << 12] {
            let (traces, statement) = witness(&program, input, chunk_rows);
            assert_eq!(
                (statement.exit_code, &statement.output[..]),
                (*code, *output),
                "{name}"
            );
            let public = statement.public_inputs();
            check_witness(&program, &traces, &public);
            let proof = prove(&program, traces, &public);
            verify(&program, &proof, &public)
                .unwrap_or_else(|e| panic!("{name} at {chunk_rows} rows: {e}"));
        }
    }
}

#[test]
fn sub_proves_and_verifies_at_several_chunk_sizes() {
    let program = fixture("sub");
    for chunk_rows in [2, 4, 1024] {
        let (traces, statement) = witness(&program, &[], chunk_rows);
        assert_eq!((statement.exit_code, statement.cycles), (2, 11));
        let public = statement.public_inputs();
        let proof = prove(&program, traces, &public);
        verify(&program, &proof, &public)
            .unwrap_or_else(|e| panic!("chunk_rows {chunk_rows}: {e}"));
    }
}

#[test]
fn forged_statements_are_rejected() {
    let program = fixture("sub");
    let (traces, statement) = witness(&program, &[], 4);
    let proof = prove(&program, traces, &statement.public_inputs());
    let mut wrong_exit = statement.clone();
    wrong_exit.exit_code = 3;
    assert!(verify(&program, &proof, &wrong_exit.public_inputs()).is_err());
    let mut wrong_cycles = statement.clone();
    wrong_cycles.cycles = 10;
    assert!(verify(&program, &proof, &wrong_cycles.public_inputs()).is_err());
    let mut wrong_output = statement.clone();
    wrong_output.output = b"x".to_vec();
    assert!(verify(&program, &proof, &wrong_output.public_inputs()).is_err());
}
