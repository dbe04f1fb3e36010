//! Compiling a table's [`Air`] into a [`Table`]: LogUp aux columns and constraints are added,
//! degrees are checked, and every constraint becomes one flat, typed program.
//!
//! # LogUp batching rule
//! Each interaction contributes `±m / f` with fingerprint
//! `f = gamma - (bus + a*v1 + a^2*v2 + ...)`. Interactions are packed, in declaration order,
//! into groups: two consecutive interactions share a group when `M = m1'*f2 + m2'*f1` over
//! `F = f1*f2` keeps `h*F - M` at degree <= 3 (so: fingerprints and multiplicities of degree 1),
//! otherwise an interaction is a group of its own (`F = f`, `M = m'`). Of k groups, the first
//! k-1 get an extension-field aux column `h_j` each (every row: `h_j F_j = M_j`), and the last
//! column `s` is an exclusive running sum whose step carries the last group's fraction:
//! ```text
//! every row:  (s' - s - h_0 - ... - h_(k-2) + L_last * C) * F_(k-1) = M_(k-1)
//! ```
//! where `s'` wraps from the last row to row 0, `C` is the instance's claimed sum and `L_last`
//! the last row's Lagrange selector. Summed over the n rows of H the steps `s' - s` cancel and
//! `L_last` is 1 once, so `C = sum over rows of (h_0 + ... + h_(k-2) + M_(k-1) / F_(k-1))`, the
//! instance's whole LogUp sum, whatever `s` starts from (the prover starts it at 0). Where
//! `F_j` vanishes at a row (probability about n / |EF| over gamma) the row's fraction is
//! unconstrained, as in any LogUp. The running sum costs no column of its own beyond the
//! fraction column it replaces, and no first- or last-row constraint (which would count one
//! degree more and put the merged step at degree 4).
//!
//! # Degrees
//! A transition or every-row constraint of degree d gives a quotient of degree < (d-1)n; a
//! first/last-row constraint is divided by (x - point) only, so it counts one degree more.
//! Every effective degree must be <= [`MAX_CONSTRAINT_DEGREE`] = 3; the quotient is split into
//! `max(1, D-1)` pieces of degree < n, where D is the table's largest effective degree. Degree 3
//! keeps two pieces and a quotient domain of 2n = the default LDE, so constraint evaluation runs
//! on the committed LDE rows without a second extension.

use std::collections::HashMap;

use crate::air::{Air, AirBuilder, Expr, Interaction, Node, When};
use crate::field::{EF, F, PrimeCharacteristicRing, canonical, ext};

/// Largest effective constraint degree accepted at setup.
pub const MAX_CONSTRAINT_DEGREE: usize = 3;

/// Number of LogUp challenges (gamma, tuple combiner).
pub const NUM_LOOKUP_CHALLENGES: usize = 2;

/// Why a table was rejected at setup.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum AirError {
    #[error("table {table}: {msg}")]
    Invalid { table: String, msg: String },
    #[error("table {table}: constraint {index} has effective degree {degree} > {max}")]
    DegreeTooHigh {
        table: String,
        index: usize,
        degree: usize,
        max: usize,
    },
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Op {
    Const(F),
    Main(usize, bool),
    Prep(usize, bool),
    Aux(usize, bool),
    Challenge(usize),
    Claimed,
    IsLast,
    Add(usize, usize),
    Sub(usize, usize),
    Mul(usize, usize),
    Neg(usize),
}

/// A straight-line program; each op writes one slot, typed base or extension.
#[derive(Clone, Debug, Default)]
pub(crate) struct Program {
    pub ops: Vec<Op>,
    pub is_ext: Vec<bool>,
    pub degree: Vec<usize>,
    /// Index of each op's slot within its arena (base or extension).
    pub slot: Vec<usize>,
    pub num_base: usize,
    pub num_ext: usize,
    pub outputs: Vec<(When, usize)>,
    pub uses_next: Vec<bool>,
    leaves: HashMap<(u8, u64, bool), usize>,
}

