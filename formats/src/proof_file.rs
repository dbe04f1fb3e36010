//! The proof file: what `stark-pipe run` writes and `stark-pipe verify` reads.
//!
//! ```text
//! magic "STARKPIPE-PROOF\n" (16 bytes) | version u16 = 1
//! statement: u64 length | bytes      -- the public statement (program digest, exit code, output, cycles)
//! proof:     u64 length | bytes      -- the STARK proof (its own versioned format)
//! ```
//! All integers little-endian; nothing may follow. The file is written to a temporary name and
//! renamed, so a reader never sees half a proof.

use std::path::Path;

use crate::atomic::atomic_write;
use crate::error::{FormatError, Result};

const MAGIC: &[u8; 16] = b"STARKPIPE-PROOF\n";
const VERSION: u16 = 1;

/// The two sections of a proof file, as bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProofFile {
    pub statement: Vec<u8>,
    pub proof: Vec<u8>,
}

impl ProofFile {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(34 + self.statement.len() + self.proof.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        for section in [&self.statement, &self.proof] {
            out.extend_from_slice(&(section.len() as u64).to_le_bytes());
            out.extend_from_slice(section);
        }
        out
    }

    /// Parses a proof file's bytes; `path` names the file in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<ProofFile> {
        let bad = |reason: String| FormatError::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        if bytes.len() < 18 || &bytes[..16] != MAGIC {
            return Err(bad("not a stark-pipe proof file (bad magic)".into()));
        }
        let version = u16::from_le_bytes([bytes[16], bytes[17]]);
        if version != VERSION {
            return Err(bad(format!(
                "proof file version {version}, this build reads {VERSION}"
            )));
        }
        let mut rest = &bytes[18..];
        let mut sections = Vec::with_capacity(2);
        for name in ["statement", "proof"] {
            if rest.len() < 8 {
                return Err(bad(format!("truncated before the {name} section")));
            }
            let len = u64::from_le_bytes(rest[..8].try_into().expect("8 bytes"));
            rest = &rest[8..];
            if len > rest.len() as u64 {
                return Err(bad(format!(
                    "{name} section of {len} bytes runs past the end of the file"
                )));
            }
            sections.push(rest[..len as usize].to_vec());
            rest = &rest[len as usize..];
        }
        if !rest.is_empty() {
            return Err(bad(format!("{} bytes after the proof section", rest.len())));
        }
        let proof = sections.pop().expect("two sections");
        let statement = sections.pop().expect("two sections");
        Ok(ProofFile { statement, proof })
    }

    /// Writes the file atomically (temp name, fsync, rename).
    pub fn write(&self, path: &Path) -> Result<()> {
        atomic_write(path, &self.to_bytes())
    }

    pub fn read(path: &Path) -> Result<ProofFile> {
        let bytes = std::fs::read(path).map_err(|e| FormatError::io("read", path, e))?;
        ProofFile::from_bytes(&bytes, path)
    }
}
