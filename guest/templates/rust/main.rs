//! A stark-pipe program: reads its private input, prints a greeting and the input's SHA-256 to
//! its public output. `stark-pipe run` proves that this program, given some input, printed
//! exactly that; the proof does not reveal the input.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use sha2::{Digest, Sha256};
use stark_pipe_guest::{entry, eprintln, io, println};

entry!(main);

fn main() {
    // The private input (fd 0): `--input FILE`.
    let input: Vec<u8> = io::read_to_vec();
    let text = String::from_utf8_lossy(&input);
    let name = text.trim();
    // Diagnostics (fd 2) are printed but are not part of the proof.
    eprintln!("read {} bytes of input", input.len());

    let digest = Sha256::digest(&input);
    let hex: String = digest.iter().map(|b| alloc::format!("{b:02x}")).collect();
    // The public output (fd 1): what the proof binds and `stark-pipe verify` prints.
    println!("hello, {}!", if name.is_empty() { "world" } else { name });
    println!("sha256 of the input: {hex}");
}
