//! The DIV chip: DIV, DIVU, REM, REMU, with the spec's results for division by zero
//! (quotient all ones, remainder the dividend) and for INT_MIN / -1 (quotient INT_MIN,
//! remainder 0).
//!
//! # Columns (main)
//! Opcode flags `f_div, f_divu, f_rem, f_remu`; `pc, clk`; dividend `a`, divisor `b`, quotient
//! `q`, remainder `r`, each as `lo, mid, top` (16 + 15 + 1 bits); `sa, sb, sq, sr` (their sign
//! bits for the signed operations, 0 otherwise); `p2, p3` (high limbs of `q * b + r`); carries
//! `k0_lo .. k3_hi`; `b_inv, divz, ovf`; `d_lo, d_hi` (limbs of `|b| - |r| - 1`); `rd_val`.
//!
//! # Constraints
//! - flags boolean, at most one set (`is_real`); tops boolean; with `signed = f_div + f_rem`,
//!   `s_x = signed * top_x` for x in a, b, q, r.
//! - `q * b + r = (a_lo, a_hi, p2, p3)` mod 2^64 over sign-extended limbs (see
//!   [`super::product`]), and unless `ovf`, `p2 = p3 = 0xffff sa`: the integer equation
//!   `a = q b + r` (the only overflow, INT_MIN / -1, holds mod 2^32 and sets `ovf`).
//! - `ovf` boolean and only for INT_MIN / -1: `ovf (a - 2^31) = ovf (b - (2^32 - 1)) =
//!   ovf (1 - signed) = 0` (when that case occurs no witness without ovf exists).
//! - `b * b_inv = is_real - divz`, `divz * b = 0`: divz is [b = 0]; then `divz (q - (2^32 - 1)) = 0`
//!   and the product equation gives r = a.
//! - remainder: `(is_real - divz)(|b| - |r| - 1 - d_lo - 2^16 d_hi) = 0` with
//!   `|x| = x + s_x (2^32 - 2x)`, and `(sr - sa) r = 0` (a nonzero remainder takes the
//!   dividend's sign): together the truncating division of the spec, and unique.
//! - `rd_val = (f_div + f_divu) q + (f_rem + f_remu) r`.
//!
//! # Bus interactions (multiplicity `is_real`)
//! - ALU: receive `(opcode, pc, clk, a, b, 0, rd_val, pc + 4)`.
//! - RANGE16: the lo, mid and 2 mid of a, b, q, r; `p2, p3`; carry pieces; `d_lo, d_hi`.

use stark::air::{Air, AirBuilder, Expr};
use stark::field::{F, Field, PrimeCharacteristicRing};

use super::mul::{check_carries, put_carries};
use super::product::{Operand, assert_product, product_witness};
use super::{AluTuple, LIMB, bus, c, chip_row, f, opcode_flags, put_word, split_word};
use crate::Opcode;

pub const F_DIV: usize = 0;
pub const F_DIVU: usize = 1;
pub const F_REM: usize = 2;
pub const F_REMU: usize = 3;
pub const PC: usize = 4;
pub const CLK: usize = 5;
pub const A_LO: usize = 6;
pub const B_LO: usize = 9;
pub const Q_LO: usize = 12;
pub const R_LO: usize = 15;
pub const SA: usize = 18;
pub const SB: usize = 19;
pub const SQ: usize = 20;
pub const SR: usize = 21;
pub const P2: usize = 22;
pub const P3: usize = 23;
pub const K0: usize = 24;
pub const B_INV: usize = 32;
pub const DIVZ: usize = 33;
pub const OVF: usize = 34;
pub const D_LO: usize = 35;
pub const D_HI: usize = 36;
pub const RD_VAL: usize = 37;
pub const WIDTH: usize = 38;

const FLAGS: [(usize, Opcode); 4] = [
    (F_DIV, Opcode::Div),
    (F_DIVU, Opcode::Divu),
    (F_REM, Opcode::Rem),
    (F_REMU, Opcode::Remu),
];

/// The chip.
pub struct DivChip;

