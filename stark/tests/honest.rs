//! Honest proofs verify; statement, bus balance and parameter checks reject.

mod common;
use common::*;
use stark::field::{F, PrimeCharacteristicRing};
use stark::{Air, Proof, ProofParams, VerifierParams, VerifyError, prove, verify};

#[test]
fn fibonacci_chunks_chained_through_a_bus() {
    let airs: [&dyn Air; 1] = [&Fib];
    let (traces, end) = fib_traces(&[4, 3, 5, 2]);
    let public = fib_public(end);
    stark::debug::check_buses(&airs, &traces, &public).unwrap();
    for t in &traces {
        stark::debug::check_constraints(&Fib, &t.trace).unwrap();
    }
    let proof = stark::prove_checked(&airs, traces, &public, &params()).unwrap();
    let v = verify(&airs, &proof, &public, &VerifierParams::default()).unwrap();
    assert!(v.security_bits >= 100);
    let back = Proof::from_bytes(&proof.to_bytes()).unwrap();
    assert_eq!(back, proof);
    let sm = proof.summary(&["fib"]);
    let z = sm.sizes;
    assert_eq!(
        z.header + z.commitments + z.ood + z.fri_commitments + z.trace_openings + z.fri_openings,
        sm.size_bytes
    );
    let summary = sm.to_string();
    assert!(
        summary.contains("security") && summary.contains("fib") && summary.contains("4 instances"),
        "{summary}"
    );
    println!("{summary}");

    // Another claimed output: the bus no longer balances.
    let wrong = fib_public((end.0 + F::ONE, end.1));
    let (mut traces, _) = fib_traces(&[4, 3, 5, 2]);
    assert!(stark::debug::check_buses(&airs, &traces, &wrong).is_err());
    traces[1].trace.values[9] += F::ONE;
    assert!(stark::debug::check_constraints(&Fib, &traces[1].trace).is_err());
    let (traces, _) = fib_traces(&[4, 3, 5, 2]);
    // The prover refuses; forced (no self-check), the verifier rejects.
    assert!(matches!(
        stark::prove_checked(&airs, traces.clone(), &wrong, &params()),
        Err(stark::ProveError::Unsatisfied(_))
    ));
    let p2 = prove(&airs, traces, &wrong, &params()).unwrap();
    assert_eq!(
        verify(&airs, &p2, &wrong, &VerifierParams::default()),
        Err(VerifyError::LogUpSum)
    );
    // The proof is bound to its statement.
    let mut other = public.clone();
    other.statement[0] ^= 1;
    assert_eq!(
        verify(&airs, &proof, &other, &VerifierParams::default()),
        Err(VerifyError::Statement)
    );
}

#[test]
fn lookup_between_tables_with_mixed_heights() {
    let airs: [&dyn Air; 2] = [&SquareUser, &SquareTable];
    let traces = lookup_traces(&[5, 2, 4], 1);
    let proof = prove(&airs, traces, &plain_public(), &params()).unwrap();
    verify(&airs, &proof, &plain_public(), &VerifierParams::default()).unwrap();
    // Wrong multiplicities: unbalanced.
    let mut traces = lookup_traces(&[5, 2, 4], 1);
    let last = traces.last_mut().unwrap();
    last.trace.values[2] += F::ONE;
    assert!(matches!(
        stark::prove_checked(&airs, traces.clone(), &plain_public(), &params()),
        Err(stark::ProveError::Unsatisfied(_))
    ));
    let proof = prove(&airs, traces, &plain_public(), &params()).unwrap();
    assert_eq!(
        verify(&airs, &proof, &plain_public(), &VerifierParams::default()),
        Err(VerifyError::LogUpSum)
    );
}

#[test]
fn preprocessed_columns() {
    let airs: [&dyn Air; 2] = [&RangeTable, &RangeUser];
    let proof = prove(&airs, range_traces(6), &plain_public(), &params()).unwrap();
    verify(&airs, &proof, &plain_public(), &VerifierParams::default()).unwrap();
}

