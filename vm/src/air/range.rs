//! The 16-bit range table: answers "is v < 2^16" lookups.
//!
//! # Columns
//! Preprocessed: `v` = the row index, 0..2^16. Main: `mult`, how many lookups of v were made.
//!
//! # Constraints
//! None.
//!
//! # Bus interactions
//! Receives `(v)` on RANGE16 with multiplicity `mult`.

use stark::RowMajorMatrix;
use stark::air::{Air, AirBuilder};
use stark::field::F;

use super::{LIMB, bus, f};

/// Height of the table: one row per 16-bit value.
pub const HEIGHT: usize = LIMB as usize;

/// The 16-bit range table.
pub struct RangeTable;

impl Air for RangeTable {
    fn name(&self) -> &str {
        "range16"
    }
    fn main_width(&self) -> usize {
        1
    }
    fn preprocessed_width(&self) -> usize {
        1
    }
    fn preprocessed_trace(&self, height: usize) -> Option<RowMajorMatrix<F>> {
        Some(RowMajorMatrix::new((0..height as u64).map(f).collect(), 1))
    }
    fn eval(&self, b: &mut AirBuilder) {
        let v = b.prep(0);
        let mult = b.main(0);
        b.receive(bus::RANGE16, &[v], mult);
    }
}
