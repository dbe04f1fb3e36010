//! Verifying a proof of an execution against a program: the verifier's whole job, with no
//! dependency on the prover's pipeline.

use std::sync::Arc;

use stark::{Proof, VerifierParams};

use super::witness::{Rv32Air, Statement, program_digest};
use crate::program::Program;

/// Why a proof of an execution was refused.
#[derive(Debug, thiserror::Error)]
pub enum ExecutionError {
    #[error("the proof is about another program (digest {claimed}, this ELF has {actual})")]
    WrongProgram { claimed: String, actual: String },
    #[error("the proof names entry point {claimed:#x}, the ELF has {actual:#x}")]
    WrongEntry { claimed: u32, actual: u32 },
    #[error("the proof does not verify: {0}")]
    Invalid(#[from] stark::VerifyError),
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks that `proof` proves `statement` for `program`: the statement must name this program,
/// the tables are rebuilt from the ELF (so the program and memory image are the verifier's own),
/// and the STARK must verify with the statement's public inputs.
pub fn verify_execution(
    program: Arc<Program>,
    statement: &Statement,
    proof: &Proof,
    params: &VerifierParams,
) -> Result<stark::Verified, ExecutionError> {
    let digest = program_digest(&program);
    if digest != statement.program_digest {
        return Err(ExecutionError::WrongProgram {
            claimed: hex(&statement.program_digest[..8]),
            actual: hex(&digest[..8]),
        });
    }
    if statement.entry != program.entry {
        return Err(ExecutionError::WrongEntry {
            claimed: statement.entry,
            actual: program.entry,
        });
    }
    let air = Rv32Air::new(program);
    Ok(stark::verify(
        &air.tables(),
        proof,
        &statement.public_inputs(),
        params,
    )?)
}
