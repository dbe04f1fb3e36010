//! The LT chip: the comparisons SLT, SLTU, SLTI, SLTIU and the branches BLT, BGE, BLTU, BGEU.
//!
//! # Columns (main)
//! Opcode flags `f_slt, f_sltu, f_slti, f_sltiu, f_blt, f_bge, f_bltu, f_bgeu`; `pc, clk`;
//! `a` (rs1 value), `rs2_val`, `imm`, `b` (the right operand); `a_lo, a_mid, a_sign` and
//! `b_lo, b_mid, b_sign` (each operand as 16 + 15 + 1 bits); `lt`; `d_lo, d_hi` (16-bit limbs of
//! the difference); `rd_val, taken, carry, next_pc`.
//!
//! # Constraints
//! - flags boolean, at most one set (`is_real`); `a_sign, b_sign, lt, carry` boolean.
//! - `b = rs2_val + set * imm` where `set = f_slt + f_sltu + f_slti + f_sltiu` (comparisons use
//!   the immediate as operand, branches as offset; R-type has imm = 0 and I-type reads x0).
//! - `a = a_lo + 2^16 a_mid + 2^31 a_sign`, likewise b.
//! - With `signed = f_slt + f_slti + f_blt + f_bge`, compare `x = a + signed (2^31 - 2^32 a_sign)`
//!   and `y` likewise (flipping the sign bit turns a signed comparison into an unsigned one):
//!   `x - y + 2^32 lt = d_lo + 2^16 d_hi`, so lt = [x < y].
//! - `rd_val = set * lt`; `taken = (f_blt + f_bltu) lt + (f_bge + f_bgeu)(1 - lt)`;
//!   on real rows `next_pc = pc + 4 + taken (imm - 4) - carry 2^32`.
//!
//! # Bus interactions (multiplicity `is_real`)
//! - ALU: receive `(opcode, pc, clk, a, rs2_val, imm, rd_val, next_pc)`.
//! - RANGE16: send `a_lo, a_mid, 2 a_mid, b_lo, b_mid, 2 b_mid` (so the mids are < 2^15), `d_lo, d_hi`.

use stark::air::{Air, AirBuilder};
use stark::field::F;

use super::{AluTuple, LIMB, bus, c, chip_row, f, opcode_flags, put_word, split_word};
use crate::Opcode;

pub const F_SLT: usize = 0;
pub const F_SLTU: usize = 1;
pub const F_SLTI: usize = 2;
pub const F_SLTIU: usize = 3;
pub const F_BLT: usize = 4;
pub const F_BGE: usize = 5;
pub const F_BLTU: usize = 6;
pub const F_BGEU: usize = 7;
pub const PC: usize = 8;
pub const CLK: usize = 9;
pub const A: usize = 10;
pub const RS2_VAL: usize = 11;
pub const IMM: usize = 12;
pub const B: usize = 13;
pub const A_LO: usize = 14;
pub const A_MID: usize = 15;
pub const A_SIGN: usize = 16;
pub const B_LO: usize = 17;
pub const B_MID: usize = 18;
pub const B_SIGN: usize = 19;
pub const LT: usize = 20;
pub const D_LO: usize = 21;
pub const D_HI: usize = 22;
pub const RD_VAL: usize = 23;
pub const TAKEN: usize = 24;
pub const CARRY: usize = 25;
pub const NEXT_PC: usize = 26;
pub const WIDTH: usize = 27;

const FLAGS: [(usize, Opcode); 8] = [
    (F_SLT, Opcode::Slt),
    (F_SLTU, Opcode::Sltu),
    (F_SLTI, Opcode::Slti),
    (F_SLTIU, Opcode::Sltiu),
    (F_BLT, Opcode::Blt),
    (F_BGE, Opcode::Bge),
    (F_BLTU, Opcode::Bltu),
    (F_BGEU, Opcode::Bgeu),
];

/// The LT chip.
pub struct LtChip;

