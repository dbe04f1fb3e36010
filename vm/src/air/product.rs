//! The 64-bit product used by the MUL and DIV chips: `X * Y + Z mod 2^64` over 16-bit limbs.
//!
//! Each operand is a 32-bit value given as limbs `(lo, hi)` plus a sign-extension bit `s`: as a
//! 64-bit number it has limbs `(lo, hi, 0xffff s, 0xffff s)`, which is its two's complement
//! extension when `s` is its sign bit, or the value itself when `s = 0`. The convolution
//! `c_k = sum_{i+j=k} X_i Y_j + Z_k` is carried limb by limb:
//! `out_k + 2^16 carry_k = c_k + carry_{k-1}`, every `out_k` a 16-bit limb and every carry below
//! 2^20 (range checked by the chip as `carry_lo` and `16 * ... < 2^16` pieces), so the field
//! equations hold over the integers and `out` is the product mod 2^64.

use stark::air::{AirBuilder, Expr};

use super::{LIMB, c};

/// A 32-bit operand as the product sees it.
#[derive(Debug)]
pub struct Operand {
    pub lo: Expr,
    pub hi: Expr,
    /// Sign-extension bit (0 for an unsigned operand).
    pub ext: Expr,
}

impl Operand {
    fn limbs(&self) -> [Expr; 4] {
        let top = self.ext.clone() * c(0xffff);
        [self.lo.clone(), self.hi.clone(), top.clone(), top]
    }
}

/// Asserts `out = x * y + z mod 2^64` limb by limb; `carries[k] = (lo, hi)` with
/// `carry_k = lo + 2^16 hi`.
pub fn assert_product(
    b: &mut AirBuilder,
    x: &Operand,
    y: &Operand,
    z: &Operand,
    out: &[Expr; 4],
    carries: &[(Expr, Expr); 4],
) {
    let (xs, ys, zs) = (x.limbs(), y.limbs(), z.limbs());
    let mut carry_in = c(0);
    for k in 0..4 {
        let mut conv = zs[k].clone();
        for i in 0..=k {
            conv = conv + xs[i].clone() * ys[k - i].clone();
        }
        let carry = carries[k].0.clone() + carries[k].1.clone() * c(LIMB);
        b.assert_zero(out[k].clone() + carry.clone() * c(LIMB) - conv - carry_in);
        carry_in = carry;
    }
}

/// The limbs and carries of `x * y + z mod 2^64` for the witness; each operand is
/// `(value, ext)`.
pub fn product_witness(x: (u32, bool), y: (u32, bool), z: (u32, bool)) -> ([u64; 4], [u64; 4]) {
    let limbs = |(v, ext): (u32, bool)| {
        let top = if ext { 0xffff } else { 0 };
        [(v & 0xffff) as u128, (v >> 16) as u128, top, top]
    };
    let (xs, ys, zs) = (limbs(x), limbs(y), limbs(z));
    let mut out = [0u64; 4];
    let mut carries = [0u64; 4];
    let mut carry_in = 0u128;
    for k in 0..4 {
        let mut conv = zs[k] + carry_in;
        for i in 0..=k {
            conv += xs[i] * ys[k - i];
        }
        out[k] = (conv & 0xffff) as u64;
        carries[k] = (conv >> 16) as u64;
        carry_in = conv >> 16;
    }
    (out, carries)
}
