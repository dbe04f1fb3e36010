//! `HugePageAlloc` is the system allocator with advice: what it hands out must behave exactly
//! like `System`'s, above and below the size it advises on.

use std::alloc::{GlobalAlloc, Layout};

use pipeline::HugePageAlloc;
use pipeline::alloc::MMAP_THRESHOLD;

#[test]
fn big_and_small_buffers_keep_their_contents_through_realloc() {
    let a = HugePageAlloc;
    for size in [
        4096,
        MMAP_THRESHOLD - 8,
        MMAP_THRESHOLD,
        3 * MMAP_THRESHOLD + 12_345,
    ] {
        let layout = Layout::from_size_align(size, 8).expect("valid layout");
        // SAFETY: the layouts are non-zero and valid; every pointer is checked, written only
        // inside its allocation and freed with the layout it was allocated with.
        unsafe {
            let zeroed = a.alloc_zeroed(layout);
            assert!(!zeroed.is_null());
            let z = std::slice::from_raw_parts(zeroed, size);
            assert!(z.iter().all(|&b| b == 0), "alloc_zeroed of {size} bytes");
            a.dealloc(zeroed, layout);

            let p = a.alloc(layout);
            assert!(!p.is_null());
            for i in (0..size).step_by(4093) {
                *p.add(i) = (i % 251) as u8;
            }
            let grown = 2 * size + MMAP_THRESHOLD;
            let q = a.realloc(p, layout, grown);
            assert!(!q.is_null());
            for i in (0..size).step_by(4093) {
                assert_eq!(
                    *q.add(i),
                    (i % 251) as u8,
                    "byte {i} of {size} after realloc"
                );
            }
            *q.add(grown - 1) = 7;
            a.dealloc(q, Layout::from_size_align(grown, 8).expect("valid layout"));
        }
    }
}
