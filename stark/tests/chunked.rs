//! The prover over natural coset chunks (`stark::chunked::prove`) makes the in-memory prover's
//! proof, byte for byte, at every chunk size; and a witness broken at a chunk boundary (a
//! transition, a bus sum) gives a proof the verifier refuses.

mod common;
use common::*;
use stark::field::{F, PrimeCharacteristicRing};
use stark::{Air, InstanceTrace, PublicInputs, VerifierParams};

/// Chunk sizes from one row per chunk (K > B) to one chunk per instance.
const LOG_CHUNKS: [usize; 4] = [1, 2, 3, 20];

/// Trees joined at 2^1 rows: at or above the kept level of every chunk size.
fn joined_params() -> stark::ProofParams {
    stark::ProofParams {
        log_join_rows: 1,
        ..params()
    }
}

fn same_proof(airs: &[&dyn Air], traces: &[InstanceTrace], public: &PublicInputs) {
    let reference = stark::prove(airs, traces.to_vec(), public, &joined_params()).unwrap();
    for log_chunk in LOG_CHUNKS {
        let chunked =
            stark::chunked::prove(airs, traces.to_vec(), public, &joined_params(), log_chunk)
                .unwrap();
        assert_eq!(
            chunked.to_bytes(),
            reference.to_bytes(),
            "log_chunk {log_chunk}"
        );
    }
    stark::verify(airs, &reference, public, &VerifierParams::default()).unwrap();
}

#[test]
fn one_fib_instance() {
    let (traces, end) = fib_traces(&[7]);
    same_proof(&[&Fib], &traces, &fib_public(end));
}

/// Several tables and heights (a user of 2^6 rows, lookup tables of 8, a preprocessed range
/// table of 16): instances shorter than a chunk, DEEP codewords joining FRI in the chunked and
/// the in-memory phase.
#[test]
fn several_tables_with_buses_and_preprocessed_columns() {
    let airs: [&dyn Air; 2] = [&SquareUser, &SquareTable];
    same_proof(&airs, &lookup_traces(&[6], 5), &plain_public());
    let airs: [&dyn Air; 2] = [&RangeTable, &RangeUser];
    same_proof(&airs, &range_traces(6), &plain_public());
}

/// A fib trace broken exactly at a chunk boundary (row 8 of 8-row chunks), and a lookup whose
/// bus sum is broken in one chunk (one multiplicity off by one): the chunked prover proves what
/// it is given, the same bytes as the in-memory prover, and the verifier refuses both.
#[test]
fn a_witness_broken_at_a_chunk_boundary_is_refused() {
    let (mut fib, end) = fib_traces(&[6]);
    fib[0].trace.values[8 * 4 + 1] += F::ONE;
    let public = fib_public(end);
    let mut lookups = lookup_traces(&[5], 3);
    lookups[1].trace.values[3 * 3 + 2] += F::ONE;
    let cases: [(&[&dyn Air], Vec<InstanceTrace>, PublicInputs); 2] = [
        (&[&Fib], fib, public),
        (&[&SquareUser, &SquareTable], lookups, plain_public()),
    ];
    for (airs, traces, public) in cases {
        let reference = stark::prove(airs, traces.clone(), &public, &params()).unwrap();
        let chunked = stark::chunked::prove(airs, traces, &public, &params(), 3).unwrap();
        assert_eq!(chunked.to_bytes(), reference.to_bytes());
        assert!(stark::verify(airs, &chunked, &public, &VerifierParams::default()).is_err());
    }
}
