//! The witness builder's blocks (`Witness::with_blocks`): taken as the run goes, the blocks of
//! each instance are, in order, the rows of the instance `Witness::new` builds with instances
//! of the same height, at block sizes below, equal to and above a chunk of the run.

mod common;

use std::sync::Arc;

use common::{fixture, witness};
use vm::air::{Rv32Air, TraceBlock, Witness};
use vm::{Machine, Program, TraceChunk};

/// Every block of a run on `input`, taken after each executor chunk of `block_rows` steps, with
/// the cuts made at the end applied to the blocks taken before them, as a taker does; and how
/// many cuts moved blocks.
fn blocks(
    program: &Arc<Program>,
    input: &[u8],
    block_rows: usize,
    instance_rows: usize,
) -> (Vec<TraceBlock>, usize) {
    let air = Rv32Air::new(Arc::clone(program));
    let mut w = Witness::with_blocks(&air, block_rows, instance_rows).unwrap();
    let mut m = Machine::new(Arc::clone(program), Arc::from(input));
    let mut chunk = TraceChunk::default();
    let mut out = Vec::new();
    loop {
        let done = m.trace_chunk(block_rows, &mut chunk).unwrap();
        w.push_chunk(&chunk).unwrap();
        out.extend(w.take_blocks());
        if done {
            break;
        }
    }
    let (rest, _) = w.finish_blocks().unwrap();
    let cuts = rest.cuts().to_vec();
    for cut in &cuts {
        out.iter_mut().for_each(|b| cut.place(b));
    }
    out.extend(rest);
    (out, cuts.len())
}

/// Checks that the blocks of each instance are, in order, its rows; returns the instances'
/// rows per table and how many cuts moved blocks.
fn check_blocks(
    name: &str,
    program: &Arc<Program>,
    input: &[u8],
    block_rows: usize,
    instance_rows: usize,
) -> usize {
    let (instances, _) = witness(program, input, instance_rows);
    let (all, cuts) = blocks(program, input, block_rows, instance_rows);
    let mut by_table: Vec<Vec<TraceBlock>> = vec![Vec::new(); vm::air::table::COUNT];
    for b in all {
        by_table[b.table].push(b);
    }
    let mut rebuilt = Vec::new();
    for (table, mut blocks) in by_table.into_iter().enumerate() {
        blocks.sort_by_key(|b| (b.instance, b.index));
        let mut rows = Vec::new();
        for (k, b) in blocks.iter().enumerate() {
            let first = k == 0 || blocks[k - 1].last;
            let expect = if first { 0 } else { blocks[k - 1].index + 1 };
            assert_eq!(b.index, expect, "{name} table {table}: blocks in order");
            let height = b.trace.values.len() / b.trace.width;
            assert!(height <= block_rows && height.is_power_of_two());
            assert!(
                b.index == 0 || height == block_rows,
                "only a one-block instance is short"
            );
            rows.extend_from_slice(&b.trace.values);
            if b.last {
                rebuilt.push((table, std::mem::take(&mut rows)));
            }
        }
        assert!(
            rows.is_empty(),
            "{name} table {table}: an instance without its last block"
        );
    }
    let expected: Vec<(usize, Vec<_>)> = instances
        .into_iter()
        .map(|it| (it.table, it.trace.values))
        .collect();
    assert_eq!(
        rebuilt, expected,
        "{name} at {block_rows}-row blocks of {instance_rows}-row instances"
    );
    cuts
}

#[test]
fn blocks_of_an_instance_are_its_rows() {
    for name in ["rv32m_selftest", "rv32i_selftest"] {
        let program = fixture(name);
        for (block_rows, instance_rows) in [(1 << 4, 1 << 10), (1 << 6, 1 << 6), (1 << 3, 1 << 16)]
        {
            check_blocks(name, &program, &[], block_rows, instance_rows);
        }
    }
}

/// fib(150000) has 600,354 CPU rows: at most 3/4 of 2^20, so its last instance is cut into 2^19
/// full rows and 76,066 padded to 2^17 ([`vm::air::cut_rows`]), whether its blocks were handed
/// out before the cut (2^14-row blocks) or it is one block (2^20 rows), and `Witness::new`
/// makes the same instances.
#[test]
fn a_mostly_padded_last_instance_is_cut_in_two() {
    let program = fixture("fib_iterative");
    let input = 150_000u32.to_le_bytes();
    let (instances, statement) = witness(&program, &input, 1 << 22);
    let cpu: Vec<usize> = instances
        .iter()
        .filter(|it| it.table == vm::air::table::CPU)
        .map(|it| it.trace.values.len() / it.trace.width)
        .collect();
    assert_eq!(statement.cycles, 600_354);
    assert_eq!(cpu, [1 << 19, 1 << 17]);
    for (block_rows, instance_rows, cuts) in [(1 << 14, 1 << 22, 1), (1 << 20, 1 << 20, 0)] {
        let moved = check_blocks("fib", &program, &input, block_rows, instance_rows);
        assert_eq!(
            moved, cuts,
            "cuts that moved blocks at {block_rows}-row blocks"
        );
    }
    assert_eq!(vm::air::cut_rows(600_354), Some(1 << 19));
    assert_eq!(
        vm::air::cut_rows(3 << 18),
        Some(1 << 19),
        "exactly 3/4 full"
    );
    assert_eq!(vm::air::cut_rows((3 << 18) + 1), None);
    assert_eq!(vm::air::cut_rows(1 << 20), None, "full");
    let min = vm::air::CUT_MIN_ROWS;
    assert_eq!(
        vm::air::cut_rows(3 * min / 2),
        Some(min),
        "a half of CUT_MIN_ROWS"
    );
    assert_eq!(
        vm::air::cut_rows(3 * min / 4),
        None,
        "a half below CUT_MIN_ROWS"
    );
}

#[test]
fn instance_rows_below_the_blocks_are_refused() {
    let air = Rv32Air::new(fixture("rv32i_selftest"));
    let err = Witness::with_blocks(&air, 1 << 6, 1 << 4)
        .err()
        .expect("refused");
    assert!(
        err.to_string().contains("multiple of the block rows"),
        "{err}"
    );
    assert!(Witness::with_blocks(&air, 3, 1 << 4).is_err());
}
