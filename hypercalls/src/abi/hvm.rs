//! HVM/PVH interfaces: `hvm_op` (`xen/hvm/hvm_op.h`), HVM parameters
//! (`xen/hvm/params.h`) and the PVH boot structure
//! (`xen/arch-x86/hvm/start_info.h`).

use super::xen::DomId;

xen_consts! {
    HVM_COMMANDS;
    /// Set / get an `HVM_PARAM_*` (`XenHvmParam`).
    pub const HVMOP_set_param: u32 = 0;
    pub const HVMOP_get_param: u32 = 1;
    pub const HVMOP_flush_tlbs: u32 = 5;
    pub const HVMOP_pagetable_dying: u32 = 9;
    pub const HVMOP_get_time: u32 = 10;
    pub const HVMOP_xentrace: u32 = 11;
    pub const HVMOP_get_mem_type: u32 = 15;
    /// Deliver this vCPU's event upcalls on an IDT vector
    /// (`XenHvmEvtchnUpcallVector`).
    pub const HVMOP_set_evtchn_upcall_vector: u32 = 23;
    pub const HVMOP_guest_request_vm_event: u32 = 24;
    pub const HVMOP_altp2m: u32 = 25;
}

xen_consts! {
    HVM_PARAMS;
    /// How event upcalls are delivered: type in bits 63:56 (see
    /// [`hvm_callback_via_vector`]), type-specific value below.
    pub const HVM_PARAM_CALLBACK_IRQ: u32 = 0;
    pub const HVM_PARAM_CALLBACK_IRQ_TYPE_MASK: u64 = 0xFF00_0000_0000_0000;
    pub const HVM_PARAM_CALLBACK_TYPE_GSI: u64 = 0;
    pub const HVM_PARAM_CALLBACK_TYPE_PCI_INTX: u64 = 1;
    /// Upcalls arrive on an IDT vector given in bits 7:0 (x86 only).
    pub const HVM_PARAM_CALLBACK_TYPE_VECTOR: u64 = 2;
    /// Guest frame and event channel of the xenstore ring.
    pub const HVM_PARAM_STORE_PFN: u32 = 1;
    pub const HVM_PARAM_STORE_EVTCHN: u32 = 2;
    pub const HVM_PARAM_IOREQ_PFN: u32 = 5;
    pub const HVM_PARAM_BUFIOREQ_PFN: u32 = 6;
    pub const HVM_PARAM_VIRIDIAN: u32 = 9;
    pub const HVM_PARAM_TIMER_MODE: u32 = 10;
    pub const HVM_PARAM_HPET_ENABLED: u32 = 11;
    pub const HVM_PARAM_IDENT_PT: u32 = 12;
    pub const HVM_PARAM_ACPI_S_STATE: u32 = 14;
    pub const HVM_PARAM_VM86_TSS: u32 = 15;
    pub const HVM_PARAM_VPT_ALIGN: u32 = 16;
    /// Guest frame and event channel of the PV console ring.
    pub const HVM_PARAM_CONSOLE_PFN: u32 = 17;
    pub const HVM_PARAM_CONSOLE_EVTCHN: u32 = 18;
    pub const HVM_PARAM_ACPI_IOPORTS_LOCATION: u32 = 19;
    pub const HVM_PARAM_PAGING_RING_PFN: u32 = 27;
    pub const HVM_PARAM_MONITOR_RING_PFN: u32 = 28;
    pub const HVM_PARAM_SHARING_RING_PFN: u32 = 29;
    pub const HVM_PARAM_TRIPLE_FAULT_REASON: u32 = 31;
    pub const HVM_PARAM_IOREQ_SERVER_PFN: u32 = 32;
    pub const HVM_PARAM_NR_IOREQ_SERVER_PAGES: u32 = 33;
    pub const HVM_PARAM_VM_GENERATION_ID_ADDR: u32 = 34;
    pub const HVM_PARAM_ALTP2M: u32 = 35;
    pub const HVM_PARAM_X87_FIP_WIDTH: u32 = 36;
    pub const HVM_PARAM_VM86_TSS_SIZED: u32 = 37;
    pub const HVM_PARAM_MCA_CAP: u32 = 38;
    pub const HVM_NR_PARAMS: u32 = 39;
    /// `HVM_PARAM_TIMER_MODE` values.
    pub const HVMPTM_delay_for_missed_ticks: u64 = 0;
    pub const HVMPTM_no_delay_for_missed_ticks: u64 = 1;
    pub const HVMPTM_no_missed_ticks_pending: u64 = 2;
    pub const HVMPTM_one_missed_tick_pending: u64 = 3;
}

xen_consts! {
    PVH_BOOT;
    /// `HvmStartInfo::magic`.
    pub const XEN_HVM_START_MAGIC_VALUE: u32 = 0x336e_c578;
    /// `HvmMemmapTableEntry::type` values (the E820 types).
    pub const XEN_HVM_MEMMAP_TYPE_RAM: u32 = 1;
    pub const XEN_HVM_MEMMAP_TYPE_RESERVED: u32 = 2;
    pub const XEN_HVM_MEMMAP_TYPE_ACPI: u32 = 3;
    pub const XEN_HVM_MEMMAP_TYPE_NVS: u32 = 4;
    pub const XEN_HVM_MEMMAP_TYPE_UNUSABLE: u32 = 5;
    pub const XEN_HVM_MEMMAP_TYPE_DISABLED: u32 = 6;
    pub const XEN_HVM_MEMMAP_TYPE_PMEM: u32 = 7;
}

