//! Puts the linker script `stark-pipe-guest.ld` where the final link finds it: a program's
//! `.cargo/config.toml` passes `-C link-arg=-Tstark-pipe-guest.ld`, and GNU ld looks a relative
//! script name up in the `-L` search path that this script adds.

use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let script = include_bytes!("stark-pipe-guest.ld");
    std::fs::write(out.join("stark-pipe-guest.ld"), script).expect("writing the linker script");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=stark-pipe-guest.ld");
    println!("cargo:rerun-if-changed=build.rs");
}
