//! The global allocator: power-of-two size classes with free lists, over one region.
//!
//! The region is `[__heap_start, __heap_end)`, which the linker script reserves at the end of
//! the data segment (256 KiB unless the program links with `--defsym=__heap_size=BYTES`). It is
//! zero-filled by the loader and costs nothing in the ELF file, but every word of it is a row
//! of the prover's image table, so a program should ask for the heap it needs and no more.
//!
//! # Design
//! A request of `size` bytes and alignment `align` is served by a block of the class
//! `2^k = max(size, align, 8)` rounded up to a power of two. Each class has a LIFO free list
//! threaded through its free blocks; a freed block goes back to its class's list (Rust's
//! allocator interface passes the layout to `dealloc`, so blocks need no header). A request
//! whose list is empty splits the smallest larger free block (keeping one half of each size on
//! the way down), and only when there is none takes fresh memory from the top of the region.
//! The block taken last from the top is special: freeing it gives it back to the top, and
//! growing it (a `Vec` or `String` being filled) extends it in place, without a copy.
//! Every block of class `2^k` starts at a multiple of `min(2^k, 4096)`, so it satisfies any
//! alignment up to that; larger alignments are taken from fresh memory.
//!
//! Every operation costs O(number of classes) at worst and a handful of instructions in the
//! common case, which matters when each instruction is proven. Blocks are never merged, so a
//! program that frees many small blocks and then wants one large one gets fresh memory for it:
//! at most about twice the live data in the worst usual cases.
//!
//! Running out of memory prints `out of memory: ...` with the request, the heap size and what is
//! in use to fd 2, and returns null, which makes `alloc` panic ("memory allocation of N bytes
//! failed"); the program exits with the panic code.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr;

/// Smallest class: 2^3 = 8 bytes (room for the free-list link on a 64-bit host too).
const MIN_SHIFT: u32 = 3;
/// Number of classes: 2^3 ..= 2^31.
const CLASSES: usize = (32 - MIN_SHIFT) as usize;
/// Blocks are aligned to their size up to this.
const MAX_BLOCK_ALIGN: usize = 4096;

struct State {
    /// Whether `start`, `next` and `end` have been read from the region yet.
    started: bool,
    start: usize,
    /// Bump pointer: the lowest address never handed out.
    next: usize,
    end: usize,
    /// Head of each class's free list (0: empty); a free block's first word is the next one.
    free: [usize; CLASSES],
    /// Bytes in blocks handed out and not freed.
    in_use: usize,
}

/// An allocator over one memory region; the runtime's global allocator is one of these over the
/// linker script's heap.
pub struct Heap {
    state: UnsafeCell<State>,
    /// Where the region comes from on first use.
    region: fn() -> (usize, usize),
}

// SAFETY: the guest is single-threaded and has no interrupts: no two calls ever overlap.
unsafe impl Sync for Heap {}

/// Bytes of the heap handed out and not freed.
pub fn in_use() -> usize {
    #[cfg(all(target_arch = "riscv32", not(test)))]
    {
        // SAFETY: single-threaded; a plain read of the counter.
        unsafe { (*GLOBAL.state.get()).in_use }
    }
    #[cfg(not(all(target_arch = "riscv32", not(test))))]
    0
}

/// Size of the heap region in bytes (from the linker script).
pub fn size() -> usize {
    let (start, end) = linker_region();
    end - start
}

#[cfg(all(target_arch = "riscv32", not(test)))]
fn linker_region() -> (usize, usize) {
    extern "C" {
        static __heap_start: u8;
        static __heap_end: u8;
    }
    // Only the addresses of the linker-defined symbols are taken (no read).
    (
        ptr::addr_of!(__heap_start) as usize,
        ptr::addr_of!(__heap_end) as usize,
    )
}

#[cfg(not(all(target_arch = "riscv32", not(test))))]
fn linker_region() -> (usize, usize) {
    (0, 0)
}

#[cfg(all(target_arch = "riscv32", not(test)))]
#[global_allocator]
static GLOBAL: Heap = Heap::new(linker_region);

impl Heap {
    /// An allocator over the region that `region()` returns (start, end), asked on first use.
    pub const fn new(region: fn() -> (usize, usize)) -> Heap {
        Heap {
            state: UnsafeCell::new(State {
                started: false,
                start: 0,
                next: 0,
                end: 0,
                free: [0; CLASSES],
                in_use: 0,
            }),
            region,
        }
    }

