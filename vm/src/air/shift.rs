//! The SHIFT chip: SLL, SRL, SRA and their immediate forms, one product a row.
//!
//! # Columns (main)
//! Opcode flags `f_sll, f_srl, f_sra, f_slli, f_srli, f_srai`; `pc, clk, rs2_val, imm`;
//! `a_lo, a_mid, a_sign`, the operand `a` as 16 + 15 + 1 bits; `shamt, rest_lo, rest_hi`, the
//! shift amount and the operand above bit 5; `pow = 2^shamt, q = 2^(31 - shamt)`; `r_lo, r_hi`,
//! the result `R` (the `rd` value of every opcode); `o_lo, o_hi`, the bits `O` the shift drops.
//!
//! # Constraints
//! - flags boolean, at most one set (`is_real`); `a_sign` boolean.
//! - `rs2_val + imm = shamt + 32 (rest_lo + 2^16 rest_hi)`: the shift uses the low five bits of
//!   the operand (`shamt < 32` from the lookup below).
//! - `is_real (pow q - 2^31) = 0`: the lookup lands on one of the byte table's 32 power rows,
//!   not on its rows of zeros.
//! - left shifts: `a pow = R + 2^32 O`.
//! - logical right shifts: `a q = O + 2^31 R`.
//! - arithmetic right shifts: `(a + 2^31 - 2^32 a_sign) q = O + 2^31 (R + q - 2^32 a_sign)`:
//!   the biased word `a xor 2^31` shifted logically, less `2^(31 - shamt)`, modulo 2^32.
//!
//! With `R < 2^32` and `O < 2^31` every side is an integer below p, so each equation is exact
//! and its split unique: `R` is `a << shamt` mod 2^32, `a >> shamt`, or the arithmetic shift
//! (the other candidate of the last one, the product minus p, lies below what
//! `R >= q - 2^32` allows). `O < 2^31` takes three checks: with `o_lo, 2 o_hi` alone, `o_hi`
//! could be `(v + p) / 2` for an odd `v`, and a right shift whose `O` is below 2^15 would then
//! admit `O + 2^31` beside `R - 1`.
//!
//! # Bus interactions (multiplicity `is_real`)
//! - ALU: receive `(opcode, pc, clk, a, rs2_val, imm, R, pc + 4)`.
//! - BYTE: send `(POW, shamt, pow, q)` ([`super::bytes`]).
//! - RANGE16: `rest_lo, 32 rest_hi, r_lo, r_hi, o_lo, o_hi, 2 o_hi`, and `a_lo, a_mid, 2 a_mid`
//!   (see [`super::split_word`]).

use stark::air::{Air, AirBuilder};
use stark::field::F;

use super::{AluTuple, LIMB, bus, bytes, c, chip_row, f, opcode_flags, put_word, split_word};
use crate::Opcode;

pub const F_SLL: usize = 0;
pub const F_SRL: usize = 1;
pub const F_SRA: usize = 2;
pub const F_SLLI: usize = 3;
pub const F_SRLI: usize = 4;
pub const F_SRAI: usize = 5;
pub const PC: usize = 6;
pub const CLK: usize = 7;
pub const RS2_VAL: usize = 8;
pub const IMM: usize = 9;
pub const A_LO: usize = 10;
pub const A_MID: usize = 11;
pub const A_SIGN: usize = 12;
pub const SHAMT: usize = 13;
pub const REST_LO: usize = 14;
pub const REST_HI: usize = 15;
pub const POW: usize = 16;
pub const Q: usize = 17;
pub const R_LO: usize = 18;
pub const R_HI: usize = 19;
pub const O_LO: usize = 20;
pub const O_HI: usize = 21;
pub const WIDTH: usize = 22;

const FLAGS: [(usize, Opcode); 6] = [
    (F_SLL, Opcode::Sll),
    (F_SRL, Opcode::Srl),
    (F_SRA, Opcode::Sra),
    (F_SLLI, Opcode::Slli),
    (F_SRLI, Opcode::Srli),
    (F_SRAI, Opcode::Srai),
];

/// The SHIFT chip.
pub struct ShiftChip;

