//! Start-up and panics (riscv32 only).

use core::fmt::Write;
use core::panic::PanicInfo;

// `_start`: the ELF entry point (the linker script keeps `.text.start` first in the text).
// `gp` must be set before any code runs that the linker relaxed to gp-relative accesses; `sp`
// starts at the top of the stack segment. `.bss` and the heap need no clearing: the loader
// zero-fills every segment past its file bytes.
core::arch::global_asm!(
    ".section .text.start, \"ax\"",
    ".globl _start",
    ".type _start, @function",
    "_start:",
    ".option push",
    ".option norelax",
    "la gp, __global_pointer$",
    ".option pop",
    "la sp, __stack_top",
    "call {start}",
    // Not reached: `start` exits.
    "unimp",
    start = sym start,
);

extern "C" {
    /// Defined by the program's `entry!`.
    fn __stark_pipe_guest_main() -> i32;
}

extern "C" fn start() -> ! {
    // SAFETY: `entry!` defines the symbol with this signature; without it the link fails with
    // "undefined reference to `__stark_pipe_guest_main`".
    let code = unsafe { __stark_pipe_guest_main() };
    crate::sys::exit(code)
}

static mut PANICKING: bool = false;

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    // SAFETY: single-threaded.
    unsafe {
        if PANICKING {
            // A panic while printing a panic: stop without another message.
            crate::sys::exit(crate::PANIC_EXIT_CODE);
        }
        PANICKING = true;
    }
    let mut w = crate::io::Writer::stderr();
    let _ = match info.location() {
        Some(loc) => write!(
            w,
            "panicked at {}:{}:{}:\n{}\n",
            loc.file(),
            loc.line(),
            loc.column(),
            info.message()
        ),
        None => write!(w, "panicked:\n{}\n", info.message()),
    };
    w.flush();
    crate::sys::exit(crate::PANIC_EXIT_CODE)
}
