//! The byte table: every pair of bytes (a, b) with a AND b, a OR b and a XOR b, and the powers of
//! two a shift uses. It answers "are these two values bytes", the bitwise operations on bytes,
//! and "is `pow = 2^s, q = 2^(31 - s)` for a shift amount `s < 32`".
//!
//! # Columns
//! Preprocessed: `a, b, and, or, xor, pow, q` for row `a + 256 b` (2^16 rows); `pow = 2^a,
//! q = 2^(31 - a)` on rows 0..31 (`a < 32, b = 0`), zero on the others (the SHIFT chip
//! requires `pow q = 2^31`, which no zero row has).
//! Main: `m_pair, m_and, m_or, m_xor, m_pow`, how many lookups of each kind were made on the
//! row.
//!
//! # Constraints
//! None.
//!
//! # Bus interactions
//! Receives on BYTE, each with its multiplicity: `(PAIR, a, b, 0)`, `(AND, a, b, and)`,
//! `(OR, a, b, or)`, `(XOR, a, b, xor)`, `(POW, a, pow, q)`.

use stark::RowMajorMatrix;
use stark::air::{Air, AirBuilder};
use stark::field::F;

use super::{bus, c, f};

/// Operation codes of the BYTE bus.
pub const PAIR: u64 = 0;
pub const AND: u64 = 1;
pub const OR: u64 = 2;
pub const XOR: u64 = 3;
pub const POW: u64 = 4;

pub const HEIGHT: usize = 1 << 16;
pub const M_PAIR: usize = 0;
pub const MAIN_WIDTH: usize = 5;
const PREP_WIDTH: usize = 7;
/// Shift amounts with a power row: 0..32.
pub const POW_ROWS: u64 = 32;

/// Row of the pair (a, b).
pub fn row_of(a: u8, b: u8) -> usize {
    a as usize + 256 * b as usize
}

/// The byte table.
pub struct ByteTable;

impl Air for ByteTable {
    fn name(&self) -> &str {
        "bytes"
    }
    fn main_width(&self) -> usize {
        MAIN_WIDTH
    }
    fn preprocessed_width(&self) -> usize {
        PREP_WIDTH
    }
    fn preprocessed_trace(&self, height: usize) -> Option<RowMajorMatrix<F>> {
        let mut values = Vec::with_capacity(height * PREP_WIDTH);
        for i in 0..height as u64 {
            let (a, b) = (i & 255, (i >> 8) & 255);
            let (pow, q) = if i < POW_ROWS {
                (1 << i, 1 << (31 - i))
            } else {
                (0, 0)
            };
            values.extend([f(a), f(b), f(a & b), f(a | b), f(a ^ b), f(pow), f(q)]);
        }
        Some(RowMajorMatrix::new(values, PREP_WIDTH))
    }
    fn eval(&self, b: &mut AirBuilder) {
        let (a, x) = (b.prep(0), b.prep(1));
        let m_pair = b.main(M_PAIR);
        b.receive(bus::BYTE, &[c(PAIR), a.clone(), x.clone(), c(0)], m_pair);
        for (op, col) in [(AND, 2), (OR, 3), (XOR, 4)] {
            let result = b.prep(col);
            let m = b.main(op as usize);
            b.receive(bus::BYTE, &[c(op), a.clone(), x.clone(), result], m);
        }
        let (pow, q) = (b.prep(5), b.prep(6));
        let m_pow = b.main(POW as usize);
        b.receive(bus::BYTE, &[c(POW), a, pow, q], m_pow);
    }
}
