//! Memory management: frames, page tables, the heap.

pub mod frames;
pub mod paging;

use kernel::layout::{
    page_align_down, page_align_up, DIRECT_MAP_BASE, KERNEL_VIRT_BASE, LOW_MEMORY_END, PAGE_SIZE,
};
use kernel::memory_map::MemoryMap;
use x86_64::structures::paging::PageTableFlags as Flags;

use crate::arch::{boot, heap, memory};
use paging::{AddressSpace, MapError};

/// The heap's size: enough for the drivers' buffers and the self-tests.
pub const HEAP_SIZE: u64 = 4 << 20;

const TWO_MIB: u64 = 2 << 20;

/// Feeds the frame allocator: all RAM, minus low memory, the kernel image
/// and the physical ranges the loader says are still in use.
pub fn init_frames(map: &MemoryMap, in_use: &[(u64, u64)]) {
    let image = boot::kernel_image();
    frames::with(|frames| {
        for region in map.ram() {
            let unusable = frames.add_free_range(region.start.div_ceil(PAGE_SIZE)..region.end() / PAGE_SIZE);
            if unusable > 0 {
                log::warn!(
                    "ignoring {} MiB of RAM above the allocator's 4 GiB",
                    (unusable * PAGE_SIZE) >> 20
                );
            }
        }
        frames.reserve_range(0..LOW_MEMORY_END / PAGE_SIZE);
        frames.reserve_range(
            (image.start - KERNEL_VIRT_BASE) / PAGE_SIZE
                ..page_align_up(image.end - KERNEL_VIRT_BASE) / PAGE_SIZE,
        );
        for &(start, len) in in_use {
            frames.reserve_range(page_align_down(start) / PAGE_SIZE..page_align_up(start + len) / PAGE_SIZE);
        }
    });
}

/// The kernel image's sections with the permissions each gets:
/// (start, end, flags) with text executable, rodata read-only, data writable.
pub fn kernel_sections() -> [(u64, u64, Flags); 3] {
    let image = boot::kernel_image();
    let data = paging::data_flags();
    let read_only = data - Flags::WRITABLE;
    [
        (image.start, image.rodata, Flags::PRESENT),
        (image.rodata, image.data, read_only),
        (image.data, page_align_up(image.end), data),
    ]
}

/// Builds the kernel's own address space natively (and for PVH): the image
/// with per-section permissions and all RAM in the direct map (2 MiB pages
/// where possible), with no identity mapping left, so a null or low-address
/// access faults. Then switches to it.
pub fn build_native_address_space(map: &MemoryMap) -> Result<(), &'static str> {
    build_with_walker(map).map_err(|error| {
        log::error!("page-table walker: {error:?}");
        "building the kernel page tables failed"
    })
}

fn build_with_walker(map: &MemoryMap) -> Result<(), MapError> {
    let space = AddressSpace::new()?;
    let data = paging::data_flags();
    for (start, end, flags) in kernel_sections() {
        for page in (start..end).step_by(PAGE_SIZE as usize) {
            space.map(page, page - KERNEL_VIRT_BASE, flags)?;
        }
    }

    for region in map.ram() {
        let (start, end) = (page_align_down(region.start), page_align_up(region.end()));
        let mut address = start;
        while address < end {
            let virt = DIRECT_MAP_BASE + address;
            if address % TWO_MIB == 0 && address + TWO_MIB <= end {
                space.map_2mib(virt, address, data)?;
                address += TWO_MIB;
            } else {
                space.map(virt, address, data)?;
                address += PAGE_SIZE;
            }
        }
    }

    assert!(
        memory::activate_kernel_address_space(space.root, map.ram_end()),
        "the new page tables do not map the kernel and the direct map"
    );
    Ok(())
}

/// Gives the heap its memory. Call once, after the frame allocator is fed.
pub fn init_heap() {
    heap::grow(HEAP_SIZE).expect("no contiguous memory for the kernel heap");
}