impl Program {
    fn compile(&mut self, e: &Expr, memo: &mut HashMap<*const Node, usize>) -> usize {
        let key = std::sync::Arc::as_ptr(&e.0);
        if let Some(&i) = memo.get(&key) {
            return i;
        }
        // Leaves are shared by value too: `b.main(3)` called twice loads the column once.
        let leaf = match &*e.0 {
            Node::Const(c) => Some((0u8, canonical(*c), false)),
            Node::Main { col, next } => Some((1, *col as u64, *next)),
            Node::Prep { col, next } => Some((2, *col as u64, *next)),
            Node::Aux { col, next } => Some((3, *col as u64, *next)),
            Node::Challenge(i) => Some((4, *i as u64, false)),
            Node::ClaimedSum => Some((5, 0, false)),
            Node::IsLastRow => Some((6, 0, false)),
            _ => None,
        };
        if let Some(i) = leaf.and_then(|l| self.leaves.get(&l)) {
            let i = *i;
            memo.insert(key, i);
            return i;
        }
        let (op, ext, deg, next) = match &*e.0 {
            Node::Const(c) => (Op::Const(*c), false, 0, false),
            Node::Main { col, next } => (Op::Main(*col, *next), false, 1, *next),
            Node::Prep { col, next } => (Op::Prep(*col, *next), false, 1, *next),
            Node::Aux { col, next } => (Op::Aux(*col, *next), true, 1, *next),
            Node::Challenge(i) => (Op::Challenge(*i), true, 0, false),
            Node::ClaimedSum => (Op::Claimed, true, 0, false),
            Node::IsLastRow => (Op::IsLast, false, 1, false),
            Node::Add(a, b) | Node::Sub(a, b) | Node::Mul(a, b) => {
                let (x, y) = (self.compile(a, memo), self.compile(b, memo));
                let ext = self.is_ext[x] || self.is_ext[y];
                let next = self.uses_next[x] || self.uses_next[y];
                let (op, deg) = match &*e.0 {
                    Node::Add(..) => (Op::Add(x, y), self.degree[x].max(self.degree[y])),
                    Node::Sub(..) => (Op::Sub(x, y), self.degree[x].max(self.degree[y])),
                    _ => (Op::Mul(x, y), self.degree[x] + self.degree[y]),
                };
                (op, ext, deg, next)
            }
            Node::Neg(a) => {
                let x = self.compile(a, memo);
                (
                    Op::Neg(x),
                    self.is_ext[x],
                    self.degree[x],
                    self.uses_next[x],
                )
            }
        };
        let slot = if ext { self.num_ext } else { self.num_base };
        if ext {
            self.num_ext += 1;
        } else {
            self.num_base += 1;
        }
        self.ops.push(op);
        self.is_ext.push(ext);
        self.degree.push(deg);
        self.slot.push(slot);
        self.uses_next.push(next);
        let i = self.ops.len() - 1;
        memo.insert(key, i);
        if let Some(l) = leaf {
            self.leaves.insert(l, i);
        }
        i
    }

    /// Binds the exact op sequence: prover and verifier must run the same constraints.
    fn digest(&self, h: &mut blake3::Hasher) {
        for op in &self.ops {
            let (tag, a, b): (u8, u64, u64) = match *op {
                Op::Const(c) => (0, canonical(c), 0),
                Op::Main(c, n) => (1, c as u64, n as u64),
                Op::Prep(c, n) => (2, c as u64, n as u64),
                Op::Aux(c, n) => (3, c as u64, n as u64),
                Op::Challenge(i) => (4, i as u64, 0),
                Op::Claimed => (5, 0, 0),
                Op::Add(x, y) => (6, x as u64, y as u64),
                Op::Sub(x, y) => (7, x as u64, y as u64),
                Op::Mul(x, y) => (8, x as u64, y as u64),
                Op::Neg(x) => (9, x as u64, 0),
                Op::IsLast => (10, 0, 0),
            };
            h.update(&[tag]);
            h.update(&a.to_le_bytes());
            h.update(&b.to_le_bytes());
        }
        for (w, o) in &self.outputs {
            h.update(&[*w as u8]);
            h.update(&(*o as u64).to_le_bytes());
        }
    }