impl Air for DivChip {
    fn name(&self) -> &str {
        "div"
    }
    fn main_width(&self) -> usize {
        WIDTH
    }
    fn eval(&self, b: &mut AirBuilder) {
        let (is_real, opcode) = opcode_flags(b, &FLAGS);
        let m = |b: &mut AirBuilder, i| b.main(i);
        let signed = m(b, F_DIV) + m(b, F_REM);
        let mut values = Vec::new();
        let mut operands = Vec::new();
        for (lo, s) in [(A_LO, SA), (B_LO, SB), (Q_LO, SQ), (R_LO, SR)] {
            let (value, hi, top) = split_word(b, lo, &is_real);
            let sign = b.main(s);
            b.assert_zero(sign.clone() - signed.clone() * top);
            operands.push(Operand {
                lo: b.main(lo),
                hi,
                ext: sign.clone(),
            });
            values.push((value, sign));
        }
        let [(a, sa), (x, sb), (q, _), (r, sr)]: [(Expr, Expr); 4] =
            values.try_into().expect("four operands");
        let [a_op, b_op, q_op, r_op]: [Operand; 4] = operands.try_into().expect("four operands");

        let (p2, p3, ovf, divz, b_inv) = (m(b, P2), m(b, P3), m(b, OVF), m(b, DIVZ), m(b, B_INV));
        b.send(bus::RANGE16, std::slice::from_ref(&p2), is_real.clone());
        b.send(bus::RANGE16, std::slice::from_ref(&p3), is_real.clone());
        let carries = check_carries(b, K0, &is_real);
        let out = [a_op.lo.clone(), a_op.hi.clone(), p2.clone(), p3.clone()];
        assert_product(b, &q_op, &b_op, &r_op, &out, &carries);
        let top = sa.clone() * c(0xffff);
        b.assert_zero((c(1) - ovf.clone()) * (p2 - top.clone()));
        b.assert_zero((c(1) - ovf.clone()) * (p3 - top));

        b.assert_zero(ovf.bool_check());
        b.assert_zero(ovf.clone() * (a.clone() - c(1 << 31)));
        b.assert_zero(ovf.clone() * (x.clone() - c(u32::MAX as u64)));
        b.assert_zero(ovf * (c(1) - signed));

        // `is_real - divz` rather than `1 - divz`: padding rows are all zero.
        b.assert_zero(x.clone() * b_inv - (is_real.clone() - divz.clone()));
        b.assert_zero(divz.clone() * x.clone());
        b.assert_zero(divz.clone() * (q.clone() - c(u32::MAX as u64)));

        let abs = |v: &Expr, s: &Expr| v.clone() + s.clone() * (c(1 << 32) - v.clone() * c(2));
        let (d_lo, d_hi) = (m(b, D_LO), m(b, D_HI));
        b.assert_zero(
            (is_real.clone() - divz)
                * (abs(&x, &sb) - abs(&r, &sr) - c(1) - d_lo.clone() - d_hi.clone() * c(LIMB)),
        );
        b.send(bus::RANGE16, &[d_lo], is_real.clone());
        b.send(bus::RANGE16, &[d_hi], is_real.clone());
        b.assert_zero((sr - sa) * r.clone());

        let rd_val = m(b, RD_VAL);
        let quotient = m(b, F_DIV) + m(b, F_DIVU);
        let remainder = m(b, F_REM) + m(b, F_REMU);
        b.assert_zero(rd_val.clone() - quotient * q - remainder * r);
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

/// The chip row for one division, and its range-checked values.
pub fn row(op: Opcode, pc: u32, clk: u64, a: u32, x: u32) -> ([F; WIDTH], Vec<u64>) {
    use crate::machine::{div_signed, rem_signed};
    let (q, r) = if matches!(op, Opcode::Div | Opcode::Rem) {
        (div_signed(a, x), rem_signed(a, x))
    } else {
        (
            a.checked_div(x).unwrap_or(u32::MAX),
            if x == 0 { a } else { a % x },
        )
    };
    row_with(op, pc, clk, a, x, q, r)
}

/// A row claiming quotient `q` and remainder `r` (tests forge these).
#[allow(clippy::too_many_arguments)]
pub fn row_with(
    op: Opcode,
    pc: u32,
    clk: u64,
    a: u32,
    x: u32,
    q: u32,
    r: u32,
) -> ([F; WIDTH], Vec<u64>) {
    let signed = matches!(op, Opcode::Div | Opcode::Rem);
    let sign = |v: u32| signed && v >> 31 == 1;
    let (sa, sb, sq, sr) = (sign(a), sign(x), sign(q), sign(r));
    let (p, carries) = product_witness((q, sq), (x, sb), (r, sr));
    let mut row: [F; WIDTH] = chip_row(&FLAGS, op, PC, pc, clk);
    let mut checks = Vec::with_capacity(20);
    for (lo, v) in [(A_LO, a), (B_LO, x), (Q_LO, q), (R_LO, r)] {
        checks.extend(put_word(&mut row, lo, v));
    }
    row[SA] = f(sa as u64);
    row[SB] = f(sb as u64);
    row[SQ] = f(sq as u64);
    row[SR] = f(sr as u64);
    row[P2] = f(p[2]);
    row[P3] = f(p[3]);
    checks.extend([p[2], p[3]]);
    checks.extend(put_carries(&mut row, K0, carries));
    row[B_INV] = if x == 0 {
        F::ZERO
    } else {
        f(x as u64).inverse()
    };
    row[DIVZ] = f((x == 0) as u64);
    row[OVF] = f((signed && a == 1 << 31 && x == u32::MAX) as u64);
    let abs = |v: u32, s: bool| {
        if s {
            (v as i32).unsigned_abs() as u64
        } else {
            v as u64
        }
    };
    // A forged remainder may be too large: the limbs then leave the 16-bit range.
    let d = if x == 0 {
        0
    } else {
        abs(x, sb).wrapping_sub(abs(r, sr)).wrapping_sub(1)
    };
    row[D_LO] = f(d & 0xffff);
    row[D_HI] = f(d >> 16);
    checks.extend([d & 0xffff, d >> 16]);
    let quotient = matches!(op, Opcode::Div | Opcode::Divu);
    row[RD_VAL] = f(if quotient { q } else { r } as u64);
    (row, checks)
}
