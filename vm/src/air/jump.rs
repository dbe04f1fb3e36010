//! The JUMP chip: LUI, AUIPC, JAL and JALR, the instructions that compute an address.
//!
//! # Columns (main)
//! `f_lui, f_auipc, f_jal, f_jalr` (opcode flags), `pc, clk, rs1_val, imm, rd_val, next_pc`,
//! `u_lo, u_hi` (16-bit limbs of the 32-bit sum u), `carry`, `lowbit`.
//!
//! # Constraints
//! - flags boolean, at most one set (`is_real`); `carry`, `lowbit` boolean.
//! - `u + carry * 2^32 = (f_auipc + f_jal) * pc + f_jalr * rs1_val + imm`, `u = u_lo + 2^16 u_hi`
//!   (so u is the sum mod 2^32; for LUI, u = imm).
//! - `rd_val = f_lui * imm + f_auipc * u + (f_jal + f_jalr) * (pc + 4)`.
//! - `next_pc = (f_lui + f_auipc) * (pc + 4) + f_jal * u + f_jalr * (u - lowbit)`: JALR clears bit
//!   0. `lowbit` needs no more than being boolean: a wrong choice makes next_pc odd, and no
//!   program row has an odd pc, so the next instruction could not be fetched.
//!
//! # Bus interactions (multiplicity `is_real`)
//! - ALU: receive `(opcode, pc, clk, rs1_val, 0, imm, rd_val, next_pc)` (these instructions
//!   have rs2 = x0, which reads 0).
//! - RANGE16: send `u_lo`, `u_hi`.

use stark::air::{Air, AirBuilder};
use stark::field::F;

use super::{AluTuple, LIMB, bus, c, f, opcode_flags};
use crate::Opcode;

pub const F_LUI: usize = 0;
pub const F_AUIPC: usize = 1;
pub const F_JAL: usize = 2;
pub const F_JALR: usize = 3;
pub const PC: usize = 4;
pub const CLK: usize = 5;
pub const RS1_VAL: usize = 6;
pub const IMM: usize = 7;
pub const RD_VAL: usize = 8;
pub const NEXT_PC: usize = 9;
pub const U_LO: usize = 10;
pub const U_HI: usize = 11;
pub const CARRY: usize = 12;
pub const LOWBIT: usize = 13;
pub const WIDTH: usize = 14;

/// The JUMP chip.
pub struct JumpChip;

impl Air for JumpChip {
    fn name(&self) -> &str {
        "jump"
    }
    fn main_width(&self) -> usize {
        WIDTH
    }
    fn eval(&self, b: &mut AirBuilder) {
        let (is_real, opcode) = opcode_flags(
            b,
            &[
                (F_LUI, Opcode::Lui),
                (F_AUIPC, Opcode::Auipc),
                (F_JAL, Opcode::Jal),
                (F_JALR, Opcode::Jalr),
            ],
        );
        let (lui, auipc, jal, jalr) = (
            b.main(F_LUI),
            b.main(F_AUIPC),
            b.main(F_JAL),
            b.main(F_JALR),
        );
        let (pc, clk, rs1_val, imm) = (b.main(PC), b.main(CLK), b.main(RS1_VAL), b.main(IMM));
        let (rd_val, next_pc) = (b.main(RD_VAL), b.main(NEXT_PC));
        let (lo, hi, carry, lowbit) = (b.main(U_LO), b.main(U_HI), b.main(CARRY), b.main(LOWBIT));
        let u = lo.clone() + hi.clone() * c(LIMB);
        b.assert_zero(carry.bool_check());
        b.assert_zero(lowbit.bool_check());
        b.assert_zero(
            u.clone() + carry * c(1 << 32)
                - (auipc.clone() + jal.clone()) * pc.clone()
                - jalr.clone() * rs1_val.clone()
                - imm.clone(),
        );
        let link = pc.clone() + c(4);
        b.assert_zero(
            rd_val.clone()
                - lui.clone() * imm.clone()
                - auipc.clone() * u.clone()
                - (jal.clone() + jalr.clone()) * link.clone(),
        );
        b.assert_zero(
            next_pc.clone() - (lui + auipc) * link - jal * u.clone() - jalr * (u - lowbit),
        );
        b.send(bus::RANGE16, &[lo], is_real.clone());
        b.send(bus::RANGE16, &[hi], is_real.clone());
        AluTuple {
            opcode,
            pc,
            clk,
            rs1_val,
            rs2_val: c(0),
            imm,
            rd_val,
            next_pc,
        }
        .receive(b, is_real);
    }
}

/// The chip row for one instruction; `u` and its carry are recomputed from the operands.
pub fn row(
    op: Opcode,
    pc: u32,
    clk: u64,
    rs1_val: u32,
    imm: u32,
    rd_val: u32,
    next_pc: u32,
) -> [F; WIDTH] {
    let base = match op {
        Opcode::Lui => 0,
        Opcode::Jalr => rs1_val as u64,
        _ => pc as u64,
    };
    let sum = base + imm as u64;
    let u = sum & 0xffff_ffff;
    let mut r = [F::default(); WIDTH];
    r[match op {
        Opcode::Lui => F_LUI,
        Opcode::Auipc => F_AUIPC,
        Opcode::Jal => F_JAL,
        _ => F_JALR,
    }] = f(1);
    r[PC] = f(pc as u64);
    r[CLK] = f(clk);
    r[RS1_VAL] = f(rs1_val as u64);
    r[IMM] = f(imm as u64);
    r[RD_VAL] = f(rd_val as u64);
    r[NEXT_PC] = f(next_pc as u64);
    r[U_LO] = f(u & 0xffff);
    r[U_HI] = f(u >> 16);
    r[CARRY] = f(sum >> 32);
    r[LOWBIT] = f(if op == Opcode::Jalr { u & 1 } else { 0 });
    r
}
