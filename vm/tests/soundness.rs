//! Regression tests for forgeries a soundness review found (each was accepted before its fix).

use std::path::PathBuf;
use std::sync::Arc;

use stark::field::{F, PrimeCharacteristicRing};
use stark::{InstanceTrace, ProofParams, RowMajorMatrix, VerifierParams};
use vm::air::{Rv32Air, Statement, Witness, ecall, io, lt, table, verify_execution};
use vm::{Machine, Opcode, Program, TraceChunk};

fn fixture(name: &str) -> Arc<Program> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/elf")
        .join(format!("{name}.elf"));
    Arc::new(Program::from_file(&path).unwrap())
}

fn witness(program: &Arc<Program>, input: &[u8]) -> (Vec<InstanceTrace>, Statement) {
    let air = Rv32Air::new(Arc::clone(program));
    let mut w = Witness::new(&air, 1 << 10).unwrap();
    let mut m = Machine::new(Arc::clone(program), Arc::from(input));
    let mut chunk = TraceChunk::default();
    while !m.trace_chunk(1 << 10, &mut chunk).unwrap() {
        w.push_chunk(&chunk).unwrap();
    }
    w.push_chunk(&chunk).unwrap();
    w.finish().unwrap()
}

/// Proves the (possibly forged) witness and statement and runs the full verifier.
fn verifies(program: &Arc<Program>, traces: Vec<InstanceTrace>, statement: &Statement) -> bool {
    let air = Rv32Air::new(Arc::clone(program));
    let params = ProofParams {
        log_blowup: 1,
        num_queries: 20,
        pow_bits: 4,
    };
    let proof = stark::prove(&air.tables(), traces, &statement.public_inputs(), &params).unwrap();
    let vp = VerifierParams {
        min_security_bits: 0,
        ..VerifierParams::default()
    };
    verify_execution(Arc::clone(program), statement, &proof, &vp).is_ok()
}

#[test]
fn fixed_tables_must_have_their_one_instance() {
    let program = fixture("fib_iterative");
    let (traces, statement) = witness(&program, &10u32.to_le_bytes());
    assert!(
        verifies(&program, traces.clone(), &statement),
        "the honest proof verifies"
    );

    // A second (empty) image instance: it would let an address have two initial tokens.
    let mut extra = traces.clone();
    let at = extra.iter().position(|t| t.table == table::IMAGE).unwrap();
    let width = extra[at].trace.width;
    extra.insert(
        at + 1,
        InstanceTrace {
            table: table::IMAGE,
            trace: RowMajorMatrix::new(vec![F::ZERO; 2 * width], width),
        },
    );
    assert!(!verifies(&program, extra, &statement));

    // A range table twice as tall: "16-bit" limbs up to 2^17 would pass.
    let mut taller = traces;
    let at = taller
        .iter()
        .position(|t| t.table == table::RANGE16)
        .unwrap();
    taller[at].trace.values.resize(1 << 17, F::ZERO);
    assert!(!verifies(&program, taller, &statement));
}

#[test]
fn output_writes_cannot_be_reordered() {
    // sort writes "40", " ", "1627278255", "\n": swap the positions of the one-byte writes " " and
    // "\n", consistently in the ECALL and IO rows and in the statement.
    let program = fixture("sort");
    let (mut traces, mut statement) = witness(&program, &40u32.to_le_bytes());
    assert_eq!(statement.output, b"40 1627278255\n");
    let rows = |traces: &[InstanceTrace], t: usize| -> Vec<(usize, usize)> {
        traces
            .iter()
            .enumerate()
            .filter(|(_, it)| it.table == t)
            .flat_map(|(i, it)| (0..it.trace.values.len() / it.trace.width).map(move |r| (i, r)))
            .collect()
    };
    let get = |traces: &[InstanceTrace], (i, r): (usize, usize), col: usize| {
        traces[i].trace.values[r * traces[i].trace.width + col]
    };
    let writes: Vec<(usize, usize)> = rows(&traces, table::ECALL)
        .into_iter()
        .filter(|&at| get(&traces, at, ecall::W_OUT) == F::ONE)
        .collect();
    assert_eq!(writes.len(), 4);
    let (space, newline) = (writes[1], writes[3]);
    let (p_space, p_newline) = (
        get(&traces, space, ecall::POS0),
        get(&traces, newline, ecall::POS0),
    );
    let clk_of = |traces: &[InstanceTrace], at| get(traces, at, ecall::CLK);
    let (c_space, c_newline) = (clk_of(&traces, space), clk_of(&traces, newline));
    let set = |traces: &mut Vec<InstanceTrace>, (i, r): (usize, usize), col: usize, v: F| {
        let w = traces[i].trace.width;
        traces[i].trace.values[r * w + col] = v;
    };
    for (at, pos) in [(space, p_newline), (newline, p_space)] {
        set(&mut traces, at, ecall::POS0, pos);
        set(&mut traces, at, ecall::POS_END, pos + F::ONE);
    }
    for at in rows(&traces, table::IO) {
        let clk = get(&traces, at, io::CLK);
        if clk == c_space {
            set(&mut traces, at, io::POS, p_newline);
        } else if clk == c_newline {
            set(&mut traces, at, io::POS, p_space);
        }
    }
    statement.output = b"40\n1627278255 ".to_vec();
    assert!(!verifies(&program, traces, &statement));
}