#[test]
fn security_floor_and_parameters() {
    let airs: [&dyn Air; 1] = [&Fib];
    let (traces, end) = fib_traces(&[3]);
    let public = fib_public(end);
    let weak = ProofParams {
        log_blowup: 1,
        num_queries: 20,
        pow_bits: 4,
        ..ProofParams::default()
    };
    let proof = prove(&airs, traces.clone(), &public, &weak).unwrap();
    assert!(matches!(
        verify(&airs, &proof, &public, &VerifierParams::default()),
        Err(VerifyError::InsufficientSecurity { bits: 24, min: 100 })
    ));
    let lenient = VerifierParams {
        min_security_bits: 20,
        ..Default::default()
    };
    verify(&airs, &proof, &public, &lenient).unwrap();
    // Blowup 4 with fewer queries.
    let p4 = ProofParams {
        log_blowup: 2,
        num_queries: 45,
        pow_bits: 10,
        ..ProofParams::default()
    };
    let proof = prove(&airs, traces, &public, &p4).unwrap();
    verify(&airs, &proof, &public, &VerifierParams::default()).unwrap();
}

/// The default height bound is the tallest instance whose proof reaches the default security
/// floor with the default parameters: one row more (in log2) and the field term falls below it.
#[test]
fn the_height_bound_is_the_tallest_instance_at_the_security_floor() {
    let (params, vp) = (ProofParams::default(), VerifierParams::default());
    let log_lde = |log_height: u8| (log_height + params.log_blowup) as u32;
    let tallest = params.conjectured_security_bits(log_lde(vp.max_log_height));
    let taller = params.conjectured_security_bits(log_lde(vp.max_log_height + 1));
    assert!(tallest >= vp.min_security_bits, "{tallest}");
    assert!(taller < vp.min_security_bits, "{taller}");
}

struct TooHigh;
impl Air for TooHigh {
    fn name(&self) -> &str {
        "too-high"
    }
    fn main_width(&self) -> usize {
        1
    }
    fn eval(&self, b: &mut stark::AirBuilder) {
        let x = b.main(0);
        b.assert_zero(&x * &x * &x * &x);
    }
}

struct BadColumn;
impl Air for BadColumn {
    fn name(&self) -> &str {
        "bad-column"
    }
    fn main_width(&self) -> usize {
        1
    }
    fn eval(&self, b: &mut stark::AirBuilder) {
        let x = b.main(3);
        b.assert_zero(x);
    }
}

#[test]
fn setup_rejects_bad_airs() {
    assert!(matches!(
        stark::compile(&TooHigh),
        Err(stark::AirError::DegreeTooHigh { degree: 4, .. })
    ));
    assert!(stark::compile(&BadColumn).is_err());
    // LogUp pair constraint has degree 3: two quotient pieces.
    let t = stark::compile(&Fib).unwrap();
    assert_eq!(t.quotient_pieces, 2);
    assert_eq!(t.aux_groups.len(), 1);
}

/// Same name and constraints as `RangeTable`, other preprocessed values.
struct ShiftedRange;
impl Air for ShiftedRange {
    fn name(&self) -> &str {
        RangeTable.name()
    }
    fn main_width(&self) -> usize {
        1
    }
    fn preprocessed_width(&self) -> usize {
        2
    }
    fn preprocessed_trace(&self, height: usize) -> Option<stark::RowMajorMatrix<F>> {
        let v = (16..16 + height as u64)
            .flat_map(|i| [F::from_u64(i), F::from_u64(i * i)])
            .collect();
        Some(stark::RowMajorMatrix::new(v, 2))
    }
    fn eval(&self, b: &mut stark::AirBuilder) {
        RangeTable.eval(b)
    }
}

#[test]
fn verifier_uses_its_own_preprocessed_columns() {
    let airs: [&dyn Air; 2] = [&RangeTable, &RangeUser];
    let proof = prove(&airs, range_traces(5), &plain_public(), &params()).unwrap();
    let other: [&dyn Air; 2] = [&ShiftedRange, &RangeUser];
    assert_eq!(
        stark::compile(&ShiftedRange).unwrap().digest,
        stark::compile(&RangeTable).unwrap().digest
    );
    assert!(verify(&other, &proof, &plain_public(), &VerifierParams::default()).is_err());
}
