//! The concrete field types: Goldilocks for traces and its quadratic extension for everything a
//! challenge touches. One place to change if the tower ever changes.

use p3_field::extension::BinomialExtensionField;
pub use p3_field::{BasedVectorSpace, Field, PrimeCharacteristicRing, PrimeField64, TwoAdicField};
pub use p3_goldilocks::Goldilocks;

/// The base field: Goldilocks, p = 2^64 - 2^32 + 1.
pub type F = Goldilocks;
/// The quadratic extension `F[X]/(X^2 - 7)`: ~128 bits, enough for challenges without towers.
pub type EF = BinomialExtensionField<Goldilocks, 2>;
/// Base-field coordinates per extension element.
pub const EXT_DEGREE: usize = 2;
/// The Goldilocks modulus.
pub const MODULUS: u64 = 0xffff_ffff_0000_0001;

/// Builds an extension element from its two coordinates.
#[inline]
pub fn ext(c0: F, c1: F) -> EF {
    EF::from_basis_coefficients_fn(|i| if i == 0 { c0 } else { c1 })
}

/// The two base-field coordinates of an extension element.
#[inline]
pub fn coords(e: EF) -> [F; 2] {
    let s = e.as_basis_coefficients_slice();
    [s[0], s[1]]
}

/// Canonical integer value of a base element (the encoding used for hashing and bytes).
#[inline]
pub fn canonical(x: F) -> u64 {
    x.as_canonical_u64()
}

/// A base element from a canonical integer, or `None` when `v >= p` (so every element has one
/// encoding, and a flipped byte can never decode to the same value).
#[inline]
pub fn from_canonical(v: u64) -> Option<F> {
    (v < MODULUS).then(|| F::new(v))
}

/// Reverses the low `bits` bits of `x`.
#[inline]
pub fn reverse_bits(x: usize, bits: usize) -> usize {
    if bits == 0 {
        0
    } else {
        x.reverse_bits() >> (usize::BITS as usize - bits)
    }
}

/// Inverts every element; `None` if any is zero. Montgomery's trick, chunked over rayon.
pub fn batch_inverse<T: Field>(values: &[T]) -> Option<Vec<T>> {
    use rayon::prelude::*;
    const CHUNK: usize = 1024;
    let mut out = vec![T::ZERO; values.len()];
    let ok = out
        .par_chunks_mut(CHUNK)
        .zip(values.par_chunks(CHUNK))
        .all(|(dst, src)| batch_inverse_serial(src, dst));
    ok.then_some(out)
}

/// [`batch_inverse`] on the current thread only (for small, per-block batches).
pub fn batch_inverse_local<T: Field>(values: &[T]) -> Option<Vec<T>> {
    let mut out = vec![T::ZERO; values.len()];
    batch_inverse_serial(values, &mut out).then_some(out)
}

fn batch_inverse_serial<T: Field>(src: &[T], dst: &mut [T]) -> bool {
    let mut acc = T::ONE;
    for (d, s) in dst.iter_mut().zip(src) {
        *d = acc;
        acc *= *s;
    }
    let Some(mut inv) = acc.try_inverse() else {
        return false;
    };
    for (d, s) in dst.iter_mut().zip(src).rev() {
        *d *= inv;
        inv *= *s;
    }
    true
}

/// `shift * generator^i` for i in 0..n (natural order).
pub fn coset_points(log_n: usize, shift: F) -> Vec<F> {
    geometric(shift, F::two_adic_generator(log_n), 1usize << log_n)
}

/// `start * ratio^i` for i in 0..n.
pub fn geometric(shift: F, g: F, n: usize) -> Vec<F> {
    use rayon::prelude::*;
    const CHUNK: usize = 4096;
    let mut out = vec![F::ZERO; n];
    out.par_chunks_mut(CHUNK).enumerate().for_each(|(ci, dst)| {
        let mut x = shift * g.exp_u64((ci * CHUNK) as u64);
        for d in dst {
            *d = x;
            x *= g;
        }
    });
    out
}

/// Permutes a slice into bit-reversed index order (in place).
pub fn bit_reverse_in_place<T>(v: &mut [T]) {
    let n = v.len();
    if n <= 1 {
        return;
    }
    let bits = n.trailing_zeros() as usize;
    for i in 0..n {
        let j = reverse_bits(i, bits);
        if i < j {
            v.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ext_roundtrip_and_inverse() {
        let a = ext(F::new(5), F::new(9));
        assert_eq!(coords(a), [F::new(5), F::new(9)]);
        let inv = batch_inverse(&[a, a * a]).unwrap();
        assert_eq!(inv[0] * a, EF::ONE);
        assert!(batch_inverse(&[a, EF::ZERO]).is_none());
        assert!(from_canonical(MODULUS).is_none());
    }
}