    /// Evaluates every op at one point, all values in the extension field (verifier side).
    pub fn eval_point(&self, vals: &PointValues<'_>) -> Option<Vec<EF>> {
        let mut v: Vec<EF> = Vec::with_capacity(self.ops.len());
        for op in &self.ops {
            let x = match *op {
                Op::Const(c) => EF::from(c),
                Op::Main(c, n) => *if n { vals.main_next } else { vals.main }.get(c)?,
                Op::Prep(c, n) => *if n { vals.prep_next } else { vals.prep }.get(c)?,
                Op::Aux(c, n) => *if n { vals.aux_next } else { vals.aux }.get(c)?,
                Op::Challenge(i) => *vals.challenges.get(i)?,
                Op::Claimed => vals.claimed,
                Op::IsLast => vals.is_last,
                Op::Add(a, b) => v[a] + v[b],
                Op::Sub(a, b) => v[a] - v[b],
                Op::Mul(a, b) => v[a] * v[b],
                Op::Neg(a) => -v[a],
            };
            v.push(x);
        }
        Some(self.outputs.iter().map(|(_, o)| v[*o]).collect())
    }
}

/// Values of one row (and the next) in the extension field, for [`Program::eval_point`].
pub(crate) struct PointValues<'a> {
    pub main: &'a [EF],
    pub main_next: &'a [EF],
    pub prep: &'a [EF],
    pub prep_next: &'a [EF],
    pub aux: &'a [EF],
    pub aux_next: &'a [EF],
    pub challenges: &'a [EF],
    pub claimed: EF,
    /// `L_last` at the point.
    pub is_last: EF,
}

/// Row-major base-field matrices a block of rows is read from (aux is flattened: extension
/// column c = base columns 2c, 2c+1).
pub(crate) struct RowSource<'a> {
    pub main: &'a [F],
    pub main_width: usize,
    pub prep: &'a [F],
    pub prep_width: usize,
    pub aux: &'a [F],
    pub aux_width: usize,
}

/// Scratch arenas for block evaluation, reused across blocks.
pub(crate) struct BlockScratch {
    base: Vec<F>,
    ext: Vec<EF>,
    block: usize,
}

impl BlockScratch {
    pub fn new(p: &Program, block: usize) -> Self {
        BlockScratch {
            base: vec![F::ZERO; p.num_base * block],
            ext: vec![EF::ZERO; p.num_ext * block],
            block,
        }
    }
}

macro_rules! mixed {
    ($out:ident, $p:ident, $base:ident, $lo:ident, $x:ident, $y:ident, $n:ident, $B:ident, $f:expr) => {{
        let (xe, ye) = ($p.is_ext[$x], $p.is_ext[$y]);
        let (xo, yo) = ($p.slot[$x] * $B, $p.slot[$y] * $B);
        let f = $f;
        match (xe, ye) {
            (true, true) => (0..$n).for_each(|k| $out[k] = f($lo[xo + k], $lo[yo + k])),
            (true, false) => {
                (0..$n).for_each(|k| $out[k] = f($lo[xo + k], EF::from($base[yo + k])))
            }
            (false, true) => {
                (0..$n).for_each(|k| $out[k] = f(EF::from($base[xo + k]), $lo[yo + k]))
            }
            (false, false) => (0..$n).for_each(|k| {
                $out[k] = EF::from(f(EF::from($base[xo + k]), EF::from($base[yo + k])))
            }),
        }
    }};
}

