//! `memory_op` (`xen/memory.h`): reservations, the physmap and the memory
//! map.

use super::xen::{DomId, GuestHandle, XenPfn, XenUlong};

xen_consts! {
    MEMORY_COMMANDS;
    /// Grow the domain by extents (`XenMemoryReservation`); returns the
    /// number of extents done.
    pub const XENMEM_increase_reservation: u32 = 0;
    /// Give extents back to Xen.
    pub const XENMEM_decrease_reservation: u32 = 1;
    /// Highest machine frame in the system; no argument.
    pub const XENMEM_maximum_ram_page: u32 = 2;
    /// Pages held / allowed (`DomId` argument).
    pub const XENMEM_current_reservation: u32 = 3;
    pub const XENMEM_maximum_reservation: u32 = 4;
    pub const XENMEM_machphys_mfn_list: u32 = 5;
    /// Back guest frames with memory (translated guests).
    pub const XENMEM_populate_physmap: u32 = 6;
    /// Map a Xen-owned page (e.g. shared info) at a guest frame.
    pub const XENMEM_add_to_physmap: u32 = 7;
    /// The domain's pseudo-physical memory map (`XenMemoryMap`).
    pub const XENMEM_memory_map: u32 = 9;
    pub const XENMEM_machine_memory_map: u32 = 10;
    pub const XENMEM_exchange: u32 = 11;
    /// Where the M2P table is mapped (`XenMachphysMapping`).
    pub const XENMEM_machphys_mapping: u32 = 12;
    pub const XENMEM_set_memory_map: u32 = 13;
    pub const XENMEM_maximum_gpfn: u32 = 14;
    pub const XENMEM_remove_from_physmap: u32 = 15;
    pub const XENMEM_set_pod_target: u32 = 16;
    pub const XENMEM_get_pod_target: u32 = 17;
    pub const XENMEM_add_to_physmap_batch: u32 = 23;
    pub const XENMEM_machphys_compat_mfn_list: u32 = 25;
    pub const XENMEM_get_vnumainfo: u32 = 26;
    pub const XENMEM_acquire_resource: u32 = 28;
}

xen_consts! {
    MEMORY_VALUES;
    /// `XenAddToPhysmap::space` values.
    pub const XENMAPSPACE_shared_info: u32 = 0;
    pub const XENMAPSPACE_grant_table: u32 = 1;
    pub const XENMAPSPACE_gmfn: u32 = 2;
    pub const XENMAPSPACE_gmfn_range: u32 = 3;
    pub const XENMAPSPACE_gmfn_foreign: u32 = 4;
    pub const XENMAPSPACE_dev_mmio: u32 = 5;
    /// Or'd into `idx` for `XENMAPSPACE_grant_table`: a status frame.
    pub const XENMAPIDX_grant_table_status: u64 = 0x8000_0000;
    /// `XenMemoryReservation::mem_flags` bits.
    pub const XENMEMF_populate_on_demand: u32 = 1 << 16;
    pub const XENMEMF_exact_node_request: u32 = 1 << 17;
    pub const XENMEMF_vnode: u32 = 1 << 18;
    /// `XenMemAcquireResource::type` values.
    pub const XENMEM_resource_ioreq_server: u16 = 0;
    pub const XENMEM_resource_grant_table: u16 = 1;
    pub const XENMEM_resource_vmtrace_buf: u16 = 2;
    pub const XENMEM_resource_grant_table_id_shared: u32 = 0;
    pub const XENMEM_resource_grant_table_id_status: u32 = 1;
}

xen_struct! {
    /// `XENMEM_{increase,decrease}_reservation`, `XENMEM_populate_physmap`.
    #[derive(Default, PartialEq, Eq)]
    pub struct XenMemoryReservation => "struct xen_memory_reservation" {
        /// Guest address of `nr_extents` frame numbers (IN and/or OUT).
        pub extent_start: GuestHandle,
        pub nr_extents: XenUlong,
        /// Each extent is `2^extent_order` pages.
        pub extent_order: u32,
        /// Address bits limit (low byte) and `XENMEMF_*` flags.
        pub mem_flags: u32,
        pub domid: DomId,
    }
}

xen_struct! {
    /// `XENMEM_exchange`.
    #[derive(Default, PartialEq, Eq)]
    pub struct XenMemoryExchange => "struct xen_memory_exchange" {
        pub r#in: XenMemoryReservation,
        pub out: XenMemoryReservation,
        pub nr_exchanged: XenUlong,
    }
}

xen_struct! {
    /// Argument of the `XENMEM_*_reservation` queries and `maximum_gpfn`.
    #[derive(Default, PartialEq, Eq)]
    pub struct XenMemoryDomain => "struct xen_memory_domain" {
        pub domid: DomId,
    }
}

xen_struct! {
    /// `XENMEM_machphys_mfn_list`.
    #[derive(Default, PartialEq, Eq)]
    pub struct XenMachphysMfnList => "struct xen_machphys_mfn_list" {
        pub max_extents: u32,
        pub extent_start: GuestHandle,
        pub nr_extents: u32,
    }
}

