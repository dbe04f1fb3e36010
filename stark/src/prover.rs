//! Per-instance prover steps (the passes of `docs/architecture.md`). Each function takes one
//! instance's data and the challenges it needs, so a caller may drop an instance's LDE after a step and recompute
//! it later (every step is deterministic). [`crate::prove`] composes them in memory; an
//! out-of-core driver does the same, visiting instances in canonical order (table, chunk):
//!
//! ```text
//! tables = compile_all(airs); t = protocol::start(&tables, &params, &public, &shapes)
//! pass 1, per instance:  c = commit_trace(main_trace, log_b); p = commit_preprocessed(..)
//!                        protocol::observe_main(&mut t, p.map(|p| p.root()).as_ref(), &c.root())
//!                        (preprocessed commitments can be shared per (table, height))
//!         lookup = protocol::draw_lookup_challenges(&mut t)
//! pass 2, per instance:  a = aux_trace(table, &main_trace, prep_trace, &lookup)?   // trace order
//!                        ac = commit_trace(a.trace, log_b); protocol::observe_aux(&mut t, Some(&AuxCommitment{..}))
//!         alpha = protocol::draw_composition_challenge(&mut t)
//! pass 3, per instance:  q = commit_lde(quotient(table, log_h, ldes, &lookup, claimed, alpha, log_b)?)
//!                        protocol::observe_quotient(&mut t, &q.root())
//!         z = protocol::draw_ood_point(&mut t)
//! pass 4, per instance:  o = ood(table, log_h, ldes, &q.lde, z)?; protocol::observe_ood(&mut t, &o)
//!                        (or, with no LDE: quotient_with_coeffs in pass 3, keep the n-row
//!                        coefficients, then ood_from_traces(table, log_h, traces, coeffs, z))
//!         beta = protocol::draw_deep_challenge(&mut t)
//! pass 5, per instance:  deep.add(table, index, ldes, &q.lde, &o)?     // DeepAccumulator::new(..)
//!                        (or deep.add_from_traces(table, index, traces, coeffs, &o)?: no wide
//!                        LDE, only one 2-column extension of the combined DEEP polynomial)
//! pass 6:                fri = fri::prove(deep.codewords, &mut t, log_b)?
//!                        qs = protocol::grind_and_sample_queries(&mut t, &params, &shapes)
//! pass 7, per instance:  rows = protocol::query_rows(&qs, log_max_lde, log_lde);
//!                        Committed::open(&rows) (or open_rows(lde, tree, &rows)) per tree;
//!                        fri.open(&qs); then assemble `Proof` (all fields public).
//! ```
//! `tests/steps.rs` is a runnable version that recomputes every LDE in every pass and checks
//! the proof is byte-identical to [`crate::prove`].
//! Absorption order within a pass must be canonical; computation order need not be.

use p3_matrix::dense::{RowMajorMatrix, RowMajorMatrixView};
use rayon::prelude::*;

use crate::air::Air;
use crate::constraints::{BlockScratch, NUM_LOOKUP_CHALLENGES, RowSource, Table};
use crate::domain::{
    coeffs_to_lde, dft, eval_at_points, last_row_selector_scale, lde_points, lde_shift,
};
use crate::field::{
    EF, EXT_DEGREE, F, Field, PrimeCharacteristicRing, TwoAdicField, batch_inverse,
    bit_reverse_in_place, coords, ext, reverse_bits,
};
use crate::merkle::{Digest, MerkleTree, PartialTree};
use crate::ntt::ChunkGeometry;
use crate::proof::{InstanceOod, InstanceShape, TreeOpening};
use p3_dft::TwoAdicSubgroupDft;

/// A borrowed row-major matrix (e.g. over an mmapped segment).
pub type MatrixView<'a> = RowMajorMatrixView<'a, F>;

