//! The program table: one row per word of the program's executable segments.
//!
//! # Columns
//! Preprocessed (recomputed by the verifier from the ELF, so a proof is bound to the program):
//! `pc, opcode, rd, rs1, rs2, imm, writes_rd`. Words that are not executable instructions, and
//! the padding rows, carry `opcode = Invalid`, which no chip accepts: executing them cannot be
//! proven.
//! Main: `mult`, how many times the row's instruction was executed.
//!
//! # Register fields
//! As decoded, except ECALL, whose operands are fixed by the system call ABI: rs1 = a7 (the call
//! number), rs2 = a0 (first argument), rd = a0 (the result). `writes_rd` is 1 when the
//! instruction has an rd other than x0.
//!
//! # Constraints
//! None: the table is fixed; only its multiplicities are witnessed.
//!
//! # Bus interactions
//! Sends `(pc, opcode, rd, rs1, rs2, imm, writes_rd)` on PROGRAM with multiplicity `mult`.

use std::sync::Arc;

use stark::RowMajorMatrix;
use stark::air::{Air, AirBuilder};
use stark::field::F;

use super::{bus, f};
use crate::decode::{Instruction, Opcode};
use crate::machine::reg;
use crate::program::Program;

pub const PC: usize = 0;
pub const OPCODE: usize = 1;
pub const RD: usize = 2;
pub const RS1: usize = 3;
pub const RS2: usize = 4;
pub const IMM: usize = 5;
pub const WRITES_RD: usize = 6;
pub const PREP_WIDTH: usize = 7;
pub const MULT: usize = 0;
pub const MAIN_WIDTH: usize = 1;

/// The register fields the AIR uses for an instruction: (rd, rs1, rs2, writes_rd).
pub fn register_fields(insn: &Instruction) -> (u8, u8, u8, bool) {
    match insn.opcode {
        Opcode::Ecall => (reg::A0 as u8, reg::A7 as u8, reg::A0 as u8, true),
        _ => (
            insn.rd,
            insn.rs1,
            insn.rs2,
            insn.rd != 0 && writes_rd(insn.opcode),
        ),
    }
}

fn writes_rd(op: Opcode) -> bool {
    use Opcode::*;
    !matches!(
        op,
        Beq | Bne | Blt | Bge | Bltu | Bgeu | Sb | Sh | Sw | Fence | Invalid
    )
}

/// The program table of one program.
pub struct ProgramTable {
    program: Arc<Program>,
}

impl ProgramTable {
    pub fn new(program: Arc<Program>) -> Self {
        ProgramTable { program }
    }

    /// The program the table describes.
    pub fn program(&self) -> &Arc<Program> {
        &self.program
    }

    /// Rows the table needs (a power of two, at least 2).
    pub fn height(&self) -> usize {
        self.program.code.len().next_power_of_two().max(2)
    }

    /// Row of the instruction at `pc`, if pc is a program word.
    pub fn row_of(program: &Program, pc: u32) -> Option<usize> {
        let offset = pc.checked_sub(program.code_base)?;
        (offset % 4 == 0 && ((offset / 4) as usize) < program.code.len())
            .then_some((offset / 4) as usize)
    }
}

impl Air for ProgramTable {
    fn name(&self) -> &str {
        "program"
    }
    fn main_width(&self) -> usize {
        MAIN_WIDTH
    }
    fn preprocessed_width(&self) -> usize {
        PREP_WIDTH
    }
    fn preprocessed_trace(&self, height: usize) -> Option<RowMajorMatrix<F>> {
        let mut values = vec![F::default(); height * PREP_WIDTH];
        for (row, chunk) in values.chunks_exact_mut(PREP_WIDTH).enumerate() {
            chunk[OPCODE] = f(Opcode::Invalid as u64);
            let Some(insn) = self.program.code.get(row) else {
                continue;
            };
            chunk[PC] = f(self.program.code_base as u64 + 4 * row as u64);
            if insn.opcode == Opcode::Invalid {
                continue;
            }
            let (rd, rs1, rs2, writes) = register_fields(insn);
            chunk[OPCODE] = f(insn.opcode as u64);
            chunk[RD] = f(rd as u64);
            chunk[RS1] = f(rs1 as u64);
            chunk[RS2] = f(rs2 as u64);
            chunk[IMM] = f(insn.imm as u64);
            chunk[WRITES_RD] = f(writes as u64);
        }
        Some(RowMajorMatrix::new(values, PREP_WIDTH))
    }
    fn eval(&self, b: &mut AirBuilder) {
        let tuple: Vec<_> = (0..PREP_WIDTH).map(|c| b.prep(c)).collect();
        let mult = b.main(MULT);
        b.send(bus::PROGRAM, &tuple, mult);
    }
}
