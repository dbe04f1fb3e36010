//! Regression tests for forgeries a soundness review found (each was accepted before its fix).

mod common;

use std::sync::Arc;

use common::{Forgery, fixture, witness};
use stark::field::{F, PrimeCharacteristicRing};
use stark::{InstanceTrace, RowMajorMatrix};
use vm::air::{ExecutionError, Rv32Air, Statement, ecall, io, lt, program_digest, table};
use vm::{Machine, Opcode, Program, VmError};

/// Proves the (possibly forged) witness and statement and runs the full verifier.
fn verifies(program: &Arc<Program>, traces: Vec<InstanceTrace>, statement: &Statement) -> bool {
    Forgery {
        program: Arc::clone(program),
        traces,
        statement: statement.clone(),
    }
    .verify()
    .is_ok()
}

#[test]
fn fixed_tables_must_have_their_one_instance() {
    let program = fixture("fib_iterative");
    let (traces, statement) = witness(&program, &10u32.to_le_bytes(), 1 << 10);
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
    let (mut traces, mut statement) = witness(&program, &40u32.to_le_bytes(), 1 << 10);
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

/// Goldilocks' modulus.
const P: u64 = 0xffff_ffff_0000_0001;

fn cpu_rows(forged: &Forgery) -> u64 {
    forged.rows(table::CPU).len() as u64
}

#[test]
fn a_cycle_count_aliased_mod_p_is_refused() {
    let program = fixture("sub");
    let mut forged = Forgery::honest(&program, &[], 1 << 10);
    forged.verify().expect("the honest proof verifies");
    // cycles + p is the same field element: every bus still balances, so only the bound on the
    // statement can refuse it (this proof verified before the bound, claiming 2^64 - 2^32 + 12
    // instructions for an 11-instruction run).
    forged.statement.cycles += P;
    forged.buses_balance().unwrap();
    let err = Statement::from_bytes(&forged.statement.to_bytes()).unwrap_err();
    assert!(err.to_string().contains("MAX_CYCLES"), "{err}");
    let err = forged.verify().unwrap_err();
    assert!(matches!(err, ExecutionError::StatementBounds(_)), "{err}");
    assert!(err.to_string().contains("MAX_CYCLES"), "{err}");

    forged.statement.cycles = 0;
    assert!(Statement::from_bytes(&forged.statement.to_bytes()).is_err());
    assert!(matches!(
        forged.verify(),
        Err(ExecutionError::StatementBounds(_))
    ));
    forged.statement.cycles = vm::air::MAX_CYCLES + 1;
    assert!(Statement::from_bytes(&forged.statement.to_bytes()).is_err());
}

#[test]
fn cycles_are_bounded_by_the_cpu_rows_and_must_be_the_runs() {
    let mut forged = Forgery::honest(&fixture("sub"), &[], 1 << 10);
    let honest = forged.statement.cycles;
    let rows = cpu_rows(&forged);
    forged.statement.cycles = rows + 1;
    let err = forged.verify().unwrap_err();
    assert!(
        matches!(err, ExecutionError::CyclesAboveRows { cycles, rows: r } if cycles == rows + 1 && r == rows),
        "{err}"
    );
    // Within the rows but not the run's count: the CHAIN bus does not close.
    forged.statement.cycles = honest + 1;
    assert!(forged.buses_balance().is_err());
    assert!(matches!(
        forged.verify(),
        Err(ExecutionError::Invalid(stark::VerifyError::LogUpSum))
    ));
}

/// A free IO row ([`Forgery::splice_free_io_row`]): such proofs verified before the "first
/// byte moves" constraint.
#[test]
fn an_io_row_that_moves_no_bytes_is_refused() {
    let program = fixture("fib_iterative");
    let mut forged = Forgery::honest(&program, &10u32.to_le_bytes(), 1 << 10);
    forged.splice_free_io_row();
    forged
        .buses_balance()
        .expect("the free access balances every bus");
    let err = forged.constraints_hold().unwrap_err();
    assert!(err.starts_with("io:"), "{err}");
    assert!(forged.verify().is_err());
}

#[test]
fn a_store_into_read_only_memory_cannot_be_proven() {
    use vm::air::word;

    let real = common::bad_fixture("store_rodata");
    let mut machine = Machine::new(Arc::clone(&real), Arc::from(&[][..]));
    assert_eq!(
        machine.run().unwrap_err(),
        VmError::ReadOnly {
            pc: 0x1002c,
            addr: 0x1003c
        }
    );
    // A cheating prover runs it with every page writable, then claims the real program.
    let mut patched = (*real).clone();
    patched.segments.iter_mut().for_each(|s| s.writable = true);
    let mut forged = Forgery::honest(&Arc::new(patched), &[], 1 << 10);
    forged.program = Arc::clone(&real);
    forged.statement.program_digest = program_digest(&real);

    // As run, the store addresses the word untagged, and the real image has no such token.
    assert!(forged.buses_balance().is_err());
    assert!(forged.verify().is_err());

    // With every access to the word tagged read-only the buses balance, and what is left is
    // the store's `ro = 0` constraint.
    let accesses: Vec<_> = forged
        .rows(table::WORD)
        .into_iter()
        .filter(|&at| forged.get(at, word::WORD_ADDR) == F::from_u64(0x1003c))
        .collect();
    assert_eq!(accesses.len(), 3, "load, store, load");
    for at in accesses {
        forged.set(at, word::RO, F::ONE);
    }
    forged.buses_balance().unwrap();
    let err = forged.constraints_hold().unwrap_err();
    assert!(err.starts_with("word:"), "{err}");
    assert!(forged.verify().is_err());
}
