//! The kernel's one frame allocator, fed from the boot memory map.

use kernel::frame_alloc::FrameAllocator;
use kernel::layout::PAGE_SIZE;

use crate::arch::memory;

/// Frames the bitmap can describe: 4 GiB of guest-physical memory.
const BITMAP_WORDS: usize = (4 << 30) / PAGE_SIZE as usize / 64;

static FRAMES: spin::Mutex<FrameAllocator<BITMAP_WORDS>> = spin::Mutex::new(FrameAllocator::new());

/// Runs `f` on the allocator (for setup and statistics).
pub fn with<R>(f: impl FnOnce(&mut FrameAllocator<BITMAP_WORDS>) -> R) -> R {
    f(&mut FRAMES.lock())
}

/// A free frame's guest-physical address, zero-filled.
pub fn allocate_zeroed() -> Option<u64> {
    let address = FRAMES.lock().allocate()? * PAGE_SIZE;
    memory::zero_frame(address);
    Some(address)
}

/// Returns a frame. A double free is a kernel bug, reported loudly.
pub fn free(address: u64) {
    if let Err(error) = FRAMES.lock().free(address / PAGE_SIZE) {
        panic!("freeing frame {address:#x}: {error:?}");
    }
}
