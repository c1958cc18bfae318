//! Machine memory: the frame allocator, the hypervisor's own page tables,
//! and access to any machine frame through the direct map.

use core::sync::atomic::{AtomicU64, Ordering};

use buddy_system_allocator::FrameAllocator;

use crate::layout::{DIRECTMAP_BASE, HV_VIRT_BASE, L4_SLOT_DIRECTMAP};

pub const PAGE_SIZE: u64 = 4096;
const TWO_MIB: u64 = 2 << 20;
const ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;

pub const PTE_PRESENT: u64 = 1 << 0;
pub const PTE_WRITABLE: u64 = 1 << 1;
pub const PTE_USER: u64 = 1 << 2;
pub const PTE_PWT: u64 = 1 << 3;
pub const PTE_PCD: u64 = 1 << 4;
pub const PTE_LARGE: u64 = 1 << 7;
pub const PTE_GLOBAL: u64 = 1 << 8;
pub const PTE_NX: u64 = 1 << 63;

/// Virtual = machine + this. Starts as the boot mapping of the first GiB.
static PHYS_OFFSET: AtomicU64 = AtomicU64::new(HV_VIRT_BASE);
static PHYS_LIMIT: AtomicU64 = AtomicU64::new(1 << 30);
/// One past the highest RAM address.
static RAM_END: AtomicU64 = AtomicU64::new(0);
/// The hypervisor's own L4 (machine address), once built.
static HV_ROOT: AtomicU64 = AtomicU64::new(0);

static FRAMES: spin::Mutex<FrameAllocator<32>> = spin::Mutex::new(FrameAllocator::new());

/// Adds machine frames `[start, end)` (frame numbers) to the allocator.
pub fn add_free_frames(start: u64, end: u64) {
    if start < end {
        FRAMES.lock().add_frame(start as usize, end as usize);
    }
}

/// One zeroed machine frame, by machine address.
pub fn allocate_frame() -> Option<u64> {
    let frame = FRAMES.lock().alloc(1)? as u64 * PAGE_SIZE;
    zero_frame(frame);
    Some(frame)
}

/// `count` contiguous zeroed frames (rounded up to a power of two by the
/// buddy allocator), by machine address.
pub fn allocate_frames(count: u64) -> Option<u64> {
    let first = FRAMES.lock().alloc(count as usize)? as u64 * PAGE_SIZE;
    for frame in 0..count {
        zero_frame(first + frame * PAGE_SIZE);
    }
    Some(first)
}

/// Like [`allocate_frames`], but every frame lies below machine frame
/// `limit` (an `address_bits` request, as `XENMEM_exchange` takes for
/// DMA-able memory). Blocks the allocator offers above the limit are held
/// aside while it looks further, then given back.
pub fn allocate_frames_below(count: u64, limit: u64) -> Option<u64> {
    const ATTEMPTS: usize = 64;
    let mut frames = FRAMES.lock();
    let mut held = [0usize; ATTEMPTS];
    let mut nr_held = 0;
    let mut found = None;
    while nr_held < ATTEMPTS {
        let Some(first) = frames.alloc(count as usize) else { break };
        if first as u64 + count <= limit {
            found = Some(first as u64 * PAGE_SIZE);
            break;
        }
        held[nr_held] = first;
        nr_held += 1;
    }
    for &first in &held[..nr_held] {
        frames.dealloc(first, count as usize);
    }
    drop(frames);
    let first = found?;
    for frame in 0..count {
        zero_frame(first + frame * PAGE_SIZE);
    }
    Some(first)
}

pub fn free_frame(address: u64) {
    FRAMES.lock().dealloc((address / PAGE_SIZE) as usize, 1);
}

fn virt(machine: u64, len: u64) -> *mut u8 {
    assert!(
        machine.checked_add(len).is_some_and(|end| end <= PHYS_LIMIT.load(Ordering::Relaxed)),
        "machine range {machine:#x}+{len:#x} is not mapped"
    );
    (machine + PHYS_OFFSET.load(Ordering::Relaxed)) as *mut u8
}

