//! Toy AIRs shared by the integration tests.
#![allow(dead_code)]

use stark::field::{F, PrimeCharacteristicRing};
use stark::{Air, AirBuilder, BusTerm, InstanceTrace, ProofParams, PublicInputs, RowMajorMatrix};

pub const FIB_BUS: u32 = 1;
pub const SQUARE_BUS: u32 = 2;
pub const RANGE_BUS: u32 = 3;

/// Fibonacci: columns (a, b, is_first, is_last). Each chunk receives its starting pair and sends
/// the pair after its last row on FIB_BUS, so chunks chain through the bus.
pub struct Fib;

impl Air for Fib {
    fn name(&self) -> &str {
        "fib"
    }
    fn main_width(&self) -> usize {
        4
    }
    fn eval(&self, b: &mut AirBuilder) {
        let (a, bb, first, last) = (b.main(0), b.main(1), b.main(2), b.main(3));
        let (a2, b2, first2) = (b.main_next(0), b.main_next(1), b.main_next(2));
        b.assert_zero_transition(&a2 - &bb);
        b.assert_zero_transition(&b2 - (&a + &bb));
        b.assert_zero_first(&first - 1u64);
        b.assert_zero_transition(first2);
        b.assert_zero_last(&last - 1u64);
        b.assert_zero_transition(last.clone());
        b.assert_zero(first.bool_check());
        b.receive(FIB_BUS, &[a.clone(), bb.clone()], first);
        b.send(FIB_BUS, &[bb.clone(), &a + &bb], last);
    }
}

/// Fibonacci chunks of the given log heights, continuing one another from (0, 1).
/// Returns the traces and the final pair (what the last chunk sends).
pub fn fib_traces(log_heights: &[usize]) -> (Vec<InstanceTrace>, (F, F)) {
    let (mut x, mut y) = (F::ZERO, F::ONE);
    let mut out = Vec::new();
    for &lh in log_heights {
        let n = 1 << lh;
        let mut v = Vec::with_capacity(n * 4);
        for r in 0..n {
            v.extend_from_slice(&[x, y, F::from_bool(r == 0), F::from_bool(r == n - 1)]);
            (x, y) = (y, x + y);
        }
        out.push(InstanceTrace {
            table: 0,
            trace: RowMajorMatrix::new(v, 4),
        });
    }
    (out, (x, y))
}

pub fn fib_public(end: (F, F)) -> PublicInputs {
    PublicInputs {
        statement: *blake3::hash(b"fib statement").as_bytes(),
        boundary: vec![
            BusTerm {
                bus: FIB_BUS,
                tuple: vec![F::ZERO, F::ONE],
                multiplicity: F::ONE,
            },
            BusTerm {
                bus: FIB_BUS,
                tuple: vec![end.0, end.1],
                multiplicity: F::NEG_ONE,
            },
        ],
    }
}

/// Looks up (x, x^2) pairs: columns (x, y) with y = x^2, receives (x, y) from SQUARE_BUS.
pub struct SquareUser;
impl Air for SquareUser {
    fn name(&self) -> &str {
        "square-user"
    }
    fn main_width(&self) -> usize {
        2
    }
    fn eval(&self, b: &mut AirBuilder) {
        let (x, y) = (b.main(0), b.main(1));
        b.assert_zero(&y - &x * &x);
        b.receive(SQUARE_BUS, &[x, y], 1u64);
    }
}

/// The squares table: columns (k, k^2, multiplicity), sends (k, k^2) with multiplicity.
pub struct SquareTable;
impl Air for SquareTable {
    fn name(&self) -> &str {
        "square-table"
    }
    fn main_width(&self) -> usize {
        3
    }
    fn eval(&self, b: &mut AirBuilder) {
        let (k, k2, m) = (b.main(0), b.main(1), b.main(2));
        let k_next = b.main_next(0);
        b.assert_zero_transition(k_next - &k - 1u64);
        b.assert_zero(&k2 - &k * &k);
        b.send(SQUARE_BUS, &[k, k2], m);
    }
}

