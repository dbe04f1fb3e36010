//! The M extension's chips: for random and edge operands, the row built from the executor's
//! semantics is accepted, and forged results (wrong product high word, wrong quotient,
//! remainder >= divisor, wrong sign, wrong division-by-zero result) are not. "Accepted" means
//! what the verifier would check of a lone row: the chip's constraints hold and every
//! range-checked value is below 2^16.

use rand::{Rng, SeedableRng, rngs::StdRng};
use stark::RowMajorMatrix;
use stark::air::Air;
use stark::field::{F, PrimeCharacteristicRing};
use vm::Opcode::{self, *};
use vm::air::{div, mul};
use vm::machine::{div_signed, rem_signed};

fn accepted(chip: &dyn Air, row: &[F], checks: &[u64]) -> bool {
    let mut values = row.to_vec();
    values.extend(std::iter::repeat_n(F::ZERO, row.len()));
    let matrix = RowMajorMatrix::new(values, row.len());
    stark::debug::check_constraints(chip, &matrix).is_ok() && checks.iter().all(|&v| v < 1 << 16)
}

fn operands() -> Vec<(u32, u32)> {
    let edges = [
        0,
        1,
        2,
        3,
        7,
        u32::MAX,
        u32::MAX - 1,
        1 << 31,
        (1 << 31) - 1,
        (1 << 31) + 1,
        1 << 16,
        0xffff,
        12345678,
    ];
    let mut v: Vec<(u32, u32)> = edges
        .iter()
        .flat_map(|&a| edges.iter().map(move |&b| (a, b)))
        .collect();
    let mut rng = StdRng::seed_from_u64(7);
    v.extend((0..300).map(|_| (rng.random(), rng.random())));
    v.extend((0..100).map(|_| (rng.random(), rng.random_range(0..16))));
    v
}

fn executor(op: Opcode, a: u32, b: u32) -> u32 {
    let (sa, sb) = (a as i32 as i64, b as i32 as i64);
    match op {
        Mul => a.wrapping_mul(b),
        Mulh => ((sa * sb) >> 32) as u32,
        Mulhsu => ((sa * b as i64) >> 32) as u32,
        Mulhu => ((a as u64 * b as u64) >> 32) as u32,
        Div => div_signed(a, b),
        Divu => a.checked_div(b).unwrap_or(u32::MAX),
        Rem => rem_signed(a, b),
        _ => {
            if b == 0 {
                a
            } else {
                a % b
            }
        }
    }
}

fn rd(row: &[F], col: usize) -> u32 {
    stark::field::canonical(row[col]) as u32
}

#[test]
fn honest_rows_are_accepted_and_match_the_executor() {
    for (a, b) in operands() {
        for op in [Mul, Mulh, Mulhsu, Mulhu] {
            let (row, checks) = mul::row(op, 0x1000, 5, a, b);
            assert!(
                accepted(&mul::MulChip, &row, &checks),
                "{op:?} {a:#x} {b:#x}"
            );
            assert_eq!(
                rd(&row, mul::RD_VAL),
                executor(op, a, b),
                "{op:?} {a:#x} {b:#x}"
            );
        }
        for op in [Div, Divu, Rem, Remu] {
            let (row, checks) = div::row(op, 0x1000, 5, a, b);
            assert!(
                accepted(&div::DivChip, &row, &checks),
                "{op:?} {a:#x} {b:#x}"
            );
            assert_eq!(
                rd(&row, div::RD_VAL),
                executor(op, a, b),
                "{op:?} {a:#x} {b:#x}"
            );
        }
    }
}

#[test]
fn wrong_product_high_word_or_sign_is_rejected() {
    for (a, b) in operands() {
        // The other signedness: differs whenever an operand is negative.
        for (op, sa, sb) in [
            (Mulh, false, false),
            (Mulhu, a >> 31 == 1, b >> 31 == 1),
            (Mulhsu, false, b >> 31 == 1),
        ] {
            let (row, checks) = mul::row_with(op, 0x1000, 5, a, b, sa, sb);
            if rd(&row, mul::RD_VAL) != executor(op, a, b) {
                assert!(
                    !accepted(&mul::MulChip, &row, &checks),
                    "{op:?} {a:#x} {b:#x} with forged signs"
                );
            }
        }
        for op in [Mul, Mulh, Mulhsu, Mulhu] {
            let (mut row, checks) = mul::row(op, 0x1000, 5, a, b);
            row[mul::RD_VAL] += F::ONE;
            assert!(
                !accepted(&mul::MulChip, &row, &checks),
                "{op:?} {a:#x} {b:#x} result + 1"
            );
            let (mut row, checks) = mul::row(op, 0x1000, 5, a, b);
            row[mul::P0 + 2] += F::ONE;
            assert!(
                !accepted(&mul::MulChip, &row, &checks),
                "{op:?} {a:#x} {b:#x} high limb + 1"
            );
        }
    }
}

#[test]
fn wrong_quotient_remainder_sign_or_division_by_zero_is_rejected() {
    for (a, b) in operands() {
        for op in [Div, Divu, Rem, Remu] {
            let signed = matches!(op, Div | Rem);
            let (q, r) = if signed {
                (div_signed(a, b), rem_signed(a, b))
            } else {
                (
                    a.checked_div(b).unwrap_or(u32::MAX),
                    if b == 0 { a } else { a % b },
                )
            };
            let forgeries = [
                ("wrong quotient", q.wrapping_add(1), r.wrapping_sub(b)),
                ("remainder >= divisor", q.wrapping_sub(1), r.wrapping_add(b)),
                ("wrong division-by-zero result", 0, a),
                ("remainder sign", q.wrapping_add(1), r.wrapping_sub(b)),
                ("zero quotient", 0, a),
            ];
            for (what, fq, fr) in forgeries {
                if (fq, fr) == (q, r) {
                    continue;
                }
                let (row, checks) = div::row_with(op, 0x1000, 5, a, b, fq, fr);
                assert!(
                    !accepted(&div::DivChip, &row, &checks),
                    "{op:?} {a:#x} / {b:#x}: {what} ({fq:#x}, {fr:#x}) accepted"
                );
            }
        }
    }
}
