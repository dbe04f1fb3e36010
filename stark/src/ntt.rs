//! The coset LDE of a tall column computed chunk by chunk: the four-step (Bailey) decomposition
//! with the pipeline's chunks as its blocks, so that no step holds more than one chunk's worth
//! of rows of every column. No I/O: callers hand in and take out matrices; an out-of-core driver
//! reads them from segments and writes them back.
//!
//! # Notation
//! A table of height N = 2^n is cut into K = 2^k chunks of B = 2^b rows; trace row `t = c B + i`
//! is row `i` of chunk `c`. The blowup is L = 2^l, the LDE has M = L N rows, `w = w_N` and
//! `w_X` is the primitive X-th root of unity. The LDE lives on the L cosets `theta_u <w>`,
//! `theta_u = s w_M^u` with `s` = [`crate::domain::lde_shift`].
//!
//! # Output layout: natural coset chunks
//! The LDE comes out as L x K chunks of B rows: chunk `(u, c)` row `i` holds the value at
//! `theta_u w^(c B + i)`. Inside a chunk the order is natural, so the LDE's "next row" (the
//! point times `w`) of a row is the row after it. The same value sits at row
//! ```text
//! rev_l(u) N + rev_b(i) K + rev_k(c)
//! ```
//! of the bit-reversed LDE that [`crate::domain::lde`] builds in memory (its row r is the point
//! `s w_M^rev_(n+l)(r)`; write r = u' N + v, then rev(r) = rev_n(v) L + rev_l(u'), and
//! rev_n(c B + i) = rev_b(i) K + rev_k(c)). [`ChunkGeometry::lde_row`] is this map. Fixing
//! (u, i) and running over c gives K consecutive rows of the bit-reversed LDE: one subtree of
//! its Merkle tree.
//!
//! # The three steps
//! The interpolation (values on `<w>` to coefficients, output index `j = j1 + K j2`) and the
//! evaluation on a coset (input `j = j1 + K j2`, output `t = t1 + B t2`) split as
//! ```text
//! a[j1 + K j2] = 1/B sum_i w_B^(-i j2) w^(-i j1) * (1/K sum_c w_K^(-c j1) x[c B + i])
//! X[t1 + B t2] = sum_j1 w_K^(j1 t2) w^(j1 t1) * (sum_j2 a[j1 + K j2] theta^(j1 + K j2) w_B^(j2 t1))
//! ```
//! 1. [`cross_inverse`]: for each row `i` of a slab of rows, a size-K inverse DFT across the K
//!    chunks; output `j1` goes to intermediate block `j1` at the same rows. Reads the same slab
//!    of every chunk, in order: sequential in every segment.
//! 2. [`local_extend`]: one block `j1` in memory: twiddle `w^(-i j1)`, size-B inverse DFT (the
//!    coefficients `a[j1 + K j2]`: [`interpolate_block`]), and for each coset u: scale by
//!    `theta_u^(j1 + K j2)`, size-B DFT, twiddle `w^(j1 t1)` ([`evaluate_block`]): L blocks out.
//!    A polynomial given by its coefficients in that transposed order (the quotient pieces)
//!    enters at the second half.
//! 3. [`cross_forward`]: for each row `t1` of a slab, a size-K DFT across the K blocks of one
//!    coset; output `t2` is LDE chunk `(u, t2)` at the same rows.
//!
//! # Other source cosets and targets
//! The input may be the values on a coset `sigma <w>` rather than on `<w>` (the quotient's
//! re-extension starts from one LDE coset): the interpolation then yields `a[j] sigma^j`, so
//! step 2 scales by `(theta / sigma)^j` instead of `theta^j`. The targets are any list of shifts
//! ([`Extension`]); the trace LDE's are the L cosets `theta_u`.
//!
//! # Running sums carried across chunks
//! A LogUp running-sum column of a tall table is computed chunk by chunk, each chunk's sum
//! starting from 0; the committed column is that plus `carry_c`, the total of the chunks before
//! `c`, on every row of chunk `c`. Step 1 is linear in its input, and the carry is constant down
//! a chunk, so adding the carries to the input adds `G = iDFT_K(carry)` to it: `G[j1]` on every
//! row of intermediate block `j1`, in the carried columns ([`carry_offsets`], applied by step 2
//! before its twiddle). The chunks themselves are never rewritten.
//!
//! Steps 1 and 3 hold K x S rows (a slab of S rows of each chunk; S = B / K keeps that to one
//! chunk's size); step 2 holds one block and its L outputs. The arithmetic is exact, so the
//! values are those of the in-memory LDE, bit for bit.

