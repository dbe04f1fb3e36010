//! Random byte flips and truncations of a serialized proof: always `Err`, never a panic.

mod common;
use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use stark::{Air, Proof, VerifierParams, prove, verify};

const FLIPS: usize = 10_000;
const TRUNCATIONS: usize = 1500;

#[test]
fn flips_and_truncations_never_accept_or_panic() {
    let airs: [&dyn Air; 2] = [&RangeTable, &RangeUser];
    let public = plain_public();
    let proof = prove(&airs, range_traces(4), &public, &params()).unwrap();
    let bytes = proof.to_bytes();
    let vp = VerifierParams::default();
    assert!(verify(&airs, &Proof::from_bytes(&bytes).unwrap(), &public, &vp).is_ok());
    let mut rng = StdRng::seed_from_u64(42);
    let check = |b: &[u8]| -> bool {
        // A panic anywhere fails the test; `true` means accepted.
        Proof::from_bytes(b).ok().is_some_and(|p| {
            // `inspect` prints summaries of untrusted proofs: that must not panic either.
            let _ = p.summary(&["range", "range-user"]).to_string();
            verify(&airs, &p, &public, &vp).is_ok()
        })
    };
    for case in 0..FLIPS {
        let mut b = bytes.clone();
        let flips = 1 + case % 3;
        for _ in 0..flips {
            let i = rng.random_range(0..b.len());
            b[i] ^= 1 << rng.random_range(0..8);
        }
        if b != bytes {
            assert!(!check(&b), "flip case {case} accepted");
        }
    }
    for case in 0..TRUNCATIONS {
        let len = if case < 64 {
            case
        } else {
            rng.random_range(0..bytes.len())
        };
        assert!(!check(&bytes[..len]), "truncation to {len} accepted");
        assert!(Proof::from_bytes(&bytes[..len]).is_err());
    }
    // Appended bytes.
    let mut b = bytes.clone();
    b.push(0);
    assert!(Proof::from_bytes(&b).is_err());
}
