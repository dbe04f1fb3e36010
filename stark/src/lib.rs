//! Proof-system math: Goldilocks and its extension, NTT/LDE, Merkle trees, the Fiat-Shamir
//! transcript, the AIR trait, LogUp, FRI and the verifier. No file I/O and no threads of its own
//! beyond rayon: callers drive the prover one chunk at a time.
