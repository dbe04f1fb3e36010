//! Helpers shared by the stages crate's tests.

use std::path::PathBuf;

use pipeline::{Keep, SpillDir, SpillOptions};

/// A fresh spill dir under the test target dir, removed when the run finishes, with every
/// segment verified as it is read.
pub fn spill_dir(name: &str) -> SpillDir {
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    SpillDir::create(&SpillOptions {
        dir: Some(dir),
        keep: Keep::Never,
        verify_segments: true,
        limit: None,
    })
    .unwrap()
}