/// Why the prover stopped.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ProveError {
    #[error(transparent)]
    Air(#[from] crate::constraints::AirError),
    #[error("invalid parameters: {0}")]
    Params(String),
    #[error("instance {index}: {msg}")]
    Instance { index: usize, msg: String },
    #[error("data passed to a step does not fit its table: {0}")]
    Shape(String),
    #[error("the witness does not satisfy the AIRs: {0}")]
    Unsatisfied(String),
    #[error("a challenge hit a degenerate value (retry with another statement/nonce): {0}")]
    Degenerate(&'static str),
}

/// A committed matrix: its LDE (bit-reversed rows) and the Merkle tree over those rows.
#[derive(Clone, Debug)]
pub struct Committed {
    pub lde: RowMajorMatrix<F>,
    pub tree: MerkleTree,
}

impl Committed {
    pub fn root(&self) -> Digest {
        self.tree.root()
    }
    /// The LDE rows at `rows` (sorted, distinct; see [`crate::protocol::query_rows`]) with
    /// their batch Merkle opening.
    pub fn open(&self, rows: &[usize]) -> TreeOpening {
        open_rows(self.lde.as_view(), &self.tree, rows)
    }
}

/// Batch opening of `rows` (sorted, distinct) of an LDE and its tree (which may have been
/// kept while the LDE was spilled, or rebuilt).
pub fn open_rows(lde: MatrixView<'_>, tree: &MerkleTree, rows: &[usize]) -> TreeOpening {
    let w = lde.width;
    TreeOpening {
        rows: rows
            .iter()
            .map(|&r| lde.values[r * w..(r + 1) * w].to_vec())
            .collect(),
        siblings: tree.batch_siblings(rows),
    }
}

/// [`open_rows`] for a tree of which only one level was kept (see [`PartialTree`]): the rows'
/// subtrees are hashed again from the LDE and checked against the level, the level against
/// `root`; a mismatch (a corrupted spill) is an error, not a bad opening.
pub fn open_rows_from_level(
    lde: MatrixView<'_>,
    level_nodes: &[Digest],
    root: &Digest,
    rows: &[usize],
) -> Result<TreeOpening, String> {
    let w = lde.width;
    let tree = PartialTree::rebuild(lde.values, w, level_nodes, root, rows)?;
    Ok(TreeOpening {
        rows: rows
            .iter()
            .map(|&r| lde.values[r * w..(r + 1) * w].to_vec())
            .collect(),
        siblings: tree.batch_siblings(rows),
    })
}

/// LDE + Merkle commitment of a trace (natural row order on the trace domain).
pub fn commit_trace(trace: RowMajorMatrix<F>, log_blowup: usize) -> Committed {
    commit_lde(crate::domain::lde(trace, log_blowup))
}

/// Like [`commit_trace`] for a borrowed trace (one copy, allocated at LDE size up front).
pub fn commit_trace_view(trace: MatrixView<'_>, log_blowup: usize) -> Committed {
    let mut values = Vec::with_capacity(trace.values.len() << log_blowup);
    values.extend_from_slice(trace.values);
    commit_trace(RowMajorMatrix::new(values, trace.width), log_blowup)
}

/// Merkle commitment of an LDE already in bit-reversed order.
pub fn commit_lde(lde: RowMajorMatrix<F>) -> Committed {
    let tree = MerkleTree::from_rows(&lde.values, lde.width);
    Committed { lde, tree }
}

/// Checks a main trace against its table and returns the instance's log height.
pub fn check_trace(
    table: &Table,
    trace: &RowMajorMatrix<F>,
    index: usize,
) -> Result<u8, ProveError> {
    let err = |msg: String| ProveError::Instance { index, msg };
    if trace.width != table.main_width {
        return Err(err(format!(
            "{}: trace width {} != {}",
            table.name, trace.width, table.main_width
        )));
    }
    let h = trace.values.len() / trace.width;
    if h < 2 || !h.is_power_of_two() || h.trailing_zeros() as usize + 2 > crate::domain::MAX_LOG_LDE
    {
        return Err(err(format!(
            "{}: height {h} is not a power of two in 2..=2^30",
            table.name
        )));
    }
    Ok(h.trailing_zeros() as u8)
}

/// The preprocessed trace of a table at `log_height`, checked against its declared width.
pub fn preprocessed_trace(
    air: &dyn Air,
    table: &Table,
    log_height: u8,
) -> Result<Option<RowMajorMatrix<F>>, String> {
    if table.prep_width == 0 {
        return Ok(None);
    }
    let n = 1usize << log_height;
    match air.preprocessed_trace(n) {
        Some(m) if m.width == table.prep_width && m.values.len() == n * m.width => Ok(Some(m)),
        Some(_) => Err(format!(
            "{}: preprocessed trace has the wrong shape",
            table.name
        )),
        None => Err(format!(
            "{}: declares preprocessed columns but provides none",
            table.name
        )),
    }
}

/// Pass 1 helper: commitment of the preprocessed columns (also run by the verifier).
pub fn commit_preprocessed(
    air: &dyn Air,
    table: &Table,
    log_height: u8,
    log_blowup: usize,
) -> Result<Option<Committed>, String> {
    Ok(preprocessed_trace(air, table, log_height)?.map(|m| commit_trace(m, log_blowup)))
}

/// An instance's LogUp aux trace (flattened extension columns) and claimed partial sum.
pub struct AuxTrace {
    pub trace: RowMajorMatrix<F>,
    pub claimed_sum: EF,
}

/// Pass 2: builds the LogUp columns of one instance from its main (and preprocessed) trace.
/// `None` for tables without bus interactions.
pub fn aux_trace(
    table: &Table,
    main: MatrixView<'_>,
    prep: Option<MatrixView<'_>>,
    challenges: &[EF; NUM_LOOKUP_CHALLENGES],
) -> Result<Option<AuxTrace>, ProveError> {
    if !table.has_aux() {
        return Ok(None);
    }
    let n = main.values.len() / main.width.max(1);
    if !n.is_power_of_two() {
        return Err(ProveError::Shape(format!(
            "{}: {n} trace rows, not a power of two",
            table.name
        )));
    }
    let rows = aux_rows(table, main, prep, challenges, EF::ZERO)?;
    Ok(Some(AuxTrace {
        trace: RowMajorMatrix::new(rows.values, table.aux_width()),
        claimed_sum: rows.running_sum,
    }))
}

/// The LogUp columns of a block of consecutive rows of a table (any number of rows).
#[derive(Clone, Debug)]
pub struct AuxRows {
    /// Row-major, [`Table::aux_width`] columns.
    pub values: Vec<F>,
    /// The running sum after the block's last row.
    pub running_sum: EF,
}

/// The base columns holding the running sum in a table's aux trace (its last extension
/// column): what a chunk's carry is added to. Only for a table with buses ([`Table::has_aux`]).
pub fn running_sum_columns(table: &Table) -> [usize; 2] {
    let s = table
        .aux_ext_width
        .checked_sub(1)
        .expect("running_sum_columns of a table with buses");
    [2 * s, 2 * s + 1]
}

/// The LogUp columns of a block of rows of `table` whose running sum starts from `start` (0 for
/// an instance's first rows; the sum after the previous block to continue it). The running sum
/// is exclusive: a row holds the sum of the rows before it, and its own fractions (the last
/// group's included, which has no column: [`crate::constraints`]) step it to the next. The
/// fraction columns depend only on their row, so a table's aux trace is its blocks' rows, each
/// started from the previous block's end; or each started from 0 and then offset in the
/// running-sum columns ([`running_sum_columns`]) by the total of the blocks before it.
pub fn aux_rows(
    table: &Table,
    main: MatrixView<'_>,
    prep: Option<MatrixView<'_>>,
    challenges: &[EF; NUM_LOOKUP_CHALLENGES],
    start: EF,
) -> Result<AuxRows, ProveError> {
    let n = main.values.len() / main.width.max(1);
    let shape_ok = table.has_aux()
        && main.width == table.main_width
        && n * main.width == main.values.len()
        && match prep {
            None => table.prep_width == 0,
            Some(p) => p.width == table.prep_width && p.values.len() == n * p.width,
        };
    if !shape_ok {
        return Err(ProveError::Shape(format!(
            "{}: trace shapes do not match the table",
            table.name
        )));
    }
    let [gamma, alpha] = *challenges;
    let prog = &table.interaction_values;
    let empty: Vec<F> = Vec::new();
    let src = RowSource {
        main: main.values,
        main_width: main.width,
        prep: prep.map(|p| p.values).unwrap_or(&empty),
        prep_width: table.prep_width,
        aux: &[],
        aux_width: 0,
    };
    let ni = table.interactions.len();
    let aw = table.aux_width();
    let mut alpha_pows = vec![alpha];
    for i in 1..crate::air::MAX_TUPLE_LEN {
        let p = alpha_pows[i - 1] * alpha;
        alpha_pows.push(p);
    }
    // Block by block: fingerprints, one batch inversion, the fraction columns. Memory stays at
    // the aux trace plus one block of fingerprints per thread.
    const BLOCK: usize = 256;
    let mut values = vec![F::ZERO; n * aw];
    values
        .par_chunks_mut(BLOCK * aw)
        .enumerate()
        .try_for_each_init(
            || BlockScratch::new(prog, BLOCK),
            |s, (bi, out)| {
                let r0 = bi * BLOCK;
                let rows: Vec<usize> = (r0..r0 + out.len() / aw).collect();
                prog.eval_block(&src, &rows, &rows, &[], EF::ZERO, &[], s);
                let mut fps = Vec::with_capacity(rows.len() * ni);
                let mut mults = Vec::with_capacity(rows.len() * ni);
                for r in 0..rows.len() {
                    let mut o = 0;
                    for it in &table.interactions {
                        let mut acc = EF::from(F::from_u64(it.bus as u64));
                        for a in alpha_pows.iter().take(it.values.len()) {
                            acc += *a * prog.output_base(s, o, r);
                            o += 1;
                        }
                        fps.push(gamma - acc);
                        let m = prog.output_base(s, o, r);
                        o += 1;
                        mults.push(if it.is_send { m } else { -m });
                    }
                }
                let inv = crate::field::batch_inverse_local(&fps)
                    .ok_or(ProveError::Degenerate("zero LogUp fingerprint"))?;
                // Every group's fraction, the last one's in the running sum's column until
                // the sum is written over it below.
                for (r, row) in out.chunks_exact_mut(aw).enumerate() {
                    for (j, g) in table.aux_groups.iter().enumerate() {
                        let h: EF = g.iter().map(|&i| inv[r * ni + i] * mults[r * ni + i]).sum();
                        row[2 * j..2 * j + 2].copy_from_slice(&coords(h));
                    }
                }
                Ok::<(), ProveError>(())
            },
        )?;
    // Running sum (sequential; cheap next to the inversions).
    let mut s = start;
    for row in values.chunks_mut(aw) {
        let step: EF = row.chunks_exact(2).map(|c| ext(c[0], c[1])).sum();
        row[aw - 2..].copy_from_slice(&coords(s));
        s += step;
    }
    Ok(AuxRows {
        values,
        running_sum: s,
    })
}

/// The committed LDEs of one instance, as later steps read them.
#[derive(Clone, Copy)]
pub struct InstanceLdes<'a> {
    pub main: MatrixView<'a>,
    pub prep: Option<MatrixView<'a>>,
    pub aux: Option<MatrixView<'a>>,
}

