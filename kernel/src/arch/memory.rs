//! Access to guest-physical memory through the kernel's virtual mappings.
//!
//! Early on, only the boot page tables exist and they map the first GiB at
//! VIRT_BASE; once the kernel has built its own tables, all memory is in the
//! direct map. [`phys_to_virt`] follows whichever is current.

use core::sync::atomic::{AtomicU64, Ordering};

use kernel::layout::{DIRECT_MAP_BASE, KERNEL_VIRT_BASE, PAGE_SIZE};

/// Virtual = physical + this. Starts as the boot mapping of the first GiB.
static PHYS_OFFSET: AtomicU64 = AtomicU64::new(KERNEL_VIRT_BASE);
/// How much physical memory the current offset mapping covers.
static PHYS_LIMIT: AtomicU64 = AtomicU64::new(1 << 30);

pub fn phys_to_virt(phys: u64) -> u64 {
    phys + PHYS_OFFSET.load(Ordering::Relaxed)
}

pub fn phys_limit() -> u64 {
    PHYS_LIMIT.load(Ordering::Relaxed)
}

/// Loads the kernel's own page tables (native and PVH) and starts using
/// their direct map of `[0, limit)`.
///
/// Refuses, returning false, unless the new tables map the kernel image
/// where it runs and the direct map at both ends of the range and at every
/// 2 MiB step, so a mistake in the table builder cannot make this unsound.
pub fn activate_kernel_address_space(root: u64, limit: u64) -> bool {
    let image = super::boot::kernel_image();
    let stack = super::boot::boot_stack_bottom_address();
    let kernel_ok = [image.start, image.rodata, image.data, image.end - 1, stack]
        .into_iter()
        .all(|virt| translate(root, virt) == Some(virt - KERNEL_VIRT_BASE));
    let direct_ok = (0..limit)
        .step_by(2 << 20)
        .chain([limit - 1])
        .all(|phys| translate(root, DIRECT_MAP_BASE + phys) == Some(phys));
    if !(kernel_ok && direct_ok) {
        return false;
    }
    // SAFETY: just checked that the new tables map the image, the stack and
    // the direct map; the caller keeps them alive for the kernel's lifetime.
    unsafe { super::cpu::write_cr3(root) };
    PHYS_OFFSET.store(DIRECT_MAP_BASE, Ordering::Relaxed);
    PHYS_LIMIT.store(limit, Ordering::Relaxed);
    true
}

/// Starts using a mapping of guest-physical `[0, limit)` at `offset`: the
/// PV platform's bootstrap window at entry, then its own direct map.
///
/// # Safety
/// Every frame in `[0, limit)` must be mapped at `offset + frame` in the
/// current address space, and stay mapped until the next call.
pub unsafe fn use_phys_window(offset: u64, limit: u64) {
    PHYS_OFFSET.store(offset, Ordering::Relaxed);
    PHYS_LIMIT.store(limit, Ordering::Relaxed);
}

/// Copies a plain-old-data structure from a virtual address.
///
/// # Safety
/// `virt` must be mapped and readable for `size_of::<T>()` bytes, and any
/// bit pattern must be a valid `T` (integer-only `repr(C)` structures).
pub unsafe fn read_virt<T: Copy>(virt: u64) -> T {
    // SAFETY: the caller guarantees the mapping; unaligned reads are fine.
    unsafe { (virt as *const T).read_unaligned() }
}

/// A typed view of a guest-physical page shared with the hypervisor or
/// another domain (a console or xenstore ring), through the current mapping.
///
/// # Safety
/// The frame at `phys` must be reserved for this shared use for the rest of
/// the kernel's life (never freed or remapped), and `T` must be a type for
/// which any bit pattern is valid and every field is an atomic (the peer
/// writes it concurrently), no bigger than the page.
pub unsafe fn phys_view<T: Sync>(phys: u64) -> &'static T {
    assert!(core::mem::size_of::<T>() as u64 <= PAGE_SIZE - phys % PAGE_SIZE);
    let ptr = checked_virt(phys, core::mem::size_of::<T>() as u64) as *const T;
    assert!(ptr.is_aligned(), "shared view at {phys:#x} is misaligned");
    // SAFETY: mapped (checked), aligned (checked), and the caller vouches
    // for exclusive shared use and an all-atomic `T`.
    unsafe { &*ptr }
}