use p3_dft::TwoAdicSubgroupDft;
use p3_matrix::Matrix;
use p3_matrix::bitrev::BitReversibleMatrix;
use p3_matrix::dense::{RowMajorMatrix, RowMajorMatrixView};
use rayon::prelude::*;

use crate::domain::{dft, lde_shift};
use crate::field::{F, Field, PrimeCharacteristicRing, TwoAdicField, reverse_bits};

/// How a table of `2^log_height` rows is cut into chunks of `2^log_chunk` rows and extended by
/// `2^log_blowup`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkGeometry {
    pub log_height: usize,
    pub log_chunk: usize,
    pub log_blowup: usize,
}

impl ChunkGeometry {
    /// The geometry of a table of `2^log_height` rows in chunks of at most `2^log_chunk` rows.
    pub fn new(log_height: usize, log_chunk: usize, log_blowup: usize) -> ChunkGeometry {
        ChunkGeometry {
            log_height,
            log_chunk: log_chunk.min(log_height),
            log_blowup,
        }
    }

    fn log_chunks(&self) -> usize {
        self.log_height - self.log_chunk
    }

    /// K, the number of chunks.
    pub fn chunks(&self) -> usize {
        1 << self.log_chunks()
    }

    /// B, the rows of a chunk.
    pub fn chunk_rows(&self) -> usize {
        1 << self.log_chunk
    }

    /// L, the number of cosets.
    pub fn cosets(&self) -> usize {
        1 << self.log_blowup
    }

    /// The slab height that keeps steps 1 and 3 to one chunk's rows: B / K, at least 1.
    pub fn slab_rows(&self) -> usize {
        (self.chunk_rows() >> self.log_chunks()).max(1)
    }

    /// `theta_u = s w_M^u`, the shift of coset `u`.
    pub fn coset_shift(&self, u: usize) -> F {
        lde_shift() * F::two_adic_generator(self.log_height + self.log_blowup).exp_u64(u as u64)
    }

    /// The row of the bit-reversed in-memory LDE holding row `row` of LDE chunk (`coset`,
    /// `chunk`).
    pub fn lde_row(&self, coset: usize, chunk: usize, row: usize) -> usize {
        (reverse_bits(coset, self.log_blowup) << self.log_height)
            + (reverse_bits(row, self.log_chunk) << self.log_chunks())
            + reverse_bits(chunk, self.log_chunks())
    }
}

/// Stacks the same slab of K matrices as the K rows of one matrix (a DFT of size K runs down
/// its columns).
fn stack(slabs: &[RowMajorMatrixView<'_, F>]) -> RowMajorMatrix<F> {
    let len = slabs[0].values.len();
    assert!(
        slabs.iter().all(|s| s.values.len() == len),
        "slabs of one step have one shape"
    );
    let mut values = vec![F::ZERO; len * slabs.len()];
    values
        .par_chunks_mut(len)
        .zip(slabs.par_iter())
        .for_each(|(dst, s)| dst.copy_from_slice(s.values));
    RowMajorMatrix::new(values, len)
}

/// What a cross-chunk step returns: the same slab of each of K matrices, side by side in one
/// allocation (row `c` of the transform is slab `c`).
pub struct Slabs {
    values: Vec<F>,
    width: usize,
    count: usize,
}

impl Slabs {
    /// Slab `c`: `width` columns, the rows the step was given.
    pub fn get(&self, c: usize) -> RowMajorMatrixView<'_, F> {
        let len = self.values.len() / self.count;
        RowMajorMatrixView::new(&self.values[c * len..(c + 1) * len], self.width)
    }

    /// Every slab, in order.
    pub fn views(&self) -> Vec<RowMajorMatrixView<'_, F>> {
        (0..self.count).map(|c| self.get(c)).collect()
    }
}

