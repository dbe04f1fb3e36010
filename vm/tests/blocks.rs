//! The witness builder's blocks (`Witness::with_blocks`): taken as the run goes, the blocks of
//! each instance are, in order, the rows of the instance `Witness::new` builds with instances
//! of the same height, at block sizes below, equal to and above a chunk of the run.

mod common;

use std::sync::Arc;

use common::{fixture, witness};
use vm::air::{Rv32Air, TraceBlock, Witness};
use vm::{Machine, Program, TraceChunk};

/// Every block of a run, taken after each executor chunk of `block_rows` steps.
fn blocks(program: &Arc<Program>, block_rows: usize, instance_rows: usize) -> Vec<TraceBlock> {
    let air = Rv32Air::new(Arc::clone(program));
    let mut w = Witness::with_blocks(&air, block_rows, instance_rows).unwrap();
    let mut m = Machine::new(Arc::clone(program), Arc::from(Vec::new()));
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
    out.extend(w.finish_blocks().unwrap().0);
    out
}

#[test]
fn blocks_of_an_instance_are_its_rows() {
    for name in ["rv32m_selftest", "rv32i_selftest"] {
        let program = fixture(name);
        for (block_rows, instance_rows) in [(1 << 4, 1 << 10), (1 << 6, 1 << 6), (1 << 3, 1 << 16)]
        {
            let (instances, _) = witness(&program, &[], instance_rows);
            let mut by_table: Vec<Vec<TraceBlock>> = vec![Vec::new(); vm::air::table::COUNT];
            for b in blocks(&program, block_rows, instance_rows) {
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
        }
    }
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