impl InstanceLdes<'_> {
    /// Checks the LDE shapes against the table, so a driver's mistake is an error, not a panic.
    pub fn check(
        &self,
        table: &Table,
        log_height: usize,
        log_blowup: usize,
    ) -> Result<(), ProveError> {
        let rows = 1usize << (log_height + log_blowup);
        let ok = |m: Option<MatrixView<'_>>, w: usize| match m {
            None => w == 0,
            Some(m) => w > 0 && m.width == w && m.values.len() == rows * w,
        };
        if ok(Some(self.main), table.main_width)
            && ok(self.prep, table.prep_width)
            && ok(self.aux, table.aux_width())
        {
            Ok(())
        } else {
            Err(ProveError::Shape(format!(
                "{}: LDE shapes do not match the table",
                table.name
            )))
        }
    }
}

fn check_quotient_lde(
    table: &Table,
    q: MatrixView<'_>,
    log_height: usize,
    log_blowup: usize,
) -> Result<(), ProveError> {
    if q.width == table.quotient_width() && q.values.len() == q.width << (log_height + log_blowup) {
        Ok(())
    } else {
        Err(ProveError::Shape(format!(
            "{}: quotient LDE shape",
            table.name
        )))
    }
}

/// [`quotient`], also returning the pieces' coefficients (n rows, 2 columns per piece): a
/// caller that keeps them (n x 2 x pieces base elements) can later get the quotient's OOD
/// values with [`ood_from_traces`] instead of recomputing LDEs.
#[allow(clippy::too_many_arguments)]
pub fn quotient_with_coeffs(
    table: &Table,
    log_height: usize,
    ldes: InstanceLdes<'_>,
    lookup: &[EF; NUM_LOOKUP_CHALLENGES],
    claimed_sum: EF,
    composition: EF,
    log_blowup: usize,
) -> Result<(RowMajorMatrix<F>, RowMajorMatrix<F>), ProveError> {
    let pieces = quotient_pieces(
        table,
        log_height,
        ldes,
        lookup,
        claimed_sum,
        composition,
        log_blowup,
    )?;
    let lde = coeffs_to_lde(pieces.clone(), log_height + log_blowup);
    Ok((lde, pieces))
}

/// Pass 3: evaluates the constraints of one instance on its quotient domain (a prefix of the
/// committed LDE), divides by the selectors / vanishing polynomial, splits the quotient into
/// pieces of degree < n and returns their LDE (flattened extension columns, bit-reversed).
#[allow(clippy::too_many_arguments)]
pub fn quotient(
    table: &Table,
    log_height: usize,
    ldes: InstanceLdes<'_>,
    lookup: &[EF; NUM_LOOKUP_CHALLENGES],
    claimed_sum: EF,
    composition: EF,
    log_blowup: usize,
) -> Result<RowMajorMatrix<F>, ProveError> {
    let pieces = quotient_pieces(
        table,
        log_height,
        ldes,
        lookup,
        claimed_sum,
        composition,
        log_blowup,
    )?;
    Ok(coeffs_to_lde(pieces, log_height + log_blowup))
}

/// The quotient pieces' coefficients (n rows, 2 base columns per piece).
#[allow(clippy::too_many_arguments)]
fn quotient_pieces(
    table: &Table,
    log_height: usize,
    ldes: InstanceLdes<'_>,
    lookup: &[EF; NUM_LOOKUP_CHALLENGES],
    claimed_sum: EF,
    composition: EF,
    log_blowup: usize,
) -> Result<RowMajorMatrix<F>, ProveError> {
    let mut q = quotient_values(
        table,
        log_height,
        ldes,
        lookup,
        claimed_sum,
        composition,
        log_blowup,
    )?;
    let n = 1usize << log_height;

    // To coefficients: natural order, coset iDFT (as 2 base columns).
    bit_reverse_in_place(&mut q);
    let flat: Vec<F> = q.iter().flat_map(|v| coords(*v)).collect();
    drop(q);
    let coeffs = dft().coset_idft_batch(RowMajorMatrix::new(flat, EXT_DEGREE), lde_shift());
    // Piece i = coefficients [i n, (i+1) n): columns (2i, 2i+1) of an n-row matrix.
    let pieces = table.quotient_pieces;
    let qw = pieces * EXT_DEGREE;
    let mut pm = vec![F::ZERO; n * qw];
    pm.par_chunks_mut(qw).enumerate().for_each(|(r, row)| {
        for i in 0..pieces {
            let src = (i * n + r) * EXT_DEGREE;
            row[2 * i..2 * i + 2].copy_from_slice(&coeffs.values[src..src + 2]);
        }
    });
    Ok(RowMajorMatrix::new(pm, qw))
}

