//! The AIR interface: what a table declares.
//!
//! A table writes its constraints and bus interactions **once**, against [`AirBuilder`], as
//! symbolic [`Expr`]s. The crate compiles them (see `constraints`) and evaluates the same
//! program over base-field LDE rows in the prover and over extension-field OOD values in the
//! verifier, so the two can never disagree about what a constraint means. `Air` is object
//! safe: heterogeneous tables go in one `&[&dyn Air]`.

use std::ops::{Add, Mul, Neg, Sub};
use std::sync::Arc;

use p3_matrix::dense::RowMajorMatrix;

use crate::field::{F, PrimeCharacteristicRing};

/// A table of the machine. Each instance (chunk) of it has its own power-of-two height >= 2.
pub trait Air: Send + Sync {
    /// Short name, shown by `inspect` and bound into the transcript.
    fn name(&self) -> &str;
    /// Number of committed main (witness) columns.
    fn main_width(&self) -> usize;
    /// Number of preprocessed (fixed) columns.
    fn preprocessed_width(&self) -> usize {
        0
    }
    /// The preprocessed columns for an instance of `height` rows (row-major, width
    /// `preprocessed_width`). The verifier recomputes their commitment from this.
    fn preprocessed_trace(&self, height: usize) -> Option<RowMajorMatrix<F>> {
        let _ = height;
        None
    }
    /// Declares constraints and bus interactions.
    fn eval(&self, builder: &mut AirBuilder);
}

/// Which rows a constraint applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum When {
    /// Every row, including the last (where next-row values wrap around to row 0).
    EveryRow,
    /// Every row but the last: may relate a row to the next.
    Transition,
    /// Only the first row.
    FirstRow,
    /// Only the last row.
    LastRow,
}

/// A symbolic expression over one row (and the next) of a table.
#[derive(Clone, Debug)]
pub struct Expr(pub(crate) Arc<Node>);

#[derive(Debug)]
pub(crate) enum Node {
    Const(F),
    Main {
        col: usize,
        next: bool,
    },
    Prep {
        col: usize,
        next: bool,
    },
    /// Extension-field aux column (crate-internal: LogUp).
    Aux {
        col: usize,
        next: bool,
    },
    /// Extension-field challenge (crate-internal: 0 = gamma, 1 = alpha of the tuple).
    Challenge(usize),
    /// The instance's claimed LogUp partial sum (crate-internal).
    ClaimedSum,
    /// The last row's Lagrange selector `L_last` (crate-internal: 1 on the last row, 0 on the
    /// other rows of the trace domain; a polynomial of degree `n - 1`, like a column).
    IsLastRow,
    Add(Expr, Expr),
    Sub(Expr, Expr),
    Mul(Expr, Expr),
    Neg(Expr),
}

impl Expr {
    pub(crate) fn node(n: Node) -> Self {
        Expr(Arc::new(n))
    }
    /// A constant.
    pub fn constant(v: F) -> Self {
        Expr::node(Node::Const(v))
    }
    /// A small integer constant.
    pub fn from_u64(v: u64) -> Self {
        Expr::constant(F::from_u64(v))
    }
    pub fn zero() -> Self {
        Expr::constant(F::ZERO)
    }
    pub fn one() -> Self {
        Expr::constant(F::ONE)
    }
    /// `self * (self - 1)`: zero iff boolean.
    pub fn bool_check(&self) -> Self {
        self.clone() * (self.clone() - Expr::one())
    }
}

impl From<F> for Expr {
    fn from(v: F) -> Self {
        Expr::constant(v)
    }
}
impl From<u64> for Expr {
    fn from(v: u64) -> Self {
        Expr::from_u64(v)
    }
}

macro_rules! binop {
    ($tr:ident, $f:ident, $node:ident) => {
        impl<T: Into<Expr>> $tr<T> for Expr {
            type Output = Expr;
            fn $f(self, rhs: T) -> Expr {
                Expr::node(Node::$node(self, rhs.into()))
            }
        }
        impl<T: Into<Expr>> $tr<T> for &Expr {
            type Output = Expr;
            fn $f(self, rhs: T) -> Expr {
                Expr::node(Node::$node(self.clone(), rhs.into()))
            }
        }
    };
}
binop!(Add, add, Add);
binop!(Sub, sub, Sub);
binop!(Mul, mul, Mul);

impl From<&Expr> for Expr {
    fn from(e: &Expr) -> Self {
        e.clone()
    }
}

macro_rules! scalar_lhs {
    ($t:ty) => {
        impl Add<Expr> for $t {
            type Output = Expr;
            fn add(self, rhs: Expr) -> Expr {
                Expr::from(self) + rhs
            }
        }
        impl Sub<Expr> for $t {
            type Output = Expr;
            fn sub(self, rhs: Expr) -> Expr {
                Expr::from(self) - rhs
            }
        }
        impl Mul<Expr> for $t {
            type Output = Expr;
            fn mul(self, rhs: Expr) -> Expr {
                Expr::from(self) * rhs
            }
        }
    };
}
scalar_lhs!(u64);
scalar_lhs!(F);

impl std::iter::Sum for Expr {
    fn sum<I: Iterator<Item = Expr>>(iter: I) -> Expr {
        iter.reduce(|a, b| a + b).unwrap_or_else(Expr::zero)
    }
}