xen_struct! {
    /// `HVMOP_set_param` / `HVMOP_get_param`.
    #[derive(Default, PartialEq, Eq)]
    pub struct XenHvmParam => "struct xen_hvm_param" {
        pub domid: DomId,
        pub pad: u16,
        /// `HVM_PARAM_*`.
        pub index: u32,
        pub value: u64,
    }
}

xen_struct! {
    /// `HVMOP_set_evtchn_upcall_vector`.
    #[derive(Default, PartialEq, Eq)]
    pub struct XenHvmEvtchnUpcallVector => "struct xen_hvm_evtchn_upcall_vector" {
        pub vcpu: u32,
        pub vector: u8,
    }
}

xen_struct! {
    /// `HVMOP_pagetable_dying`.
    #[derive(Default, PartialEq, Eq)]
    pub struct XenHvmPagetableDying => "struct xen_hvm_pagetable_dying" {
        pub domid: DomId,
        pub pad: [u16; 3],
        pub gpa: u64,
    }
}

xen_struct! {
    /// `HVMOP_get_time`.
    #[derive(Default, PartialEq, Eq)]
    pub struct XenHvmGetTime => "struct xen_hvm_get_time" {
        pub now: u64,
    }
}

xen_struct! {
    /// `HVMOP_get_mem_type`.
    #[derive(Default, PartialEq, Eq)]
    pub struct XenHvmGetMemType => "struct xen_hvm_get_mem_type" {
        pub domid: DomId,
        pub mem_type: u16,
        pub pad: [u16; 2],
        pub pfn: u64,
    }
}

xen_struct! {
    /// What a PVH kernel finds at `%ebx` on entry at
    /// `XEN_ELFNOTE_PHYS32_ENTRY`. All addresses are guest-physical.
    #[derive(Default, PartialEq, Eq)]
    pub struct HvmStartInfo => "struct hvm_start_info" {
        /// `XEN_HVM_START_MAGIC_VALUE`.
        pub magic: u32,
        /// 0, or 1 when the memory map fields are valid.
        pub version: u32,
        /// `SIF_*` bits.
        pub flags: u32,
        pub nr_modules: u32,
        /// Address of `nr_modules` `HvmModlistEntry`s.
        pub modlist_paddr: u64,
        /// Address of the NUL-terminated command line (0: none).
        pub cmdline_paddr: u64,
        /// Address of the ACPI RSDP (0: find it the legacy way).
        pub rsdp_paddr: u64,
        /// Address of `memmap_entries` `HvmMemmapTableEntry`s (version 1).
        pub memmap_paddr: u64,
        pub memmap_entries: u32,
        pub reserved: u32,
    }
}

xen_struct! {
    /// One boot module of a PVH boot.
    #[derive(Default, PartialEq, Eq)]
    pub struct HvmModlistEntry => "struct hvm_modlist_entry" {
        pub paddr: u64,
        pub size: u64,
        pub cmdline_paddr: u64,
        pub reserved: u64,
    }
}

xen_struct! {
    /// One memory-map entry of a PVH boot.
    #[derive(Default, PartialEq, Eq)]
    pub struct HvmMemmapTableEntry => "struct hvm_memmap_table_entry" {
        pub addr: u64,
        pub size: u64,
        /// `XEN_HVM_MEMMAP_TYPE_*`.
        pub r#type: u32,
        pub reserved: u32,
    }
}

/// The `HVM_PARAM_CALLBACK_IRQ` value asking for upcalls on IDT `vector`.
pub const fn hvm_callback_via_vector(vector: u8) -> u64 {
    (HVM_PARAM_CALLBACK_TYPE_VECTOR << 56) | vector as u64
}

/// The delivery type (`HVM_PARAM_CALLBACK_TYPE_*`) of a callback value.
pub const fn hvm_callback_type(value: u64) -> u64 {
    (value & HVM_PARAM_CALLBACK_IRQ_TYPE_MASK) >> 56
}

module_checks! {
    consts: [HVM_COMMANDS, HVM_PARAMS, PVH_BOOT],
    types: [
        XenHvmParam,
        XenHvmEvtchnUpcallVector,
        XenHvmPagetableDying,
        XenHvmGetTime,
        XenHvmGetMemType,
        HvmStartInfo,
        HvmModlistEntry,
        HvmMemmapTableEntry,
    ],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_vector_encoding_puts_the_type_in_the_top_byte() {
        let value = hvm_callback_via_vector(0xf3);
        assert_eq!(value, 0x0200_0000_0000_00f3);
        assert_eq!(hvm_callback_type(value), HVM_PARAM_CALLBACK_TYPE_VECTOR);
    }
}