/// The hypervisor-virtual address of machine address `machine`.
pub fn machine_to_virt(machine: u64) -> u64 {
    virt(machine, 1) as u64
}

pub fn read_u64(machine: u64) -> u64 {
    // SAFETY: mapped (checked in `virt`) and 8-byte aligned by every caller;
    // volatile because the guest may write the same memory concurrently
    // (it owns it) and the MMU reads page tables.
    unsafe { (virt(machine, 8) as *const u64).read_volatile() }
}

pub fn write_u64(machine: u64, value: u64) {
    // SAFETY: as for read_u64.
    unsafe { (virt(machine, 8) as *mut u64).write_volatile(value) };
}

pub fn zero_frame(machine: u64) {
    // SAFETY: one whole mapped frame, owned by the caller.
    unsafe { core::ptr::write_bytes(virt(machine, PAGE_SIZE), 0, PAGE_SIZE as usize) };
}

/// Copies bytes into machine memory (building the guest's image).
pub fn write_bytes(machine: u64, bytes: &[u8]) {
    let destination = virt(machine, bytes.len() as u64);
    // SAFETY: the destination range is mapped (checked) and belongs to a
    // frame the caller owns; the source is a separate Rust slice.
    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), destination, bytes.len()) };
}

pub fn copy_frame(from: u64, to: u64) {
    // SAFETY: two whole mapped frames; distinct frames never overlap.
    unsafe { core::ptr::copy(virt(from, PAGE_SIZE), virt(to, PAGE_SIZE), PAGE_SIZE as usize) };
}

/// Bytes of machine memory, for reading boot modules in place.
pub fn bytes(machine: u64, len: u64) -> &'static [u8] {
    let start = virt(machine, len);
    // SAFETY: mapped (checked); boot modules are never written while the
    // hypervisor reads them (their frames are not handed out).
    unsafe { core::slice::from_raw_parts(start, len as usize) }
}

/// Reads a plain-old-data structure from machine memory.
pub fn read_struct<T: Copy>(machine: u64) -> T {
    // SAFETY: mapped (checked); callers use integer-only repr(C) structs.
    unsafe { (virt(machine, core::mem::size_of::<T>() as u64) as *const T).read_unaligned() }
}

/// Machine frames below this number may be RAM; the frame table and the
/// M2P cover them.
pub fn machine_frame_limit() -> u64 {
    RAM_END.load(Ordering::Relaxed).div_ceil(PAGE_SIZE)
}

/// The root of the hypervisor's own page tables.
pub fn hypervisor_root() -> u64 {
    HV_ROOT.load(Ordering::Relaxed)
}

/// Maps `[virt, virt + len)` to machine `[machine, ..)` with 4 KiB pages
/// in the tables rooted at `root`, creating tables as needed.
pub fn map_range(root: u64, virt: u64, machine: u64, len: u64, flags: u64) {
    for offset in (0..len).step_by(PAGE_SIZE as usize) {
        let table = walk_create(root, virt + offset, 1);
        write_u64(table + 8 * ((virt + offset) >> 12 & 511), (machine + offset) | flags | PTE_PRESENT);
    }
}

/// Walks to the table of `level` covering `address`, creating
/// intermediate tables (supervisor-only unless `flags` on the leaf say
/// otherwise: intermediate entries allow everything).
fn walk_create(root: u64, address: u64, level: u32) -> u64 {
    let mut table = root;
    for current in (level + 1..=4).rev() {
        let index = (address >> (12 + 9 * (current - 1))) & 511;
        let entry = read_u64(table + 8 * index);
        table = if entry & PTE_PRESENT != 0 {
            assert!(entry & PTE_LARGE == 0, "{address:#x} is inside a large page");
            entry & ADDRESS_MASK
        } else {
            let next = allocate_frame().expect("out of memory for hypervisor page tables");
            write_u64(table + 8 * index, next | PTE_PRESENT | PTE_WRITABLE | PTE_USER);
            next
        };
    }
    table
}

