//! The hypervisor's heap (the frame allocator's bookkeeping, the xenstore
//! tree, the p2m), in a fixed region of the image's .bss so it exists
//! before the frame allocator does.

use buddy_system_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap<32> = LockedHeap::empty();

pub const HEAP_SIZE: usize = 16 << 20;

#[repr(align(4096))]
struct HeapSpace([u8; HEAP_SIZE]);

static SPACE: spin::Mutex<HeapSpace> = spin::Mutex::new(HeapSpace([0; HEAP_SIZE]));

/// Hands the heap its region; call once, first thing at boot.
pub fn init() {
    let mut space = SPACE.lock();
    let range = space.0.as_mut_ptr_range();
    // SAFETY: the region is a static that nothing else ever touches (the
    // lock guard is dropped, but no other code names SPACE), so the heap
    // owns it for the hypervisor's whole life.
    unsafe { HEAP.lock().add_to_heap(range.start as usize, range.end as usize) };
}