impl Program {
    /// Evaluates the program on the rows `rows` (with successors `next`) of `src`, where
    /// `is_last[k]` is `L_last` at row `k`'s point (empty for a program without it).
    /// Afterwards `output_base`/`output_ext` read the results.
    #[allow(clippy::too_many_arguments)]
    pub fn eval_block(
        &self,
        src: &RowSource<'_>,
        rows: &[usize],
        next: &[usize],
        challenges: &[EF],
        claimed: EF,
        is_last: &[F],
        s: &mut BlockScratch,
    ) {
        let n = rows.len();
        let bsz = s.block;
        debug_assert!(n <= bsz);
        for (i, op) in self.ops.iter().enumerate() {
            let o = self.slot[i] * bsz;
            if !self.is_ext[i] {
                let (lo, hi) = s.base.split_at_mut(o);
                let out = &mut hi[..n];
                match *op {
                    Op::Const(c) => out.fill(c),
                    Op::Main(c, nx) => {
                        let r = if nx { next } else { rows };
                        (0..n).for_each(|k| out[k] = src.main[r[k] * src.main_width + c]);
                    }
                    Op::Prep(c, nx) => {
                        let r = if nx { next } else { rows };
                        (0..n).for_each(|k| out[k] = src.prep[r[k] * src.prep_width + c]);
                    }
                    Op::IsLast => out.copy_from_slice(&is_last[..n]),
                    Op::Add(x, y) => {
                        let (xo, yo) = (self.slot[x] * bsz, self.slot[y] * bsz);
                        let (a, b) = (&lo[xo..xo + n], &lo[yo..yo + n]);
                        for ((o, a), b) in out.iter_mut().zip(a).zip(b) {
                            *o = *a + *b;
                        }
                    }
                    Op::Sub(x, y) => {
                        let (xo, yo) = (self.slot[x] * bsz, self.slot[y] * bsz);
                        let (a, b) = (&lo[xo..xo + n], &lo[yo..yo + n]);
                        for ((o, a), b) in out.iter_mut().zip(a).zip(b) {
                            *o = *a - *b;
                        }
                    }
                    Op::Mul(x, y) => {
                        let (xo, yo) = (self.slot[x] * bsz, self.slot[y] * bsz);
                        let (a, b) = (&lo[xo..xo + n], &lo[yo..yo + n]);
                        for ((o, a), b) in out.iter_mut().zip(a).zip(b) {
                            *o = *a * *b;
                        }
                    }
                    Op::Neg(x) => {
                        let xo = self.slot[x] * bsz;
                        for (o, a) in out.iter_mut().zip(&lo[xo..xo + n]) {
                            *o = -*a;
                        }
                    }
                    Op::Aux(..) | Op::Challenge(_) | Op::Claimed => {
                        unreachable!("extension op typed base")
                    }
                }
            } else {
                let base = &s.base;
                let (lo, hi) = s.ext.split_at_mut(o);
                let out = &mut hi[..n];
                match *op {
                    Op::Aux(c, nx) => {
                        let r = if nx { next } else { rows };
                        (0..n).for_each(|k| {
                            let at = r[k] * src.aux_width + 2 * c;
                            out[k] = ext(src.aux[at], src.aux[at + 1]);
                        });
                    }
                    Op::Challenge(i) => out.fill(challenges[i]),
                    Op::Claimed => out.fill(claimed),
                    Op::Add(x, y) => {
                        mixed!(out, self, base, lo, x, y, n, bsz, |a: EF, b: EF| a + b)
                    }
                    Op::Sub(x, y) => {
                        mixed!(out, self, base, lo, x, y, n, bsz, |a: EF, b: EF| a - b)
                    }
                    Op::Mul(x, y) => {
                        let (xe, ye) = (self.is_ext[x], self.is_ext[y]);
                        let (xo, yo) = (self.slot[x] * bsz, self.slot[y] * bsz);
                        match (xe, ye) {
                            (true, true) => (0..n).for_each(|k| out[k] = lo[xo + k] * lo[yo + k]),
                            (true, false) => {
                                (0..n).for_each(|k| out[k] = lo[xo + k] * base[yo + k])
                            }
                            (false, true) => {
                                (0..n).for_each(|k| out[k] = lo[yo + k] * base[xo + k])
                            }
                            (false, false) => unreachable!("base product typed extension"),
                        }
                    }
                    Op::Neg(x) => {
                        let xo = self.slot[x] * bsz;
                        (0..n).for_each(|k| out[k] = -lo[xo + k]);
                    }
                    Op::Const(_) | Op::Main(..) | Op::Prep(..) | Op::IsLast => {
                        unreachable!("base op typed extension")
                    }
                }
            }
        }
    }

