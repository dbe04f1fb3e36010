//! Proving an execution with everything in RAM: execute chunk by chunk into the witness builder,
//! then run the STARK prover over all instances. This is the reference the out-of-core pipeline
//! is measured against, and what small programs need.

use std::sync::Arc;
use std::time::Instant;

use stark::{ProofParams, RowMajorMatrix};
use vm::air::{Rv32Air, Statement, Witness, WitnessError};

use crate::widths::{TableWidth, table_widths};
use vm::{Machine, Program, TraceChunk, VmError};

/// Why proving stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProveRunError {
    #[error("execution failed: {0}")]
    Execution(#[from] VmError),
    #[error("cannot build the witness: {0}")]
    Witness(#[from] WitnessError),
    #[error("the prover failed: {0}")]
    Prove(#[from] stark::ProveError),
    #[error("the finished proof does not verify ({0}); this is a prover bug")]
    SelfCheck(#[from] vm::air::ExecutionError),
}

/// A proof and what it took.
pub struct ProvenRun {
    pub proof: stark::Proof,
    pub statement: Statement,
    pub widths: Vec<TableWidth>,
    pub execute_witness_secs: f64,
    pub prove_secs: f64,
}

/// Instructions executed between two hand-overs to the witness builder (which makes the same
/// instances for any).
const EXECUTE_ROWS: usize = 1 << 16;

/// Executes `program` on `input` and proves the run, with instances of at most `instance_rows`
/// rows, and verifies the proof before returning it (`passes::check::self_check`).
pub fn prove_in_memory(
    program: Arc<Program>,
    input: Arc<[u8]>,
    instance_rows: usize,
    max_cycles: u64,
    params: &ProofParams,
) -> Result<ProvenRun, ProveRunError> {
    let start = Instant::now();
    let air = Rv32Air::new(Arc::clone(&program));
    let mut witness = Witness::new(&air, instance_rows)?;
    let mut machine = Machine::new(Arc::clone(&program), input);
    machine.set_max_cycles(max_cycles);
    let mut chunk = TraceChunk::default();
    loop {
        let done = machine.trace_chunk(instance_rows.min(EXECUTE_ROWS), &mut chunk)?;
        witness.push_chunk(&chunk)?;
        if done {
            break;
        }
    }
    let (traces, statement) = witness.finish()?;
    let execute_witness_secs = start.elapsed().as_secs_f64();

    let widths = table_widths(
        &air,
        traces.iter().map(|it| (it.table, height(&it.trace) as u64)),
    );
    let tables = air.tables();

    let start = Instant::now();
    let proof = stark::prove(&tables, traces, &statement.public_inputs(), params)?;
    crate::passes::check::self_check(&program, &statement, &proof)?;
    Ok(ProvenRun {
        proof,
        statement,
        widths,
        execute_witness_secs,
        prove_secs: start.elapsed().as_secs_f64(),
    })
}

fn height(m: &RowMajorMatrix<stark::F>) -> usize {
    m.values.len() / m.width.max(1)
}
