//! Proof-system math for stark-pipe: Goldilocks and its quadratic extension, coset LDE, BLAKE3
//! Merkle trees and Fiat-Shamir, the AIR interface with LogUp buses, DEEP, mixed-height FRI and
//! the verifier. No file I/O and no threads of its own beyond rayon: callers drive the prover
//! one instance (chunk) at a time through [`prover`], or call [`prove`] for everything in memory.
//!
//! # Protocol
//! Tables have one or more instances, each with its own power-of-two height n, LDE of size
//! n * blowup on the coset `7 * <w>`, and its own Merkle trees (main, aux, quotient, and
//! preprocessed columns recomputed by the verifier), which each pass joins into one tree
//! ([`pass_tree`]). Instances are linked only by LogUp buses and by the single transcript. The
//! transcript schedule ([`protocol`]) is:
//!
//! 1. params, statement digest, public bus terms, table constraint digests, instance shapes;
//! 2. **main**: the preprocessed pass root (recomputed by the verifier) and the main pass root
//!    => LogUp challenges (gamma, a);
//! 3. **aux**: the aux pass root and every instance's claimed partial sum, canonical order
//!    (table, chunk) => composition challenge;
//! 4. **quotient**: the quotient pass root => OOD point z;
//! 5. **ood**: every instance's column values at z and z*w_n => DEEP challenge beta;
//! 6. **deep + fri**: one DEEP codeword per distinct height, folded by mixed-height FRI (each
//!    committed layer's root absorbed before the challenges of the up to three two-to-one
//!    folds it covers, [`protocol::fri_layers`]; final constant absorbed);
//! 7. grinding nonce => query positions; **open**: per instance and pass, the rows at the
//!    distinct query positions and its own tree's siblings below the join layer; per pass, the
//!    siblings above it; per committed FRI layer, its leaves (2, 4 or 8 values) at the queries
//!    and a batch Merkle opening.
//!
//! # Rules for AIR authors
//! - Instance heights are powers of two >= 2; an instance's rows are its own trace domain.
//! - Constraints: [`When::EveryRow`] (next-row values wrap to row 0), `Transition` (all rows but
//!   the last), `FirstRow`, `LastRow`. Effective degree <= 3, where first/last-row constraints
//!   count one more than their expression (see [`constraints`]); setup rejects anything higher.
//! - Bus interactions use current-row expressions only; a bus carries tuples of one length
//!   (<= 16) everywhere; two interactions share a group (a fraction column, or for the last
//!   group the running sum's step) when their fingerprints and multiplicities are degree 1.
//!   Public bus terms count like sends.
//! - Multiplicities are field elements: the bus argument is sound while the total multiplicity
//!   of any tuple stays below p. The verifier enforces the sizes this needs: at most
//!   [`params::MAX_TOTAL_ROWS`] = 2^40 rows over all instances and at most
//!   [`air::MAX_INTERACTIONS`] = 256 interactions per table, so fewer than 2^48 bus terms. An
//!   AIR keeps its multiplicities boolean (constrained) except in lookup tables whose tuples are
//!   fixed: then any tuple outside such a table is matched only by terms of multiplicity 0 or
//!   +-1, fewer than p of them, and so must balance as integers.
//! - [`debug::check_constraints`] / [`debug::check_buses`] find witness bugs with row numbers.
//!
//! # Pass structure and its soundness
//! We keep one global barrier per pass (no per-chunk transcript forks). Every instance's
//! commitment of a pass is absorbed, in canonical order, before the challenge that pass's
//! successors depend on is drawn, so this is exactly a standard multi-table STARK whose
//! "table list" happens to contain many chunks; the chunking only changes *where* the prover
//! computes, not what the transcript contains. Concretely:
//! - LogUp: gamma and a are drawn after **all** main roots are fixed. If the multiset of sends
//!   and receives (with public terms) does not balance, the rational function
//!   sum m_i / (X - fp_i(a)) is nonzero and, by Schwartz-Zippel over the extension field, its
//!   value at a random gamma is zero with probability <= (total interactions) / |EF|; the tuple
//!   compression to fp(a) collides with probability <= (max tuple length) / |EF| per pair.
//!   Each fraction column is pinned row by row to its fractions by degree-<=3 constraints, and
//!   each running sum's step, wrapping from the last row to the first, to the row's remaining
//!   fractions less `L_last` times the claimed value; the steps telescope to zero over the
//!   domain, so the claimed partial sums are the true ones unless the quotient check below fails
//!   ([`constraints`], "LogUp batching rule").
//! - Composition: alpha is drawn after all aux roots and claimed sums, so a violated constraint
//!   survives the random linear combination with probability <= (#constraints) / |EF|.
//! - OOD: z is drawn after all quotient roots; a false identity C(z) = Q(z) Z_H(z) for a
//!   committed (close to) low-degree Q holds with probability <= (degree) / |EF| per instance.
//! - DEEP: beta is drawn after all OOD values; a wrong OOD value leaves a pole in the DEEP
//!   quotient unless the beta-combination cancels it (probability <= #columns / |EF|). Each
//!   column has one coefficient, used for both its z and z*w terms: the two poles are at
//!   distinct points, so their residues must vanish separately.
//! - FRI batches the per-height DEEP words; each smaller word enters where the fold reaches
//!   its size, with weight the square of the last challenge of the layer that ends there (see
//!   [`fri`]). Every fold is two-to-one with its own challenge; a
//!   committed layer covers up to three of them, and the verifier computes the words between
//!   committed layers itself from the opened leaf (`fri::fold_leaf`). Those words are the
//!   honest folds of a committed word by challenges drawn after it, so this is binary FRI with
//!   the prover's intermediate layers fixed to the honest fold: its commit-phase error is at
//!   most binary FRI's, and each query checks the same fold relations. Query soundness follows
//!   the ethSTARK conjecture, estimated by [`ProofParams::conjectured_security_bits`].
//!
//! - Sizes: the verifier refuses, before any other work, a proof with more than
//!   [`params::MAX_TOTAL_ROWS`] rows in all (the LogUp count bound above), instance heights
//!   outside 2..=2^`max_log_height` or whose LDE passes 2^32, and more instances than
//!   `max_instances`; [`VerifyError::Bound`] names the bound. AIRs add their own (the RV32IM
//!   machine's are in `vm::air`, "Bounds").
//!
//! Because nothing is drawn between two instances of the same pass, the per-instance steps of
//! one pass can run in any order and on any thread; only the absorption order is canonical,
//! which makes proofs byte-identical for any thread count. The DEEP accumulator assigns each
//! instance's coefficients from fixed offsets, so it too is order-independent.
//! (A per-chunk transcript fork, one transcript per chunk after the LogUp challenges, would let
//! aux, quotient, OOD and DEEP run in one visit per chunk; it is sound only if each fork is seeded
//! with a state that already binds every main root and the global LogUp challenges, and the
//! final FRI batching challenge binds every fork's outputs. We do not use it here.)
//!
//! # Example
//! ```
//! use stark::field::{F, PrimeCharacteristicRing};
//! use stark::{Air, AirBuilder, InstanceTrace, ProofParams, PublicInputs, RowMajorMatrix, VerifierParams};
//!
//! /// x' = x + 1, starting at 0.
//! struct Counter;
//! impl Air for Counter {
//!     fn name(&self) -> &str { "counter" }
//!     fn main_width(&self) -> usize { 1 }
//!     fn eval(&self, b: &mut AirBuilder) {
//!         let (x, next) = (b.main(0), b.main_next(0));
//!         b.assert_zero_first(x.clone());
//!         b.assert_zero_transition(next - x - 1u64);
//!     }
//! }
//! let airs: [&dyn Air; 1] = [&Counter];
//! let trace = RowMajorMatrix::new((0..8u64).map(F::from_u64).collect(), 1);
//! let public = PublicInputs::default();
//! let proof = stark::prove(&airs, vec![InstanceTrace { table: 0, trace }], &public, &ProofParams::default()).unwrap();
//! let bytes = proof.to_bytes();
//! let proof = stark::Proof::from_bytes(&bytes).unwrap();
//! println!("{}", proof.summary(&["counter"]));
//! stark::verify(&airs, &proof, &public, &VerifierParams::default()).unwrap();
//! ```
//!
//! # Tall instances, chunk by chunk
//! An out-of-core prover holds no whole column of a tall instance. Every pass has a form that
//! works on chunks of `B` rows in the natural coset layout of [`ntt`] (chunk `(u, c)` row `i` is
//! the point `theta_u w^(c B + i)`, so a chunk's next row is the next chunk's first):
//! [`ntt`] for the LDE (the four-step, chunks as blocks, LogUp carries folded in),
//! [`chunk_tree`] for the trees (their level `log2 K` hashed a slab at a time, openings from
//! it), [`prover::aux_rows`], [`prover::quotient_chunk`], [`prover::quotient_piece_block`],
//! [`prover::ChunkedOod`], [`prover::DeepAccumulator::add_chunk`] and [`fri::chunked`].
//! [`chunked::prove`] runs them all, in memory: its proof is [`prove`]'s, byte for byte, at any
//! chunk size, so it is the reference the out-of-core driver (`stages::instance`, the same
//! passes on segments) is held to. Every prover commits a pass (main, preprocessed, aux,
//! quotient) with one root: [`pass_tree`] joins the instances' own trees at a fixed layer, so
//! a query opens one shared path above it.
//!
//! # Memory per step (one instance of height n, blowup b, w main columns)
//! main: trace + LDE (n*b*w base) + tree; aux: the aux trace and its LDE; quotient: the LDEs
//! read + n*qf extension values; ood: reads n rows of each LDE; deep: one extension codeword
//! per distinct height (< 2 x max height x b in total); fri: the committed layers (< 2x the
//! largest codeword); open: the distinct query rows of each tree and their shared siblings.
//! Passes 4 and 5 also have LDE-free variants ([`prover::ood_from_traces`],
//! [`prover::DeepAccumulator::add_from_traces`]) that read only the traces and the n-row
//! quotient coefficients, so an out-of-core driver recomputes no wide LDE there.

pub mod air;
pub mod chunk_tree;
pub mod chunked;
pub mod codec;
pub mod constraints;
pub mod debug;
pub mod domain;
pub mod field;
pub mod fri;
pub mod merkle;
pub mod ntt;
pub mod params;
pub mod pass_tree;
pub mod proof;
pub mod protocol;
mod prove;
pub mod prover;
pub mod transcript;
pub mod verifier;

pub use air::{Air, AirBuilder, BusTerm, Expr, When};
pub use constraints::{AirError, Table, compile, compile_all};
pub use field::{EF, F};
pub use merkle::Digest;
pub use p3_matrix::dense::RowMajorMatrix;
pub use params::{ProofParams, VerifierParams};
pub use proof::{DecodeError, Proof, ProofSizes, ProofSummary};
pub use protocol::PublicInputs;
pub use prove::{InstanceTrace, prove, prove_checked};
#[doc(hidden)]
pub use prove::{Tamper, prove_with_tamper};
pub use prover::ProveError;
pub use verifier::{PreprocessedCache, Verified, VerifyError, verify, verify_cached};