/// Whether a lone LT row balances every bus, with the range table counting `range_values` and
/// the CPU's side of the ALU bus supplied as a public term carrying the row's claimed result.
fn lt_row_balances(row: &[F], rd_val: u64, range_values: &[u64]) -> bool {
    let air = Rv32Air::new(fixture("sub"));
    let tables = air.tables();
    let mut values = row.to_vec();
    values.extend(vec![F::ZERO; lt::WIDTH]);
    let mut mult = vec![F::ZERO; 1 << 16];
    for &v in range_values {
        mult[v as usize] += F::ONE;
    }
    let traces = vec![
        InstanceTrace {
            table: table::RANGE16,
            trace: RowMajorMatrix::new(mult, 1),
        },
        InstanceTrace {
            table: table::LT,
            trace: RowMajorMatrix::new(values, lt::WIDTH),
        },
    ];
    let tuple = [
        Opcode::Slt as u64,
        0x1000,
        3,
        0x8000_0000,
        5,
        0,
        rd_val,
        0x1004,
    ]
    .map(F::from_u64)
    .to_vec();
    let public = stark::PublicInputs {
        statement: [0; 32],
        boundary: vec![stark::BusTerm {
            bus: vm::air::bus::ALU,
            tuple,
            multiplicity: F::ONE,
        }],
    };
    stark::debug::check_buses(&tables, &traces, &public).is_ok()
}

#[test]
fn a_negative_operand_cannot_claim_a_positive_sign() {
    // SLT(0x80000000, 5) is 1.
    let (honest, checks) = lt::row(Opcode::Slt, 0x1000, 3, 0x8000_0000, 5, 0, 1, 0x1004);
    assert!(
        lt_row_balances(&honest, 1, &checks),
        "the harness accepts the honest row"
    );
    // The forgery splits 0x80000000 as lo = 2^15, mid = (2^16 - 1 + p) / 2, top = 0, so that
    // 2 mid = 2^16 - 1 passes a 16-bit check, and claims "not less".
    let mut row = honest;
    let p = 0xffff_ffff_0000_0001u64;
    let mid = ((0xffffu128 + p as u128) / 2) as u64;
    row[lt::A_LO] = F::from_u64(1 << 15);
    row[lt::A_LO + 1] = F::from_u64(mid);
    row[lt::A_LO + 2] = F::ZERO;
    row[lt::LT] = F::ZERO;
    row[lt::RD_VAL] = F::ZERO;
    let d = (1u64 << 32) - 5 - (1 << 31);
    row[lt::D_LO] = F::from_u64(d & 0xffff);
    row[lt::D_HI] = F::from_u64(d >> 16);
    let mut values = row.to_vec();
    values.extend(vec![F::ZERO; lt::WIDTH]);
    // The polynomial constraints accept it...
    stark::debug::check_constraints(&lt::LtChip, &RowMajorMatrix::new(values, lt::WIDTH)).unwrap();
    // ...and so would the lookups of lo and 2 mid alone; the lookup of mid itself cannot match.
    let old_lookups = [
        1 << 15,
        0xffff,
        checks[3],
        checks[4],
        checks[5],
        d & 0xffff,
        d >> 16,
    ];
    assert!(!lt_row_balances(&row, 0, &old_lookups));
}
