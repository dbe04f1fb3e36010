//! The execute and tracegen stages: run the program chunk by chunk and turn each trace chunk
//! into table instances as soon as they are complete.
//!
//! Instances come out in *generation* order (a CPU instance per executor chunk, a chip instance
//! whenever that chip has `chunk_rows` rows, the fixed tables at the end), not in canonical
//! (table, chunk) order: later passes map each one to its canonical index. The VM and the
//! witness builder are deterministic, so running this again yields the same instances in the
//! same order, which is what the `recompute` store policy relies on.

use std::sync::Arc;

use stark::{F, RowMajorMatrix};
use vm::air::{Rv32Air, Statement, Witness};
use vm::{Machine, Program, TraceChunk};

use crate::error::Error;

/// One instance (chunk) of a table.
pub struct Instance {
    pub table: usize,
    /// Index among the instances of its table.
    pub chunk: u64,
    pub trace: RowMajorMatrix<F>,
}

impl Instance {
    pub fn rows(&self) -> usize {
        self.trace.values.len() / self.trace.width.max(1)
    }
}

/// Executes `program` on `input` with executor chunks of `chunk_rows` steps and calls `emit`
/// for every instance as soon as it is complete. Returns the statement of the run.
///
/// Memory: one executor chunk, the chip rows not yet cut into an instance, and the witness
/// builder's run-wide state (bounded by the program's size, not the run's length).
pub fn generate<E>(
    program: Arc<Program>,
    input: Arc<[u8]>,
    chunk_rows: usize,
    max_cycles: u64,
    mut emit: impl FnMut(Instance) -> Result<(), E>,
) -> Result<Statement, E>
where
    E: From<Error>,
{
    let air = Rv32Air::new(Arc::clone(&program));
    let mut witness = Witness::new(&air, chunk_rows).map_err(Error::from)?;
    let mut machine = Machine::new(program, input);
    machine.set_max_cycles(max_cycles);
    let mut chunk = TraceChunk::default();
    let mut counts = vec![0u64; air.tables().len()];
    let mut send = |traces: Vec<stark::InstanceTrace>,
                    emit: &mut dyn FnMut(Instance) -> Result<(), E>| {
        for it in traces {
            let chunk = counts[it.table];
            counts[it.table] += 1;
            emit(Instance {
                table: it.table,
                chunk,
                trace: it.trace,
            })?;
        }
        Ok::<(), E>(())
    };
    loop {
        let done = machine
            .trace_chunk(chunk_rows, &mut chunk)
            .map_err(|e| Error::Execution {
                chunk: chunk.index,
                source: e,
            })?;
        witness.push_chunk(&chunk).map_err(Error::from)?;
        send(witness.take_completed(), &mut emit)?;
        if done {
            break;
        }
    }
    let (rest, statement) = witness.finish().map_err(Error::from)?;
    send(rest, &mut emit)?;
    Ok(statement)
}