    /// Row `k` of output `o` after `eval_block`, lifted to the extension.
    #[inline]
    pub fn output(&self, s: &BlockScratch, o: usize, k: usize) -> EF {
        let i = self.outputs[o].1;
        let at = self.slot[i] * s.block + k;
        if self.is_ext[i] {
            s.ext[at]
        } else {
            EF::from(s.base[at])
        }
    }

    /// Row `k` of output `o` times an extension coefficient (a cheaper product when the
    /// output is base-typed).
    #[inline]
    pub fn output_scaled(&self, s: &BlockScratch, o: usize, k: usize, coeff: EF) -> EF {
        let i = self.outputs[o].1;
        let at = self.slot[i] * s.block + k;
        if self.is_ext[i] {
            s.ext[at] * coeff
        } else {
            coeff * s.base[at]
        }
    }

    /// Row `k` of a base-typed output `o` after `eval_block`.
    #[inline]
    pub fn output_base(&self, s: &BlockScratch, o: usize, k: usize) -> F {
        let i = self.outputs[o].1;
        s.base[self.slot[i] * s.block + k]
    }
}

/// A compiled table: layout, LogUp packing and the constraint programs.
#[derive(Clone, Debug)]
pub struct Table {
    pub name: String,
    pub main_width: usize,
    pub prep_width: usize,
    /// Interactions in declaration order.
    pub interactions: Vec<Interaction>,
    /// For each LogUp group, the interactions it sums (group j < k-1 in fraction column j; the
    /// last one in the running sum's step).
    pub aux_groups: Vec<Vec<usize>>,
    /// Extension-field aux columns (a fraction column per group but the last, and the running
    /// sum), 0 without buses.
    pub aux_ext_width: usize,
    /// Quotient pieces of degree < n (1 or 2).
    pub quotient_pieces: usize,
    /// Largest effective constraint degree.
    pub max_degree: usize,
    /// Binds the constraint system into the transcript.
    pub digest: [u8; 32],
    /// The first outputs of `constraints` are the AIR's own (the rest are LogUp).
    pub num_air_constraints: usize,
    pub(crate) constraints: Program,
    /// Outputs: for each interaction, its values then its multiplicity (base field, local row).
    pub(crate) interaction_values: Program,
}

impl Table {
    /// Base-field width of the aux trace.
    pub fn aux_width(&self) -> usize {
        self.aux_ext_width * crate::field::EXT_DEGREE
    }
    /// Base-field width of the quotient commitment.
    pub fn quotient_width(&self) -> usize {
        self.quotient_pieces * crate::field::EXT_DEGREE
    }
    pub fn has_aux(&self) -> bool {
        self.aux_ext_width > 0
    }
    /// log2 of the quotient domain size over the trace height.
    pub fn log_quotient_factor(&self) -> usize {
        self.quotient_pieces.trailing_zeros() as usize
    }
}

