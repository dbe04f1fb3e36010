//! Evaluation domains and the low-degree extension.
//!
//! A trace of height n = 2^k lives on the subgroup H = <w_n>. Its LDE lives on the coset
//! s * <w_N> with N = n * blowup and s = the field generator (7), so the LDE never touches H.
//! LDE matrices are stored in **bit-reversed row order**, exactly as p3-dft produces them:
//! row j holds the point s * w_N^rev(j). Two facts follow and are used throughout:
//! - rows 2i and 2i+1 hold x and -x (what a FRI fold pairs);
//! - the first M rows (M | N) are the coset s * <w_M> in bit-reversed order, so the quotient
//!   domain and the points used for OOD interpolation are prefixes of the committed LDE.

use std::sync::OnceLock;

use p3_dft::{Radix2DitParallel, TwoAdicSubgroupDft};
use p3_matrix::bitrev::BitReversibleMatrix;
use p3_matrix::dense::{RowMajorMatrix, RowMajorMatrixView};
use rayon::prelude::*;

use crate::field::{
    EF, F, Field, PrimeCharacteristicRing, TwoAdicField, batch_inverse, reverse_bits,
};

/// Largest supported log2 LDE size (Goldilocks two-adicity is 32).
pub const MAX_LOG_LDE: usize = 32;

/// The coset shift of every LDE domain.
pub fn lde_shift() -> F {
    F::GENERATOR
}

/// The shared DFT engine: its twiddle caches persist across calls.
/// The last row's Lagrange selector on `H = <w>` of `2^log_height` points is
/// `L_last(x) = c Z_H(x) / (x - w^-1)` with this `c = w^-1 / n`; the prover takes it at LDE
/// points, the verifier at z.
pub fn last_row_selector_scale(log_height: usize) -> F {
    F::two_adic_generator(log_height).inverse() * F::from_u64(1 << log_height).inverse()
}

pub fn dft() -> &'static Radix2DitParallel<F> {
    static DFT: OnceLock<Radix2DitParallel<F>> = OnceLock::new();
    DFT.get_or_init(Radix2DitParallel::default)
}

/// Low-degree extension of a trace (rows = trace-domain evaluations, natural order) onto
/// the coset of size height << log_blowup, in bit-reversed row order.
pub fn lde(trace: RowMajorMatrix<F>, log_blowup: usize) -> RowMajorMatrix<F> {
    dft()
        .coset_lde_batch(trace, log_blowup, lde_shift())
        .bit_reverse_rows()
}

/// Evaluates polynomials given by coefficient columns (natural order, height <= 2^log_n) on the
/// LDE coset of size 2^log_n, in bit-reversed row order.
pub fn coeffs_to_lde(mut coeffs: RowMajorMatrix<F>, log_n: usize) -> RowMajorMatrix<F> {
    let width = coeffs.width;
    coeffs.values.resize(width << log_n, F::ZERO);
    dft()
        .coset_dft_batch(coeffs, lde_shift())
        .bit_reverse_rows()
}

/// The point of row `row` of a bit-reversed LDE of size 2^log_n.
pub fn lde_point(log_n: usize, row: usize) -> F {
    lde_shift() * F::two_adic_generator(log_n).exp_u64(reverse_bits(row, log_n) as u64)
}

/// All points of a bit-reversed LDE domain of size 2^log_n (shift * w^rev(j)).
pub fn lde_points(log_n: usize) -> Vec<F> {
    let mut pts = crate::field::coset_points(log_n, lde_shift());
    crate::field::bit_reverse_in_place(&mut pts);
    pts
}

/// Evaluates, at each point of `points`, the polynomials of degree < n = 2^log_n whose values on
/// s * <w_n> are the first n rows of the bit-reversed LDE `lde` (barycentric formula).
/// Returns `out[p][c]` = column c at point p. `None` if a point lies on the domain or the
/// matrix has fewer than n rows.
pub fn eval_at_points(
    lde: RowMajorMatrixView<'_, F>,
    log_n: usize,
    points: &[EF],
) -> Option<Vec<Vec<EF>>> {
    barycentric(lde, log_n, &lde_points(log_n), lde_shift(), points)
}

