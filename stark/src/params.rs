//! Protocol parameters and the conjectured security estimate.

/// Parameters chosen by the prover and recorded in every proof header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProofParams {
    /// log2 of the LDE blowup (rate 2^-log_blowup). Default 1 (blowup 2).
    pub log_blowup: u8,
    /// FRI query repetitions.
    pub num_queries: u16,
    /// Proof-of-work bits ground before query sampling.
    pub pow_bits: u8,
    /// log2 of the trace rows at which each pass joins its instances' trees into one
    /// ([`crate::pass_tree`]): the join layer has `2^(log_join_rows + log_blowup)` nodes, or
    /// fewer when every instance is shorter. An out-of-core prover needs it at most the log of
    /// its block rows. Default 13 (the smallest block of a 2^26-row instance).
    pub log_join_rows: u8,
}

impl Default for ProofParams {
    /// Blowup 2, 84 queries, 16 grinding bits: 100 conjectured bits.
    fn default() -> Self {
        ProofParams {
            log_blowup: 1,
            num_queries: 84,
            pow_bits: 16,
            log_join_rows: 13,
        }
    }
}

/// Bounds on what a parameter set may claim.
pub const MAX_LOG_BLOWUP: u8 = 6;
pub const MAX_QUERIES: u16 = 1024;
pub const MAX_POW_BITS: u8 = 40;
pub const MAX_LOG_JOIN_ROWS: u8 = 32;
/// Bits of the challenge field (quadratic extension of a 64-bit field).
pub const EXTENSION_FIELD_BITS: u32 = 128;

impl ProofParams {
    /// log2 of the nodes of a pass tree's join layer (before it is capped by the tallest LDE).
    pub fn log_join_lde(&self) -> usize {
        self.log_join_rows as usize + self.log_blowup as usize
    }

    /// 2^log_blowup (0 if that overflows: only an invalid, unvalidated parameter set).
    pub fn blowup(&self) -> usize {
        1usize.checked_shl(self.log_blowup as u32).unwrap_or(0)
    }

    /// Whether the parameters are in range (checked by both prover and verifier).
    pub fn validate(&self) -> Result<(), String> {
        if self.log_blowup == 0 || self.log_blowup > MAX_LOG_BLOWUP {
            return Err(format!(
                "log_blowup {} outside 1..={MAX_LOG_BLOWUP}",
                self.log_blowup
            ));
        }
        if self.num_queries == 0 || self.num_queries > MAX_QUERIES {
            return Err(format!(
                "num_queries {} outside 1..={MAX_QUERIES}",
                self.num_queries
            ));
        }
        if self.pow_bits > MAX_POW_BITS {
            return Err(format!("pow_bits {} > {MAX_POW_BITS}", self.pow_bits));
        }
        if self.log_join_rows > MAX_LOG_JOIN_ROWS {
            return Err(format!(
                "log_join_rows {} > {MAX_LOG_JOIN_ROWS}",
                self.log_join_rows
            ));
        }
        Ok(())
    }

    /// Conjectured security in bits (ethSTARK-style): each query costs a cheating prover
    /// log2(blowup) bits under the list-decoding conjecture, grinding adds its bits, and the
    /// total is capped by the challenge field: |EF| / (max LDE size) bounds the chance that
    /// OOD/DEEP/FRI challenges hit a bad value.
    pub fn conjectured_security_bits(&self, max_log_lde: u32) -> u32 {
        let proximity = self.num_queries as u32 * self.log_blowup as u32 + self.pow_bits as u32;
        let field = EXTENSION_FIELD_BITS.saturating_sub(max_log_lde + 1);
        proximity.min(field)
    }
}

/// Most rows (the sum of every instance's height) a proof may have, whatever the verifier
/// parameters: with at most [`crate::air::MAX_INTERACTIONS`] bus terms per row, a proof has
/// fewer than 2^48 bus terms, far below p, which the LogUp argument needs (a tuple's
/// multiplicities must not wrap around p). AIRs that count rows (clocks, chains) rely on it too.
pub const MAX_TOTAL_ROWS: u64 = 1 << 40;

/// What the verifier accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifierParams {
    /// Refuse proofs whose conjectured security is below this. Default 100.
    pub min_security_bits: u32,
    /// Largest instance height (log2) accepted. The default, 26, is the tallest instance the
    /// defaults can prove at all: at blowup 2 its LDE has 2^27 points, and the challenge-field
    /// term of [`ProofParams::conjectured_security_bits`] is 128 - 28 = 100 bits, the default
    /// floor (a 2^27-row instance would have 99). It also bounds the verifier's work on
    /// preprocessed columns, which it builds itself at the claimed height. Taller runs split a
    /// table into several instances (`--instance-rows`).
    pub max_log_height: u8,
    /// Most instances accepted in one proof.
    pub max_instances: usize,
}

impl Default for VerifierParams {
    fn default() -> Self {
        VerifierParams {
            min_security_bits: 100,
            max_log_height: 26,
            max_instances: 1 << 16,
        }
    }
}
