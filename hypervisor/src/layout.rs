//! The hypervisor's virtual memory layout, modelled on Xen's for x86-64 so
//! that PV guests find things where Xen puts them. Everything lives in the
//! 16 L4 slots (256..271) that a 64-bit PV guest leaves to the hypervisor;
//! those slots are copied into every guest L4 the hypervisor validates.
//!
//! ```text
//! slot 256  0xffff_8000_0000_0000  read-only M2P table, guest-readable (RO_MPT_VIRT_START)
//! slot 261  0xffff_82d0_8000_0000  the hypervisor image (XEN_VIRT_START)
//! slot 262  0xffff_8300_0000_0000  direct map of all machine memory (DIRECTMAP_VIRT_START)
//! ```

use hypercalls::abi::xen::MACH2PHYS_VIRT_START;

/// Where the hypervisor image is linked (at physical `HV_PHYS_BASE`).
pub const HV_VIRT_BASE: u64 = 0xffff_82d0_8000_0000;
pub const HV_PHYS_BASE: u64 = 0x10_0000;
/// Machine address `m` is mapped at `DIRECTMAP_BASE + m`, supervisor-only.
pub const DIRECTMAP_BASE: u64 = 0xffff_8300_0000_0000;
/// The machine-to-physical table, read-only to the guest.
pub const M2P_BASE: u64 = MACH2PHYS_VIRT_START;

pub const L4_SLOT_M2P: usize = l4_slot(M2P_BASE);
pub const L4_SLOT_IMAGE: usize = l4_slot(HV_VIRT_BASE);
pub const L4_SLOT_DIRECTMAP: usize = l4_slot(DIRECTMAP_BASE);

/// How much machine memory the direct map (and so the hypervisor) handles.
pub const MAX_MACHINE_MEMORY: u64 = 64 << 30;

// The direct map must fit its one L4 slot (512 GiB).
const _: () = assert!(MAX_MACHINE_MEMORY <= 1 << 39);

pub const fn l4_slot(address: u64) -> usize {
    ((address >> 39) & 511) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain_builder::RESERVED_L4_SLOTS;

    #[test]
    fn every_hypervisor_region_is_in_the_reserved_slots() {
        for slot in [L4_SLOT_M2P, L4_SLOT_IMAGE, L4_SLOT_DIRECTMAP] {
            assert!(RESERVED_L4_SLOTS.contains(&slot), "slot {slot}");
        }
        assert_eq!((L4_SLOT_M2P, L4_SLOT_IMAGE, L4_SLOT_DIRECTMAP), (256, 261, 262));
    }
}
