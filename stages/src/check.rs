//! The self-check both provers run before a proof leaves them: the full verifier, as
//! `stark-pipe verify` would run it, so that a bug or a changed segment is an error at proving
//! time, never a proof file that does not verify.

use std::sync::Arc;

use stark::{Proof, VerifierParams};
use vm::Program;
use vm::air::{ExecutionError, Statement, verify_execution};

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