/// Like [`eval_at_points`] for a trace: rows are the values on the subgroup <w_n> itself, in
/// natural order (no LDE needed).
pub fn eval_trace_at_points(
    trace: RowMajorMatrixView<'_, F>,
    log_n: usize,
    points: &[EF],
) -> Option<Vec<Vec<EF>>> {
    barycentric(
        trace,
        log_n,
        &crate::field::coset_points(log_n, F::ONE),
        F::ONE,
        points,
    )
}

/// Barycentric evaluation from the values on the coset shift * <w_n>, whose points (in the
/// matrix's row order) are `xs`: p(z) = (z^n - s^n) / (n s^n) * sum_j p_j x_j / (z - x_j).
fn barycentric(
    m: RowMajorMatrixView<'_, F>,
    log_n: usize,
    xs: &[F],
    shift: F,
    points: &[EF],
) -> Option<Vec<Vec<EF>>> {
    let n = 1usize << log_n;
    let width = m.width;
    if width == 0 {
        return Some(vec![Vec::new(); points.len()]);
    }
    if m.values.len() < n * width || xs.len() != n {
        return None;
    }
    let s_n = shift.exp_power_of_2(log_n);
    let n_inv = F::from_u64(n as u64).inverse();
    let rows = &m.values[..n * width];
    points
        .iter()
        .map(|&z| {
            let sums = column_dot(rows, width, &barycentric_weights(xs, z)?);
            let scale = (z.exp_power_of_2(log_n) - s_n) * (n_inv * s_n.inverse());
            Some(sums.into_iter().map(|v| v * scale).collect())
        })
        .collect()
}

/// [`eval_trace_at_points`] a block of rows at a time: columns given by their values on
/// `<w_n>` (row `t` at `w^t`), fed in any order as blocks of consecutive rows. The sum
/// `sum_t p_t w^t / (z - w^t)` is accumulated per block and scaled by `(z^n - 1) / n` at the end.
pub struct ChunkedEval {
    log_n: usize,
    width: usize,
    points: Vec<EF>,
    /// Per point, per column.
    sums: Vec<Vec<EF>>,
}

impl ChunkedEval {
    pub fn new(log_n: usize, width: usize, points: &[EF]) -> ChunkedEval {
        ChunkedEval {
            log_n,
            width,
            points: points.to_vec(),
            sums: vec![vec![EF::ZERO; width]; points.len()],
        }
    }

    /// Rows `first..first + rows.height` of the columns. `None` if the block does not fit the
    /// domain or a point lies on it.
    pub fn add(&mut self, first: usize, rows: RowMajorMatrixView<'_, F>) -> Option<()> {
        if rows.width != self.width || self.width == 0 {
            return (self.width == 0).then_some(());
        }
        let height = rows.values.len() / self.width;
        if first + height > 1 << self.log_n {
            return None;
        }
        let w = F::two_adic_generator(self.log_n);
        let x0 = w.exp_u64(first as u64);
        let xs: Vec<F> = w.powers().take(height).map(|p| x0 * p).collect();
        for (z, sums) in self.points.iter().zip(self.sums.iter_mut()) {
            let weights = barycentric_weights(&xs, *z)?;
            for (s, v) in sums
                .iter_mut()
                .zip(column_dot(rows.values, self.width, &weights))
            {
                *s += v;
            }
        }
        Some(())
    }

    pub fn width(&self) -> usize {
        self.width
    }

    /// `out[p][c]`: column c at point p.
    pub fn finish(self) -> Vec<Vec<EF>> {
        let n_inv = F::from_u64(1u64 << self.log_n).inverse();
        self.points
            .iter()
            .zip(self.sums)
            .map(|(z, sums)| {
                let scale = (z.exp_power_of_2(self.log_n) - EF::ONE) * n_inv;
                sums.into_iter().map(|v| v * scale).collect()
            })
            .collect()
    }
}