impl Air for ShiftChip {
    fn name(&self) -> &str {
        "shift"
    }
    fn main_width(&self) -> usize {
        WIDTH
    }
    fn eval(&self, b: &mut AirBuilder) {
        let (is_real, opcode) = opcode_flags(b, &FLAGS);
        let m = |b: &mut AirBuilder, i| b.main(i);
        let left = m(b, F_SLL) + m(b, F_SLLI);
        let srl = m(b, F_SRL) + m(b, F_SRLI);
        let sra = m(b, F_SRA) + m(b, F_SRAI);
        let (pc, clk, rs2_val, imm) = (m(b, PC), m(b, CLK), m(b, RS2_VAL), m(b, IMM));
        let (a, _, sign) = split_word(b, A_LO, &is_real);
        let (shamt, rest_lo, rest_hi) = (m(b, SHAMT), m(b, REST_LO), m(b, REST_HI));
        b.assert_zero(
            rs2_val.clone() + imm.clone()
                - shamt.clone()
                - (rest_lo.clone() + rest_hi.clone() * c(LIMB)) * c(32),
        );
        let (pow, q) = (m(b, POW), m(b, Q));
        b.assert_zero(is_real.clone() * (pow.clone() * q.clone() - c(1 << 31)));
        let (r_lo, r_hi, o_lo, o_hi) = (m(b, R_LO), m(b, R_HI), m(b, O_LO), m(b, O_HI));
        let r = r_lo.clone() + r_hi.clone() * c(LIMB);
        let o = o_lo.clone() + o_hi.clone() * c(LIMB);
        b.assert_zero(left * (a.clone() * pow.clone() - r.clone() - o.clone() * c(1 << 32)));
        b.assert_zero(srl * (a.clone() * q.clone() - o.clone() - r.clone() * c(1 << 31)));
        let signed = sign * c(1 << 32);
        b.assert_zero(
            sra * ((a.clone() + c(1 << 31) - signed.clone()) * q.clone()
                - o
                - (r.clone() + q.clone() - signed) * c(1 << 31)),
        );
        b.send(bus::BYTE, &[c(bytes::POW), shamt, pow, q], is_real.clone());
        let checks = [
            rest_lo,
            rest_hi * c(32),
            r_lo,
            r_hi,
            o_lo,
            o_hi.clone(),
            o_hi * c(2),
        ];
        for v in checks {
            b.send(bus::RANGE16, &[v], is_real.clone());
        }
        let next_pc = pc.clone() + c(4);
        AluTuple {
            opcode,
            pc,
            clk,
            rs1_val: a,
            rs2_val,
            imm,
            rd_val: r,
            next_pc,
        }
        .receive(b, is_real);
    }
}

/// The shift amount of an operand (`rs2_val + imm`): its low five bits.
pub fn shamt(rs2_val: u32, imm: u32) -> u32 {
    rs2_val.wrapping_add(imm) & 31
}

/// The chip row for one shift, and the 16-bit values it range checks.
pub fn row(
    op: Opcode,
    pc: u32,
    clk: u64,
    a: u32,
    rs2_val: u32,
    imm: u32,
    rd_val: u32,
) -> ([F; WIDTH], [u64; 10]) {
    use Opcode::*;
    let s = shamt(rs2_val, imm);
    let rest = rs2_val.wrapping_add(imm) >> 5;
    let (pow, q) = (1u64 << s, 1u64 << (31 - s));
    // The bits the shift drops: above bit 31 of `a pow`, or below bit 31 of `a q` (of the
    // biased word for SRA).
    let o = match op {
        Sll | Slli => (a as u64 * pow) >> 32,
        Srl | Srli => (a as u64 * q) & 0x7fff_ffff,
        _ => ((a ^ 0x8000_0000) as u64 * q) & 0x7fff_ffff,
    };
    let mut r: [F; WIDTH] = chip_row(&FLAGS, op, PC, pc, clk);
    r[RS2_VAL] = f(rs2_val as u64);
    r[IMM] = f(imm as u64);
    let [al, am, am2] = put_word(&mut r, A_LO, a);
    r[SHAMT] = f(s as u64);
    r[REST_LO] = f((rest & 0xffff) as u64);
    r[REST_HI] = f((rest >> 16) as u64);
    r[POW] = f(pow);
    r[Q] = f(q);
    let limbs = [
        (rd_val & 0xffff) as u64,
        (rd_val >> 16) as u64,
        o & 0xffff,
        o >> 16,
    ];
    for (i, l) in limbs.iter().enumerate() {
        r[R_LO + i] = f(*l);
    }
    let checks = [
        (rest & 0xffff) as u64,
        32 * (rest >> 16) as u64,
        limbs[0],
        limbs[1],
        limbs[2],
        limbs[3],
        2 * limbs[3],
        al,
        am,
        am2,
    ];
    (r, checks)
}
