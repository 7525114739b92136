//! The global allocator: mimalloc, called directly through `libmimalloc-sys`.
//!
//! The `mimalloc` crate's `GlobalAlloc` sends every request through `mi_malloc_aligned` and
//! `mi_realloc_aligned`, even for the alignments that plain `mi_malloc` already guarantees.
//! Past mimalloc's small sizes (1 KiB) that path sizes the block a second time and goes through
//! the over-allocation code, and the realloc path does the same, which is where a replay's body
//! buffers grow: ~1.5 % of a replay's instructions (callgrind). Here, as std's `System`
//! allocator does with `malloc`, an alignment that mimalloc gives every block of that size takes
//! the plain calls; a larger one takes the aligned calls.

use libmimalloc_sys::{
    mi_free, mi_malloc, mi_malloc_aligned, mi_realloc, mi_realloc_aligned, mi_zalloc, mi_zalloc_aligned,
};
use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

/// Alignment of every mimalloc block of at least this many bytes (`MI_MAX_ALIGN_SIZE`: mimalloc
/// asserts it of each block it hands out, `alloc.c`); smaller blocks are aligned to a pointer,
/// and a Rust layout's size is a multiple of its alignment.
const MI_MAX_ALIGN_SIZE: usize = 16;

/// Whether plain `mi_malloc(size)` returns memory aligned for `align`.
fn plain(align: usize, size: usize) -> bool {
    align <= MI_MAX_ALIGN_SIZE && align <= size
}

/// mimalloc as the global allocator.
pub struct MiMalloc;

// The process's allocator: raw pointers to and from mimalloc, under `GlobalAlloc`'s contract.
#[allow(unsafe_code)]
// SAFETY: each method returns memory from mimalloc fit for the layout (aligned per `plain`, or
// by the aligned calls), or null; `dealloc`/`realloc` receive only pointers this allocator
// returned, which `mi_free`/`mi_realloc*` accept whichever call made them.
unsafe impl GlobalAlloc for MiMalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see the impl.
        unsafe {
            if plain(layout.align(), layout.size()) {
                mi_malloc(layout.size()).cast()
            } else {
                mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see the impl.
        unsafe {
            if plain(layout.align(), layout.size()) {
                mi_zalloc(layout.size()).cast()
            } else {
                mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: see the impl.
        unsafe { mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: see the impl; `mi_realloc` keeps the alignment that `plain` promises for
        // `new_size`, as it returns an ordinary block of that size.
        unsafe {
            if plain(layout.align(), new_size) {
                mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aligned(p: *mut u8, align: usize) -> bool {
        !p.is_null() && (p as usize).is_multiple_of(align)
    }

    /// Every size and alignment a program asks for comes back aligned, whichever call serves
    /// it, through allocation, zeroed allocation and growth or shrinking in place or moved.
    #[test]
    #[allow(unsafe_code)]
    fn blocks_are_aligned_and_keep_their_bytes() {
        let a = MiMalloc;
        for align in [1usize, 2, 4, 8, 16, 32, 64, 4096] {
            for size in [1usize, 7, 8, 15, 16, 17, 24, 48, 100, 1000, 1025, 5000, 70_000, 3 << 20] {
                let size = size.next_multiple_of(align);
                let layout = Layout::from_size_align(size, align).expect("layout");
                // SAFETY: non-zero sizes; each block is used within its size and freed once
                // with the layout it has at that point.
                unsafe {
                    let p = a.alloc(layout);
                    assert!(aligned(p, align), "alloc {size} @ {align}");
                    p.write_bytes(0xa5, size);
                    let grown = size * 3;
                    let q = a.realloc(p, layout, grown);
                    assert!(aligned(q, align), "grow {size} → {grown} @ {align}");
                    assert!(std::slice::from_raw_parts(q, size).iter().all(|&b| b == 0xa5));
                    a.dealloc(q, Layout::from_size_align(grown, align).expect("layout"));
                    let z = a.alloc_zeroed(layout);
                    assert!(aligned(z, align), "zalloc {size} @ {align}");
                    assert!(std::slice::from_raw_parts(z, size).iter().all(|&b| b == 0));
                    let shrunk = size.div_ceil(2).next_multiple_of(align);
                    z.write_bytes(0x5a, size);
                    let r = a.realloc(z, layout, shrunk);
                    assert!(aligned(r, align), "shrink {size} → {shrunk} @ {align}");
                    assert!(std::slice::from_raw_parts(r, shrunk).iter().all(|&b| b == 0x5a));
                    a.dealloc(r, Layout::from_size_align(shrunk, align).expect("layout"));
                }
            }
        }
    }
}