/// Pass 3, first half: the quotient's values on its domain, the first `qf n` rows of the
/// bit-reversed LDE (`qf` = the table's quotient pieces), in that order.
#[allow(clippy::too_many_arguments)]
pub fn quotient_values(
    table: &Table,
    log_height: usize,
    ldes: InstanceLdes<'_>,
    lookup: &[EF; NUM_LOOKUP_CHALLENGES],
    claimed_sum: EF,
    composition: EF,
    log_blowup: usize,
) -> Result<Vec<EF>, ProveError> {
    ldes.check(table, log_height, log_blowup)?;
    let log_qf = table.log_quotient_factor();
    let log_m = log_height + log_qf;
    let m = 1usize << log_m;
    let qf = 1usize << log_qf;
    let empty: Vec<F> = Vec::new();
    let src = RowSource {
        main: ldes.main.values,
        main_width: table.main_width,
        prep: ldes.prep.map(|p| p.values).unwrap_or(&empty),
        prep_width: table.prep_width,
        aux: ldes.aux.map(|p| p.values).unwrap_or(&empty),
        aux_width: table.aux_width(),
    };
    // Z_H(x) = x^n - 1 takes qf values on the domain: s^n * w_qf^rev(j) - 1.
    let s_n = lde_shift().exp_power_of_2(log_height);
    let w_qf = F::two_adic_generator(log_qf);
    let zh: Vec<(F, F)> = (0..qf)
        .map(|k| {
            let v = s_n * w_qf.exp_u64(k as u64) - F::ONE;
            (v, v.inverse())
        })
        .collect();
    let rows = |j: usize| {
        let next = reverse_bits((reverse_bits(j, log_m) + qf) & (m - 1), log_m);
        (j, next)
    };
    let zh = |j: usize| zh[reverse_bits(j, log_m) & (qf - 1)];
    let challenges = Challenges {
        lookup,
        claimed_sum,
        composition,
    };
    quotient_at(
        table,
        log_height,
        &src,
        &lde_points(log_m),
        rows,
        zh,
        &challenges,
    )
}

/// One LDE chunk's rows of every committed matrix: for [`quotient_chunk`] with the row after
/// the chunk appended (the next chunk's first; the first chunk's after the last), `B + 1` rows
/// each; for [`DeepAccumulator::add_chunk`] the chunk's `B` rows.
#[derive(Clone, Copy)]
pub struct ChunkRows<'a> {
    pub main: MatrixView<'a>,
    pub prep: Option<MatrixView<'a>>,
    pub aux: Option<MatrixView<'a>>,
}

/// The LDE coset step between quotient cosets, `L / qf`: quotient coset `q` is LDE coset
/// `q L / qf`. An error when the table needs more pieces than the blowup gives cosets.
pub fn quotient_coset_step(table: &Table, geo: &ChunkGeometry) -> Result<usize, ProveError> {
    let qf = table.quotient_pieces;
    if qf > geo.cosets() {
        return Err(ProveError::Shape(format!(
            "{}: {qf} quotient pieces for a blowup of {}",
            table.name,
            geo.cosets()
        )));
    }
    Ok(geo.cosets() / qf)
}

/// [`quotient_values`] on one chunk of the quotient's domain in the natural coset layout
/// ([`crate::ntt`] with the table's quotient factor `qf` as blowup): value `k` is at
/// `theta_coset w^(chunk B + k)`, which is row [`ChunkGeometry::lde_row`]`(coset, chunk, k)`
/// of [`quotient_values`] under that geometry. `geo` is the committed LDEs' geometry (blowup
/// L >= qf); the rows come from their chunk (`coset L / qf`, `chunk`), which holds the same
/// points. The next row of a chunk's last row is the next chunk's first, so a transition across
/// chunks is an ordinary next-row constraint here.
#[allow(clippy::too_many_arguments)]
pub fn quotient_chunk(
    table: &Table,
    geo: &ChunkGeometry,
    coset: usize,
    chunk: usize,
    rows: ChunkRows<'_>,
    lookup: &[EF; NUM_LOOKUP_CHALLENGES],
    claimed_sum: EF,
    composition: EF,
) -> Result<Vec<EF>, ProveError> {
    let b = geo.chunk_rows();
    let qgeo = ChunkGeometry::new(geo.log_height, geo.log_chunk, table.log_quotient_factor());
    let fits = |m: Option<MatrixView<'_>>, w: usize| match m {
        None => w == 0,
        Some(m) => w > 0 && m.width == w && m.values.len() == (b + 1) * w,
    };
    if coset >= qgeo.cosets()
        || chunk >= qgeo.chunks()
        || table.log_quotient_factor() > geo.log_blowup
        || !fits(Some(rows.main), table.main_width)
        || !fits(rows.prep, table.prep_width)
        || !fits(rows.aux, table.aux_width())
    {
        return Err(ProveError::Shape(format!(
            "{}: chunk ({coset}, {chunk}) of the quotient domain: rows or position do not fit",
            table.name
        )));
    }
    let empty: Vec<F> = Vec::new();
    let src = RowSource {
        main: rows.main.values,
        main_width: table.main_width,
        prep: rows.prep.map(|p| p.values).unwrap_or(&empty),
        prep_width: table.prep_width,
        aux: rows.aux.map(|p| p.values).unwrap_or(&empty),
        aux_width: table.aux_width(),
    };
    let theta = qgeo.coset_shift(coset);
    let w = F::two_adic_generator(geo.log_height);
    let x0 = theta * w.exp_u64((chunk * b) as u64);
    let xs: Vec<F> = w.powers().take(b).map(|p| x0 * p).collect();
    // On the coset theta <w>, Z_H(x) = x^n - 1 = theta^n - 1.
    let zh = theta.exp_power_of_2(geo.log_height) - F::ONE;
    let zh_inv = zh
        .try_inverse()
        .ok_or(ProveError::Degenerate("quotient domain meets H"))?;
    let challenges = Challenges {
        lookup,
        claimed_sum,
        composition,
    };
    quotient_at(
        table,
        geo.log_height,
        &src,
        &xs,
        |k| (k, k + 1),
        |_| (zh, zh_inv),
        &challenges,
    )
}