fn expr_degree(e: &Expr, memo: &mut HashMap<*const Node, usize>) -> usize {
    let key = std::sync::Arc::as_ptr(&e.0);
    if let Some(&d) = memo.get(&key) {
        return d;
    }
    let d = match &*e.0 {
        Node::Const(_) | Node::Challenge(_) | Node::ClaimedSum => 0,
        Node::Main { .. } | Node::Prep { .. } | Node::Aux { .. } | Node::IsLastRow => 1,
        Node::Add(a, b) | Node::Sub(a, b) => expr_degree(a, memo).max(expr_degree(b, memo)),
        Node::Mul(a, b) => expr_degree(a, memo) + expr_degree(b, memo),
        Node::Neg(a) => expr_degree(a, memo),
    };
    memo.insert(key, d);
    d
}

fn aux(col: usize, next: bool) -> Expr {
    Expr::node(Node::Aux { col, next })
}

/// Compiles one table. Fails on out-of-range columns, next-row values in interactions, and any
/// constraint above [`MAX_CONSTRAINT_DEGREE`].
pub fn compile(air: &dyn Air) -> Result<Table, AirError> {
    let name = air.name().to_string();
    let invalid = |msg: String| AirError::Invalid {
        table: name.clone(),
        msg,
    };
    let mut b = AirBuilder::new(air.main_width(), air.preprocessed_width());
    air.eval(&mut b);
    if let Some(e) = b.errors.first() {
        return Err(invalid(e.clone()));
    }
    if air.main_width() == 0 {
        return Err(invalid("a table needs at least one main column".into()));
    }
    if b.interactions.len() > crate::air::MAX_INTERACTIONS {
        return Err(invalid(format!(
            "{} bus interactions > {}",
            b.interactions.len(),
            crate::air::MAX_INTERACTIONS
        )));
    }
    let mut dmemo = HashMap::new();

    // LogUp columns.
    let gamma = Expr::node(Node::Challenge(0));
    let alpha = Expr::node(Node::Challenge(1));
    let mut fracs = Vec::new(); // (fingerprint, signed multiplicity, deg f, deg m)
    for it in &b.interactions {
        let mut acc = Expr::from_u64(it.bus as u64);
        let mut pw = alpha.clone();
        for v in &it.values {
            acc = acc + pw.clone() * v.clone();
            pw = pw * alpha.clone();
        }
        let f = gamma.clone() - acc;
        let m = if it.is_send {
            it.multiplicity.clone()
        } else {
            -it.multiplicity.clone()
        };
        let (df, dm) = (expr_degree(&f, &mut dmemo), expr_degree(&m, &mut dmemo));
        fracs.push((f, m, df, dm));
    }
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut i = 0;
    while i < fracs.len() {
        let (_, _, df1, dm1) = fracs[i];
        if i + 1 < fracs.len() {
            let (_, _, df2, dm2) = fracs[i + 1];
            let d = (1 + df1 + df2).max(dm1 + df2).max(dm2 + df1);
            if d <= MAX_CONSTRAINT_DEGREE {
                groups.push(vec![i, i + 1]);
                i += 2;
                continue;
            }
        }
        groups.push(vec![i]);
        i += 1;
    }
    let num_air_constraints = b.constraints.len();
    let mut constraints = b.constraints.clone();
    // Group j's fraction `M_j / F_j`.
    let fraction = |g: &[usize]| -> (Expr, Expr) {
        match *g {
            [a] => (fracs[a].0.clone(), fracs[a].1.clone()),
            [a, b2] => {
                let (f1, m1) = (&fracs[a].0, &fracs[a].1);
                let (f2, m2) = (&fracs[b2].0, &fracs[b2].1);
                (
                    f1.clone() * f2.clone(),
                    m1.clone() * f2.clone() + m2.clone() * f1.clone(),
                )
            }
            _ => unreachable!("groups hold one or two interactions"),
        }
    };
    // Groups 0..k-1 get a fraction column each; the last group's fraction is the running sum's
    // step (the module docs).
    let aux_ext_width = groups.len();
    if let Some((last, rest)) = groups.split_last() {
        for (j, g) in rest.iter().enumerate() {
            let (f, m) = fraction(g);
            constraints.push((When::EveryRow, aux(j, false) * f - m));
        }
        let s_col = rest.len();
        let mut step = aux(s_col, true) - aux(s_col, false);
        for j in 0..s_col {
            step = step - aux(j, false);
        }
        let step = step + Expr::node(Node::IsLastRow) * Expr::node(Node::ClaimedSum);
        let (f, m) = fraction(last);
        constraints.push((When::EveryRow, step * f - m));
    }

    let mut max_degree = 1;
    for (index, (w, c)) in constraints.iter().enumerate() {
        let d = expr_degree(c, &mut dmemo) + matches!(w, When::FirstRow | When::LastRow) as usize;
        if d > MAX_CONSTRAINT_DEGREE {
            return Err(AirError::DegreeTooHigh {
                table: name,
                index,
                degree: d,
                max: MAX_CONSTRAINT_DEGREE,
            });
        }
        max_degree = max_degree.max(d);
    }
    let quotient_pieces = (max_degree - 1).max(1);

    let mut prog = Program::default();
    let mut memo = HashMap::new();
    for (w, c) in &constraints {
        let o = prog.compile(c, &mut memo);
        prog.outputs.push((*w, o));
    }
    let mut iprog = Program::default();
    let mut memo = HashMap::new();
    for it in &b.interactions {
        for e in it.values.iter().chain(std::iter::once(&it.multiplicity)) {
            let o = iprog.compile(e, &mut memo);
            if iprog.uses_next[o] {
                return Err(invalid(format!(
                    "bus {}: interactions may only use the current row",
                    it.bus
                )));
            }
            iprog.outputs.push((When::EveryRow, o));
        }
    }

    let mut h = blake3::Hasher::new();
    h.update(b"stark-pipe/v1/table");
    h.update(&(name.len() as u64).to_le_bytes());
    h.update(name.as_bytes());
    for v in [
        air.main_width(),
        air.preprocessed_width(),
        aux_ext_width,
        quotient_pieces,
    ] {
        h.update(&(v as u64).to_le_bytes());
    }
    for it in &b.interactions {
        h.update(&it.bus.to_le_bytes());
        h.update(&[it.is_send as u8]);
        h.update(&(it.values.len() as u64).to_le_bytes());
    }
    prog.digest(&mut h);
    iprog.digest(&mut h);

    Ok(Table {
        name,
        main_width: air.main_width(),
        prep_width: air.preprocessed_width(),
        interactions: b.interactions,
        aux_groups: groups,
        aux_ext_width,
        quotient_pieces,
        max_degree,
        digest: *h.finalize().as_bytes(),
        num_air_constraints,
        constraints: prog,
        interaction_values: iprog,
    })
}

/// Compiles every table, and checks that each bus carries tuples of one length everywhere
/// (the fingerprint does not encode the length, so `[x]` and `[x, 0]` would collide).
pub fn compile_all(airs: &[&dyn Air]) -> Result<Vec<Table>, AirError> {
    let tables: Vec<Table> = airs.iter().map(|a| compile(*a)).collect::<Result<_, _>>()?;
    bus_arities(&tables)?;
    Ok(tables)
}

/// The tuple length of every bus used by `tables`.
pub fn bus_arities(tables: &[Table]) -> Result<std::collections::BTreeMap<u32, usize>, AirError> {
    let mut arity = std::collections::BTreeMap::new();
    for t in tables {
        for it in &t.interactions {
            let len = *arity.entry(it.bus).or_insert(it.values.len());
            if len != it.values.len() {
                return Err(AirError::Invalid {
                    table: t.name.clone(),
                    msg: format!(
                        "bus {} carries tuples of length {} and {}",
                        it.bus,
                        len,
                        it.values.len()
                    ),
                });
            }
        }
    }
    Ok(arity)
}
