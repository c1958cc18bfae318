//! The kernel's virtual memory layout, the same on every platform.
//!
//! ```text
//! 0xffff_8000_0000_0000 .. 0xffff_8800_0000_0000   hypervisor's (L4 slots 256..271); under
//!                                                   PV, Xen maps its M2P table read-only here
//! 0xffff_8880_0000_0000 ..                         direct map of all guest-physical memory
//! 0xffff_ffff_8000_0000 ..                         the kernel image (top 2 GiB, VIRT_BASE)
//! ```
//! The direct map starts where Linux's does, just above the hole that Xen
//! reserves, so a PV kernel never has to move it.

/// Where the kernel is linked: the `XEN_ELFNOTE_VIRT_BASE` note.
pub const KERNEL_VIRT_BASE: u64 = 0xffff_ffff_8000_0000;
/// The physical load address of the kernel image (`p_paddr` of the first segment).
pub const KERNEL_PHYS_BASE: u64 = 0x10_0000;
/// Guest-physical address `p` is mapped at `DIRECT_MAP_BASE + p`.
pub const DIRECT_MAP_BASE: u64 = 0xffff_8880_0000_0000;
/// Xen's reserved range in a 64-bit PV guest's address space.
pub const XEN_RESERVED_START: u64 = 0xffff_8000_0000_0000;
pub const XEN_RESERVED_END: u64 = 0xffff_8800_0000_0000;

/// A gigabyte of virtual addresses nothing maps at boot, for self-tests and
/// the demo to map and unmap pages in (L4 slot 384).
pub const SCRATCH_BASE: u64 = 0xffff_c000_0000_0000;
pub const SCRATCH_SIZE: u64 = 1 << 30;

pub const PAGE_SIZE: u64 = 4096;

/// Physical memory below this is left alone: real-mode structures, the BIOS
/// data area, option ROMs, and on PVH the start-info block QEMU puts there.
pub const LOW_MEMORY_END: u64 = 0x10_0000;

pub const fn page_align_up(addr: u64) -> u64 {
    (addr + PAGE_SIZE - 1) & !(PAGE_SIZE - 1)
}

pub const fn page_align_down(addr: u64) -> u64 {
    addr & !(PAGE_SIZE - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_map_sits_above_xen_hole_and_below_kernel() {
        const { assert!(DIRECT_MAP_BASE >= XEN_RESERVED_END) };
        const { assert!(DIRECT_MAP_BASE < KERNEL_VIRT_BASE) };
    }

    #[test]
    fn alignment_helpers() {
        assert_eq!(page_align_up(0), 0);
        assert_eq!(page_align_up(1), 4096);
        assert_eq!(page_align_up(4096), 4096);
        assert_eq!(page_align_down(8191), 4096);
    }
}