/// Step 1: the same slab of rows of every trace chunk (in chunk order) to the same slab of
/// every intermediate block (in block order).
pub fn cross_inverse(geo: &ChunkGeometry, slabs: &[RowMajorMatrixView<'_, F>]) -> Slabs {
    across(geo, slabs, |m| dft().idft_batch(m))
}

/// Multiplies row r of `m` by `start * ratio^r`.
fn scale_rows(m: &mut RowMajorMatrix<F>, start: F, ratio: F) {
    const ROWS: usize = 1 << 10;
    let width = m.width;
    let step = ratio.exp_u64(ROWS as u64);
    m.values
        .par_chunks_mut(ROWS * width)
        .enumerate()
        .for_each(|(task, rows)| {
            let mut factor = start * step.exp_u64(task as u64);
            for row in rows.chunks_exact_mut(width) {
                row.iter_mut().for_each(|v| *v *= factor);
                factor *= ratio;
            }
        });
}

/// What step 2 makes of the interpolated blocks: the coset the input lives on and the cosets to
/// evaluate on, plus the per-chunk carries of running-sum columns.
#[derive(Clone, Debug)]
pub struct Extension {
    /// `sigma`: the input is the column's values on `sigma <w>` (1 for a trace).
    pub source: F,
    /// The shifts of the output cosets, in output order.
    pub targets: Vec<F>,
    /// Columns whose chunk `c` is to be read plus `carry_c` ([`carry_offsets`] of the carries).
    pub carry: Option<Carry>,
}

/// The carried columns of an [`Extension`] and the offsets their blocks get.
#[derive(Clone, Debug)]
pub struct Carry {
    /// Indices of the carried columns, in the order of `offsets`' columns.
    pub columns: Vec<usize>,
    /// Row `j1`: what block `j1` adds to those columns ([`carry_offsets`]).
    pub offsets: RowMajorMatrix<F>,
}

impl Extension {
    /// The trace LDE: from `<w>` to the L cosets `theta_u`, in coset order.
    pub fn lde(geo: &ChunkGeometry) -> Extension {
        Extension {
            source: F::ONE,
            targets: (0..geo.cosets()).map(|u| geo.coset_shift(u)).collect(),
            carry: None,
        }
    }
}

/// The offsets that stand for carries: row `c` of `carries` is what chunk `c` adds to each
/// carried column (K rows); row `j1` of the result is what block `j1` adds after step 1.
pub fn carry_offsets(geo: &ChunkGeometry, carries: RowMajorMatrix<F>) -> RowMajorMatrix<F> {
    assert_eq!(carries.height(), geo.chunks(), "one carry row per chunk");
    if geo.chunks() == 1 {
        return carries;
    }
    dft().idft_batch(carries)
}

/// Step 2: intermediate block `j1` (all B rows) to block `j1` of each target's step-3 input, in
/// target order: [`interpolate_block`] then [`evaluate_block`], fused into one coset LDE of the
/// block for the trace LDE's targets.
pub fn local_extend(
    geo: &ChunkGeometry,
    ext: &Extension,
    j1: usize,
    mut block: RowMajorMatrix<F>,
) -> Vec<RowMajorMatrix<F>> {
    if !is_trace_lde(geo, ext) {
        let coeffs = interpolate_block(geo, j1, block, ext.carry.as_ref());
        return evaluate_block(geo, ext, j1, coeffs);
    }
    twiddle_in(geo, j1, &mut block, ext.carry.as_ref());
    let shift = lde_shift().exp_u64(geo.chunks() as u64);
    let stored = dft()
        .coset_lde_batch(block, geo.log_blowup, shift)
        .bit_reverse_rows();
    lde_blocks(geo, j1, stored)
}

/// Whether `ext` is the trace LDE of `geo` (source `<w>`, targets the L cosets in order).
fn is_trace_lde(geo: &ChunkGeometry, ext: &Extension) -> bool {
    ext.source == F::ONE && ext.targets == Extension::lde(geo).targets
}

/// The first half of step 2: the carries added to block `j1`, then the twiddle `w^(-i j1)`.
fn twiddle_in(
    geo: &ChunkGeometry,
    j1: usize,
    block: &mut RowMajorMatrix<F>,
    carry: Option<&Carry>,
) {
    assert_eq!(block.values.len(), geo.chunk_rows() * block.width);
    if let Some(carry) = carry {
        let n = carry.columns.len();
        assert_eq!(
            carry.offsets.width, n,
            "one offset column per carried column"
        );
        let add = &carry.offsets.values[j1 * n..(j1 + 1) * n];
        let width = block.width;
        for row in block.values.chunks_exact_mut(width) {
            for (&col, &v) in carry.columns.iter().zip(add.iter()) {
                row[col] += v;
            }
        }
    }
    let w_j1 = F::two_adic_generator(geo.log_height).exp_u64(j1 as u64);
    scale_rows(block, F::ONE, w_j1.inverse());
}

/// Step 2, first half: intermediate block `j1` to its coefficients, `a[j1 + K j2] sigma^(j1 +
/// K j2)` at row `j2` for a column whose values lie on `sigma <w>` (the coefficients of the
/// whole column, in the transposed order the four-step leaves them in).
pub fn interpolate_block(
    geo: &ChunkGeometry,
    j1: usize,
    mut block: RowMajorMatrix<F>,
    carry: Option<&Carry>,
) -> RowMajorMatrix<F> {
    twiddle_in(geo, j1, &mut block, carry);
    dft().idft_batch(block)
}

/// Step 2, second half: coefficient block `j1` ([`interpolate_block`], or any polynomial's
/// coefficients `j1 + K j2` at row `j2`) to block `j1` of each target's step-3 input. The
/// coefficients are read as `a[j] sigma^j` with `sigma` = `ext.source`.
pub fn evaluate_block(
    geo: &ChunkGeometry,
    ext: &Extension,
    j1: usize,
    coeffs: RowMajorMatrix<F>,
) -> Vec<RowMajorMatrix<F>> {
    assert_eq!(coeffs.values.len(), geo.chunk_rows() * coeffs.width);
    if is_trace_lde(geo, ext) {
        // The L targets' points are one coset of size L B (see `lde_blocks`).
        let width = coeffs.width;
        let mut padded = coeffs.values;
        padded.resize(width * (geo.chunk_rows() << geo.log_blowup), F::ZERO);
        let shift = lde_shift().exp_u64(geo.chunks() as u64);
        let stored = dft()
            .coset_dft_batch(RowMajorMatrix::new(padded, width), shift)
            .bit_reverse_rows();
        return lde_blocks(geo, j1, stored);
    }
    let w_j1 = F::two_adic_generator(geo.log_height).exp_u64(j1 as u64);
    let k = geo.chunks() as u64;
    let sigma_inv = ext.source.inverse();
    ext.targets
        .iter()
        .map(|&theta| {
            let ratio = theta * sigma_inv;
            let mut c = coeffs.clone();
            scale_rows(&mut c, ratio.exp_u64(j1 as u64), ratio.exp_u64(k));
            let mut out = dft().dft_batch(c).to_row_major_matrix();
            scale_rows(&mut out, F::ONE, w_j1);
            out
        })
        .collect()
}

/// Step 2 for the trace LDE's targets (`theta_u = s w_M^u`), from `stored`: the block's
/// polynomial P (coefficients `a[j1 + K j2]`) on the coset `s^K <w_(LB)>`, bit-reversed.
///
/// Target u's output row t1 is `w^(j1 t1) theta_u^j1 P(theta_u^K w_B^t1)`. Since
/// `w_M^K = w_(LB)`, the points `theta_u^K w_B^t1 = s^K w_(LB)^(u + L t1)` are that coset, and
/// its bit-reversed row `rev_l(u) B + rev_b(t1)` is that point: each target is a bit-reversal
/// of a contiguous block, scaled.
fn lde_blocks(geo: &ChunkGeometry, j1: usize, stored: RowMajorMatrix<F>) -> Vec<RowMajorMatrix<F>> {
    const ROWS: usize = 1 << 10;
    let (b, width) = (geo.chunk_rows(), stored.width);
    let w_j1 = F::two_adic_generator(geo.log_height).exp_u64(j1 as u64);
    let step = w_j1.exp_u64(ROWS as u64);
    (0..geo.cosets())
        .map(|u| {
            let base = reverse_bits(u, geo.log_blowup) * b;
            let start = geo.coset_shift(u).exp_u64(j1 as u64);
            let mut out = vec![F::ZERO; b * width];
            out.par_chunks_mut(ROWS * width)
                .enumerate()
                .for_each(|(task, rows)| {
                    let mut factor = start * step.exp_u64(task as u64);
                    for (k, row) in rows.chunks_exact_mut(width).enumerate() {
                        let t1 = task * ROWS + k;
                        let src = base + reverse_bits(t1, geo.log_chunk);
                        let from = &stored.values[src * width..(src + 1) * width];
                        for (d, &v) in row.iter_mut().zip(from) {
                            *d = v * factor;
                        }
                        factor *= w_j1;
                    }
                });
            RowMajorMatrix::new(out, width)
        })
        .collect()
}

/// Step 3: the same slab of rows of every block of one coset (in block order) to the same slab
/// of that coset's LDE chunks (in chunk order).
pub fn cross_forward(geo: &ChunkGeometry, slabs: &[RowMajorMatrixView<'_, F>]) -> Slabs {
    across(geo, slabs, |m| dft().dft_batch(m).to_row_major_matrix())
}

/// Values of one transform in [`across`] (64 KiB; at least [`ACROSS_GROUP_COLUMNS`] columns):
/// they stay in a core's cache through all log2 K layers. `stark-pipe bench lde` at 2^22 x 32,
/// K = 32: 44 s with the whole stack in one transform, 27-31 s with groups of 2^11 to 2^15.
const ACROSS_GROUP_VALUES: usize = 1 << 13;
const ACROSS_GROUP_COLUMNS: usize = 64;

/// A size-K transform down the stacked slabs (one per chunk or block), cut back into K slabs
/// (natural order); the identity when K = 1. The transform is column-wise, so it runs on
/// groups of columns of the stack, in parallel: one transform of the whole stack (K rows of a
/// slab's every value) would stream each layer through memory.
fn across(
    geo: &ChunkGeometry,
    slabs: &[RowMajorMatrixView<'_, F>],
    transform: impl Fn(RowMajorMatrix<F>) -> RowMajorMatrix<F> + Sync,
) -> Slabs {
    assert_eq!(slabs.len(), geo.chunks(), "one slab per chunk");
    let (k, width) = (slabs.len(), slabs[0].width);
    if k == 1 {
        return Slabs {
            values: stack(slabs).values,
            width,
            count: 1,
        };
    }
    let len = slabs[0].values.len();
    assert!(
        slabs.iter().all(|s| s.values.len() == len),
        "slabs of one step have one shape"
    );
    let group = (ACROSS_GROUP_VALUES / k).max(ACROSS_GROUP_COLUMNS).min(len);
    let starts: Vec<usize> = (0..len).step_by(group).collect();
    let mut values = vec![F::ZERO; len * k];
    // A batch of groups at a time, so that their results add little to the slab's memory.
    for batch in starts.chunks(4 * rayon::current_num_threads().max(1)) {
        let parts: Vec<RowMajorMatrix<F>> = batch
            .par_iter()
            .map(|&start| {
                let end = (start + group).min(len);
                let mut m = Vec::with_capacity((end - start) * k);
                for s in slabs {
                    m.extend_from_slice(&s.values[start..end]);
                }
                transform(RowMajorMatrix::new(m, end - start))
            })
            .collect();
        for (&start, part) in batch.iter().zip(&parts) {
            for (c, row) in part.values.chunks_exact(part.width).enumerate() {
                values[c * len + start..c * len + start + row.len()].copy_from_slice(row);
            }
        }
    }
    Slabs {
        values,
        width,
        count: k,
    }
}

/// The whole LDE of a chunked column set through the three steps, in memory: `out[u][c]` is
/// LDE chunk (u, c). See [`extend_chunked`].
pub fn lde_chunked(
    geo: &ChunkGeometry,
    chunks: &[RowMajorMatrix<F>],
) -> Vec<Vec<RowMajorMatrix<F>>> {
    extend_chunked(geo, &Extension::lde(geo), chunks)
}

/// `ext` applied to a chunked column set through the three steps, in memory: `out[u][c]` is
/// chunk `c` of target `u`, in natural order. Slabs of [`ChunkGeometry::slab_rows`] rows, as
/// an out-of-core driver would read them. The reference for such drivers.
pub fn extend_chunked(
    geo: &ChunkGeometry,
    ext: &Extension,
    chunks: &[RowMajorMatrix<F>],
) -> Vec<Vec<RowMajorMatrix<F>>> {
    evaluate_chunked(
        geo,
        ext,
        interpolate_chunked(geo, chunks, ext.carry.as_ref()),
    )
}

fn slab_of(m: &RowMajorMatrix<F>, at: usize, rows: usize) -> RowMajorMatrixView<'_, F> {
    RowMajorMatrixView::new(&m.values[at * m.width..(at + rows) * m.width], m.width)
}

/// Steps 1 and 2a in memory: a chunked column set to its K coefficient blocks
/// ([`interpolate_block`]).
pub fn interpolate_chunked(
    geo: &ChunkGeometry,
    chunks: &[RowMajorMatrix<F>],
    carry: Option<&Carry>,
) -> Vec<RowMajorMatrix<F>> {
    let (k, b) = (geo.chunks(), geo.chunk_rows());
    assert_eq!(chunks.len(), k, "one matrix per chunk");
    let width = chunks[0].width;
    let slab = geo.slab_rows();
    let mut blocks = vec![Vec::with_capacity(b * width); k];
    for at in (0..b).step_by(slab) {
        let views: Vec<_> = chunks.iter().map(|c| slab_of(c, at, slab)).collect();
        let parts = cross_inverse(geo, &views);
        for (block, part) in blocks.iter_mut().zip(parts.views()) {
            block.extend_from_slice(part.values);
        }
    }
    blocks
        .into_iter()
        .enumerate()
        .map(|(j1, v)| interpolate_block(geo, j1, RowMajorMatrix::new(v, width), carry))
        .collect()
}

/// Steps 2b and 3 in memory: K coefficient blocks to `out[u][c]`, chunk `c` of target `u`
/// ([`evaluate_block`], [`cross_forward`]).
pub fn evaluate_chunked(
    geo: &ChunkGeometry,
    ext: &Extension,
    coeffs: Vec<RowMajorMatrix<F>>,
) -> Vec<Vec<RowMajorMatrix<F>>> {
    let (k, b) = (geo.chunks(), geo.chunk_rows());
    assert_eq!(coeffs.len(), k, "one block per chunk");
    let width = coeffs[0].width;
    let slab = geo.slab_rows();
    let mut per_target: Vec<Vec<RowMajorMatrix<F>>> =
        vec![Vec::with_capacity(k); ext.targets.len()];
    for (j1, block) in coeffs.into_iter().enumerate() {
        for (u, out) in evaluate_block(geo, ext, j1, block).into_iter().enumerate() {
            per_target[u].push(out);
        }
    }
    per_target
        .iter()
        .map(|z| {
            let mut lde = vec![Vec::with_capacity(b * width); k];
            for at in (0..b).step_by(slab) {
                let views: Vec<_> = z.iter().map(|m| slab_of(m, at, slab)).collect();
                let parts = cross_forward(geo, &views);
                for (chunk, part) in lde.iter_mut().zip(parts.views()) {
                    chunk.extend_from_slice(part.values);
                }
            }
            lde.into_iter()
                .map(|v| RowMajorMatrix::new(v, width))
                .collect()
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::lde;

    /// A pseudo-random matrix (an LCG), the same for the same seed.
    pub(crate) fn trace(rows: usize, width: usize, seed: u64) -> RowMajorMatrix<F> {
        let mut x = seed;
        let values = (0..rows * width)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                F::from_u64(x >> 1)
            })
            .collect();
        RowMajorMatrix::new(values, width)
    }

    /// Every value of the chunked LDE sits where `lde_row` says in the in-memory LDE.
    fn matches_in_memory(log_height: usize, log_chunk: usize, log_blowup: usize, width: usize) {
        let geo = ChunkGeometry::new(log_height, log_chunk, log_blowup);
        let full = trace(
            1 << log_height,
            width,
            log_height as u64 * 31 + log_chunk as u64,
        );
        let chunks = chunks_of(&full, geo.chunk_rows());
        assert_at_lde_rows(&geo, &lde_chunked(&geo, &chunks), &lde(full, log_blowup));
    }

    /// Every row of every chunk of `out` equals the row `lde_row` names in `reference`, the
    /// bit-reversed in-memory LDE.
    fn assert_at_lde_rows(
        geo: &ChunkGeometry,
        out: &[Vec<RowMajorMatrix<F>>],
        reference: &RowMajorMatrix<F>,
    ) {
        let width = reference.width;
        for (u, coset) in out.iter().enumerate() {
            for (c, chunk) in coset.iter().enumerate() {
                for i in 0..geo.chunk_rows() {
                    let r = geo.lde_row(u, c, i);
                    assert_eq!(
                        &chunk.values[i * width..(i + 1) * width],
                        &reference.values[r * width..(r + 1) * width],
                        "{geo:?}: chunk ({u}, {c}) row {i}"
                    );
                }
            }
        }
    }

    #[test]
    fn chunked_lde_is_the_in_memory_lde() {
        matches_in_memory(10, 6, 1, 3); // K = 16 < B = 64
        matches_in_memory(10, 5, 1, 2); // K = B
        matches_in_memory(10, 3, 2, 2); // K = 128 > B = 8 (slabs of one row)
        matches_in_memory(8, 8, 1, 4); // K = 1: step 2 is the whole LDE
        matches_in_memory(9, 4, 3, 1); // blowup 8
        matches_in_memory(14, 12, 1, 3); // K = 4, slabs of 3072 values: column groups of 2048 and 1024
    }

    fn chunks_of(m: &RowMajorMatrix<F>, b: usize) -> Vec<RowMajorMatrix<F>> {
        m.values
            .chunks_exact(b * m.width)
            .map(|c| RowMajorMatrix::new(c.to_vec(), m.width))
            .collect()
    }

    /// From the values on one coset to others (the quotient's re-extension): chunk `c` row `i`
    /// of target `u` is the value at `theta_u w^(c B + i)`.
    #[test]
    fn any_source_coset_to_any_targets() {
        for (log_height, log_chunk) in [(9, 5), (8, 2), (6, 6)] {
            let geo = ChunkGeometry::new(log_height, log_chunk, 1);
            let (n, width) = (1 << log_height, 3);
            let coeffs = trace(n, width, 99 + log_height as u64);
            let at = |shift: F| {
                dft()
                    .coset_dft_batch(coeffs.clone(), shift)
                    .to_row_major_matrix()
            };
            let sigma = geo.coset_shift(1);
            let targets = vec![geo.coset_shift(0), F::from_u64(5), sigma * F::from_u64(3)];
            let ext = Extension {
                source: sigma,
                targets: targets.clone(),
                carry: None,
            };
            let out = extend_chunked(&geo, &ext, &chunks_of(&at(sigma), geo.chunk_rows()));
            for (u, &theta) in targets.iter().enumerate() {
                let want = chunks_of(&at(theta), geo.chunk_rows());
                assert_eq!(out[u], want, "n={log_height} b={log_chunk}: target {u}");
            }
        }
    }

    /// Carries added through step 2 give the LDE of the seeded columns, whose chunks never
    /// existed.
    #[test]
    fn carries_give_the_lde_of_the_seeded_columns() {
        for (log_height, log_chunk) in [(10, 6), (9, 3), (7, 7)] {
            let geo = ChunkGeometry::new(log_height, log_chunk, 1);
            let (width, b) = (4, geo.chunk_rows());
            let local = trace(1 << log_height, width, 7 + log_chunk as u64);
            let columns = vec![1, 3];
            let carries = trace(geo.chunks(), columns.len(), 1234);
            let mut seeded = local.clone();
            for (t, row) in seeded.values.chunks_exact_mut(width).enumerate() {
                let carry = &carries.values[(t / b) * 2..(t / b) * 2 + 2];
                for (&col, &v) in columns.iter().zip(carry) {
                    row[col] += v;
                }
            }
            let reference = lde(seeded, 1);
            let mut ext = Extension::lde(&geo);
            ext.carry = Some(Carry {
                columns,
                offsets: carry_offsets(&geo, carries),
            });
            let out = extend_chunked(&geo, &ext, &chunks_of(&local, b));
            assert_at_lde_rows(&geo, &out, &reference);
        }
    }

    #[test]
    fn natural_coset_chunks_put_the_next_point_on_the_next_row() {
        let geo = ChunkGeometry::new(6, 3, 1);
        let w = F::two_adic_generator(6);
        for u in 0..2 {
            for c in 0..geo.chunks() {
                for i in 0..geo.chunk_rows() {
                    let t = (c * geo.chunk_rows() + i) as u64;
                    let r = geo.lde_row(u, c, i);
                    assert_eq!(
                        geo.coset_shift(u) * w.exp_u64(t),
                        crate::domain::lde_point(7, r)
                    );
                }
            }
        }
    }
}
