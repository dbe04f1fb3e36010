//! Chunk checkpoints: what it takes to re-execute one chunk of a run.
//!
//! The machine is deterministic, so a chunk's steps are fixed by the state at its start. Rather than
//! the whole memory, a checkpoint keeps only the pages the chunk touches, as they were when it
//! began (see [`crate::memory`]): a few KiB for a loop, at most one page per step in the worst case.
//! The out-of-core prover keeps checkpoints instead of traces and regenerates a chunk's trace when a
//! later pass needs it.

use crate::memory::{PAGE_WORDS, PageWords};

/// Machine state at the start of a chunk plus the pages the chunk touches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checkpoint {
    pub chunk_index: u64,
    pub pc: u32,
    pub regs: [u32; 32],
    pub cycle: u64,
    /// Bytes of the input stream consumed before the chunk.
    pub input_pos: u64,
    /// (page number, contents at chunk start), sorted by page number.
    pub pages: Vec<(u32, Box<PageWords>)>,
}

/// A byte string that is not a serialized checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed checkpoint: {0}")]
pub struct CheckpointFormatError(&'static str);

const MAGIC: &[u8; 8] = b"SPCKPT01";
const HEADER_BYTES: usize = 8 + 8 + 4 + 32 * 4 + 8 + 8 + 4;
const PAGE_RECORD_BYTES: usize = 4 + PAGE_WORDS * 4;

impl Checkpoint {
    /// Size of the serialized form in bytes.
    pub fn serialized_len(&self) -> usize {
        HEADER_BYTES + self.pages.len() * PAGE_RECORD_BYTES
    }

    /// Little-endian serialization: magic, chunk index, pc, registers, cycle, input position, page
    /// count, then each page number and its 1024 words.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.serialized_len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.chunk_index.to_le_bytes());
        out.extend_from_slice(&self.pc.to_le_bytes());
        for r in &self.regs {
            out.extend_from_slice(&r.to_le_bytes());
        }
        out.extend_from_slice(&self.cycle.to_le_bytes());
        out.extend_from_slice(&self.input_pos.to_le_bytes());
        out.extend_from_slice(&(self.pages.len() as u32).to_le_bytes());
        for (number, words) in &self.pages {
            out.extend_from_slice(&number.to_le_bytes());
            for w in words.iter() {
                out.extend_from_slice(&w.to_le_bytes());
            }
        }
        out
    }

    /// Parses [`Checkpoint::to_bytes`] output, rejecting anything else.
    pub fn from_bytes(bytes: &[u8]) -> Result<Checkpoint, CheckpointFormatError> {
        if bytes.len() < HEADER_BYTES || &bytes[..8] != MAGIC {
            return Err(CheckpointFormatError("missing header"));
        }
        let mut at = 8;
        let mut take = |n: usize| {
            let s = &bytes[at..at + n];
            at += n;
            s
        };
        let u64_at = |s: &[u8]| u64::from_le_bytes(s.try_into().expect("8 bytes"));
        let u32_at = |s: &[u8]| u32::from_le_bytes(s.try_into().expect("4 bytes"));
        let chunk_index = u64_at(take(8));
        let pc = u32_at(take(4));
        let mut regs = [0u32; 32];
        for r in regs.iter_mut() {
            *r = u32_at(take(4));
        }
        let cycle = u64_at(take(8));
        let input_pos = u64_at(take(8));
        let count = u32_at(take(4)) as usize;
        if bytes.len() - HEADER_BYTES != count.saturating_mul(PAGE_RECORD_BYTES) {
            return Err(CheckpointFormatError(
                "length does not match the page count",
            ));
        }
        let mut pages: Vec<(u32, Box<PageWords>)> = Vec::with_capacity(count);
        for record in bytes[HEADER_BYTES..].chunks_exact(PAGE_RECORD_BYTES) {
            let number = u32_at(&record[..4]);
            if number >= 1 << 20 || pages.last().is_some_and(|(last, _)| *last >= number) {
                return Err(CheckpointFormatError("page numbers out of range or order"));
            }
            let mut words = Box::new([0u32; PAGE_WORDS]);
            for (w, b) in words.iter_mut().zip(record[4..].chunks_exact(4)) {
                *w = u32_at(b);
            }
            pages.push((number, words));
        }
        Ok(Checkpoint {
            chunk_index,
            pc,
            regs,
            cycle,
            input_pos,
            pages,
        })
    }
}
