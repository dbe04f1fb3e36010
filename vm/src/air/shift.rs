//! The SHIFT chip: SLL, SRL, SRA and their immediate forms.
//!
//! # Columns (main)
//! Opcode flags `f_sll, f_srl, f_sra, f_slli, f_srli, f_srai`; `pc, clk, a, rs2_val, imm, rd_val`;
//! `shamt, s0..s4` (the shift amount and its bits), `rest_lo, rest_hi` (the operand above bit 5);
//! `p1, p2, p3, pow` (2^shamt built bit by bit), `powr` (2^(32 - shamt)); `x_lo, x_hi, y_lo, y_hi,
//! z_lo, z_hi` (three 32-bit values X, Y, Z as limbs); `a_lo, a_mid, a_sign`.
//!
//! # Constraints
//! - flags boolean, at most one set (`is_real`); `s_i, a_sign` boolean.
//! - `rs2_val + imm = shamt + 32 (rest_lo + 2^16 rest_hi)`, `shamt = sum 2^i s_i`: the shift uses
//!   the low five bits of the operand.
//! - on real rows: `p1 = (1 + s0)(1 + 3 s1)`, `p2 = p1 (1 + 15 s2)`, `p3 = p2 (1 + 255 s3)`,
//!   `pow = p3 (1 + 65535 s4)`, `pow * powr = 2^32`.
//! - left shifts: `a * pow = X + 2^32 Y` (Y < 2^31 keeps the sum below p, so it is exact).
//! - right shifts: `a = X * pow + Y` and `Y * powr = Z`: Z < 2^32 forces Y < pow, so X is
//!   `a >> shamt`.
//! - `rd_val = (left + srl) X + sra (X + a_sign (2^32 - powr))`: arithmetic shifts fill the top
//!   shamt bits with the sign; `a = a_lo + 2^16 a_mid + 2^31 a_sign`.
//!
//! # Bus interactions (multiplicity `is_real`)
//! - ALU: receive `(opcode, pc, clk, a, rs2_val, imm, rd_val, pc + 4)`.
//! - RANGE16: `rest_lo, 32 rest_hi, x_lo, x_hi, y_lo, 2 y_hi, z_lo, z_hi`, and `a_lo, 2 a_mid`
//!   `a_mid` (see [`super::split_word`]).

use stark::air::{Air, AirBuilder};
use stark::field::F;

use super::{AluTuple, LIMB, bus, c, chip_row, f, opcode_flags, put_word, split_word};
use crate::Opcode;