/// Block `j1` of the quotient pieces' coefficients from the quotient's values on its natural
/// coset chunks ([`quotient_chunk`], as 2 base columns). `cosets[u]` is block `j1` of
/// [`crate::ntt::interpolate_block`] (source `<w>`) over coset `u`'s chunks: row `j2` holds
/// `V_u[r]`, `r = j1 + K j2`, the size-n interpolation of the coset's values read as values on
/// `<w>`. With the domain's natural index `t = u + qf t'` (point `s w_(qf n)^t`) and
/// coefficient `j = p n + r` (piece p, row r), the coset iDFT of [`quotient_values`] splits as
/// ```text
/// a[p n + r] = 1/qf s^-(p n + r) sum_u w_qf^(-u p) w_(qf n)^(-u r) V_u[r]
/// ```
/// Returns row `j2` = coefficient `r` of every piece (2 base columns each): the pieces in the
/// four-step's transposed order, what [`crate::ntt::evaluate_block`] extends.
pub fn quotient_piece_block(
    table: &Table,
    geo: &ChunkGeometry,
    j1: usize,
    cosets: &[MatrixView<'_>],
) -> Result<RowMajorMatrix<F>, ProveError> {
    let qf = table.quotient_pieces;
    let (b, k) = (geo.chunk_rows(), geo.chunks());
    if cosets.len() != qf
        || j1 >= k
        || cosets
            .iter()
            .any(|c| c.width != EXT_DEGREE || c.values.len() != b * EXT_DEGREE)
    {
        return Err(ProveError::Shape(format!(
            "{}: quotient block {j1}: {} coset blocks for {qf} pieces, or not {b} rows of {EXT_DEGREE}",
            table.name,
            cosets.len()
        )));
    }
    let n = 1u64 << geo.log_height;
    let log_qf = table.log_quotient_factor();
    let s_inv = lde_shift().inverse();
    let w_qf_inv = F::two_adic_generator(log_qf).inverse();
    let w_m_inv = F::two_adic_generator(geo.log_height + log_qf).inverse();
    let qf_inv = F::from_u64(qf as u64).inverse();
    let qw = qf * EXT_DEGREE;
    let mut out = vec![F::ZERO; b * qw];
    out.par_chunks_mut(qw).enumerate().for_each(|(j2, row)| {
        let r = (j1 + k * j2) as u64;
        let terms: Vec<EF> = cosets
            .iter()
            .enumerate()
            .map(|(u, c)| {
                let v = ext(c.values[j2 * EXT_DEGREE], c.values[j2 * EXT_DEGREE + 1]);
                v * w_m_inv.exp_u64(u as u64 * r)
            })
            .collect();
        for p in 0..qf {
            let sum: EF = terms
                .iter()
                .enumerate()
                .map(|(u, &t)| t * w_qf_inv.exp_u64((u * p) as u64))
                .sum();
            let a = sum * (qf_inv * s_inv.exp_u64(p as u64 * n + r));
            row[EXT_DEGREE * p..EXT_DEGREE * (p + 1)].copy_from_slice(&coords(a));
        }
    });
    Ok(RowMajorMatrix::new(out, qw))
}

/// The challenges the quotient is composed with.
struct Challenges<'a> {
    lookup: &'a [EF; NUM_LOOKUP_CHALLENGES],
    claimed_sum: EF,
    composition: EF,
}

/// The composed constraints at points `xs[j]` (rows `rows(j) = (row, next row)` of `src`),
/// each divided by its selector: `(every + transition (x - w^-1)) / Z_H(x) + first / (x - 1)
/// + last / (x - w^-1)`, with `zh(j)` = (Z_H(xs[j]), 1 / Z_H(xs[j])).
fn quotient_at(
    table: &Table,
    log_height: usize,
    src: &RowSource<'_>,
    xs: &[F],
    rows: impl Fn(usize) -> (usize, usize) + Sync,
    zh: impl Fn(usize) -> (F, F) + Sync,
    challenges: &Challenges<'_>,
) -> Result<Vec<EF>, ProveError> {
    let prog = &table.constraints;
    let alpha_pows: Vec<EF> = challenges
        .composition
        .powers()
        .take(prog.outputs.len())
        .collect();
    let w_last = F::two_adic_generator(log_height).inverse(); // w^(n-1)
    let last_scale = last_row_selector_scale(log_height);
    let d_first: Vec<F> = xs.par_iter().map(|&x| x - F::ONE).collect();
    let d_last: Vec<F> = xs.par_iter().map(|&x| x - w_last).collect();
    let inv_first =
        batch_inverse(&d_first).ok_or(ProveError::Degenerate("quotient domain meets H"))?;
    let inv_last =
        batch_inverse(&d_last).ok_or(ProveError::Degenerate("quotient domain meets H"))?;
    drop(d_first);

    const BLOCK: usize = 256;
    let mut q = vec![EF::ZERO; xs.len()];
    // One scratch per rayon task, not per block: a block's scratch is megabytes for the wide
    // tables, and a fresh one per block was a third of the quotient's page faults.
    q.par_chunks_mut(BLOCK).enumerate().for_each_init(
        || BlockScratch::new(prog, BLOCK),
        |s, (bi, out)| {
            let r0 = bi * BLOCK;
            let (here, next): (Vec<usize>, Vec<usize>) = (r0..r0 + out.len()).map(&rows).unzip();
            let is_last: Vec<F> = (r0..r0 + out.len())
                .map(|j| last_scale * zh(j).0 * inv_last[j])
                .collect();
            prog.eval_block(
                src,
                &here,
                &next,
                &challenges.lookup[..],
                challenges.claimed_sum,
                &is_last,
                s,
            );
            for (k, o) in out.iter_mut().enumerate() {
                let j = r0 + k;
                let (mut every, mut trans, mut first, mut last) =
                    (EF::ZERO, EF::ZERO, EF::ZERO, EF::ZERO);
                for (c, (when, _)) in prog.outputs.iter().enumerate() {
                    let v = prog.output_scaled(s, c, k, alpha_pows[c]);
                    match when {
                        crate::air::When::EveryRow => every += v,
                        crate::air::When::Transition => trans += v,
                        crate::air::When::FirstRow => first += v,
                        crate::air::When::LastRow => last += v,
                    }
                }
                *o = (every + trans * d_last[j]) * zh(j).1
                    + first * inv_first[j]
                    + last * inv_last[j];
            }
        },
    );
    Ok(q)
}

/// Pass 4: every committed column of one instance at z and z*w (barycentric over the first n
/// LDE rows). `quotient` is the quotient LDE.
pub fn ood(
    table: &Table,
    log_height: usize,
    ldes: InstanceLdes<'_>,
    quotient: MatrixView<'_>,
    z: EF,
) -> Result<InstanceOod, ProveError> {
    let zg = z * F::two_adic_generator(log_height);
    let both = |m: Option<MatrixView<'_>>| -> Result<(Vec<EF>, Vec<EF>), ProveError> {
        match m {
            None => Ok((Vec::new(), Vec::new())),
            Some(m) => {
                let mut v = eval_at_points(m, log_height, &[z, zg])
                    .ok_or(ProveError::Degenerate("z on the domain"))?;
                let next = v.pop().unwrap();
                Ok((v.pop().unwrap(), next))
            }
        }
    };
    let (main, main_next) = both(Some(ldes.main))?;
    let (prep, prep_next) = both(ldes.prep)?;
    let (aux, aux_next) = both(ldes.aux)?;
    let quotient = eval_at_points(quotient, log_height, &[z])
        .ok_or(ProveError::Degenerate("z on the domain"))?
        .pop()
        .unwrap();
    debug_assert_eq!(quotient.len(), table.quotient_width());
    Ok(InstanceOod {
        main,
        main_next,
        prep,
        prep_next,
        aux,
        aux_next,
        quotient,
    })
}

