//! Fiat-Shamir transcript on BLAKE3.
//!
//! The state is a 32-byte chaining value. Every absorb hashes (state, label, length-prefixed
//! data) under a "absorb" domain key; every challenge hashes the state under a "squeeze" key
//! and then advances the state, so two identical transcripts give identical challenges and any
//! difference in absorbed bytes changes every later challenge.

use crate::field::{EF, F, MODULUS, canonical, ext};
use crate::merkle::Digest;
use rayon::prelude::*;

const ABSORB_KEY: &[u8; 32] = b"stark-pipe/v1/transcript/absorb!";
const SQUEEZE_KEY: &[u8; 32] = b"stark-pipe/v1/transcript/squeeze";
const POW_KEY: &[u8; 32] = b"stark-pipe/v1/transcript/pow-pow";

/// Prover and verifier run the same sequence of calls on this type. Its whole state is the
/// chaining value, so a prover can save it at a pass barrier ([`Transcript::state`]) and go on
/// from there in another process ([`Transcript::from_state`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transcript {
    state: [u8; 32],
}

impl Transcript {
    /// Starts a transcript bound to a protocol identifier.
    pub fn new(protocol: &[u8]) -> Self {
        let mut t = Transcript { state: [0; 32] };
        t.absorb(b"protocol", protocol);
        t
    }

    /// The chaining value: everything absorbed and squeezed so far.
    pub fn state(&self) -> [u8; 32] {
        self.state
    }

    /// The transcript whose [`Transcript::state`] was `state`.
    pub fn from_state(state: [u8; 32]) -> Self {
        Transcript { state }
    }

    /// Absorbs labelled bytes.
    pub fn absorb(&mut self, label: &[u8], data: &[u8]) {
        let mut h = blake3::Hasher::new_keyed(ABSORB_KEY);
        h.update(&self.state);
        h.update(&(label.len() as u64).to_le_bytes());
        h.update(label);
        h.update(&(data.len() as u64).to_le_bytes());
        h.update(data);
        self.state = *h.finalize().as_bytes();
    }

    pub fn absorb_u64(&mut self, label: &[u8], v: u64) {
        self.absorb(label, &v.to_le_bytes());
    }

    pub fn absorb_digest(&mut self, label: &[u8], d: &Digest) {
        self.absorb(label, d);
    }

    pub fn absorb_base(&mut self, label: &[u8], values: &[F]) {
        let bytes: Vec<u8> = values
            .iter()
            .flat_map(|v| canonical(*v).to_le_bytes())
            .collect();
        self.absorb(label, &bytes);
    }

    pub fn absorb_ext(&mut self, label: &[u8], values: &[EF]) {
        let bytes: Vec<u8> = values
            .iter()
            .flat_map(|v| crate::field::coords(*v))
            .flat_map(|v| canonical(v).to_le_bytes())
            .collect();
        self.absorb(label, &bytes);
    }

    /// 64 pseudo-random bytes for `label`; advances the state.
    fn squeeze(&mut self, label: &[u8]) -> [u8; 64] {
        let mut h = blake3::Hasher::new_keyed(SQUEEZE_KEY);
        h.update(&self.state);
        h.update(&(label.len() as u64).to_le_bytes());
        h.update(label);
        let mut out = [0u8; 64];
        h.finalize_xof().fill(&mut out);
        self.absorb(b"squeezed", label);
        out
    }

    /// An extension-field challenge (each coordinate from 128 bits reduced mod p: bias < 2^-64).
    pub fn challenge_ext(&mut self, label: &[u8]) -> EF {
        let b = self.squeeze(label);
        let c = |o: usize| {
            let v = u128::from_le_bytes(b[o..o + 16].try_into().unwrap());
            F::new((v % MODULUS as u128) as u64)
        };
        ext(c(0), c(16))
    }

    /// A uniform index in `0..2^log_n` (log_n <= 63).
    pub fn challenge_index(&mut self, label: &[u8], log_n: usize) -> usize {
        let b = self.squeeze(label);
        let v = u64::from_le_bytes(b[..8].try_into().unwrap());
        let mask = if log_n >= 64 {
            u64::MAX
        } else {
            (1u64 << log_n) - 1
        };
        (v & mask) as usize
    }

    /// Whether `nonce` gives a proof-of-work hash with `bits` leading zero bits.
    pub fn check_pow(&self, bits: u32, nonce: u64) -> bool {
        if bits == 0 {
            return true;
        }
        if bits > 64 {
            return false;
        }
        let mut h = blake3::Hasher::new_keyed(POW_KEY);
        h.update(&self.state);
        h.update(&nonce.to_le_bytes());
        let out = h.finalize();
        let v = u64::from_be_bytes(out.as_bytes()[..8].try_into().unwrap());
        v.leading_zeros() >= bits
    }

    /// Finds the smallest nonce passing `check_pow` (rayon, deterministic: the smallest wins).
    pub fn grind(&self, bits: u32) -> u64 {
        const BATCH: u64 = 1 << 14;
        let mut start = 0u64;
        loop {
            if let Some(n) = (start..start + BATCH)
                .into_par_iter()
                .find_first(|n| self.check_pow(bits, *n))
            {
                return n;
            }
            start += BATCH;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_label_sensitive() {
        let mut a = Transcript::new(b"x");
        let mut b = Transcript::new(b"x");
        a.absorb(b"l", b"data");
        b.absorb(b"l", b"data");
        assert_eq!(a.challenge_ext(b"c"), b.challenge_ext(b"c"));
        let mut c = Transcript::new(b"x");
        c.absorb(b"l2", b"data");
        assert_ne!(a.clone().challenge_ext(b"c"), c.challenge_ext(b"c"));
        let n = a.grind(8);
        assert!(a.check_pow(8, n));
    }
}