pub const F_SLL: usize = 0;
pub const F_SRL: usize = 1;
pub const F_SRA: usize = 2;
pub const F_SLLI: usize = 3;
pub const F_SRLI: usize = 4;
pub const F_SRAI: usize = 5;
pub const PC: usize = 6;
pub const CLK: usize = 7;
pub const A: usize = 8;
pub const RS2_VAL: usize = 9;
pub const IMM: usize = 10;
pub const RD_VAL: usize = 11;
pub const SHAMT: usize = 12;
pub const S0: usize = 13;
pub const REST_LO: usize = 18;
pub const REST_HI: usize = 19;
pub const P1: usize = 20;
pub const P2: usize = 21;
pub const P3: usize = 22;
pub const POW: usize = 23;
pub const POWR: usize = 24;
pub const X_LO: usize = 25;
pub const X_HI: usize = 26;
pub const Y_LO: usize = 27;
pub const Y_HI: usize = 28;
pub const Z_LO: usize = 29;
pub const Z_HI: usize = 30;
pub const A_LO: usize = 31;
pub const A_MID: usize = 32;
pub const A_SIGN: usize = 33;
pub const WIDTH: usize = 34;

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
        let (pc, clk, a, rs2_val, imm, rd_val) = (
            m(b, PC),
            m(b, CLK),
            m(b, A),
            m(b, RS2_VAL),
            m(b, IMM),
            m(b, RD_VAL),
        );
        let s: Vec<_> = (0..5).map(|i| b.main(S0 + i)).collect();
        for bit in &s {
            b.assert_zero(bit.bool_check());
        }
        let shamt = m(b, SHAMT);
        b.assert_zero(shamt.clone() - (0..5).fold(c(0), |acc, i| acc + s[i].clone() * c(1 << i)));
        let (rest_lo, rest_hi) = (m(b, REST_LO), m(b, REST_HI));
        b.assert_zero(
            rs2_val.clone() + imm.clone()
                - shamt
                - (rest_lo.clone() + rest_hi.clone() * c(LIMB)) * c(32),
        );
        let (p1, p2, p3, pow, powr) = (m(b, P1), m(b, P2), m(b, P3), m(b, POW), m(b, POWR));
        // Padding rows are all zero, so the power chain only binds real rows.
        let real = is_real.clone();
        b.assert_zero(
            real.clone() * (p1.clone() - (c(1) + s[0].clone()) * (c(1) + s[1].clone() * c(3))),
        );
        b.assert_zero(real.clone() * (p2.clone() - p1 * (c(1) + s[2].clone() * c(15))));
        b.assert_zero(real.clone() * (p3.clone() - p2 * (c(1) + s[3].clone() * c(255))));
        b.assert_zero(real.clone() * (pow.clone() - p3 * (c(1) + s[4].clone() * c(65535))));
        b.assert_zero(real * (pow.clone() * powr.clone() - c(1 << 32)));
        let limb = |b: &mut AirBuilder, lo: usize| b.main(lo) + b.main(lo + 1) * c(LIMB);
        let (x, y, z) = (limb(b, X_LO), limb(b, Y_LO), limb(b, Z_LO));
        b.assert_zero(
            left.clone() * (a.clone() * pow.clone() - x.clone() - y.clone() * c(1 << 32)),
        );
        b.assert_zero((srl.clone() + sra.clone()) * (a.clone() - x.clone() * pow - y.clone()));
        b.assert_zero(y * powr.clone() - z);
        let (word, _, a_sign) = split_word(b, A_LO, &is_real);
        b.assert_zero(a.clone() - word);
        b.assert_zero(
            rd_val.clone() - (left + srl) * x.clone() - sra * (x + a_sign * (c(1 << 32) - powr)),
        );
        let checks = [
            rest_lo,
            rest_hi * c(32),
            m(b, X_LO),
            m(b, X_HI),
            m(b, Y_LO),
            m(b, Y_HI) * c(2),
            m(b, Z_LO),
            m(b, Z_HI),
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
            rd_val,
            next_pc,
        }
        .receive(b, is_real);
    }
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
) -> ([F; WIDTH], [u64; 11]) {
    use Opcode::*;
    let operand = rs2_val.wrapping_add(imm);
    let shamt = operand & 31;
    let rest = operand >> 5;
    let pow = 1u64 << shamt;
    let (x, y) = if matches!(op, Sll | Slli) {
        let p = a as u64 * pow;
        (p & 0xffff_ffff, p >> 32)
    } else {
        ((a >> shamt) as u64, a as u64 & (pow - 1))
    };
    let z = y << (32 - shamt);
    let mut r: [F; WIDTH] = chip_row(&FLAGS, op, PC, pc, clk);
    r[A] = f(a as u64);
    r[RS2_VAL] = f(rs2_val as u64);
    r[IMM] = f(imm as u64);
    r[RD_VAL] = f(rd_val as u64);
    r[SHAMT] = f(shamt as u64);
    for i in 0..5 {
        r[S0 + i] = f(((shamt >> i) & 1) as u64);
    }
    r[REST_LO] = f((rest & 0xffff) as u64);
    r[REST_HI] = f((rest >> 16) as u64);
    let bit = |i: u32| ((shamt >> i) & 1) as u64;
    let p1 = (1 + bit(0)) * (1 + 3 * bit(1));
    let p2 = p1 * (1 + 15 * bit(2));
    let p3 = p2 * (1 + 255 * bit(3));
    r[P1] = f(p1);
    r[P2] = f(p2);
    r[P3] = f(p3);
    r[POW] = f(pow);
    r[POWR] = f(1u64 << (32 - shamt));
    let limbs = [
        x & 0xffff,
        x >> 16,
        y & 0xffff,
        y >> 16,
        z & 0xffff,
        z >> 16,
    ];
    for (i, l) in limbs.iter().enumerate() {
        r[X_LO + i] = f(*l);
    }
    let [al, am, am2] = put_word(&mut r, A_LO, a);
    let checks = [
        (rest & 0xffff) as u64,
        32 * (rest >> 16) as u64,
        limbs[0],
        limbs[1],
        limbs[2],
        2 * limbs[3],
        limbs[4],
        limbs[5],
        al,
        am,
        am2,
    ];
    (r, checks)
}
