//! The process's allocator, set up for a pipeline of few, large buffers.
//!
//! * [`configure_allocator`]: glibc's heaps and mapping threshold.
//! * [`HugePageAlloc`]: the system allocator, asking for transparent huge pages on the buffers
//!   glibc maps on their own. A binary installs it with `#[global_allocator]`.

use std::alloc::{GlobalAlloc, Layout, System};

/// Buffers of this size and more are mapped on their own (see [`configure_allocator`]).
pub const MMAP_THRESHOLD: usize = 8 << 20;

/// Free memory a heap keeps at its top before giving it back (see [`configure_allocator`]).
const TRIM_THRESHOLD: usize = 32 << 20;

/// Sets glibc's allocator up for a pipeline of few, large buffers; call it before any thread
/// starts. A no-op on other C libraries.
///
/// * At most two heaps (`M_ARENA_MAX`). By default every thread that allocates gets its own
///   arena (up to 8 per core), and a buffer freed by a later stage returns to the arena of the
///   stage that allocated it, where it waits for that stage's next allocation: each stage's
///   thread keeps its own high-water mark. Sharing costs no measurable contention here.
/// * Buffers of [`MMAP_THRESHOLD`] and more always mapped on their own (`M_MMAP_THRESHOLD`,
///   which also stops glibc from raising the threshold to 32 MiB as it frees them): a freed
///   trace, LDE or tree goes back to the kernel at once instead of fragmenting a heap that only
///   grows. Every such allocation is fresh pages, each faulted in on first touch; with
///   [`HugePageAlloc`] those are 2 MiB pages, 512 times fewer faults.
/// * A heap keeps up to 32 MiB free at its top (`M_TRIM_THRESHOLD`; setting the mapping
///   threshold fixes this one at 128 KiB): the slabs and blocks of the out-of-core LDE (a few
///   MiB, freed and asked for again thousands of times) stay mapped instead of faulting in anew
///   each time. A 1M-instruction single-instance proof: 1.75M page faults and 8.9 s of kernel
///   time without it, 0.72M and 6.5 s with it, peak RssAnon 194 against 196-198 MiB.
///
/// fib_iterative, 2^17-row chunks, peak RssAnon: 1M instructions 306-424 MiB with glibc's
/// defaults, 241-293 MiB with two arenas, 198-213 MiB with both; 4M instructions 301 MiB with
/// two arenas (30.6 s), 227 MiB with both (31.7 s).
pub fn configure_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; both options are valid.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD as libc::c_int);
    }
}

/// The system allocator, which also advises the kernel (`madvise(MADV_HUGEPAGE)`) to back every
/// buffer of [`MMAP_THRESHOLD`] or more with transparent huge pages, where the kernel's
/// setting is `madvise` or `always` (`/sys/kernel/mm/transparent_hugepage/enabled`).
///
/// Such buffers are fresh mappings (an LDE block, a quotient's values, a slab), and a fresh page
/// faults on its first touch: with 4 KiB pages a 1M-instruction single-instance proof took 2.3M
/// faults and 10 s of kernel time; with huge pages 0.64M and 6 s, at the same peak RssAnon. The
/// advice covers the 2 MiB-aligned part of the buffer and is given before it is touched;
/// smaller buffers come from the heap and are left as they are.
pub struct HugePageAlloc;

/// Advises huge pages for the 2 MiB-aligned pages of `[ptr, ptr + size)`.
fn advise_huge(ptr: *mut u8, size: usize) {
    const HUGE: usize = 2 << 20;
    if ptr.is_null() || size < MMAP_THRESHOLD {
        return;
    }
    let start = (ptr as usize).next_multiple_of(HUGE);
    let end = (ptr as usize + size) & !(HUGE - 1);
    if end > start {
        #[cfg(target_os = "linux")]
        // SAFETY: the range lies inside an allocation just made for the caller; MADV_HUGEPAGE
        // changes only how its pages are backed, never their contents. A failure (a kernel
        // without THP) leaves it as it was.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
}

// SAFETY: every call is forwarded to `System` with the caller's arguments; the advice does not
// change what is allocated.
unsafe impl GlobalAlloc for HugePageAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as the trait's contract requires.
        let ptr = unsafe { System.alloc(layout) };
        advise_huge(ptr, layout.size());
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        advise_huge(ptr, layout.size());
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let ptr = unsafe { System.realloc(ptr, layout, new_size) };
        advise_huge(ptr, new_size);
        ptr
    }
}
