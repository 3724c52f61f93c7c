//! A global allocator for the fuzz-style tests that records, per thread,
//! the largest single allocation since the last [`reset`], so a test can
//! prove that hostile length prefixes never make a reader allocate what
//! they claim. Per thread, so parallel tests do not see each other's
//! allocations. Include with `#[path = "support/peak_alloc.rs"] mod peak_alloc;`.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct PeakTracking;

thread_local! {
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = PEAK.try_with(|peak| {
        if size > peak.get() {
            peak.set(size);
        }
    });
}

unsafe impl GlobalAlloc for PeakTracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: PeakTracking = PeakTracking;

/// Starts a new measurement on this thread.
pub fn reset() {
    PEAK.with(|peak| peak.set(0));
}

/// The largest single allocation on this thread since [`reset`].
pub fn peak() -> usize {
    PEAK.with(Cell::get)
}