/// An instance's traces on the trace domain (natural row order): main, preprocessed, aux.
#[derive(Clone, Copy)]
pub struct InstanceTraces<'a> {
    pub main: MatrixView<'a>,
    pub prep: Option<MatrixView<'a>>,
    pub aux: Option<MatrixView<'a>>,
}

/// Pass 4 without any LDE: the same values as [`ood`], by barycentric evaluation over the
/// traces themselves and Horner over the quotient pieces' coefficients (from
/// [`quotient_with_coeffs`]).
pub fn ood_from_traces(
    table: &Table,
    log_height: usize,
    traces: InstanceTraces<'_>,
    quotient_coeffs: MatrixView<'_>,
    z: EF,
) -> Result<InstanceOod, ProveError> {
    let n = 1usize << log_height;
    let fits = |m: Option<MatrixView<'_>>, w: usize| match m {
        None => w == 0,
        Some(m) => m.width == w && m.values.len() == n * w,
    };
    if !fits(Some(traces.main), table.main_width)
        || !fits(traces.prep, table.prep_width)
        || !fits(traces.aux, table.aux_width())
        || !fits(Some(quotient_coeffs), table.quotient_width())
    {
        return Err(ProveError::Shape(format!(
            "{}: traces do not match the table",
            table.name
        )));
    }
    let zg = z * F::two_adic_generator(log_height);
    let both = |m: Option<MatrixView<'_>>| -> Result<(Vec<EF>, Vec<EF>), ProveError> {
        match m {
            None => Ok((Vec::new(), Vec::new())),
            Some(m) => {
                let mut v = crate::domain::eval_trace_at_points(m, log_height, &[z, zg])
                    .ok_or(ProveError::Degenerate("z on the trace domain"))?;
                let next = v.pop().unwrap();
                Ok((v.pop().unwrap(), next))
            }
        }
    };
    let (main, main_next) = both(Some(traces.main))?;
    let (prep, prep_next) = both(traces.prep)?;
    let (aux, aux_next) = both(traces.aux)?;
    let quotient = crate::domain::eval_coeffs_at(quotient_coeffs, z);
    Ok(InstanceOod {
        main,
        main_next,
        prep,
        prep_next,
        aux,
        aux_next,
        quotient,
    })
}

/// Pass 4 chunk by chunk: the same values as [`ood`], by barycentric sums over an instance's
/// committed LDE chunks on coset 0 (`theta_0 <w_n>`, [`ChunkGeometry::coset_shift`]), its
/// quotient pieces' included, fed one chunk at a time in any order. A column `p` is
/// `q(y) = p(theta_0 y)` on `<w_n>`, so `p(z) = q(z / theta_0)`: one pass over coset 0 replaces
/// the traces and the pieces' coefficients (which then need not be kept).
pub struct ChunkedOod {
    geo: ChunkGeometry,
    main: crate::domain::ChunkedEval,
    prep: crate::domain::ChunkedEval,
    aux: crate::domain::ChunkedEval,
    quotient: crate::domain::ChunkedEval,
    chunks: Vec<bool>,
    name: String,
}

impl ChunkedOod {
    pub fn new(table: &Table, geo: ChunkGeometry, z: EF) -> ChunkedOod {
        let n = geo.log_height;
        let y = z * geo.coset_shift(0).inverse();
        let points = [y, y * F::two_adic_generator(n)];
        let eval = |w: usize, p: &[EF]| crate::domain::ChunkedEval::new(n, w, p);
        ChunkedOod {
            geo,
            main: eval(table.main_width, &points),
            prep: eval(table.prep_width, &points),
            aux: eval(table.aux_width(), &points),
            quotient: eval(table.quotient_width(), &points[..1]),
            chunks: vec![false; geo.chunks()],
            name: table.name.clone(),
        }
    }

    fn shape(&self, what: String) -> ProveError {
        ProveError::Shape(format!("{}: {what}", self.name))
    }

    /// LDE chunk `(0, c)` of the committed columns and of the quotient pieces (B rows each).
    pub fn add_chunk(
        &mut self,
        c: usize,
        rows: ChunkRows<'_>,
        pieces: MatrixView<'_>,
    ) -> Result<(), ProveError> {
        let b = self.geo.chunk_rows();
        let fits = |m: Option<MatrixView<'_>>, w: usize| match m {
            None => w == 0,
            Some(m) => w > 0 && m.width == w && m.values.len() == b * w,
        };
        if c >= self.chunks.len()
            || self.chunks[c]
            || !fits(Some(rows.main), self.main.width())
            || !fits(rows.prep, self.prep.width())
            || !fits(rows.aux, self.aux.width())
            || !fits(Some(pieces), self.quotient.width())
        {
            return Err(self.shape(format!("chunk {c} does not fit, or came twice")));
        }
        let on_domain = || ProveError::Degenerate("z on the LDE's first coset");
        self.main.add(c * b, rows.main).ok_or_else(on_domain)?;
        if let Some(p) = rows.prep {
            self.prep.add(c * b, p).ok_or_else(on_domain)?;
        }
        if let Some(a) = rows.aux {
            self.aux.add(c * b, a).ok_or_else(on_domain)?;
        }
        self.quotient.add(c * b, pieces).ok_or_else(on_domain)?;
        self.chunks[c] = true;
        Ok(())
    }

    /// The instance's OOD values, once every chunk has been added.
    pub fn finish(self) -> Result<InstanceOod, ProveError> {
        if self.chunks.iter().any(|added| !added) {
            return Err(self.shape("OOD values asked for before every chunk came".into()));
        }
        let split = |e: crate::domain::ChunkedEval| {
            let mut v = e.finish();
            let next = v.pop().expect("two points");
            (v.pop().expect("two points"), next)
        };
        let (main, main_next) = split(self.main);
        let (prep, prep_next) = split(self.prep);
        let (aux, aux_next) = split(self.aux);
        let quotient = self.quotient.finish().pop().expect("one point");
        Ok(InstanceOod {
            main,
            main_next,
            prep,
            prep_next,
            aux,
            aux_next,
            quotient,
        })
    }
}

/// Number of DEEP terms (committed base columns) of an instance of `table`.
pub fn deep_columns(table: &Table) -> usize {
    table.main_width + table.prep_width + table.aux_width() + table.quotient_width()
}

/// Pass 5: folds every instance's committed columns into one DEEP codeword per LDE height.
///
/// Column c of instance i gets coefficient beta^(offset_i + c), offsets fixed by the canonical
/// instance order, so instances may be added in any order with the same result. Memory: one
/// extension-field codeword per distinct height (< 2 x the largest LDE in total).
pub struct DeepAccumulator {
    z: EF,
    beta: EF,
    log_blowup: usize,
    offsets: Vec<usize>,
    shapes: Vec<InstanceShape>,
    /// Keyed by log2 LDE size.
    pub codewords: std::collections::BTreeMap<usize, Vec<EF>>,
}

