//! Pass 6, fri: fold the DEEP codewords, grind, sample the queries and open the FRI layers, in
//! memory (today's codewords are one chunk's size, not the run's).

use std::collections::BTreeMap;

use stark::field::EF;
use stark::merkle::Digest;
use stark::proof::FriLayerOpening;
use stark::protocol;
use stark::transcript::Transcript;

use super::common::Run;
use crate::error::Error;

/// What the FRI pass hands the open pass and the proof.
pub(super) struct FriOutcome {
    pub(super) roots: Vec<Digest>,
    pub(super) final_value: EF,
    pub(super) pow_nonce: u64,
    /// The query positions in the largest LDE (of `2^log_max_lde` rows).
    pub(super) positions: Vec<usize>,
    pub(super) log_max_lde: usize,
    pub(super) openings: Vec<FriLayerOpening>,
}

/// Commits the FRI layers (each root absorbed before its layer's fold challenges), grinds, draws the
/// query positions and opens the layers at them.
pub(super) fn pass_fri(
    run: &Run,
    codewords: BTreeMap<usize, Vec<EF>>,
    t: &mut Transcript,
) -> Result<FriOutcome, Error> {
    let params = &run.ctx.config.params;
    let log_b = run.ctx.log_b;
    let fri = stark::fri::prove(codewords, t, log_b)?;
    let protocol::Queries {
        pow_nonce,
        positions,
        log_max_lde,
    } = protocol::grind_and_sample_queries(t, params, &run.shapes);
    let openings = fri.open(&positions);
    Ok(FriOutcome {
        roots: fri.roots,
        final_value: fri.final_value,
        pow_nonce,
        positions,
        log_max_lde,
        openings,
    })
}