impl std::iter::Product for Expr {
    fn product<I: Iterator<Item = Expr>>(iter: I) -> Expr {
        iter.reduce(|a, b| a * b).unwrap_or_else(Expr::one)
    }
}

impl Neg for Expr {
    type Output = Expr;
    fn neg(self) -> Expr {
        Expr::node(Node::Neg(self))
    }
}
impl Neg for &Expr {
    type Output = Expr;
    fn neg(self) -> Expr {
        Expr::node(Node::Neg(self.clone()))
    }
}

/// One side of a bus: `multiplicity / fingerprint(bus, values)` enters the LogUp sum with a
/// plus sign for a send and a minus sign for a receive.
#[derive(Clone, Debug)]
pub struct Interaction {
    pub bus: u32,
    pub values: Vec<Expr>,
    pub multiplicity: Expr,
    pub is_send: bool,
}

/// A bus term supplied by the verifier from the public statement; it counts like a send:
/// `+multiplicity / fingerprint(bus, tuple)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BusTerm {
    pub bus: u32,
    pub tuple: Vec<F>,
    pub multiplicity: F,
}

/// Longest tuple on a bus.
pub const MAX_TUPLE_LEN: usize = 16;
/// Most bus interactions one table may declare (per row); with
/// [`crate::params::MAX_TOTAL_ROWS`] it bounds the bus terms of a proof below 2^48.
pub const MAX_INTERACTIONS: usize = 256;

/// Collects a table's constraints and interactions. Column accessors check their bounds and
/// record an error (reported by setup) instead of panicking.
pub struct AirBuilder {
    main_width: usize,
    prep_width: usize,
    pub(crate) constraints: Vec<(When, Expr)>,
    pub(crate) interactions: Vec<Interaction>,
    pub(crate) errors: Vec<String>,
}

impl AirBuilder {
    pub(crate) fn new(main_width: usize, prep_width: usize) -> Self {
        AirBuilder {
            main_width,
            prep_width,
            constraints: Vec::new(),
            interactions: Vec::new(),
            errors: Vec::new(),
        }
    }

    fn column(&mut self, kind: &str, col: usize, width: usize, node: Node) -> Expr {
        if col >= width {
            self.errors
                .push(format!("{kind} column {col} out of range (width {width})"));
            return Expr::zero();
        }
        Expr::node(node)
    }

    /// Main column `col` on the current row.
    pub fn main(&mut self, col: usize) -> Expr {
        self.column(
            "main",
            col,
            self.main_width,
            Node::Main { col, next: false },
        )
    }
    /// Main column `col` on the next row.
    pub fn main_next(&mut self, col: usize) -> Expr {
        self.column("main", col, self.main_width, Node::Main { col, next: true })
    }
    /// Preprocessed column `col` on the current row.
    pub fn prep(&mut self, col: usize) -> Expr {
        self.column(
            "preprocessed",
            col,
            self.prep_width,
            Node::Prep { col, next: false },
        )
    }
    /// Preprocessed column `col` on the next row.
    pub fn prep_next(&mut self, col: usize) -> Expr {
        self.column(
            "preprocessed",
            col,
            self.prep_width,
            Node::Prep { col, next: true },
        )
    }

    /// `expr == 0` on the rows selected by `when`.
    pub fn assert_zero_when(&mut self, when: When, expr: impl Into<Expr>) {
        self.constraints.push((when, expr.into()));
    }
    pub fn assert_zero(&mut self, expr: impl Into<Expr>) {
        self.assert_zero_when(When::EveryRow, expr);
    }
    pub fn assert_zero_transition(&mut self, expr: impl Into<Expr>) {
        self.assert_zero_when(When::Transition, expr);
    }
    pub fn assert_zero_first(&mut self, expr: impl Into<Expr>) {
        self.assert_zero_when(When::FirstRow, expr);
    }
    pub fn assert_zero_last(&mut self, expr: impl Into<Expr>) {
        self.assert_zero_when(When::LastRow, expr);
    }
    pub fn assert_eq_when(&mut self, when: When, a: impl Into<Expr>, b: impl Into<Expr>) {
        self.assert_zero_when(when, a.into() - b.into());
    }

    /// Sends `values` on `bus` with `multiplicity` (current-row expressions only).
    pub fn send(&mut self, bus: u32, values: &[Expr], multiplicity: impl Into<Expr>) {
        self.interaction(bus, values, multiplicity.into(), true);
    }
    /// Receives `values` from `bus` with `multiplicity` (current-row expressions only).
    pub fn receive(&mut self, bus: u32, values: &[Expr], multiplicity: impl Into<Expr>) {
        self.interaction(bus, values, multiplicity.into(), false);
    }

    fn interaction(&mut self, bus: u32, values: &[Expr], multiplicity: Expr, is_send: bool) {
        if values.len() > MAX_TUPLE_LEN {
            self.errors.push(format!(
                "bus {bus}: tuple of {} values > {MAX_TUPLE_LEN}",
                values.len()
            ));
            return;
        }
        self.interactions.push(Interaction {
            bus,
            values: values.to_vec(),
            multiplicity,
            is_send,
        });
    }
}