/// Builds the hypervisor's own address space: the image with section
/// permissions and all machine memory below `limit` in the direct map
/// (2 MiB pages, uncached where `is_ram` says the range is not RAM).
/// Then switches to it; from here on the boot identity map is gone.
pub fn build_hypervisor_address_space(ram_end: u64, limit: u64, is_ram: impl Fn(u64, u64) -> bool) {
    RAM_END.store(ram_end, Ordering::Relaxed);
    let root = allocate_frame().expect("no frame for the hypervisor's L4");
    let image = super::boot::image();
    let sections = [
        (image.start, image.rodata, PTE_GLOBAL),
        (image.rodata, image.data, PTE_GLOBAL | PTE_NX),
        (image.data, image.end.next_multiple_of(PAGE_SIZE), PTE_GLOBAL | PTE_NX | PTE_WRITABLE),
    ];
    for (start, end, flags) in sections {
        map_range(root, start, start - HV_VIRT_BASE, end - start, flags);
    }

    let limit = limit.next_multiple_of(TWO_MIB);
    for machine in (0..limit).step_by(TWO_MIB as usize) {
        let pd = walk_create(root, DIRECTMAP_BASE + machine, 2);
        let caching = if is_ram(machine, TWO_MIB) { 0 } else { PTE_PCD | PTE_PWT };
        let entry = machine | PTE_PRESENT | PTE_WRITABLE | PTE_LARGE | PTE_NX | PTE_GLOBAL | caching;
        write_u64(pd + 8 * ((DIRECTMAP_BASE + machine) >> 21 & 511), entry);
    }
    // The direct map is the hypervisor's alone: clear USER on its L4 entry
    // (walk_create made intermediate entries permissive).
    let slot = root + 8 * L4_SLOT_DIRECTMAP as u64;
    write_u64(slot, read_u64(slot) & !PTE_USER);
    let image_slot = root + 8 * crate::layout::L4_SLOT_IMAGE as u64;
    write_u64(image_slot, read_u64(image_slot) & !PTE_USER);

    // SAFETY: the new tables map the image where it runs (including this
    // code and the stack in .bss) and machine memory at DIRECTMAP_BASE.
    unsafe { super::cpu::write_cr3(root) };
    PHYS_OFFSET.store(DIRECTMAP_BASE, Ordering::Relaxed);
    PHYS_LIMIT.store(limit, Ordering::Relaxed);
    HV_ROOT.store(root, Ordering::Relaxed);
}

/// The hypervisor's L4 entries for the reserved slots, to copy into a
/// guest L4 when it is validated.
pub fn hypervisor_l4_entry(slot: usize) -> u64 {
    read_u64(hypervisor_root() + 8 * slot as u64)
}

/// Switches to a guest's page tables. Refuses (panics) unless the root's
/// hypervisor slots match the hypervisor's own, which is what keeps the
/// hypervisor mapped after the switch.
pub fn switch_to_guest_root(root: u64) {
    for slot in [crate::layout::L4_SLOT_IMAGE, crate::layout::L4_SLOT_DIRECTMAP] {
        assert_eq!(
            read_u64(root + 8 * slot as u64),
            hypervisor_l4_entry(slot),
            "guest L4 {root:#x} lacks the hypervisor's slot {slot}"
        );
    }
    // SAFETY: checked above that the hypervisor's image and direct map are
    // mapped by the new root exactly as by the current one.
    unsafe { super::cpu::write_cr3(root) };
}

pub fn read_u8(machine: u64) -> u8 {
    // SAFETY: mapped (checked in `virt`); a byte has no alignment needs.
    unsafe { virt(machine, 1).read_volatile() }
}

pub fn write_u8(machine: u64, value: u8) {
    // SAFETY: as for read_u8.
    unsafe { virt(machine, 1).write_volatile(value) };
}
