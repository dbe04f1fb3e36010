//! `fixtures/manifest.toml`, the expected result of every fixture run, as the end-to-end tests
//! read it (a module of `fixtures.rs` and `guests.rs`).

use std::path::PathBuf;

use serde::Deserialize;

pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

#[derive(Deserialize)]
struct Manifest {
    case: Vec<Case>,
}

/// One case: the program (elf/PROGRAM.elf), its input (at most one of the three keys; none is
/// empty), the expected exit code and fd-1 output.
#[derive(Deserialize)]
pub struct Case {
    pub name: String,
    pub program: String,
    pub input_u32: Option<u32>,
    pub input_text: Option<String>,
    /// A file, relative to fixtures/.
    pub input_file: Option<String>,
    pub exit_code: i32,
    pub output: String,
}

impl Case {
    #[allow(dead_code)] // not every test file runs the committed ELFs
    pub fn elf(&self) -> PathBuf {
        fixtures_dir()
            .join("elf")
            .join(format!("{}.elf", self.program))
    }

    pub fn input(&self) -> Vec<u8> {
        match (&self.input_u32, &self.input_text, &self.input_file) {
            (Some(n), None, None) => n.to_le_bytes().to_vec(),
            (None, Some(t), None) => t.as_bytes().to_vec(),
            (None, None, Some(f)) => std::fs::read(fixtures_dir().join(f))
                .unwrap_or_else(|e| panic!("case {}: input_file {f}: {e}", self.name)),
            (None, None, None) => Vec::new(),
            _ => panic!(
                "case {}: give at most one of input_u32, input_text, input_file",
                self.name
            ),
        }
    }
}

/// Every case of the manifest.
pub fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(fixtures_dir().join("manifest.toml")).unwrap();
    let m: Manifest = toml::from_str(&text).unwrap();
    assert!(m.case.len() >= 10, "manifest lists its cases");
    m.case
}
