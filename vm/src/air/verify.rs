//! Verifying a proof of an execution against a program: the verifier's whole job, with no
//! dependency on the prover's pipeline.

use std::sync::Arc;

use stark::{Proof, VerifierParams};

use super::table;
use super::witness::{Rv32Air, Statement, program_digest};
use crate::program::Program;

/// Why a proof of an execution was refused.
#[derive(Debug, thiserror::Error)]
pub enum ExecutionError {
    #[error("the proof is about another program (digest {claimed}, this ELF has {actual})")]
    WrongProgram { claimed: String, actual: String },
    #[error("the proof names entry point {claimed:#x}, the ELF has {actual:#x}")]
    WrongEntry { claimed: u32, actual: u32 },
    #[error(
        "the proof has {found} for the fixed table {table}; it must have exactly one of height 2^{log_height}"
    )]
    FixedTableShape {
        table: &'static str,
        found: String,
        log_height: u32,
    },
    #[error(transparent)]
    StatementBounds(#[from] super::witness::StatementFormatError),
    #[error(
        "the statement claims {cycles} cycles, but the proof's CPU instances have {rows} rows in all (the bound: one row per cycle)"
    )]
    CyclesAboveRows { cycles: u64, rows: u64 },
    #[error("the proof does not verify: {0}")]
    Invalid(#[from] stark::VerifyError),
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks that `proof` proves `statement` for `program`: the statement must name this program
/// and stay within the bounds the AIR's argument assumes (cycles and output length, and no more
/// cycles than CPU rows; the stark verifier bounds the total rows), the tables are rebuilt from
/// the ELF (so the program and memory image are the verifier's own), the fixed tables have
/// exactly the shape the verifier expects, and the STARK must verify with the statement's
/// public inputs.
pub fn verify_execution(
    program: Arc<Program>,
    statement: &Statement,
    proof: &Proof,
    params: &VerifierParams,
) -> Result<stark::Verified, ExecutionError> {
    ExecutionVerifier::new(program).verify(statement, proof, params)
}

/// A verifier for one program that keeps what it derives from the ELF (its digest, tables and
/// preprocessed commitments) across proofs: [`verify_execution`] for many proofs.
pub struct ExecutionVerifier {
    digest: [u8; 32],
    entry: u32,
    air: Rv32Air,
    prep: stark::PreprocessedCache,
}

impl ExecutionVerifier {
    pub fn new(program: Arc<Program>) -> ExecutionVerifier {
        ExecutionVerifier {
            digest: program_digest(&program),
            entry: program.entry,
            air: Rv32Air::new(program),
            prep: stark::PreprocessedCache::default(),
        }
    }

    /// See [`verify_execution`].
    pub fn verify(
        &mut self,
        statement: &Statement,
        proof: &Proof,
        params: &VerifierParams,
    ) -> Result<stark::Verified, ExecutionError> {
        if self.digest != statement.program_digest {
            return Err(ExecutionError::WrongProgram {
                claimed: hex(&statement.program_digest[..8]),
                actual: hex(&self.digest[..8]),
            });
        }
        if statement.entry != self.entry {
            return Err(ExecutionError::WrongEntry {
                claimed: statement.entry,
                actual: self.entry,
            });
        }
        statement.check_bounds()?;
        let cpu_rows: u64 = proof
            .instances
            .iter()
            .filter(|s| s.table as usize == table::CPU)
            .fold(0u64, |acc, s| {
                acc.saturating_add(1u64.checked_shl(s.log_height as u32).unwrap_or(u64::MAX))
            });
        if statement.cycles > cpu_rows {
            return Err(ExecutionError::CyclesAboveRows {
                cycles: statement.cycles,
                rows: cpu_rows,
            });
        }
        check_fixed_tables(&self.air, proof)?;
        Ok(stark::verify_cached(
            &self.air.tables(),
            proof,
            &statement.public_inputs(),
            params,
            &mut self.prep,
        )?)
    }
}

/// The lookup and image tables must appear once, at the height the verifier derives itself: a
/// second image instance would give addresses a second initial value, and a taller range table
/// would accept "16-bit" limbs that are not.
fn check_fixed_tables(air: &Rv32Air, proof: &Proof) -> Result<(), ExecutionError> {
    let fixed = [
        (table::PROGRAM, "program", air.program.height()),
        (table::IMAGE, "image", air.image.height()),
        (table::RANGE16, "range16", super::range::HEIGHT),
        (table::BYTES, "bytes", super::bytes::HEIGHT),
    ];
    for (index, name, height) in fixed {
        let log_height = height.trailing_zeros();
        let shapes: Vec<u8> = proof
            .instances
            .iter()
            .filter(|s| s.table as usize == index)
            .map(|s| s.log_height)
            .collect();
        if shapes != [log_height as u8] {
            let found = match shapes.len() {
                0 => "no instance".to_string(),
                n => format!("{n} instance(s) of log heights {shapes:?}"),
            };
            return Err(ExecutionError::FixedTableShape {
                table: name,
                found,
                log_height,
            });
        }
    }
    Ok(())
}
