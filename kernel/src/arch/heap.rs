//! The kernel heap: a buddy allocator over frames taken from the frame
//! allocator at boot.

use buddy_system_allocator::LockedHeap;
use kernel::layout::PAGE_SIZE;

#[global_allocator]
static HEAP: LockedHeap<32> = LockedHeap::empty();

/// Takes `len` bytes of contiguous frames from the frame allocator and gives
/// them to the heap for good. Returns the guest-physical start, or `None`
/// if no such run of frames is free.
pub fn grow(len: u64) -> Option<u64> {
    let first = crate::mm::frames::with(|frames| frames.allocate_contiguous(len.div_ceil(PAGE_SIZE), 1))?;
    let phys = first * PAGE_SIZE;
    let start = super::memory::phys_to_virt(phys) as usize;
    assert!(phys + len <= super::memory::phys_limit(), "heap frames outside the mapped range");
    // SAFETY: the frames were just taken from the allocator, so nothing else
    // uses them, they are mapped (checked above), and they are never returned.
    unsafe { HEAP.lock().add_to_heap(start, start + len as usize) };
    Some(phys)
}

pub struct HeapStats {
    pub total: usize,
    pub allocated: usize,
}

pub fn stats() -> HeapStats {
    let heap = HEAP.lock();
    HeapStats { total: heap.stats_total_bytes(), allocated: heap.stats_alloc_actual() }
}
