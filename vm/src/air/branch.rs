//! The BRANCH chip: BEQ and BNE.
//!
//! # Columns (main)
//! `f_beq, f_bne` (opcode flags), `pc, clk, a, b` (rs1 and rs2 values), `imm`, `inv`, `eq`,
//! `taken`, `carry`, `next_pc`.
//!
//! # Constraints
//! - flags boolean, at most one set (`is_real`); `carry` boolean.
//! - `is_real ((a - b) * inv - (1 - eq)) = 0` and `eq * (a - b) = 0`: eq is 1 exactly when a = b.
//! - `taken = f_beq * eq + f_bne * (1 - eq)`.
//! - on real rows, `next_pc = pc + 4 + taken * (imm - 4) - carry * 2^32` (the target wraps mod 2^32; a wrong
//!   carry gives a next_pc outside the program, which cannot be fetched).
//!
//! # Bus interactions (multiplicity `is_real`)
//! - ALU: receive `(opcode, pc, clk, a, b, imm, 0, next_pc)`.

use stark::air::{Air, AirBuilder};
use stark::field::{F, Field, PrimeCharacteristicRing};

use super::{AluTuple, c, f, opcode_flags};
use crate::Opcode;

pub const F_BEQ: usize = 0;
pub const F_BNE: usize = 1;
pub const PC: usize = 2;
pub const CLK: usize = 3;
pub const A: usize = 4;
pub const B: usize = 5;
pub const IMM: usize = 6;
pub const INV: usize = 7;
pub const EQ: usize = 8;
pub const TAKEN: usize = 9;
pub const CARRY: usize = 10;
pub const NEXT_PC: usize = 11;
pub const WIDTH: usize = 12;

/// The BRANCH chip.
pub struct BranchChip;

impl Air for BranchChip {
    fn name(&self) -> &str {
        "branch"
    }
    fn main_width(&self) -> usize {
        WIDTH
    }
    fn eval(&self, b: &mut AirBuilder) {
        let (is_real, opcode) = opcode_flags(b, &[(F_BEQ, Opcode::Beq), (F_BNE, Opcode::Bne)]);
        let (beq, bne) = (b.main(F_BEQ), b.main(F_BNE));
        let (pc, clk, a, x, imm) = (b.main(PC), b.main(CLK), b.main(A), b.main(B), b.main(IMM));
        let (inv, eq, taken, carry, next_pc) = (
            b.main(INV),
            b.main(EQ),
            b.main(TAKEN),
            b.main(CARRY),
            b.main(NEXT_PC),
        );
        let diff = a.clone() - x.clone();
        b.assert_zero(is_real.clone() * (diff.clone() * inv - (c(1) - eq.clone())));
        b.assert_zero(eq.clone() * diff);
        b.assert_zero(taken.clone() - beq * eq.clone() - bne * (c(1) - eq));
        b.assert_zero(carry.bool_check());
        b.assert_zero(
            is_real.clone()
                * (next_pc.clone() - pc.clone() - c(4) - taken * (imm.clone() - c(4))
                    + carry * c(1 << 32)),
        );
        AluTuple {
            opcode,
            pc,
            clk,
            rs1_val: a,
            rs2_val: x,
            imm,
            rd_val: c(0),
            next_pc,
        }
        .receive(b, is_real);
    }
}

/// The chip row for one branch.
pub fn row(op: Opcode, pc: u32, clk: u64, a: u32, x: u32, imm: u32, next_pc: u32) -> [F; WIDTH] {
    let mut r = [F::ZERO; WIDTH];
    r[if op == Opcode::Beq { F_BEQ } else { F_BNE }] = F::ONE;
    let eq = a == x;
    let taken = eq == (op == Opcode::Beq);
    r[PC] = f(pc as u64);
    r[CLK] = f(clk);
    r[A] = f(a as u64);
    r[B] = f(x as u64);
    r[IMM] = f(imm as u64);
    r[INV] = if eq {
        F::ZERO
    } else {
        (f(a as u64) - f(x as u64)).inverse()
    };
    r[EQ] = f(eq as u64);
    r[TAKEN] = f(taken as u64);
    r[CARRY] = f((taken && pc as u64 + imm as u64 >= 1 << 32) as u64);
    r[NEXT_PC] = f(next_pc as u64);
    r
}
