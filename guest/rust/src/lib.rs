//! # stark-pipe-guest
//!
//! The runtime for Rust programs that stark-pipe proves: a `no_std` crate that
//! gives a program an entry point, a heap, its private input, its public output, diagnostics and
//! a panic handler, so that ordinary `no_std` + `alloc` crates (sha2, serde_json, num-bigint, ...)
//! run inside the prover's RV32IM machine, and run identically under `qemu-riscv32`.
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//! extern crate alloc;
//! use stark_pipe_guest::{entry, io, println};
//!
//! entry!(main);
//!
//! fn main() {
//!     let input = io::read_to_vec();             // the private input (fd 0)
//!     let text = alloc::string::String::from_utf8_lossy(&input);
//!     println!("{} bytes: {}", input.len(), text); // public output (fd 1), part of the proof
//! }
//! ```
//!
//! ## What the crate provides
//! - [`entry!`]: names the program's `main`. The crate's `_start` sets `gp` and `sp`, calls
//!   `main` and exits with its code: `()` is 0, an integer is itself, `Err(e)` prints
//!   `Error: {e:?}` to fd 2 and is 1 (see [`Termination`]).
//! - a `#[global_allocator]` ([`heap`]) over the region `[__heap_start, __heap_end)` that the
//!   linker script reserves (256 KiB unless the program overrides `__heap_size`). It frees and
//!   reuses memory. Running out of it prints `out of memory` with the sizes to fd 2, then panics.
//! - [`io`]: [`io::read`], [`io::read_to_vec`], [`io::read_u32`] on the private input;
//!   [`io::write`] / [`io::commit`] and [`print!`] / [`println!`] on the public output;
//!   [`eprint!`] / [`eprintln!`] to fd 2 (diagnostics, never part of the proof).
//! - a `#[panic_handler]` that prints `panicked at FILE:LINE:COL:` and the message to fd 2 and
//!   exits with [`PANIC_EXIT_CODE`] (101, as a Rust program under Linux would).
//!
//! ## Memory layout and the stack
//! The linker script `stark-pipe-guest.ld` (this crate's build script puts it on the link path;
//! the program's `.cargo/config.toml` passes `-Tstark-pipe-guest.ld`) loads text at 0x10000,
//! then read-only data, then a 64 KiB hole, the stack (64 KiB unless `__stack_size` is
//! overridden) and data, `.bss` and the heap. A stack overflow therefore stores into the hole
//! below `__stack_bottom`, which no segment maps: the machine stops with a "stack overflow"
//! error naming the pc and the address instead of silently corrupting data. `.bss` and the
//! heap are not stored in the ELF file: the loader (stark-pipe and Linux/qemu alike)
//! zero-fills memory past each segment's file bytes, so `_start` does not clear them.
//!
//! ## Building a program
//! See `docs/guests.md` in the stark-pipe repository (or run `stark-pipe new NAME`, which
//! writes a project that builds as it is). In short: target `riscv32im-unknown-none-elf`, link
//! with `riscv64-unknown-elf-ld -melf32lriscv -Tstark-pipe-guest.ld`; on Debian, with
//! `rustc-web`/`cargo-web`/`rust-web-src`, build `core` and `alloc` from source with
//! `RUSTC_BOOTSTRAP=1 cargo build -Zbuild-std=core,alloc`.
//!
//! ## System calls
//! The only ones the machine has (`ecall` with the number in `a7`): `read` (63) from fd 0,
//! `write` (64) to fd 1 or 2, `exit` (93). The [`sys`] module wraps them.

#![cfg_attr(not(test), no_std)]

extern crate alloc;

#[cfg(not(any(target_arch = "riscv32", test)))]
compile_error!(
    "stark-pipe-guest is the runtime of riscv32im-unknown-none-elf programs: build with \
     --target riscv32im-unknown-none-elf (see the crate documentation; for its docs, \
     `cargo doc --target riscv32im-unknown-none-elf`)"
);

pub mod heap;
pub mod io;
pub mod sys;

#[cfg(all(target_arch = "riscv32", not(test)))]
mod rt;

/// The exit code of a program that panicked (the same as a panicking Rust program under Linux).
pub const PANIC_EXIT_CODE: i32 = 101;

/// What a program's `main` may return; the value becomes the exit code.
pub trait Termination {
    /// The exit code (the machine keeps 32 bits; Linux and qemu keep the low 8, so use 0-255).
    fn report(self) -> i32;
}

impl Termination for () {
    fn report(self) -> i32 {
        0
    }
}

impl Termination for i32 {
    fn report(self) -> i32 {
        self
    }
}

impl Termination for u8 {
    fn report(self) -> i32 {
        i32::from(self)
    }
}

impl Termination for bool {
    /// `true` is success (0), `false` is failure (1).
    fn report(self) -> i32 {
        if self {
            0
        } else {
            1
        }
    }
}

impl<T: Termination, E: core::fmt::Debug> Termination for Result<T, E> {
    fn report(self) -> i32 {
        match self {
            Ok(value) => value.report(),
            Err(e) => {
                eprintln!("Error: {e:?}");
                1
            }
        }
    }
}

/// Names the program's main function: `entry!(main);` at the top level of a `#![no_main]`
/// binary. `main` takes no arguments and returns a [`Termination`] (`()`, `i32`, `u8`, `bool`
/// or a `Result` of one of these). The crate's `_start` calls it and exits with its code.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[doc(hidden)]
        #[unsafe(no_mangle)]
        pub extern "C" fn __stark_pipe_guest_main() -> i32 {
            // Type-checks `main` against the expected signature.
            let main: fn() -> _ = $main;
            $crate::Termination::report(main())
        }
    };
}

/// Ends the program with `code` (fd 1 has no buffer to flush: every write is a system call).
pub fn exit(code: i32) -> ! {
    sys::exit(code)
}