/// `x_j / (z - x_j)` for each point; `None` if z is one of them.
fn barycentric_weights(xs: &[F], z: EF) -> Option<Vec<EF>> {
    let diffs: Vec<EF> = xs.par_iter().map(|&x| z - x).collect();
    let inv = batch_inverse(&diffs)?;
    Some(
        inv.par_iter()
            .zip(xs.par_iter())
            .map(|(i, &x)| *i * x)
            .collect(),
    )
}

/// For each column c of a row-major matrix, sum_j weights[j] * m[j][c].
fn column_dot(rows: &[F], width: usize, weights: &[EF]) -> Vec<EF> {
    const CHUNK: usize = 1024;
    rows.par_chunks(width * CHUNK)
        .zip(weights.par_chunks(CHUNK))
        .map(|(block, w)| {
            let mut acc = vec![EF::ZERO; width];
            for (row, &wj) in block.chunks_exact(width).zip(w) {
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a += wj * v;
                }
            }
            acc
        })
        .reduce(
            || vec![EF::ZERO; width],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                a
            },
        )
}

/// Evaluates polynomials given by coefficient columns (row k = coefficient of x^k) at `z`.
pub fn eval_coeffs_at(coeffs: RowMajorMatrixView<'_, F>, z: EF) -> Vec<EF> {
    let width = coeffs.width;
    if width == 0 {
        return Vec::new();
    }
    let n = coeffs.values.len() / width;
    const CHUNK: usize = 1024;
    let z_chunk = z.exp_u64(CHUNK as u64);
    // Powers z^k for one chunk, then each chunk scaled by z^(chunk start).
    let pows: Vec<EF> = z.powers().take(CHUNK.min(n)).collect();
    let starts: Vec<EF> = z_chunk.powers().take(n.div_ceil(CHUNK)).collect();
    coeffs.values[..n * width]
        .par_chunks(width * CHUNK)
        .zip(starts.par_iter())
        .map(|(block, &start)| {
            let mut acc = vec![EF::ZERO; width];
            for (row, &p) in block.chunks_exact(width).zip(&pows) {
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a += p * v;
                }
            }
            acc.into_iter().map(|a| a * start).collect::<Vec<_>>()
        })
        .reduce(
            || vec![EF::ZERO; width],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                a
            },
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::ext;

    #[test]
    fn lde_prefix_and_barycentric() {
        // p(x) = 3 + 2x + x^3 over n = 8.
        let log_n = 3;
        let n = 8;
        let p = |x: F| F::new(3) + x.double() + x.cube();
        let g = F::two_adic_generator(log_n);
        let trace: Vec<F> = (0..n).map(|i| p(g.exp_u64(i as u64))).collect();
        let l = lde(RowMajorMatrix::new(trace.clone(), 1), 1);
        for j in 0..16 {
            assert_eq!(l.values[j], p(lde_point(4, j)));
        }
        let z = ext(F::new(11), F::new(5));
        let v = eval_at_points(l.as_view(), log_n, &[z]).unwrap();
        let expect = EF::from(F::new(3)) + z.double() + z.cube();
        assert_eq!(v[0][0], expect);
        let t = RowMajorMatrix::new(trace.clone(), 1);
        assert_eq!(
            eval_trace_at_points(t.as_view(), log_n, &[z]).unwrap()[0][0],
            expect
        );
        let mut c = vec![F::ZERO; 8];
        c[0] = F::new(3);
        c[1] = F::TWO;
        c[3] = F::ONE;
        assert_eq!(
            eval_coeffs_at(RowMajorMatrix::new(c, 1).as_view(), z)[0],
            expect
        );
        // Many chunks, two columns, against Horner.
        let big: Vec<F> = (0..5000u64 * 2).map(|i| F::new(i * 31 + 7)).collect();
        let got = eval_coeffs_at(RowMajorMatrix::new(big.clone(), 2).as_view(), z);
        for (c, g) in got.iter().enumerate() {
            let horner = big.chunks(2).rev().fold(EF::ZERO, |acc, r| acc * z + r[c]);
            assert_eq!(*g, horner);
        }
    }
}
