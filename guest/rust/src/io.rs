//! The program's input and output.
//!
//! - fd 0, the **private input**: the bytes given to `stark-pipe run --input FILE` (or
//!   `execute`). A proof does not reveal them. Read with [`read`], [`read_to_vec`],
//!   [`read_u32`].
//! - fd 1, the **public output**: everything written here is part of the statement a proof
//!   binds, and `stark-pipe verify` prints it. Write with [`write`] / [`commit`] or
//!   [`print!`](crate::print) / [`println!`](crate::println).
//! - fd 2, **diagnostics**: printed by `stark-pipe` on its stderr, part of no proof; for
//!   [`eprint!`](crate::eprint) / [`eprintln!`](crate::eprintln) and panic messages.
//!
//! Output is not buffered by the runtime: each call is one `write` system call, so nothing is
//! lost when the program exits or faults. The formatting macros format into a 256-byte stack
//! buffer first, so one `println!` is usually one system call.

use alloc::vec::Vec;
use core::fmt;

use crate::sys;

/// Reads private input into `buf` until it is full or the input ends; returns the number of
/// bytes read (less than `buf.len()` only at the end of the input).
pub fn read(buf: &mut [u8]) -> usize {
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: the pointer and length describe the unfilled rest of `buf`.
        let n = unsafe { sys::read(sys::STDIN, buf[got..].as_mut_ptr(), buf.len() - got) };
        if n <= 0 {
            break;
        }
        got += n as usize;
    }
    got
}

/// Reads the whole private input (all that remains of it).
pub fn read_to_vec() -> Vec<u8> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = read(&mut chunk);
        out.extend_from_slice(&chunk[..n]);
        if n < chunk.len() {
            return out;
        }
    }
}

/// Reads one little-endian `u32` (what `stark-pipe execute --input-u32 N` passes); `None` when
/// fewer than 4 bytes remain.
pub fn read_u32() -> Option<u32> {
    let mut word = [0u8; 4];
    (read(&mut word) == 4).then(|| u32::from_le_bytes(word))
}

fn write_all(fd: u32, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: the pointer and length describe `bytes`.
        let n = unsafe { sys::write(fd, bytes.as_ptr(), bytes.len()) };
        if n <= 0 {
            // The machine never refuses a write to fd 1 or 2; a host that does (a closed pipe
            // under qemu) leaves nothing sensible to do but stop.
            sys::exit(crate::PANIC_EXIT_CODE);
        }
        bytes = &bytes[n as usize..];
    }
}

/// Writes `bytes` to the public output (fd 1).
pub fn write(bytes: &[u8]) {
    write_all(sys::STDOUT, bytes);
}

/// Commits `data` to the public output: the same as [`write`], for any byte-like value (`&str`,
/// `&[u8]`, `Vec<u8>`, `[u8; 32]`...). What a program commits is exactly what
/// `stark-pipe verify` prints and what a proof binds; encode structured values yourself (for
/// instance with serde_json) so that a verifier can parse them.
pub fn commit<T: AsRef<[u8]> + ?Sized>(data: &T) {
    write(data.as_ref());
}

/// Writes `bytes` to fd 2 (diagnostics).
pub fn write_stderr(bytes: &[u8]) {
    write_all(sys::STDERR, bytes);
}

/// A `fmt::Write` that gathers text in a small stack buffer and writes it to `fd` whenever the
/// buffer fills and when dropped. Used by the printing macros.
pub struct Writer {
    fd: u32,
    len: usize,
    buf: [u8; 256],
}

impl Writer {
    /// A writer to the public output (fd 1).
    pub const fn stdout() -> Writer {
        Writer {
            fd: sys::STDOUT,
            len: 0,
            buf: [0; 256],
        }
    }

    /// A writer to diagnostics (fd 2).
    pub const fn stderr() -> Writer {
        Writer {
            fd: sys::STDERR,
            len: 0,
            buf: [0; 256],
        }
    }

    /// Writes out what the buffer holds.
    pub fn flush(&mut self) {
        if self.len > 0 {
            write_all(self.fd, &self.buf[..self.len]);
            self.len = 0;
        }
    }
}

impl fmt::Write for Writer {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let bytes = s.as_bytes();
        if self.len + bytes.len() > self.buf.len() {
            self.flush();
        }
        if bytes.len() > self.buf.len() {
            write_all(self.fd, bytes);
        } else {
            self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
            self.len += bytes.len();
        }
        Ok(())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.flush();
    }
}

#[doc(hidden)]
pub fn _print(fd: u32, args: fmt::Arguments<'_>) {
    let mut w = if fd == sys::STDOUT {
        Writer::stdout()
    } else {
        Writer::stderr()
    };
    // A Display impl that fails is a bug of that impl; what was formatted is still written.
    let _ = fmt::write(&mut w, args);
}

/// Formats to the public output (fd 1), like `std::print!`.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::io::_print($crate::sys::STDOUT, format_args!($($arg)*)) };
}

/// Formats a line to the public output (fd 1), like `std::println!`.
#[macro_export]
macro_rules! println {
    () => { $crate::io::write(b"\n") };
    ($($arg:tt)*) => {
        $crate::io::_print($crate::sys::STDOUT, format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Formats to diagnostics (fd 2), like `std::eprint!`.
#[macro_export]
macro_rules! eprint {
    ($($arg:tt)*) => { $crate::io::_print($crate::sys::STDERR, format_args!($($arg)*)) };
}

/// Formats a line to diagnostics (fd 2), like `std::eprintln!`.
#[macro_export]
macro_rules! eprintln {
    () => { $crate::io::write_stderr(b"\n") };
    ($($arg:tt)*) => {
        $crate::io::_print($crate::sys::STDERR, format_args!("{}\n", format_args!($($arg)*)))
    };
}