impl Air for LtChip {
    fn name(&self) -> &str {
        "lt"
    }
    fn main_width(&self) -> usize {
        WIDTH
    }
    fn eval(&self, b: &mut AirBuilder) {
        let (is_real, opcode) = opcode_flags(b, &FLAGS);
        let m = |b: &mut AirBuilder, i| b.main(i);
        let set = m(b, F_SLT) + m(b, F_SLTU) + m(b, F_SLTI) + m(b, F_SLTIU);
        let signed = m(b, F_SLT) + m(b, F_SLTI) + m(b, F_BLT) + m(b, F_BGE);
        let (pc, clk, a, rs2_val, imm, x) = (
            m(b, PC),
            m(b, CLK),
            m(b, A),
            m(b, RS2_VAL),
            m(b, IMM),
            m(b, B),
        );
        let (lt, rd_val, taken, carry, next_pc) = (
            m(b, LT),
            m(b, RD_VAL),
            m(b, TAKEN),
            m(b, CARRY),
            m(b, NEXT_PC),
        );
        for col in [LT, CARRY] {
            let v = b.main(col);
            b.assert_zero(v.bool_check());
        }
        b.assert_zero(x.clone() - rs2_val.clone() - set.clone() * imm.clone());
        let mut biased = Vec::new();
        for (value, lo) in [(a.clone(), A_LO), (x, B_LO)] {
            let (word, _, sign) = split_word(b, lo, &is_real);
            b.assert_zero(value.clone() - word);
            biased.push(value + signed.clone() * (c(1 << 31) - sign * c(1 << 32)));
        }
        let (d_lo, d_hi) = (b.main(D_LO), b.main(D_HI));
        b.assert_zero(
            biased[0].clone() - biased[1].clone() + lt.clone() * c(1 << 32)
                - d_lo.clone()
                - d_hi.clone() * c(LIMB),
        );
        b.send(bus::RANGE16, &[d_lo], is_real.clone());
        b.send(bus::RANGE16, &[d_hi], is_real.clone());
        b.assert_zero(rd_val.clone() - set * lt.clone());
        let less = m(b, F_BLT) + m(b, F_BLTU);
        let greater_eq = m(b, F_BGE) + m(b, F_BGEU);
        b.assert_zero(taken.clone() - less * lt.clone() - greater_eq * (c(1) - lt));
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
            rs2_val,
            imm,
            rd_val,
            next_pc,
        }
        .receive(b, is_real);
    }
}

/// The chip row for one comparison or branch, and the 16-bit values it range checks.
#[allow(clippy::too_many_arguments)]
pub fn row(
    op: Opcode,
    pc: u32,
    clk: u64,
    a: u32,
    rs2_val: u32,
    imm: u32,
    rd_val: u32,
    next_pc: u32,
) -> ([F; WIDTH], [u64; 8]) {
    use Opcode::*;
    let set = matches!(op, Slt | Sltu | Slti | Sltiu);
    let signed = matches!(op, Slt | Slti | Blt | Bge);
    let x = if set {
        rs2_val.wrapping_add(imm)
    } else {
        rs2_val
    };
    let bias = |v: u32| {
        if signed {
            (v ^ 0x8000_0000) as u64
        } else {
            v as u64
        }
    };
    let lt = bias(a) < bias(x);
    let d = (bias(a) + ((lt as u64) << 32)) - bias(x);
    let taken = !set && (lt == matches!(op, Blt | Bltu));
    let mut r: [F; WIDTH] = chip_row(&FLAGS, op, PC, pc, clk);
    r[A] = f(a as u64);
    r[RS2_VAL] = f(rs2_val as u64);
    r[IMM] = f(imm as u64);
    r[B] = f(x as u64);
    let [al, am, am2] = put_word(&mut r, A_LO, a);
    let [bl, bm, bm2] = put_word(&mut r, B_LO, x);
    r[LT] = f(lt as u64);
    r[D_LO] = f(d & 0xffff);
    r[D_HI] = f(d >> 16);
    r[RD_VAL] = f(rd_val as u64);
    r[TAKEN] = f(taken as u64);
    r[CARRY] = f((taken && pc as u64 + imm as u64 >= 1 << 32) as u64);
    r[NEXT_PC] = f(next_pc as u64);
    (r, [al, am, am2, bl, bm, bm2, d & 0xffff, d >> 16])
}