    /// # Safety
    /// No other reference to the state may be live (single-threaded use).
    #[allow(clippy::mut_from_ref)]
    unsafe fn state(&self) -> &mut State {
        // SAFETY: see the caller's contract.
        let s = unsafe { &mut *self.state.get() };
        if !s.started {
            let (start, end) = (self.region)();
            s.started = true;
            s.start = start;
            s.next = start;
            s.end = end;
        }
        s
    }
}

/// The class of a layout, or None when it is larger than 2^31 bytes.
fn class_of(layout: Layout) -> Option<usize> {
    let want = layout.size().max(layout.align()).max(1 << MIN_SHIFT);
    let rounded = want.checked_next_power_of_two()?;
    let k = rounded.trailing_zeros();
    (k < MIN_SHIFT + CLASSES as u32).then(|| (k - MIN_SHIFT) as usize)
}

fn block_size(class: usize) -> usize {
    1 << (class as u32 + MIN_SHIFT)
}

impl State {
    /// # Safety
    /// `block` is a free block of `class` inside the region.
    unsafe fn push(&mut self, class: usize, block: usize) {
        // SAFETY: the block is at least 8 bytes and aligned to 8: room for the link.
        unsafe { (block as *mut usize).write(self.free[class]) };
        self.free[class] = block;
    }

    /// # Safety
    /// The free lists hold only free blocks.
    unsafe fn pop(&mut self, class: usize) -> Option<usize> {
        let block = self.free[class];
        if block == 0 {
            return None;
        }
        // SAFETY: a listed block holds the link to the next one.
        self.free[class] = unsafe { (block as *const usize).read() };
        Some(block)
    }

    /// Fresh memory from the top, aligned to `align`.
    fn bump(&mut self, size: usize, align: usize) -> Option<usize> {
        let start = self.next.checked_add(align - 1)? & !(align - 1);
        let end = start.checked_add(size)?;
        if end > self.end {
            return None;
        }
        self.next = end;
        Some(start)
    }

    /// # Safety
    /// As for [`GlobalAlloc::alloc`].
    unsafe fn alloc(&mut self, layout: Layout) -> *mut u8 {
        let Some(class) = class_of(layout) else {
            return self.out_of_memory(layout);
        };
        let size = block_size(class);
        let block = if layout.align() > MAX_BLOCK_ALIGN {
            self.bump(size, layout.align())
        } else {
            // SAFETY: the free lists hold only free blocks.
            unsafe { self.pop(class).or_else(|| self.split(class)) }
                .or_else(|| self.bump(size, size.min(MAX_BLOCK_ALIGN)))
        };
        match block {
            Some(block) => {
                self.in_use += size;
                block as *mut u8
            }
            None => self.out_of_memory(layout),
        }
    }

    /// A block of `class` cut from the smallest larger free block, if any.
    ///
    /// # Safety
    /// The free lists hold only free blocks.
    unsafe fn split(&mut self, class: usize) -> Option<usize> {
        let larger = (class + 1..CLASSES).find(|&c| self.free[c] != 0)?;
        // SAFETY: the list is not empty and holds free blocks.
        let block = unsafe { self.pop(larger)? };
        // Keep the upper half of each size between `larger` and `class`.
        for c in (class..larger).rev() {
            // SAFETY: the upper half of a free block of class c + 1 is a free block of class c.
            unsafe { self.push(c, block + block_size(c)) };
        }
        Some(block)
    }

    fn out_of_memory(&self, layout: Layout) -> *mut u8 {
        let mut w = crate::io::Writer::stderr();
        let _ = core::fmt::write(
            &mut w,
            format_args!(
                "out of memory: cannot allocate {} bytes (alignment {}): the heap has {} bytes, \
                 {} in use in blocks, {} never handed out; link with a larger \
                 --defsym=__heap_size=BYTES\n",
                layout.size(),
                layout.align(),
                self.end - self.start,
                self.in_use,
                self.end - self.next,
            ),
        );
        ptr::null_mut()
    }

