//! Pass 8, check, and the self-check both provers run before a proof leaves them: the full
//! verifier, as `stark-pipe verify` would run it, so that a bug or a changed segment is an
//! error at proving time, never a proof file that does not verify.

use std::sync::Arc;

use stark::{Proof, VerifierParams};
use vm::Program;
use vm::air::{ExecutionError, Statement, verify_execution};

use crate::error::Error;

/// The proof was assembled from spilled segments. Verifying it (milliseconds per instance)
/// catches a segment changed on disk during the run before a proof file is written: a segment
/// the passes read in full is not otherwise rehashed (unless --verify-segments), and the open
/// pass's tree checks only see the opened rows.
pub(crate) fn pass_check(
    program: &Arc<Program>,
    statement: &Statement,
    proof: &Proof,
) -> Result<(), Error> {
    self_check(program, statement, proof).map_err(|e| Error::SelfCheck(e.to_string()))
}

/// Verifies `proof` of `statement` for `program`. The proof's security level is the caller's
/// choice (`--queries`, `--pow-bits`) and its heights are the run's, so neither is limited here;
/// every bound the soundness argument needs still is.
pub fn self_check(
    program: &Arc<Program>,
    statement: &Statement,
    proof: &Proof,
) -> Result<(), ExecutionError> {
    let params = VerifierParams {
        min_security_bits: 0,
        max_log_height: u8::MAX,
        max_instances: usize::MAX,
    };
    verify_execution(Arc::clone(program), statement, proof, &params).map(|_| ())
}
