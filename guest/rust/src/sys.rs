//! The machine's system calls (`ecall`, number in `a7`, arguments in `a0`-`a2`, result in
//! `a0`): the same numbers and meaning as Linux on RISC-V, so a program runs unchanged under
//! `qemu-riscv32`.

/// `read(fd, buf, len)`: only fd 0, the private input.
pub const READ: u32 = 63;
/// `write(fd, buf, len)`: fd 1 is the public output, fd 2 diagnostics.
pub const WRITE: u32 = 64;
/// `exit(code)`.
pub const EXIT: u32 = 93;

/// The private input.
pub const STDIN: u32 = 0;
/// The public output: what a proof binds.
pub const STDOUT: u32 = 1;
/// Diagnostics: printed by `stark-pipe`, part of no proof.
pub const STDERR: u32 = 2;

/// `read(fd, buf, len)`: the number of bytes read (0 at the end of the input), or a negative
/// errno.
///
/// # Safety
/// `buf` must be valid for writes of `len` bytes.
#[cfg(target_arch = "riscv32")]
pub unsafe fn read(fd: u32, buf: *mut u8, len: usize) -> isize {
    let ret: isize;
    // SAFETY: the caller guarantees the buffer; the ecall writes only inside it.
    unsafe {
        core::arch::asm!("ecall", inlateout("a0") fd as isize => ret, in("a1") buf,
            in("a2") len, in("a7") READ, options(nostack));
    }
    ret
}

/// `write(fd, buf, len)`: the number of bytes written, or a negative errno.
///
/// # Safety
/// `buf` must be valid for reads of `len` bytes.
#[cfg(target_arch = "riscv32")]
pub unsafe fn write(fd: u32, buf: *const u8, len: usize) -> isize {
    let ret: isize;
    // SAFETY: the caller guarantees the buffer; the ecall only reads it.
    unsafe {
        core::arch::asm!("ecall", inlateout("a0") fd as isize => ret, in("a1") buf,
            in("a2") len, in("a7") WRITE, options(nostack, readonly));
    }
    ret
}

/// `exit(code)`: never returns.
#[cfg(target_arch = "riscv32")]
pub fn exit(code: i32) -> ! {
    // SAFETY: the machine stops at this ecall.
    unsafe {
        core::arch::asm!("ecall", in("a0") code, in("a7") EXIT, options(noreturn, nostack));
    }
}

// Host builds (the crate's own unit tests) use the host's file descriptors.
#[cfg(all(not(target_arch = "riscv32"), test))]
pub unsafe fn read(fd: u32, buf: *mut u8, len: usize) -> isize {
    use std::io::Read;
    assert_eq!(fd, STDIN);
    // SAFETY: as for the riscv32 version.
    let buf = unsafe { core::slice::from_raw_parts_mut(buf, len) };
    std::io::stdin().read(buf).map_or(-5, |n| n as isize)
}

#[cfg(all(not(target_arch = "riscv32"), test))]
pub unsafe fn write(fd: u32, buf: *const u8, len: usize) -> isize {
    use std::io::Write;
    // SAFETY: as for the riscv32 version.
    let buf = unsafe { core::slice::from_raw_parts(buf, len) };
    let r = if fd == STDOUT {
        std::io::stdout().write(buf)
    } else {
        std::io::stderr().write(buf)
    };
    r.map_or(-5, |n| n as isize)
}

#[cfg(all(not(target_arch = "riscv32"), test))]
pub fn exit(code: i32) -> ! {
    std::process::exit(code)
}
