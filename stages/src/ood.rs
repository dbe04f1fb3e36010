//! Out-of-domain values straight from the traces: a column's polynomial at z is the
//! barycentric sum over its trace on the subgroup H, so the OOD pass needs no DFT at all
//! (the in-memory prover reads the same values off the first n rows of the LDE; field
//! arithmetic is exact, so the values, and the proof bytes, are the same).

use rayon::prelude::*;
use stark::Table;
use stark::field::{EF, F, Field, PrimeCharacteristicRing, TwoAdicField, batch_inverse};
use stark::proof::InstanceOod;
use stark::prover::{MatrixView, ProveError};

/// Columns of `m` (n = 2^log_n rows: evaluations on H = <w_n>, natural order) at each point:
/// p(z) = (z^n - 1) / n * sum_j t_j w^j / (z - w^j). `None` if a point lies on H.
pub fn eval_on_subgroup(m: MatrixView<'_>, log_n: usize, points: &[EF]) -> Option<Vec<Vec<EF>>> {
    let n = 1usize << log_n;
    let width = m.width;
    if width == 0 {
        return Some(vec![Vec::new(); points.len()]);
    }
    if m.values.len() < n * width {
        return None;
    }
    let xs = stark::field::coset_points(log_n, F::ONE);
    let n_inv = F::from_u64(n as u64).inverse();
    let rows = &m.values[..n * width];
    points
        .iter()
        .map(|&z| {
            let diffs: Vec<EF> = xs.par_iter().map(|&x| z - x).collect();
            let inv = batch_inverse(&diffs)?;
            drop(diffs);
            const CHUNK: usize = 1024;
            let sums = rows
                .par_chunks(width * CHUNK)
                .zip(inv.par_chunks(CHUNK))
                .zip(xs.par_chunks(CHUNK))
                .map(|((block, inv), xs)| {
                    let mut acc = vec![EF::ZERO; width];
                    for ((row, &i), &x) in block.chunks_exact(width).zip(inv).zip(xs) {
                        let w = i * x;
                        for (a, &v) in acc.iter_mut().zip(row) {
                            *a += w * v;
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
                );
            let scale = (z.exp_power_of_2(log_n) - EF::ONE) * n_inv;
            Some(sums.into_iter().map(|v| v * scale).collect())
        })
        .collect()
}

/// One instance's OOD values (what [`stark::prover::ood`] computes from the LDEs), from its
/// main, preprocessed and aux traces and the first n rows of its quotient LDE.
pub fn instance_ood(
    table: &Table,
    log_n: usize,
    main: MatrixView<'_>,
    prep: Option<MatrixView<'_>>,
    aux: Option<MatrixView<'_>>,
    quotient_prefix: MatrixView<'_>,
    z: EF,
) -> Result<InstanceOod, ProveError> {
    let zg = z * F::two_adic_generator(log_n);
    let degenerate = || ProveError::Degenerate("z on the domain");
    let both = |m: Option<MatrixView<'_>>| -> Result<(Vec<EF>, Vec<EF>), ProveError> {
        match m {
            None => Ok((Vec::new(), Vec::new())),
            Some(m) => {
                let mut v = eval_on_subgroup(m, log_n, &[z, zg]).ok_or_else(degenerate)?;
                let next = v.pop().expect("two points");
                Ok((v.pop().expect("two points"), next))
            }
        }
    };
    let (main, main_next) = both(Some(main))?;
    let (prep, prep_next) = both(prep)?;
    let (aux, aux_next) = both(aux)?;
    let quotient = stark::domain::eval_at_points(quotient_prefix, log_n, &[z])
        .ok_or_else(degenerate)?
        .pop()
        .expect("one point");
    if quotient.len() != table.quotient_width() {
        return Err(ProveError::Shape(format!("{}: quotient width", table.name)));
    }
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