/// Entry `mfn` of Xen's machine-to-physical table, which Xen maps read-only
/// into every 64-bit PV guest at `MACH2PHYS_VIRT_START`. `None` beyond the
/// table's virtual range.
///
/// # Safety
/// The kernel must be running as a Xen PV guest and `mfn` must be a machine
/// frame that exists (the table is only populated for real memory).
pub unsafe fn read_m2p(mfn: u64) -> Option<u64> {
    use hypercalls::abi::xen::{MACH2PHYS_NR_ENTRIES, MACH2PHYS_VIRT_START};
    if mfn >= MACH2PHYS_NR_ENTRIES {
        return None;
    }
    let entry = (MACH2PHYS_VIRT_START + 8 * mfn) as *const u64;
    // SAFETY: Xen maps the table for PV guests; the caller vouches for that
    // and for `mfn` naming real memory; the index is in range (checked).
    Some(unsafe { entry.read_volatile() })
}

/// The physical address `virt` maps to under `root`, read through the
/// current mapping. Understands 1 GiB and 2 MiB pages.
fn translate(root: u64, virt: u64) -> Option<u64> {
    const ADDRESS: u64 = 0x000f_ffff_ffff_f000;
    let mut table = root;
    for level in (1..=4u32).rev() {
        let shift = 12 + 9 * (level - 1);
        let entry = read_u64(table + 8 * ((virt >> shift) & 511));
        if entry & 1 == 0 {
            return None;
        }
        let large = level > 1 && entry & (1 << 7) != 0;
        if level == 1 || large {
            let page_mask = (1u64 << shift) - 1;
            return Some((entry & ADDRESS & !page_mask) | (virt & page_mask));
        }
        table = entry & ADDRESS;
    }
    None
}

fn checked_virt(phys: u64, len: u64) -> *mut u8 {
    assert!(
        phys.checked_add(len).is_some_and(|end| end <= phys_limit()),
        "physical range {phys:#x}+{len:#x} is outside the mapped {:#x}",
        phys_limit()
    );
    phys_to_virt(phys) as *mut u8
}

/// Copies a plain-old-data structure out of physical memory (boot
/// information that a loader left for us).
pub fn read_phys<T: Copy>(phys: u64) -> T {
    let ptr = checked_virt(phys, core::mem::size_of::<T>() as u64) as *const T;
    // SAFETY: the range is mapped (checked above); read_unaligned copes with
    // any alignment; callers use this only for `repr(C)` integer structs, for
    // which every bit pattern is valid.
    unsafe { ptr.read_unaligned() }
}

/// A NUL-terminated string in physical memory, up to `max_len` bytes. The
/// result borrows the current mapping: copy it before switching page tables.
pub fn read_phys_c_str(phys: u64, max_len: usize) -> &'static str {
    let ptr = checked_virt(phys, max_len as u64) as *const u8;
    // SAFETY: `max_len` bytes are mapped (checked above) and boot information
    // is never written after the loader hands it over.
    let bytes = unsafe { core::slice::from_raw_parts(ptr, max_len) };
    let len = bytes.iter().position(|&b| b == 0).unwrap_or(max_len);
    core::str::from_utf8(&bytes[..len]).unwrap_or("")
}

pub fn read_u64(phys: u64) -> u64 {
    let ptr = checked_virt(phys, 8) as *const u64;
    // SAFETY: mapped (checked above) and 8-byte aligned by every caller
    // (page-table entries); volatile because the MMU and hypervisor also use it.
    unsafe { ptr.read_volatile() }
}

/// Writes a page-table entry or other word of physical memory directly.
/// Only the native and PVH platforms may do this to page tables.
pub fn write_u64(phys: u64, value: u64) {
    let ptr = checked_virt(phys, 8) as *mut u64;
    // SAFETY: mapped and writable in the kernel's own tables (checked above).
    unsafe { ptr.write_volatile(value) };
}

pub fn zero_frame(phys: u64) {
    let ptr = checked_virt(phys, PAGE_SIZE);
    // SAFETY: one whole mapped frame owned by the caller.
    unsafe { core::ptr::write_bytes(ptr, 0, PAGE_SIZE as usize) };
}
