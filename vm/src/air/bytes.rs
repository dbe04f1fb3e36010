//! The byte table: every pair of bytes (a, b) with a AND b, a OR b and a XOR b. It answers
//! "are these two values bytes" and the bitwise operations on bytes.
//!
//! # Columns
//! Preprocessed: `a, b, and, or, xor` for row `a + 256 b` (2^16 rows).
//! Main: `m_pair, m_and, m_or, m_xor`, how many lookups of each kind were made on the row.
//!
//! # Constraints
//! None.
//!
//! # Bus interactions
//! Receives on BYTE, each with its multiplicity: `(PAIR, a, b, 0)`, `(AND, a, b, and)`,
//! `(OR, a, b, or)`, `(XOR, a, b, xor)`.

use stark::RowMajorMatrix;
use stark::air::{Air, AirBuilder};
use stark::field::F;

use super::{bus, c, f};

/// Operation codes of the BYTE bus.
pub const PAIR: u64 = 0;
pub const AND: u64 = 1;
pub const OR: u64 = 2;
pub const XOR: u64 = 3;

pub const HEIGHT: usize = 1 << 16;
pub const M_PAIR: usize = 0;
pub const MAIN_WIDTH: usize = 4;

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
        5
    }
    fn preprocessed_trace(&self, height: usize) -> Option<RowMajorMatrix<F>> {
        let mut values = Vec::with_capacity(height * 5);
        for i in 0..height as u64 {
            let (a, b) = (i & 255, (i >> 8) & 255);
            values.extend([f(a), f(b), f(a & b), f(a | b), f(a ^ b)]);
        }
        Some(RowMajorMatrix::new(values, 5))
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
    }
}
