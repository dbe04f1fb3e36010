//! Pass 1: execute, write every table's instances as trace segments of `block_rows` rows as the
//! witness builder hands them out ([`vm::air::Witness::with_blocks`]), then extend and commit
//! each instance out of core ([`crate::lde`]). No instance, however tall, is ever in memory
//! whole: the executor holds one chunk, the builder one block per table, the LDE one chunk's
//! worth per step. Preprocessed traces (fixed tables, one per table and height) are generated,
//! written in blocks and committed the same way.
//!
//! The trace blocks go as soon as step 1 of their LDE has read them: pass 2 gets them back by
//! executing again ([`execute`], the one execution loop of both passes), which costs a few
//! percent of a pass where keeping them would hold a third of the main commitment's bytes on
//! disk through pass 2.

use std::collections::BTreeMap;
use std::sync::{Arc, mpsc};

use formats::SegmentMeta;
use pipeline::{SegmentRef, SpillDir, StageProgress};
use stark::ntt::{ChunkGeometry, Extension};
use vm::air::{Cut, Rv32Air, Statement, TraceBlock, Witness};
use vm::{Machine, Program, TraceChunk};

use stark::{Air, RowMajorMatrix, Table};

use super::{InstanceConfig, lanes};
use crate::error::Error;
use crate::lde::{self, InstanceLde, LdeName};
use crate::store::write_matrix;

/// A table's preprocessed trace at one height, committed (pass 2 regenerates the trace itself,
/// which is small: it depends on the program, not the run).
pub struct Preprocessed {
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
    let lde = lde::extend(spill, name, geo, &Extension::lde(&geo), blocks, w)?;
    Ok(Preprocessed { lde })
}

/// One committed instance of a table.
pub struct MainInstance {
    pub table: usize,
    /// Index among the table's instances.
    pub instance: u64,
    /// `<table>-<instance>`: how its segments are named.
    pub label: String,
    pub lde: InstanceLde,
}

/// An instance whose blocks are being written.
struct Open {
    blocks: Vec<SegmentRef>,
    rows: usize,
}

/// What an execution hands its taker: a block, or a cut of a table's last instance that moves
/// blocks handed out before it ([`Cut`]).
pub enum Handout {
    Block(TraceBlock),
    Cut(Cut),
}

/// Executes `program` on `input` once and hands `each` every table's blocks of `block_rows`
/// rows (instances of at most `instance_rows`), in the order the witness builder makes them:
/// an instance's blocks in order, then the cuts made at the end, then the last blocks and the
/// padding blocks. `stage` counts the chunks executed.
///
/// The machine and the witness builder run on a thread of their own and hand each block over a
/// rendezvous channel, so that building the next block overlaps `each` writing (or extending)
/// this one, and at most one finished block waits.
pub fn execute(
    program: Arc<Program>,
    input: Arc<[u8]>,
    config: &InstanceConfig,
    stage: &StageProgress,
    mut each: impl FnMut(Handout) -> Result<(), Error>,
) -> Result<Statement, Error> {
    let (send, handouts) = mpsc::sync_channel::<Handout>(0);
    std::thread::scope(|scope| {
        let builder = scope.spawn(move || build(program, input, config, stage, send));
        // The receiver goes with this statement's iterator: after an error the builder's next
        // send fails, and it stops.
        let taken = handouts.into_iter().try_for_each(&mut each);
        let built = builder
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        match (taken, built) {
            (Err(e), _) => Err(e),
            (Ok(()), built) => built,
        }
    })
}

/// The builder's side of [`execute`]: `Ok` with the statement once every handout is sent, or
/// the error that stopped it (when the taker hung up first, its own error is the one reported).
fn build(
    program: Arc<Program>,
    input: Arc<[u8]>,
    config: &InstanceConfig,
    stage: &StageProgress,
    send: mpsc::SyncSender<Handout>,
) -> Result<Statement, Error> {
    let hung_up = |_| Error::Config("the block taker stopped".into());
    let air = Rv32Air::new(Arc::clone(&program));
    let mut witness = Witness::with_blocks(&air, config.block_rows, config.instance_rows)?;
    let mut machine = Machine::new(program, input);
    machine.set_max_cycles(config.max_cycles);
    let mut chunk = TraceChunk::default();
    loop {
        let done = machine
            .trace_chunk(config.block_rows, &mut chunk)
            .map_err(|e| Error::Execution {
                chunk: chunk.index,
                source: e,
            })?;
        witness.push_chunk(&chunk)?;
        stage.advance(1, chunk.steps.len() as u64);
        for b in witness.take_blocks() {
            send.send(Handout::Block(b)).map_err(hung_up)?;
        }
        if done {
            break;
        }
    }
    let (rest, statement) = witness.finish_blocks()?;
    for &cut in rest.cuts() {
        send.send(Handout::Cut(cut)).map_err(hung_up)?;
    }
    for b in rest {
        send.send(Handout::Block(b)).map_err(hung_up)?;
    }
    Ok(statement)
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
    let block_rows = config.block_rows;
    let stage = config.progress.stage("main", "execute", None);
    let air = Rv32Air::new(Arc::clone(&program));
    let names: Vec<String> = air.tables().iter().map(|t| t.name().to_string()).collect();
    let mut open: BTreeMap<(usize, u64), Open> = BTreeMap::new();
    let mut closed: Vec<((usize, u64), Open)> = Vec::new();
    let mut written = vec![0u64; names.len()];
    let statement = execute(program, input, config, &stage, |handout| {
        let b = match handout {
            Handout::Block(b) => b,
            Handout::Cut(cut) => {
                let key = (cut.table, cut.instance);
                let mut head = open.remove(&key).ok_or_else(|| Error::Diverged {
                    what: format!("a cut of instance {} of {}", cut.instance, names[cut.table]),
                    expected: "an open instance".into(),
                })?;
                if head.blocks.len() < cut.blocks as usize {
                    return Err(Error::Diverged {
                        what: format!("a cut of {} after {} blocks", names[cut.table], cut.blocks),
                        expected: format!("at most {} blocks", head.blocks.len()),
                    });
                }
                let head_rows = cut.blocks as usize * block_rows;
                let tail = Open {
                    blocks: head.blocks.split_off(cut.blocks as usize),
                    rows: head.rows - head_rows,
                };
                head.rows = head_rows;
                closed.push((key, head));
                open.insert((cut.table, cut.instance + 1), tail);
                return Ok(());
            }
        };
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
        Ok(())
    })?;
    stage.finish();
    closed.sort_by_key(|(key, _)| *key);
    let blocks = closed.iter().map(|(_, o)| o.blocks.len() as u64).sum();
    let commit = config.progress.stage("main", "commit", Some(blocks));

    let widths: Vec<usize> = air.tables().iter().map(|t| t.main_width()).collect();
    let out = lanes::map(closed, |((table, instance), o)| {
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
        let count = o.blocks.len() as u64;
        let lde = lde::extend(
            spill,
            name,
            geo,
            &Extension::lde(&geo),
            o.blocks,
            widths[table],
        )?;
        commit.advance(count, o.rows as u64);
        Ok(MainInstance {
            table,
            instance,
            label,
            lde,
        })
    })?;
    commit.finish();
    Ok((out, statement))
}
