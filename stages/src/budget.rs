//! Chunk size from a memory budget: how many bytes one instance row costs while it is in
//! flight, and how many instances can be in flight at once.

use std::sync::Arc;

use stark::ProofParams;
use vm::Program;
use vm::air::Rv32Air;

/// Bytes of memory per trace row of the widest table while one instance is being worked on in
/// the heaviest pass: its trace, main + aux + quotient LDEs (blowup x), the three Merkle trees
/// (2 x blowup digests each) and the constraint scratch of the quotient (extension values).
pub fn bytes_per_row(program: &Arc<Program>, params: &ProofParams) -> u64 {
    let air = Rv32Air::new(Arc::clone(program));
    let blowup = params.blowup() as u64;
    air.tables()
        .iter()
        .filter_map(|t| stark::compile(*t).ok())
        .map(|t| {
            let main = t.main_width as u64;
            let lde_cells = (t.main_width + t.aux_width() + t.quotient_width()) as u64;
            let trees = 3 * 2 * blowup * 32;
            let quotient_scratch = 16 * (1u64 << t.log_quotient_factor()) * 3;
            main * 8 + lde_cells * 8 * blowup + trees + quotient_scratch
        })
        .max()
        .unwrap_or(1)
}

/// Instances whose LDEs can be alive at once in a pass: one in each of the two heavy stages
/// (e.g. `lde` and `quotient`) and `capacity` waiting in the channel between them. The trace
/// items ahead of them are a few times smaller and are covered by the per-row figure's margin.
/// Checked on fib_iterative (1M instructions, capacity 0): a 512 MiB budget picks chunks of
/// 2^17 rows, which peaked at 210 MiB RssAnon.
pub fn in_flight(channel_capacity: usize) -> u64 {
    2 + channel_capacity as u64
}

/// The largest power-of-two chunk row count whose in-flight instances fit in `budget` bytes.
pub fn chunk_rows_for_budget(
    program: &Arc<Program>,
    params: &ProofParams,
    channel_capacity: usize,
    budget: u64,
) -> Result<usize, pipeline::BudgetError> {
    let rows = pipeline::chunk_rows_for_budget(
        budget,
        bytes_per_row(program, params),
        in_flight(channel_capacity),
    )?;
    Ok(rows.min(1 << 24) as usize)
}
