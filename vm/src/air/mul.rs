//! The MUL chip: MUL, MULH, MULHSU, MULHU.
//!
//! # Columns (main)
//! Opcode flags `f_mul, f_mulh, f_mulhsu, f_mulhu`; `pc, clk`; `a_lo, a_mid, a_top` and
//! `b_lo, b_mid, b_top` (each operand as 16 + 15 + 1 bits); `sa, sb` (sign-extension bits);
//! `p0..p3` (the 64-bit product's 16-bit limbs); `k0_lo, k0_hi, .. k3_lo, k3_hi` (carries);
//! `rd_val`.
//!
//! # Constraints
//! - flags boolean, at most one set (`is_real`); `a_top, b_top` boolean.
//! - `sa = (f_mulh + f_mulhsu) a_top`, `sb = f_mulh b_top`: MULH multiplies signed by signed,
//!   MULHSU signed by unsigned, MULHU and MUL unsigned (MUL's low word is the same either way).
//! - `p = a * b mod 2^64` with the operands sign-extended by sa, sb (see [`super::product`]).
//! - `rd_val = f_mul (p0 + 2^16 p1) + (f_mulh + f_mulhsu + f_mulhu)(p2 + 2^16 p3)`.
//!
//! # Bus interactions (multiplicity `is_real`)
//! - ALU: receive `(opcode, pc, clk, a, b, 0, rd_val, pc + 4)` with `a = a_lo + 2^16 (a_mid +
//!   2^15 a_top)`, likewise b.
//! - RANGE16: `a_lo, a_mid, 2 a_mid, b_lo, b_mid, 2 b_mid, p0..p3, k_i_lo, 2^12 k_i_hi` (carries < 2^20).

use stark::air::{Air, AirBuilder, Expr};
use stark::field::F;

use super::product::{Operand, assert_product, product_witness};
use super::{AluTuple, LIMB, bus, c, chip_row, f, opcode_flags, put_word, split_word};
use crate::Opcode;

pub const F_MUL: usize = 0;
pub const F_MULH: usize = 1;
pub const F_MULHSU: usize = 2;
pub const F_MULHU: usize = 3;
pub const PC: usize = 4;
pub const CLK: usize = 5;
pub const A_LO: usize = 6;
pub const A_MID: usize = 7;
pub const A_TOP: usize = 8;
pub const B_LO: usize = 9;
pub const B_MID: usize = 10;
pub const B_TOP: usize = 11;
pub const SA: usize = 12;
pub const SB: usize = 13;
pub const P0: usize = 14;
pub const K0: usize = 18;
pub const RD_VAL: usize = 26;
pub const WIDTH: usize = 27;

const FLAGS: [(usize, Opcode); 4] = [
    (F_MUL, Opcode::Mul),
    (F_MULH, Opcode::Mulh),
    (F_MULHSU, Opcode::Mulhsu),
    (F_MULHU, Opcode::Mulhu),
];

/// Range checks of a carry `lo + 2^16 hi < 2^20`.
pub(crate) fn check_carries(b: &mut AirBuilder, first: usize, is_real: &Expr) -> [(Expr, Expr); 4] {
    std::array::from_fn(|k| {
        let (lo, hi) = (b.main(first + 2 * k), b.main(first + 2 * k + 1));
        b.send(bus::RANGE16, std::slice::from_ref(&lo), is_real.clone());
        b.send(bus::RANGE16, &[hi.clone() * c(1 << 12)], is_real.clone());
        (lo, hi)
    })
}

/// The chip.
pub struct MulChip;