impl DeepAccumulator {
    pub fn new(
        tables: &[Table],
        shapes: &[InstanceShape],
        z: EF,
        beta: EF,
        log_blowup: usize,
    ) -> Self {
        let mut offsets = Vec::with_capacity(shapes.len());
        let mut acc = 0usize;
        for s in shapes {
            offsets.push(acc);
            acc += deep_columns(&tables[s.table as usize]);
        }
        DeepAccumulator {
            z,
            beta,
            log_blowup,
            offsets,
            shapes: shapes.to_vec(),
            codewords: Default::default(),
        }
    }

    /// Checks `ood` against `table` and derives what both ways of adding an instance use.
    fn terms(
        &self,
        table: &Table,
        index: usize,
        ood: &InstanceOod,
    ) -> Result<DeepTerms, ProveError> {
        let log_height = self
            .shapes
            .get(index)
            .ok_or_else(|| instance_error(table, index, "no such instance"))?
            .log_height as usize;
        let widths = [
            (ood.main.len(), table.main_width),
            (ood.main_next.len(), table.main_width),
            (ood.prep.len(), table.prep_width),
            (ood.prep_next.len(), table.prep_width),
            (ood.aux.len(), table.aux_width()),
            (ood.aux_next.len(), table.aux_width()),
            (ood.quotient.len(), table.quotient_width()),
        ];
        if widths.iter().any(|(a, b)| a != b) {
            return Err(instance_error(
                table,
                index,
                "OOD values do not match the table",
            ));
        }
        let coeffs: Vec<EF> = self
            .beta
            .shifted_powers(self.beta.exp_u64(self.offsets[index] as u64))
            .take(deep_columns(table))
            .collect();
        let (opened, z_only) = deep_sums(&coeffs, ood);
        Ok(DeepTerms {
            log_height,
            v_z: opened + z_only,
            v_zg: opened_next(&coeffs, ood),
            zg: self.z * F::two_adic_generator(log_height),
            coeffs,
        })
    }

    /// Adds instance `index`'s contribution.
    pub fn add(
        &mut self,
        table: &Table,
        index: usize,
        ldes: InstanceLdes<'_>,
        quotient: MatrixView<'_>,
        ood: &InstanceOod,
    ) -> Result<(), ProveError> {
        let DeepTerms {
            log_height,
            coeffs,
            v_z,
            v_zg,
            zg,
        } = self.terms(table, index, ood)?;
        ldes.check(table, log_height, self.log_blowup)?;
        check_quotient_lde(table, quotient, log_height, self.log_blowup)?;
        let log_n = log_height + self.log_blowup;
        let n = 1usize << log_n;
        let z = self.z;
        let xs = lde_points(log_n);
        let mats: Vec<MatrixView<'_>> = [Some(ldes.main), ldes.prep, ldes.aux]
            .into_iter()
            .flatten()
            .collect();
        let opened_cols: usize = mats.iter().map(|m| m.width).sum();
        let acc = self
            .codewords
            .entry(log_n)
            .or_insert_with(|| vec![EF::ZERO; n]);
        let points = |r0: usize, len: usize| xs[r0..r0 + len].to_vec();
        deep_rows(
            acc,
            points,
            &mats,
            quotient,
            &coeffs,
            opened_cols,
            z,
            zg,
            v_z,
            v_zg,
        )
        .then_some(())
        .ok_or(ProveError::Degenerate("z on the LDE domain"))
    }

    /// [`DeepAccumulator::add`] for one LDE chunk (`coset`, `chunk`) of instance `index` in the
    /// natural coset layout ([`crate::ntt`], geometry `geo`): adds its share to `out`, the same
    /// chunk of the instance height's codeword (B values at `theta_coset w^(chunk B + i)`,
    /// summed over the instances of that height), not to the accumulator's codewords. `rows`
    /// are the committed LDEs' chunks, B rows each (no next row: DEEP reads one point).
    #[allow(clippy::too_many_arguments)]
    pub fn add_chunk(
        &self,
        table: &Table,
        index: usize,
        ood: &InstanceOod,
        geo: &ChunkGeometry,
        coset: usize,
        chunk: usize,
        rows: ChunkRows<'_>,
        quotient: MatrixView<'_>,
        out: &mut [EF],
    ) -> Result<(), ProveError> {
        let DeepTerms {
            log_height,
            coeffs,
            v_z,
            v_zg,
            zg,
        } = self.terms(table, index, ood)?;
        let b = geo.chunk_rows();
        let fits = |m: Option<MatrixView<'_>>, w: usize| match m {
            None => w == 0,
            Some(m) => w > 0 && m.width == w && m.values.len() == b * w,
        };
        if geo.log_height != log_height
            || geo.log_blowup != self.log_blowup
            || coset >= geo.cosets()
            || chunk >= geo.chunks()
            || out.len() != b
            || !fits(Some(rows.main), table.main_width)
            || !fits(rows.prep, table.prep_width)
            || !fits(rows.aux, table.aux_width())
            || !fits(Some(quotient), table.quotient_width())
        {
            return Err(instance_error(
                table,
                index,
                &format!("LDE chunk ({coset}, {chunk}) does not fit the instance"),
            ));
        }
        let mats: Vec<MatrixView<'_>> = [Some(rows.main), rows.prep, rows.aux]
            .into_iter()
            .flatten()
            .collect();
        let opened_cols: usize = mats.iter().map(|m| m.width).sum();
        let w = F::two_adic_generator(log_height);
        let x0 = geo.coset_shift(coset) * w.exp_u64((chunk * b) as u64);
        let points = |i0: usize, len: usize| {
            let start = x0 * w.exp_u64(i0 as u64);
            w.powers().take(len).map(|p| start * p).collect()
        };
        let (z, opened) = (self.z, opened_cols);
        deep_rows(
            out, points, &mats, quotient, &coeffs, opened, z, zg, v_z, v_zg,
        )
        .then_some(())
        .ok_or(ProveError::Degenerate("z on the LDE domain"))
    }

    /// Same contribution as [`DeepAccumulator::add`], computed from the traces and the quotient
    /// coefficients instead of the LDEs: the columns are combined on the trace domain (n rows),
    /// divided by (X - z) and (X - z*w) in coefficient form, and only the resulting single
    /// extension polynomial is extended. Far cheaper than recomputing a wide LDE; identical
    /// output for an honest witness (the OOD values are then exact evaluations).
    pub fn add_from_traces(
        &mut self,
        table: &Table,
        index: usize,
        traces: InstanceTraces<'_>,
        quotient_coeffs: MatrixView<'_>,
        ood: &InstanceOod,
    ) -> Result<(), ProveError> {
        let DeepTerms {
            log_height,
            coeffs,
            v_z,
            v_zg,
            zg,
        } = self.terms(table, index, ood)?;
        let err = |msg: &str| instance_error(table, index, msg);
        let n = 1usize << log_height;
        let fits = |m: Option<MatrixView<'_>>, w: usize| match m {
            None => w == 0,
            Some(m) => m.width == w && m.values.len() == n * w,
        };
        if !fits(Some(traces.main), table.main_width)
            || !fits(traces.prep, table.prep_width)
            || !fits(traces.aux, table.aux_width())
            || !fits(Some(quotient_coeffs), table.quotient_width())
        {
            return Err(err("traces do not match the table"));
        }
        let opened_cols = table.main_width + table.prep_width + table.aux_width();
        let z = self.z;

        // A = sum r_c p_c over the opened columns, on the trace domain, then to coefficients.
        let mats: Vec<MatrixView<'_>> = [Some(traces.main), traces.prep, traces.aux]
            .into_iter()
            .flatten()
            .collect();
        let mut a_vals = vec![F::ZERO; n * EXT_DEGREE];
        a_vals
            .par_chunks_mut(EXT_DEGREE)
            .enumerate()
            .for_each(|(r, out)| out.copy_from_slice(&coords(combine_row(&mats, &coeffs, r))));
        let a = dft().idft_batch(RowMajorMatrix::new(a_vals, EXT_DEGREE));
        let a: Vec<EF> = a.values.chunks_exact(2).map(|c| ext(c[0], c[1])).collect();
        // Q = sum r_c q_c over the quotient columns, already in coefficient form.
        let qc = &coeffs[opened_cols..];
        let q: Vec<EF> = quotient_coeffs
            .values
            .par_chunks(quotient_coeffs.width)
            .map(|row| row.iter().zip(qc).map(|(v, r)| *r * *v).sum())
            .collect();
        // D = (A + Q - V_z) / (X - z) + (A - V_zg) / (X - zg), by synthetic division.
        let p: Vec<EF> = a.iter().zip(&q).map(|(x, y)| *x + *y).collect();
        let (d1, p_z) = divide_by_linear(&p, z);
        let (d2, a_zg) = divide_by_linear(&a, zg);
        if p_z != v_z || a_zg != v_zg {
            return Err(err("OOD values are not these traces' evaluations"));
        }
        let flat: Vec<F> = d1
            .iter()
            .zip(&d2)
            .flat_map(|(x, y)| coords(*x + *y))
            .collect();
        let lde = coeffs_to_lde(
            RowMajorMatrix::new(flat, EXT_DEGREE),
            log_height + self.log_blowup,
        );
        let acc = self
            .codewords
            .entry(log_height + self.log_blowup)
            .or_insert_with(|| vec![EF::ZERO; n << self.log_blowup]);
        acc.par_iter_mut()
            .zip(lde.values.par_chunks_exact(2))
            .for_each(|(o, v)| *o += ext(v[0], v[1]));
        Ok(())
    }
}

