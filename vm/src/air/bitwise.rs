//! The BITWISE chip: AND, OR, XOR and their immediate forms, byte by byte through the byte table.
//!
//! # Columns (main)
//! Opcode flags `f_and, f_or, f_xor, f_andi, f_ori, f_xori`; `pc, clk, rs2_val, imm`;
//! `a0..a3, b0..b3, c0..c3`, the bytes of rs1, of the operand `b = rs2_val + imm` and of the
//! result.
//!
//! # Constraints
//! - flags boolean, at most one set (`is_real`).
//! - `rs2_val + imm = sum b_i 256^i` (R-type has imm = 0, I-type reads x0).
//!
//! # Bus interactions (multiplicity `is_real`)
//! - ALU: receive `(opcode, pc, clk, sum a_i 256^i, rs2_val, imm, sum c_i 256^i, pc + 4)`.
//! - BYTE: send `(op, a_i, b_i, c_i)` for each byte, `op = AND (f_and + f_andi) + OR (f_or + f_ori)
//!   + XOR (f_xor + f_xori)`: the table holds only true results, and only bytes.

use stark::air::{Air, AirBuilder, Expr};
use stark::field::F;

use super::{AluTuple, bus, bytes, c, chip_row, f, opcode_flags};
use crate::Opcode;

pub const F_AND: usize = 0;
pub const F_OR: usize = 1;
pub const F_XOR: usize = 2;
pub const F_ANDI: usize = 3;
pub const F_ORI: usize = 4;
pub const F_XORI: usize = 5;
pub const PC: usize = 6;
pub const CLK: usize = 7;
pub const RS2_VAL: usize = 8;
pub const IMM: usize = 9;
pub const A0: usize = 10;
pub const B0: usize = 14;
pub const C0: usize = 18;
pub const WIDTH: usize = 22;

const FLAGS: [(usize, Opcode); 6] = [
    (F_AND, Opcode::And),
    (F_OR, Opcode::Or),
    (F_XOR, Opcode::Xor),
    (F_ANDI, Opcode::Andi),
    (F_ORI, Opcode::Ori),
    (F_XORI, Opcode::Xori),
];

/// The BITWISE chip.
pub struct BitwiseChip;

fn word(b: &mut AirBuilder, first: usize) -> Expr {
    (0..4).fold(c(0), |acc, i| acc + b.main(first + i) * c(1 << (8 * i)))
}

impl Air for BitwiseChip {
    fn name(&self) -> &str {
        "bitwise"
    }
    fn main_width(&self) -> usize {
        WIDTH
    }
    fn eval(&self, b: &mut AirBuilder) {
        let (is_real, opcode) = opcode_flags(b, &FLAGS);
        let m = |b: &mut AirBuilder, i| b.main(i);
        let op = (m(b, F_AND) + m(b, F_ANDI)) * c(bytes::AND)
            + (m(b, F_OR) + m(b, F_ORI)) * c(bytes::OR)
            + (m(b, F_XOR) + m(b, F_XORI)) * c(bytes::XOR);
        let (pc, clk, rs2_val, imm) = (m(b, PC), m(b, CLK), m(b, RS2_VAL), m(b, IMM));
        let (a, x, result) = (word(b, A0), word(b, B0), word(b, C0));
        b.assert_zero(rs2_val.clone() + imm.clone() - x);
        for i in 0..4 {
            let tuple = [op.clone(), b.main(A0 + i), b.main(B0 + i), b.main(C0 + i)];
            b.send(bus::BYTE, &tuple, is_real.clone());
        }
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

/// The byte-table operation of a bitwise opcode.
pub fn byte_op(op: Opcode) -> u64 {
    match op {
        Opcode::And | Opcode::Andi => bytes::AND,
        Opcode::Or | Opcode::Ori => bytes::OR,
        _ => bytes::XOR,
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
    let mut r: [F; WIDTH] = chip_row(&FLAGS, op, PC, pc, clk);
    r[RS2_VAL] = f(rs2_val as u64);
    r[IMM] = f(imm as u64);
    let x = rs2_val.wrapping_add(imm);
    for i in 0..4 {
        r[A0 + i] = f((a >> (8 * i)) as u8 as u64);
        r[B0 + i] = f((x >> (8 * i)) as u8 as u64);
        r[C0 + i] = f((result >> (8 * i)) as u8 as u64);
    }
    r
}