    /// # Safety
    /// As for [`GlobalAlloc::dealloc`].
    unsafe fn dealloc(&mut self, block: *mut u8, layout: Layout) {
        let class = class_of(layout).expect("dealloc of a layout alloc refused");
        let size = block_size(class);
        self.in_use -= size;
        if block as usize + size == self.next {
            // The most recent fresh block: give it back to the top.
            self.next = block as usize;
        } else {
            // SAFETY: the block was handed out for this layout and is now free.
            unsafe { self.push(class, block as usize) };
        }
    }

    /// Resizes the block in place when it is the last one taken from the top (the usual case of
    /// a growing `Vec` or `String`): no copy, no hole left behind.
    fn resize_at_top(&mut self, block: usize, old: usize, new: usize) -> bool {
        let (old_size, new_size) = (block_size(old), block_size(new));
        if block + old_size != self.next || block % new_size.min(MAX_BLOCK_ALIGN) != 0 {
            return false;
        }
        match block.checked_add(new_size) {
            Some(end) if end <= self.end => {
                self.next = end;
                self.in_use = self.in_use - old_size + new_size;
                true
            }
            _ => false,
        }
    }
}

// SAFETY: blocks are disjoint parts of the region, of at least the requested size and
// alignment, each handed out once until freed.
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: single-threaded, no reentrancy (the allocator calls nothing that allocates).
        unsafe { self.state().alloc(layout) }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        // SAFETY: as above; the caller passes a block of ours with its layout.
        unsafe { self.state().dealloc(block, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for alloc.
        let block = unsafe { self.alloc(layout) };
        if !block.is_null() {
            // SAFETY: the block has at least layout.size() bytes. (Fresh memory is already zero,
            // but a reused block is not.)
            unsafe { ptr::write_bytes(block, 0, layout.size()) };
        }
        block
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees a valid layout for new_size.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let (Some(old), Some(new)) = (class_of(layout), class_of(new_layout)) else {
            return ptr::null_mut();
        };
        if old == new {
            // Same block size: the block already has room.
            return block;
        }
        // SAFETY: single-threaded, as for alloc.
        if layout.align() <= MAX_BLOCK_ALIGN
            && unsafe { self.state() }.resize_at_top(block as usize, old, new)
        {
            return block;
        }
        // SAFETY: as for alloc and dealloc; the two blocks are distinct.
        unsafe {
            let fresh = self.alloc(new_layout);
            if !fresh.is_null() {
                ptr::copy_nonoverlapping(block, fresh, layout.size().min(new_size));
                self.dealloc(block, layout);
            }
            fresh
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    const REGION: usize = 1 << 20;

    /// Defines `fn $name() -> (start, end)`: a 1 MiB region of its own (tests run in parallel),
    /// 4096-aligned, leaked (the heap under test lives as long as the test).
    macro_rules! region {
        ($name:ident) => {
            fn $name() -> (usize, usize) {
                static R: OnceLock<usize> = OnceLock::new();
                let start = *R.get_or_init(|| {
                    let layout = Layout::from_size_align(REGION, 4096).unwrap();
                    // SAFETY: a valid, non-zero layout.
                    let p = unsafe { std::alloc::alloc(layout) };
                    assert!(!p.is_null());
                    p as usize
                });
                (start, start + REGION)
            }
        };
    }
    region!(region_a);
    region!(region_b);
    region!(region_c);

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// Random allocations, frees and reallocations: every live block is aligned, inside the
    /// region, disjoint from the others and keeps its contents; freed memory is reused (the
    /// run allocates far more than the region in total).
    #[test]
    fn random_workload_keeps_blocks_disjoint_aligned_and_intact() {
        let heap = Heap::new(region_a);
        let (lo, hi) = region_a();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut live: Vec<(usize, Layout, u8)> = Vec::new();
        let mut total = 0usize;
        for step in 0..20_000u32 {
            // At most about 300 live blocks (some up to 20 KB): well inside the region even
            // with the power-of-two rounding and the fragmentation of no merging.
            let op = if live.len() > 300 { 5 } else { rng.next() % 10 };
            if op < 5 || live.is_empty() {
                let size = match rng.next() % 10 {
                    0 => (rng.next() % 20_000) as usize,
                    _ => (rng.next() % 300) as usize,
                };
                let align = 1usize << (rng.next() % 7);
                let layout = Layout::from_size_align(size.max(1), align).unwrap();
                // SAFETY: non-zero size.
                let p = unsafe { heap.alloc(layout) };
                assert!(
                    !p.is_null(),
                    "step {step}: out of memory with {} live",
                    live.len()
                );
                let p = p as usize;
                assert_eq!(p % align, 0);
                assert!(p >= lo && p + layout.size() <= hi);
                let tag = step as u8;
                // SAFETY: the block is ours and has layout.size() bytes.
                unsafe { ptr::write_bytes(p as *mut u8, tag, layout.size()) };
                live.push((p, layout, tag));
                total += layout.size();
            } else if op < 8 {
                let (p, layout, tag) = live.swap_remove((rng.next() % live.len() as u64) as usize);
                // SAFETY: as above.
                let bytes = unsafe { std::slice::from_raw_parts(p as *const u8, layout.size()) };
                assert!(
                    bytes.iter().all(|&b| b == tag),
                    "block at {p:#x} overwritten"
                );
                // SAFETY: a live block with its layout.
                unsafe { heap.dealloc(p as *mut u8, layout) };
            } else {
                let i = (rng.next() % live.len() as u64) as usize;
                let (p, layout, tag) = live[i];
                let new_size = 1 + (rng.next() % 2_000) as usize;
                // SAFETY: a live block with its layout; non-zero new size.
                let q = unsafe { heap.realloc(p as *mut u8, layout, new_size) } as usize;
                assert!(q != 0);
                assert_eq!(q % layout.align(), 0);
                // SAFETY: the new block has new_size bytes.
                let bytes = unsafe { std::slice::from_raw_parts(q as *const u8, new_size) };
                let kept = layout.size().min(new_size);
                assert!(
                    bytes[..kept].iter().all(|&b| b == tag),
                    "realloc lost contents"
                );
                unsafe { ptr::write_bytes(q as *mut u8, tag, new_size) };
                live[i] = (
                    q,
                    Layout::from_size_align(new_size, layout.align()).unwrap(),
                    tag,
                );
                total += new_size;
            }
            if step % 1000 == 0 {
                let mut spans: Vec<(usize, usize)> =
                    live.iter().map(|&(p, l, _)| (p, p + l.size())).collect();
                spans.sort_unstable();
                assert!(spans.windows(2).all(|w| w[0].1 <= w[1].0), "blocks overlap");
            }
        }
        assert!(
            total > 2 * REGION,
            "the workload reused memory ({total} bytes allocated)"
        );
    }

    #[test]
    fn a_growing_vec_pattern_grows_in_place_and_frees_give_memory_back() {
        let heap = Heap::new(region_b);
        let mut layout = Layout::from_size_align(4096, 4).unwrap();
        // SAFETY: non-zero size.
        let p = unsafe { heap.alloc(layout) };
        for _ in 0..7 {
            // SAFETY: the live block with its layout.
            let q = unsafe { heap.realloc(p, layout, layout.size() * 2) };
            assert_eq!(q, p, "the top block grows in place");
            layout = Layout::from_size_align(layout.size() * 2, 4).unwrap();
        }
        // 512 KiB now; freeing it returns it to the top, so 768 KiB fit afterwards.
        unsafe { heap.dealloc(p, layout) };
        let big = Layout::from_size_align(768 << 10, 8).unwrap();
        assert!(!unsafe { heap.alloc(big) }.is_null());
    }

    #[test]
    fn exhaustion_returns_null_and_splitting_reuses_large_blocks() {
        let heap = Heap::new(region_c);
        let half = Layout::from_size_align(REGION / 2, 8).unwrap();
        let a = unsafe { heap.alloc(half) };
        let b = unsafe { heap.alloc(Layout::from_size_align(64, 8).unwrap()) };
        assert!(!a.is_null() && !b.is_null());
        // The region cannot hold another half after the 64-byte block.
        assert!(unsafe { heap.alloc(half) }.is_null());
        // Freed, the half block (not at the top) serves many small requests by splitting.
        unsafe { heap.dealloc(a, half) };
        let small = Layout::from_size_align(1000, 8).unwrap();
        for _ in 0..400 {
            let p = unsafe { heap.alloc(small) } as usize;
            assert!(
                p >= a as usize && p < a as usize + REGION / 2,
                "reused the freed half"
            );
        }
        assert!(class_of(Layout::from_size_align(usize::MAX / 2, 1).unwrap()).is_none());
    }
}
