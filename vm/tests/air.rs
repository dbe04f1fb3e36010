//! The RV32 AIR end to end: executions of fixtures are proven and verified at several chunk
//! sizes, and forged witnesses or statements are rejected.

mod common;

use std::sync::Arc;

use common::{fixture, params, verifier_params, witness};
use stark::{InstanceTrace, Proof, PublicInputs};
use vm::Program;
use vm::air::{Rv32Air, Statement};

fn prove(program: &Arc<Program>, traces: Vec<InstanceTrace>, public: &PublicInputs) -> Proof {
    let air = Rv32Air::new(Arc::clone(program));
    stark::prove(&air.tables(), traces, public, &params()).unwrap()
}

fn verify(program: &Arc<Program>, proof: &Proof, public: &PublicInputs) -> Result<(), String> {
    let air = Rv32Air::new(Arc::clone(program));
    stark::verify(&air.tables(), proof, public, &verifier_params())
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
        ("rv32m_selftest", vec![], 0, b"rv32m ok\n"),
        ("sort", 40u32.to_le_bytes().to_vec(), 0, b"40 1627278255\n"),
        (
            "sha256",
            b"abc".to_vec(),
            0,
            b"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n",
        ),
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

/// Proves fib_iterative(10) after `mutate` has changed the witness (and possibly the statement):
/// the verifier must refuse. (The prover does not check the witness: it proves whatever it is
/// given, and judging is the verifier's job.)
fn assert_forgery_rejected(
    what: &str,
    mutate: impl FnOnce(&mut Vec<InstanceTrace>, &mut Statement),
) {
    let program = fixture("fib_iterative");
    let (mut traces, mut statement) = witness(&program, &10u32.to_le_bytes(), 64);
    mutate(&mut traces, &mut statement);
    let public = statement.public_inputs();
    let air = Rv32Air::new(Arc::clone(&program));
    let proof = stark::prove(&air.tables(), traces, &public, &params()).expect("the prover runs");
    assert!(
        verify(&program, &proof, &public).is_err(),
        "forgery accepted: {what}"
    );
}

use stark::field::{F, PrimeCharacteristicRing};
use vm::air::{add, branch, cpu, image, io, jump, memory, table, word};

/// The first row of `table`'s instances where `pred` holds: (instance, row).
fn find_row(traces: &[InstanceTrace], t: usize, pred: impl Fn(&[F]) -> bool) -> (usize, usize) {
    for (i, it) in traces.iter().enumerate().filter(|(_, it)| it.table == t) {
        let w = it.trace.width;
        if let Some(r) = it.trace.values.chunks(w).position(&pred) {
            return (i, r);
        }
    }
    panic!("no such row in table {t}");
}

fn cell(traces: &mut [InstanceTrace], at: (usize, usize), col: usize) -> &mut F {
    let w = traces[at.0].trace.width;
    &mut traces[at.0].trace.values[at.1 * w + col]
}

#[test]
fn wrong_alu_result_is_rejected() {
    // ADD chip result one too big, CPU agreeing: the addition constraint fails.
    assert_forgery_rejected("add result", |t, _| {
        let at = find_row(t, table::ADD, |r| r[add::F_ADD] == F::ONE);
        *cell(t, at, add::C_LO) += F::ONE;
    });
}

#[test]
fn wrong_register_or_memory_value_is_rejected() {
    assert_forgery_rejected("register read", |t, _| {
        let at = find_row(t, table::CPU, |r| {
            r[cpu::IS_REAL] == F::ONE && r[cpu::RS1_VAL] != F::ZERO
        });
        *cell(t, at, cpu::RS1_VAL) += F::ONE;
    });
    assert_forgery_rejected("memory load", |t, _| {
        let at = find_row(t, table::WORD, |r| r[word::F_LW] == F::ONE);
        *cell(t, at, word::BEFORE) += F::ONE;
    });
    assert_forgery_rejected("final memory value", |t, _| {
        let at = find_row(t, table::IMAGE, |r| r[image::USED] == F::ONE);
        *cell(t, at, image::FINAL_VAL) += F::ONE;
    });
}

#[test]
fn skipped_or_repeated_instruction_is_rejected() {
    assert_forgery_rejected("skipped instruction", |t, _| {
        let at = find_row(t, table::CPU, |r| r[cpu::IS_REAL] == F::ONE);
        let w = t[at.0].trace.width;
        t[at.0].trace.values[at.1 * w..(at.1 + 1) * w].fill(F::ZERO);
    });
    assert_forgery_rejected("repeated instruction", |t, _| {
        let (inst, _) = find_row(t, table::CPU, |r| r[cpu::IS_REAL] == F::ZERO);
        let (_, pad) = find_row(&t[inst..inst + 1], table::CPU, |r| {
            r[cpu::IS_REAL] == F::ZERO
        });
        let w = t[inst].trace.width;
        let copy = t[inst].trace.values[0..w].to_vec();
        t[inst].trace.values[pad * w..(pad + 1) * w].copy_from_slice(&copy);
    });
}

#[test]
fn forged_jump_target_is_rejected() {
    // A jump that lands 4 bytes further, consistently in the chip and the CPU.
    assert_forgery_rejected("jump target", |t, _| {
        let at = find_row(t, table::JUMP, |r| r[jump::F_JAL] == F::ONE);
        let (pc, old) = (
            t[at.0].trace.values[at.1 * jump::WIDTH + jump::PC],
            *cell(t, at, jump::NEXT_PC),
        );
        *cell(t, at, jump::NEXT_PC) = old + F::from_u64(4);
        let cpu_at = find_row(t, table::CPU, |r| {
            r[cpu::PC] == pc && r[cpu::IS_REAL] == F::ONE
        });
        *cell(t, cpu_at, cpu::NEXT_PC) = old + F::from_u64(4);
    });
}

#[test]
fn forged_output_and_exit_code_are_rejected() {
    assert_forgery_rejected("output byte in the witness", |t, _| {
        let at = find_row(t, table::IO, |r| {
            r[io::IS_OUT] == F::ONE && r[io::OUT0] == F::ONE
        });
        *cell(t, at, io::M0) += F::ONE;
    });
    assert_forgery_rejected("output byte in the statement", |_, s| s.output[0] ^= 1);
    assert_forgery_rejected("exit code", |_, s| s.exit_code = 1);
}

#[test]
fn unbalanced_multiplicity_is_rejected() {
    assert_forgery_rejected("program multiplicity", |t, _| {
        let at = find_row(t, table::PROGRAM, |r| r[0] != F::ZERO);
        *cell(t, at, 0) += F::ONE;
    });
    assert_forgery_rejected("range multiplicity", |t, _| {
        let at = find_row(t, table::RANGE16, |_| true);
        *cell(t, at, 0) += F::ONE;
    });
}

#[test]
fn value_outside_its_range_is_rejected() {
    // Same sum, but the low limb is 2^16 too big: only the range lookup can tell.
    assert_forgery_rejected("limb out of range", |t, _| {
        let at = find_row(t, table::ADD, |r| {
            r[add::F_ADDI] == F::ONE && r[add::C_HI] != F::ZERO
        });
        *cell(t, at, add::C_LO) += F::from_u64(1 << 16);
        *cell(t, at, add::C_HI) -= F::ONE;
    });
}

#[test]
fn a_proof_of_one_program_does_not_verify_against_another() {
    let fib = fixture("fib_iterative");
    let (traces, statement) = witness(&fib, &10u32.to_le_bytes(), 64);
    let public = statement.public_inputs();
    let proof = prove(&fib, traces, &public);
    let other = fixture("rv32i_selftest");
    assert!(verify(&other, &proof, &public).is_err());
}

/// Every column of every chip matters: bumping any one cell of a real row (rv32i_selftest runs
/// every chip) breaks a constraint or a bus. The few cells that are free by design are listed
/// with why. This sweep uses the exact witness checks of `stark::debug` (hundreds of full proofs
/// would be slow); the tests above take forgeries through the real verifier.
#[test]
fn every_chip_cell_is_constrained() {
    for (name, chips) in [
        (
            "rv32i_selftest",
            &[
                table::CPU,
                table::ADD,
                table::JUMP,
                table::BRANCH,
                table::LT,
                table::BITWISE,
                table::SHIFT,
                table::MEMORY,
                table::WORD,
                table::ECALL,
                table::IO,
            ][..],
        ),
        ("rv32m_selftest", &[table::MUL, table::DIV][..]),
    ] {
        sweep(name, chips);
    }
}

fn sweep(name: &str, chips: &[usize]) {
    let program = fixture(name);
    let (honest, statement) = witness(&program, &[], 1 << 12);
    let public = statement.public_inputs();
    let air = Rv32Air::new(Arc::clone(&program));
    let tables = air.tables();
    // (table, column, predicate on the row): cells that may change without changing the run.
    let free = |t: usize, col: usize, row: &[F]| match t {
        // JALR's low bit only matters for JALR.
        table::JUMP => col == jump::LOWBIT && row[jump::F_JALR] == F::ZERO,
        // The inverse of a - b is only needed when they differ.
        table::BRANCH => col == branch::INV && row[branch::EQ] == F::ONE,
        // The rs2 bytes are read by stores only.
        table::MEMORY => {
            (memory::R0..memory::R0 + 4).contains(&col)
                && row[memory::F_SB] == F::ZERO
                && row[memory::F_SH] == F::ZERO
        }
        _ => false,
    };
    let mut checked = 0;
    for &t in chips {
        let (inst, row) = find_row(&honest, t, |r| r.iter().any(|v| *v != F::ZERO));
        let width = honest[inst].trace.width;
        for col in 0..width {
            let original = honest[inst].trace.values[row * width..(row + 1) * width].to_vec();
            if free(t, col, &original) {
                continue;
            }
            let mut traces = honest.clone();
            traces[inst].trace.values[row * width + col] += F::ONE;
            let broken = stark::debug::check_constraints(tables[t], &traces[inst].trace).is_err()
                || stark::debug::check_buses(&tables, &traces, &public).is_err();
            assert!(
                broken,
                "{} column {col} of row {row} is unconstrained",
                tables[t].name()
            );
            checked += 1;
        }
    }
    assert!(
        checked > 20 * chips.len(),
        "{name}: {checked} cells checked"
    );
}
