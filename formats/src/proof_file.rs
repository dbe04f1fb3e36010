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

use std::io::Write;

use crate::atomic::{AtomicFile, write_error};
use crate::error::{FormatError, Result};

const MAGIC: &[u8; 16] = b"STARKPIPE-PROOF\n";
/// The proof file's format version (the STARK proof inside has its own,
/// `stark::proof::FORMAT_VERSION`).
pub const VERSION: u16 = 1;

/// The two sections of a proof file, as bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProofFile {
    pub statement: Vec<u8>,
    pub proof: Vec<u8>,
}

/// Magic, version and the two section lengths.
const HEADER_BYTES: usize = 16 + 2 + 8 + 8;

impl ProofFile {
    /// The file's size in bytes.
    pub fn size_bytes(&self) -> u64 {
        (HEADER_BYTES + self.statement.len() + self.proof.len()) as u64
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.size_bytes() as usize);
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
    /// The sections are written one after the other, not joined first: a 64M-instruction
    /// proof is over 100 MB.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut file = AtomicFile::create(path)?;
        file.reserve(self.size_bytes())?;
        let path = file.path().to_path_buf();
        let mut head = MAGIC.to_vec();
        head.extend_from_slice(&VERSION.to_le_bytes());
        file.write_all(&head).map_err(|e| write_error(&path, e))?;
        for section in [&self.statement, &self.proof] {
            let len = (section.len() as u64).to_le_bytes();
            file.write_all(&len).map_err(|e| write_error(&path, e))?;
            file.write_all(section).map_err(|e| write_error(&path, e))?;
        }
        file.commit()
    }

    pub fn read(path: &Path) -> Result<ProofFile> {
        let bytes = std::fs::read(path).map_err(|e| FormatError::io("read", path, e))?;
        ProofFile::from_bytes(&bytes, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_file_is_its_bytes_and_reads_back() {
        let dir = std::env::temp_dir().join(format!("proof-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.proof");
        let file = ProofFile {
            statement: vec![1, 2, 3],
            proof: (0..1000u32).map(|i| i as u8).collect(),
        };
        file.write(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), file.to_bytes());
        assert_eq!(ProofFile::read(&path).unwrap(), file);
        let mut bytes = file.to_bytes();
        bytes.push(0);
        assert!(ProofFile::from_bytes(&bytes, &path).is_err());
        bytes.truncate(40);
        assert!(ProofFile::from_bytes(&bytes, &path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