/// One instance's share of the DEEP combination: its height, the coefficient of each of its
/// columns, and the combined values at z (every column) and z*g (the opened ones) that the
/// combined polynomial is divided against.
struct DeepTerms {
    log_height: usize,
    coeffs: Vec<EF>,
    v_z: EF,
    v_zg: EF,
    zg: EF,
}

/// Adds to `out[r]` the DEEP combination of row `r` of `mats` and `quotient` at the point
/// `points(r0, len)[r - r0]`: `(v_z - a - aq) / (z - x) + (v_zg - a) / (zg - x)`, where `a` and
/// `aq` are the row's combined opened and quotient columns. False if a point is z or zg.
#[allow(clippy::too_many_arguments)]
fn deep_rows(
    out: &mut [EF],
    points: impl Fn(usize, usize) -> Vec<F> + Sync,
    mats: &[MatrixView<'_>],
    quotient: MatrixView<'_>,
    coeffs: &[EF],
    opened_cols: usize,
    z: EF,
    zg: EF,
    v_z: EF,
    v_zg: EF,
) -> bool {
    const BLOCK: usize = 1024;
    out.par_chunks_mut(BLOCK).enumerate().all(|(bi, out)| {
        let r0 = bi * BLOCK;
        let xs = points(r0, out.len());
        let mut den = Vec::with_capacity(2 * out.len());
        for &x in &xs {
            den.push(z - x);
            den.push(zg - x);
        }
        let Some(inv) = batch_inverse(&den) else {
            return false;
        };
        for (k, o) in out.iter_mut().enumerate() {
            let r = r0 + k;
            let a = combine_row(mats, coeffs, r);
            let aq = combine_row(&[quotient], &coeffs[opened_cols..], r);
            // (p(x) - p(z)) / (x - z) = (p(z) - p(x)) / (z - x)
            *o += (v_z - a - aq) * inv[2 * k] + (v_zg - a) * inv[2 * k + 1];
        }
        true
    })
}

/// Row `r` of the matrices side by side, each value times its coefficient, summed.
fn combine_row(mats: &[MatrixView<'_>], coeffs: &[EF], r: usize) -> EF {
    let row = mats
        .iter()
        .flat_map(|m| &m.values[r * m.width..(r + 1) * m.width]);
    row.zip(coeffs).map(|(v, c)| *c * *v).sum()
}

fn instance_error(table: &Table, index: usize, msg: &str) -> ProveError {
    ProveError::Instance {
        index,
        msg: format!("{}: {msg}", table.name),
    }
}

/// Coefficients of (P(X) - P(point)) / (X - point) (same length as P, top coefficient zero)
/// and P(point), by synthetic division.
fn divide_by_linear(p: &[EF], point: EF) -> (Vec<EF>, EF) {
    let n = p.len();
    let mut out = vec![EF::ZERO; n];
    let mut carry = EF::ZERO;
    for k in (1..n).rev() {
        carry = p[k] + point * carry;
        out[k - 1] = carry;
    }
    let value = p.first().copied().unwrap_or_default() + point * carry;
    (out, value)
}

/// (sum of coefficient * value at z over columns with a next-row opening, same over quotient
/// columns).
pub(crate) fn deep_sums(coeffs: &[EF], ood: &InstanceOod) -> (EF, EF) {
    let opened: Vec<&EF> = ood.main.iter().chain(&ood.prep).chain(&ood.aux).collect();
    let a: EF = opened.iter().zip(coeffs).map(|(v, c)| **v * *c).sum();
    let q: EF = ood
        .quotient
        .iter()
        .zip(&coeffs[opened.len()..])
        .map(|(v, c)| *v * *c)
        .sum();
    (a, q)
}

/// Sum of coefficient * value at z*w.
pub(crate) fn opened_next(coeffs: &[EF], ood: &InstanceOod) -> EF {
    ood.main_next
        .iter()
        .chain(&ood.prep_next)
        .chain(&ood.aux_next)
        .zip(coeffs)
        .map(|(v, c)| *v * *c)
        .sum()
}
