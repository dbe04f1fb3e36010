//! The ADD chip: ADD, ADDI, SUB, and FENCE (a no-op: it adds x0 + 0 into no register).
//!
//! # Columns (main)
//! `f_add, f_addi, f_sub, f_fence` (opcode flags), `pc, clk, a` (rs1 value), `rs2_val, imm`,
//! `c_lo, c_hi` (16-bit limbs of the result), `carry`.
//!
//! The second operand is `b = rs2_val + imm`: ADD has imm = 0, and ADDI reads rs2 = x0, so
//! `b` is the right operand for both without a selector.
//!
//! # Constraints
//! - flags boolean, at most one set (`is_real` = their sum); `carry` boolean.
//! - add/addi/fence: `a + b = c + carry * 2^32`; sub: `a - b = c - carry * 2^32`, with
//!   `c = c_lo + 2^16 c_hi`.
//!
//! # Bus interactions (multiplicity `is_real`)
//! - ALU: receive `(opcode, pc, clk, a, rs2_val, imm, c, pc + 4)`.
//! - RANGE16: send `c_lo`, `c_hi` (so c is a u32).

use stark::air::{Air, AirBuilder};
use stark::field::F;

use super::{AluTuple, LIMB, bus, c, f, opcode_flags};
use crate::Opcode;

pub const F_ADD: usize = 0;
pub const F_ADDI: usize = 1;
pub const F_SUB: usize = 2;
pub const PC: usize = 3;
pub const CLK: usize = 4;
pub const A: usize = 5;
pub const RS2_VAL: usize = 6;
pub const IMM: usize = 7;
pub const C_LO: usize = 8;
pub const C_HI: usize = 9;
pub const CARRY: usize = 10;
pub const F_FENCE: usize = 11;
pub const WIDTH: usize = 12;

/// The ADD chip.
pub struct AddChip;

impl Air for AddChip {
    fn name(&self) -> &str {
        "add"
    }
    fn main_width(&self) -> usize {
        WIDTH
    }
    fn eval(&self, b: &mut AirBuilder) {
        let (is_real, opcode) = opcode_flags(
            b,
            &[
                (F_ADD, Opcode::Add),
                (F_ADDI, Opcode::Addi),
                (F_SUB, Opcode::Sub),
                (F_FENCE, Opcode::Fence),
            ],
        );
        let (f_add, f_addi, f_sub, f_fence) = (
            b.main(F_ADD),
            b.main(F_ADDI),
            b.main(F_SUB),
            b.main(F_FENCE),
        );
        let (pc, clk, a, rs2_val, imm) = (
            b.main(PC),
            b.main(CLK),
            b.main(A),
            b.main(RS2_VAL),
            b.main(IMM),
        );
        let (lo, hi, carry) = (b.main(C_LO), b.main(C_HI), b.main(CARRY));
        let result = lo.clone() + hi.clone() * c(LIMB);
        let operand = rs2_val.clone() + imm.clone();
        let wrap = carry.clone() * c(1 << 32);
        b.assert_zero(carry.bool_check());
        b.assert_zero(
            (f_add + f_addi + f_fence)
                * (a.clone() + operand.clone() - result.clone() - wrap.clone())
                + f_sub * (a.clone() - operand - result.clone() + wrap),
        );
        b.send(bus::RANGE16, &[lo], is_real.clone());
        b.send(bus::RANGE16, &[hi], is_real.clone());
        let next_pc = pc.clone() + c(4);
        AluTuple {
            opcode,
            pc,
            clk,
            rs1_val: a,
            rs2_val,
            imm,
            rd_val: result,
            next_pc,
        }
        .receive(b, is_real);
    }
}

/// The chip row for one instruction.
pub fn row(
    op: Opcode,
    pc: u32,
    clk: u64,
    a: u32,
    rs2_val: u32,
    imm: u32,
    result: u32,
) -> [F; WIDTH] {
    let operand = rs2_val as u64 + imm as u64;
    let carry = match op {
        Opcode::Sub => ((a as u64) < operand) as u64,
        _ => (a as u64 + operand) >> 32,
    };
    let mut r = [F::default(); WIDTH];
    r[match op {
        Opcode::Add => F_ADD,
        Opcode::Addi => F_ADDI,
        Opcode::Fence => F_FENCE,
        _ => F_SUB,
    }] = f(1);
    r[PC] = f(pc as u64);
    r[CLK] = f(clk);
    r[A] = f(a as u64);
    r[RS2_VAL] = f(rs2_val as u64);
    r[IMM] = f(imm as u64);
    r[C_LO] = f(result as u64 & 0xffff);
    r[C_HI] = f(result as u64 >> 16);
    r[CARRY] = f(carry);
    r
}