xen_struct! {
    /// `XENMEM_machphys_mapping`: the M2P table's virtual range.
    #[derive(Default, PartialEq, Eq)]
    pub struct XenMachphysMapping => "struct xen_machphys_mapping" {
        pub v_start: XenUlong,
        pub v_end: XenUlong,
        /// Highest MFN the table covers.
        pub max_mfn: XenUlong,
    }
}

xen_struct! {
    /// `XENMEM_add_to_physmap`: map page `idx` of `space` at guest frame
    /// `gpfn` (e.g. the shared-info page for an HVM/PVH guest).
    #[derive(Default, PartialEq, Eq)]
    pub struct XenAddToPhysmap => "struct xen_add_to_physmap" {
        pub domid: DomId,
        /// Pages for `XENMAPSPACE_gmfn_range`.
        pub size: u16,
        /// `XENMAPSPACE_*`.
        pub space: u32,
        pub idx: XenUlong,
        pub gpfn: XenPfn,
    }
}

xen_struct! {
    /// `XENMEM_add_to_physmap_batch`; `u` is `foreign_domid` (or `res0`).
    #[derive(Default, PartialEq, Eq)]
    pub struct XenAddToPhysmapBatch => "struct xen_add_to_physmap_batch" {
        pub domid: DomId,
        pub space: u16,
        pub size: u16,
        pub u: DomId,
        pub idxs: GuestHandle,
        pub gpfns: GuestHandle,
        pub errs: GuestHandle,
    }
}

xen_struct! {
    /// `XENMEM_remove_from_physmap`.
    #[derive(Default, PartialEq, Eq)]
    pub struct XenRemoveFromPhysmap => "struct xen_remove_from_physmap" {
        pub domid: DomId,
        pub gpfn: XenPfn,
    }
}

xen_struct! {
    /// `XENMEM_memory_map` / `XENMEM_machine_memory_map`: IN the capacity
    /// of `buffer` in entries, OUT the number written. Entries are
    /// [`E820Entry`].
    #[derive(Default, PartialEq, Eq)]
    pub struct XenMemoryMap => "struct xen_memory_map" {
        pub nr_entries: u32,
        pub buffer: GuestHandle,
    }
}

xen_struct! {
    /// `XENMEM_set_memory_map` (tools): a memory map for another domain.
    #[derive(Default, PartialEq, Eq)]
    pub struct XenForeignMemoryMap => "struct xen_foreign_memory_map" {
        pub domid: DomId,
        pub map: XenMemoryMap,
    }
}

xen_struct! {
    /// `XENMEM_{set,get}_pod_target`.
    #[derive(Default, PartialEq, Eq)]
    pub struct XenPodTarget => "struct xen_pod_target" {
        pub target_pages: u64,
        pub tot_pages: u64,
        pub pod_cache_pages: u64,
        pub pod_entries: u64,
        pub domid: DomId,
    }
}

xen_struct! {
    /// `XENMEM_acquire_resource`.
    #[derive(Default, PartialEq, Eq)]
    pub struct XenMemAcquireResource => "struct xen_mem_acquire_resource" {
        pub domid: DomId,
        pub r#type: u16,
        pub id: u32,
        pub nr_frames: u32,
        pub pad: u32,
        pub frame: u64,
        pub frame_list: GuestHandle,
    }
}

/// One entry of the map `XENMEM_memory_map` returns: the BIOS E820 format
/// (packed, 20 bytes). Xen's public headers do not define it (Xen uses its
/// internal `struct e820entry`), so it is exempt from the C check and its
/// layout is unit-tested instead. `type` takes `XEN_HVM_MEMMAP_TYPE_*`
/// values, which are the E820 types.
#[repr(C, packed)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct E820Entry {
    pub addr: u64,
    pub size: u64,
    pub r#type: u32,
}

/// The address-bits field of `XenMemoryReservation::mem_flags`
/// (`XENMEMF_address_bits`).
pub const fn xenmemf_address_bits(bits: u32) -> u32 {
    bits & 0xff
}

module_checks! {
    consts: [MEMORY_COMMANDS, MEMORY_VALUES],
    types: [
        XenMemoryReservation,
        XenMemoryExchange,
        XenMemoryDomain,
        XenMachphysMfnList,
        XenMachphysMapping,
        XenAddToPhysmap,
        XenAddToPhysmapBatch,
        XenRemoveFromPhysmap,
        XenMemoryMap,
        XenForeignMemoryMap,
        XenPodTarget,
        XenMemAcquireResource,
    ],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e820_entry_is_the_packed_bios_layout() {
        assert_eq!(core::mem::size_of::<E820Entry>(), 20);
        assert_eq!(core::mem::offset_of!(E820Entry, size), 8);
        assert_eq!(core::mem::offset_of!(E820Entry, r#type), 16);
    }
}