/// User chunks look up values in 0..16; table chunks cover [0, 8) and [8, 16).
pub fn lookup_traces(user_log_heights: &[usize], seed: u64) -> Vec<InstanceTrace> {
    let mut counts = [0u64; 16];
    let mut out = Vec::new();
    let mut s = seed;
    for &lh in user_log_heights {
        let n = 1 << lh;
        let mut v = Vec::new();
        for _ in 0..n {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let x = (s >> 33) % 16;
            counts[x as usize] += 1;
            v.extend_from_slice(&[F::from_u64(x), F::from_u64(x * x)]);
        }
        out.push(InstanceTrace {
            table: 0,
            trace: RowMajorMatrix::new(v, 2),
        });
    }
    for (start, lh) in [(0u64, 3usize), (8, 3)] {
        let n = 1 << lh;
        let mut v = Vec::new();
        for k in start..start + n {
            v.extend_from_slice(&[
                F::from_u64(k),
                F::from_u64(k * k),
                F::from_u64(counts[k as usize]),
            ]);
        }
        out.push(InstanceTrace {
            table: 1,
            trace: RowMajorMatrix::new(v, 3),
        });
    }
    out
}

/// Range table with a preprocessed column: prep (value = row index), main (multiplicity);
/// sends (value) on RANGE_BUS with that multiplicity.
pub struct RangeTable;
impl Air for RangeTable {
    fn name(&self) -> &str {
        "range"
    }
    fn main_width(&self) -> usize {
        1
    }
    fn preprocessed_width(&self) -> usize {
        2
    }
    fn preprocessed_trace(&self, height: usize) -> Option<RowMajorMatrix<F>> {
        let v = (0..height as u64)
            .flat_map(|i| [F::from_u64(i), F::from_u64(i * i)])
            .collect();
        Some(RowMajorMatrix::new(v, 2))
    }
    fn eval(&self, b: &mut AirBuilder) {
        let (v, sq, m) = (b.prep(0), b.prep(1), b.main(0));
        let v_next = b.prep_next(0);
        // Constraints on preprocessed columns hold by construction; they exercise the path.
        b.assert_zero_transition(v_next - &v - 1u64);
        b.assert_zero(&sq - &v * &v);
        b.send(RANGE_BUS, &[v], m);
    }
}

/// Values that must lie in [0, 16): receives each from RANGE_BUS.
pub struct RangeUser;
impl Air for RangeUser {
    fn name(&self) -> &str {
        "range-user"
    }
    fn main_width(&self) -> usize {
        1
    }
    fn eval(&self, b: &mut AirBuilder) {
        let x = b.main(0);
        b.receive(RANGE_BUS, &[x], 1u64);
    }
}

pub fn range_traces(user_log_height: usize) -> Vec<InstanceTrace> {
    let n = 1 << user_log_height;
    let mut counts = [0u64; 16];
    let vals: Vec<F> = (0..n)
        .map(|i| {
            let x = (i * 7 + 3) % 16;
            counts[x] += 1;
            F::from_u64(x as u64)
        })
        .collect();
    vec![
        InstanceTrace {
            table: 0,
            trace: RowMajorMatrix::new(counts.iter().map(|c| F::from_u64(*c)).collect(), 1),
        },
        InstanceTrace {
            table: 1,
            trace: RowMajorMatrix::new(vals, 1),
        },
    ]
}

pub fn plain_public() -> PublicInputs {
    PublicInputs {
        statement: [7; 32],
        boundary: vec![],
    }
}

/// The default parameters, with the pass trees joined at 2^3 rows so that the fixtures'
/// instances (2^3 to 2^8 rows) have siblings both below and above the join layer.
pub fn params() -> ProofParams {
    ProofParams {
        log_join_rows: 3,
        ..ProofParams::default()
    }
}
