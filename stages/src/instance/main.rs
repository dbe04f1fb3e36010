//! Pass 1: execute, write every table's instances as trace segments of `block_rows` rows as the
//! witness builder hands them out ([`vm::air::Witness::with_blocks`]), then extend and commit
//! each instance out of core ([`crate::lde`]). No instance, however tall, is ever in memory
//! whole: the executor holds one chunk, the builder one block per table, the LDE one chunk's
//! worth per step. Preprocessed traces (fixed tables, one per table and height) are generated,
//! written in blocks and committed the same way.

use std::collections::BTreeMap;
use std::sync::Arc;

use formats::SegmentMeta;
use pipeline::{SegmentRef, SpillDir};
use stark::ntt::{ChunkGeometry, Extension};
use vm::air::{Rv32Air, Statement, TraceBlock, Witness};
use vm::{Machine, Program, TraceChunk};

use stark::{Air, RowMajorMatrix, Table};

use super::InstanceConfig;
use crate::error::Error;
use crate::lde::{self, InstanceLde, LdeName};
use crate::store::write_matrix;

/// A table's preprocessed trace at one height: its blocks (removed after pass 2) and its
/// commitment.
pub struct Preprocessed {
    pub blocks: Vec<SegmentRef>,
    pub lde: InstanceLde,
}

/// Generates and commits `table`'s preprocessed trace at `2^log_height` rows.
pub fn commit_preprocessed(
    spill: &SpillDir,
    air: &dyn Air,
    table: &Table,
    geo: ChunkGeometry,
) -> Result<Preprocessed, Error> {
    let trace = stark::prover::preprocessed_trace(air, table, geo.log_height as u8)
        .map_err(Error::Config)?
        .ok_or_else(|| Error::Config(format!("{}: no preprocessed columns", table.name)))?;
    let label = format!("{}-prep-{}", table.name, geo.log_height);
    let w = trace.width;
    let blocks = trace
        .values
        .chunks(geo.chunk_rows() * w)
        .enumerate()
        .map(|(c, v)| {
            let meta = SegmentMeta::new(&*label, c as u64, "main", "prep");
            write_matrix(spill, &meta, &mut RowMajorMatrix::new(v.to_vec(), w))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let name = LdeName {
        table: &label,
        pass: "main",
        kind: "prep-lde",
    };
    let lde = lde::extend(spill, name, geo, &Extension::lde(&geo), &blocks, w)?;
    Ok(Preprocessed { blocks, lde })
}

/// One committed instance of a table.
pub struct MainInstance {
    pub table: usize,
    /// Index among the table's instances.
    pub instance: u64,
    /// `<table>-<instance>`: how its segments are named.
    pub label: String,
    /// The trace blocks, in order (removed in pass 2, their last reader, once the instance's
    /// aux columns are made).
    pub trace: Vec<SegmentRef>,
    pub lde: InstanceLde,
}

/// An instance whose blocks are being written.
struct Open {
    blocks: Vec<SegmentRef>,
    rows: usize,
}

/// Executes `program` on `input` and commits every instance (at most `instance_rows` rows) out
/// of core, streaming blocks of `block_rows` rows. Instances come back in (table, instance)
/// order, each with its main root (`lde.root()`).
pub fn commit_main(
    program: Arc<Program>,
    input: Arc<[u8]>,
    config: &InstanceConfig,
    log_blowup: usize,
    spill: &SpillDir,
) -> Result<(Vec<MainInstance>, Statement), Error> {
    let (block_rows, instance_rows) = (config.block_rows, config.instance_rows);
    let execute = config.progress.stage("main", "execute", None);
    let air = Rv32Air::new(Arc::clone(&program));
    let names: Vec<String> = air.tables().iter().map(|t| t.name().to_string()).collect();
    let mut witness = Witness::with_blocks(&air, block_rows, instance_rows)?;
    let mut machine = Machine::new(program, input);
    machine.set_max_cycles(config.max_cycles);
    let mut chunk = TraceChunk::default();
    let mut open: BTreeMap<(usize, u64), Open> = BTreeMap::new();
    let mut closed: Vec<((usize, u64), Open)> = Vec::new();
    let mut written = vec![0u64; names.len()];
    let mut write = |blocks: &mut dyn Iterator<Item = TraceBlock>| -> Result<(), Error> {
        for b in blocks {
            let key = (b.table, b.instance);
            let meta = SegmentMeta::new(&*names[b.table], written[b.table], "main", "trace");
            written[b.table] += 1;
            let rows = b.trace.values.len() / b.trace.width;
            let mut trace = b.trace;
            let seg = write_matrix(spill, &meta, &mut trace)?;
            let entry = open.entry(key).or_insert(Open {
                blocks: Vec::new(),
                rows: 0,
            });
            entry.blocks.push(seg);
            entry.rows += rows;
            if b.last {
                let done = open.remove(&key).expect("just inserted");
                closed.push((key, done));
            }
        }
        Ok(())
    };
    loop {
        let done = machine
            .trace_chunk(block_rows, &mut chunk)
            .map_err(|e| Error::Execution {
                chunk: chunk.index,
                source: e,
            })?;
        witness.push_chunk(&chunk)?;
        execute.advance(1, chunk.steps.len() as u64);
        write(&mut witness.take_blocks().into_iter())?;
        if done {
            break;
        }
    }
    let (mut rest, statement) = witness.finish_blocks()?;
    write(&mut rest)?;
    execute.finish();
    closed.sort_by_key(|(key, _)| *key);
    let commit = config
        .progress
        .stage("main", "commit", Some(closed.len() as u64));

    let widths: Vec<usize> = air.tables().iter().map(|t| t.main_width()).collect();
    let mut out = Vec::with_capacity(closed.len());
    for ((table, instance), o) in closed {
        let log_height = o.rows.trailing_zeros() as usize;
        let geo = ChunkGeometry::new(log_height, block_rows.trailing_zeros() as usize, log_blowup);
        let label = format!("{}-{instance}", names[table]);
        let name = LdeName {
            table: &label,
            pass: "main",
            kind: "main-lde",
        };
        if log_height + log_blowup > stark::domain::MAX_LOG_LDE {
            return Err(Error::Config(format!(
                "{label}: 2^{log_height} rows extended by 2^{log_blowup} exceed the field's \
                 two-adicity (2^{} points)",
                stark::domain::MAX_LOG_LDE
            )));
        }
        let lde = lde::extend(
            spill,
            name,
            geo,
            &Extension::lde(&geo),
            &o.blocks,
            widths[table],
        )?;
        out.push(MainInstance {
            table,
            instance,
            label,
            trace: o.blocks,
            lde,
        });
        commit.advance(1, o.rows as u64);
    }
    commit.finish();
    Ok((out, statement))
}