impl Air for MulChip {
    fn name(&self) -> &str {
        "mul"
    }
    fn main_width(&self) -> usize {
        WIDTH
    }
    fn eval(&self, b: &mut AirBuilder) {
        let (is_real, opcode) = opcode_flags(b, &FLAGS);
        let m = |b: &mut AirBuilder, i| b.main(i);
        let (mul, mulh, mulhsu, mulhu) = (m(b, F_MUL), m(b, F_MULH), m(b, F_MULHSU), m(b, F_MULHU));
        let (a, a_hi, a_top) = split_word(b, A_LO, &is_real);
        let (x, b_hi, b_top) = split_word(b, B_LO, &is_real);
        let (sa, sb) = (m(b, SA), m(b, SB));
        b.assert_zero(sa.clone() - (mulh.clone() + mulhsu.clone()) * a_top);
        b.assert_zero(sb.clone() - mulh.clone() * b_top);
        let p: [Expr; 4] = std::array::from_fn(|k| b.main(P0 + k));
        for limb in &p {
            b.send(bus::RANGE16, std::slice::from_ref(limb), is_real.clone());
        }
        let carries = check_carries(b, K0, &is_real);
        let (a_lo, b_lo) = (m(b, A_LO), m(b, B_LO));
        let zero = Operand {
            lo: c(0),
            hi: c(0),
            ext: c(0),
        };
        assert_product(
            b,
            &Operand {
                lo: a_lo,
                hi: a_hi,
                ext: sa,
            },
            &Operand {
                lo: b_lo,
                hi: b_hi,
                ext: sb,
            },
            &zero,
            &p,
            &carries,
        );
        let rd_val = m(b, RD_VAL);
        let low = p[0].clone() + p[1].clone() * c(LIMB);
        let high = p[2].clone() + p[3].clone() * c(LIMB);
        b.assert_zero(rd_val.clone() - mul * low - (mulh + mulhsu + mulhu) * high);
        let (pc, clk) = (m(b, PC), m(b, CLK));
        let next_pc = pc.clone() + c(4);
        AluTuple {
            opcode,
            pc,
            clk,
            rs1_val: a,
            rs2_val: x,
            imm: c(0),
            rd_val,
            next_pc,
        }
        .receive(b, is_real);
    }
}

/// Writes carries at `first`; returns their range-checked pieces.
pub(crate) fn put_carries(r: &mut [F], first: usize, carries: [u64; 4]) -> [u64; 8] {
    let mut checks = [0u64; 8];
    for (k, &carry) in carries.iter().enumerate() {
        r[first + 2 * k] = f(carry & 0xffff);
        r[first + 2 * k + 1] = f(carry >> 16);
        checks[2 * k] = carry & 0xffff;
        checks[2 * k + 1] = (carry >> 16) << 12;
    }
    checks
}

/// The chip row for one multiplication, and its range-checked values.
pub fn row(op: Opcode, pc: u32, clk: u64, a: u32, x: u32) -> ([F; WIDTH], Vec<u64>) {
    let sa = matches!(op, Opcode::Mulh | Opcode::Mulhsu) && a >> 31 == 1;
    let sb = op == Opcode::Mulh && x >> 31 == 1;
    row_with(op, pc, clk, a, x, sa, sb)
}

/// A row with the given sign-extension bits (tests forge these).
pub fn row_with(
    op: Opcode,
    pc: u32,
    clk: u64,
    a: u32,
    x: u32,
    sa: bool,
    sb: bool,
) -> ([F; WIDTH], Vec<u64>) {
    let (p, carries) = product_witness((a, sa), (x, sb), (0, false));
    let mut r: [F; WIDTH] = chip_row(&FLAGS, op, PC, pc, clk);
    let mut checks = Vec::with_capacity(16);
    checks.extend(put_word(&mut r, A_LO, a));
    checks.extend(put_word(&mut r, B_LO, x));
    r[SA] = f(sa as u64);
    r[SB] = f(sb as u64);
    for k in 0..4 {
        r[P0 + k] = f(p[k]);
    }
    checks.extend(p);
    checks.extend(put_carries(&mut r, K0, carries));
    let rd = if op == Opcode::Mul {
        p[0] | p[1] << 16
    } else {
        p[2] | p[3] << 16
    };
    r[RD_VAL] = f(rd);
    (r, checks)
}
