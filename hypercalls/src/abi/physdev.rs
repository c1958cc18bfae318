//! `physdev_op` (`xen/physdev.h`): physical IRQs and I/O privilege.

use super::xen::{DomId, GuestHandle, XenPfn};

xen_consts! {
    PHYSDEV_COMMANDS;
    pub const PHYSDEVOP_irq_status_query: u32 = 5;
    /// Set the vCPU's I/O privilege level (a PV kernel's `iopl`).
    pub const PHYSDEVOP_set_iopl: u32 = 6;
    pub const PHYSDEVOP_set_iobitmap: u32 = 7;
    pub const PHYSDEVOP_apic_read: u32 = 8;
    pub const PHYSDEVOP_apic_write: u32 = 9;
    pub const PHYSDEVOP_alloc_irq_vector: u32 = 10;
    pub const PHYSDEVOP_free_irq_vector: u32 = 11;
    /// Signal end-of-interrupt for a PIRQ.
    pub const PHYSDEVOP_eoi: u32 = 12;
    pub const PHYSDEVOP_map_pirq: u32 = 13;
    pub const PHYSDEVOP_unmap_pirq: u32 = 14;
    pub const PHYSDEVOP_manage_pci_add: u32 = 15;
    pub const PHYSDEVOP_manage_pci_remove: u32 = 16;
    pub const PHYSDEVOP_pirq_eoi_gmfn_v1: u32 = 17;
    pub const PHYSDEVOP_restore_msi: u32 = 19;
    pub const PHYSDEVOP_manage_pci_add_ext: u32 = 20;
    pub const PHYSDEVOP_setup_gsi: u32 = 21;
    pub const PHYSDEVOP_get_free_pirq: u32 = 23;
    pub const PHYSDEVOP_pci_mmcfg_reserved: u32 = 24;
    pub const PHYSDEVOP_pci_device_add: u32 = 25;
    pub const PHYSDEVOP_pci_device_remove: u32 = 26;
    pub const PHYSDEVOP_restore_msi_ext: u32 = 27;
    pub const PHYSDEVOP_pirq_eoi_gmfn_v2: u32 = 28;
    pub const PHYSDEVOP_pirq_eoi_gmfn: u32 = PHYSDEVOP_pirq_eoi_gmfn_v2;
    pub const PHYSDEVOP_dbgp_op: u32 = 29;
    pub const PHYSDEVOP_prepare_msix: u32 = 30;
    pub const PHYSDEVOP_release_msix: u32 = 31;
}

xen_consts! {
    PHYSDEV_VALUES;
    /// `PhysdevIrqStatusQuery::flags`.
    pub const _XENIRQSTAT_needs_eoi: u32 = 0;
    pub const XENIRQSTAT_needs_eoi: u32 = 1 << _XENIRQSTAT_needs_eoi;
    pub const _XENIRQSTAT_shared: u32 = 1;
    pub const XENIRQSTAT_shared: u32 = 1 << _XENIRQSTAT_shared;
    /// `PhysdevMapPirq::type` values.
    pub const MAP_PIRQ_TYPE_MSI: i32 = 0;
    pub const MAP_PIRQ_TYPE_GSI: i32 = 1;
    pub const MAP_PIRQ_TYPE_UNKNOWN: i32 = 2;
    pub const MAP_PIRQ_TYPE_MSI_SEG: i32 = 3;
    pub const MAP_PIRQ_TYPE_MULTI_MSI: i32 = 4;
    pub const PHYSDEVOP_IRQ_UNMASK_NOTIFY: u32 = 4;
}

xen_struct! {
    /// `PHYSDEVOP_eoi`.
    #[derive(Default, PartialEq, Eq)]
    pub struct PhysdevEoi => "struct physdev_eoi" {
        pub irq: u32,
    }
}

xen_struct! {
    /// `PHYSDEVOP_pirq_eoi_gmfn_v{1,2}`.
    #[derive(Default, PartialEq, Eq)]
    pub struct PhysdevPirqEoiGmfn => "struct physdev_pirq_eoi_gmfn" {
        pub gmfn: XenPfn,
    }
}

xen_struct! {
    /// `PHYSDEVOP_irq_status_query`: IN irq; OUT `XENIRQSTAT_*` flags.
    #[derive(Default, PartialEq, Eq)]
    pub struct PhysdevIrqStatusQuery => "struct physdev_irq_status_query" {
        pub irq: u32,
        pub flags: u32,
    }
}

xen_struct! {
    /// `PHYSDEVOP_set_iopl`: 0-3.
    #[derive(Default, PartialEq, Eq)]
    pub struct PhysdevSetIopl => "struct physdev_set_iopl" {
        pub iopl: u32,
    }
}

xen_struct! {
    /// `PHYSDEVOP_set_iobitmap`: a guest I/O-port permission bitmap.
    #[derive(Default, PartialEq, Eq)]
    pub struct PhysdevSetIobitmap => "struct physdev_set_iobitmap" {
        pub bitmap: GuestHandle,
        pub nr_ports: u32,
    }
}

xen_struct! {
    /// `PHYSDEVOP_apic_read` / `PHYSDEVOP_apic_write`.
    #[derive(Default, PartialEq, Eq)]
    pub struct PhysdevApic => "struct physdev_apic" {
        pub apic_physbase: u64,
        pub reg: u32,
        pub value: u32,
    }
}

xen_struct! {
    /// `PHYSDEVOP_alloc_irq_vector` / `PHYSDEVOP_free_irq_vector`.
    #[derive(Default, PartialEq, Eq)]
    pub struct PhysdevIrq => "struct physdev_irq" {
        pub irq: u32,
        pub vector: u32,
    }
}

xen_struct! {
    /// `PHYSDEVOP_map_pirq`.
    #[derive(Default, PartialEq, Eq)]
    pub struct PhysdevMapPirq => "struct physdev_map_pirq" {
        pub domid: DomId,
        pub r#type: i32,
        pub index: i32,
        pub pirq: i32,
        pub bus: i32,
        pub devfn: i32,
        pub entry_nr: i32,
        pub table_base: u64,
    }
}

xen_struct! {
    /// `PHYSDEVOP_unmap_pirq`.
    #[derive(Default, PartialEq, Eq)]
    pub struct PhysdevUnmapPirq => "struct physdev_unmap_pirq" {
        pub domid: DomId,
        pub pirq: i32,
    }
}

xen_struct! {
    /// `PHYSDEVOP_setup_gsi`.
    #[derive(Default, PartialEq, Eq)]
    pub struct PhysdevSetupGsi => "struct physdev_setup_gsi" {
        pub gsi: i32,
        pub triggering: u8,
        pub polarity: u8,
    }
}

xen_struct! {
    /// `PHYSDEVOP_get_free_pirq`.
    #[derive(Default, PartialEq, Eq)]
    pub struct PhysdevGetFreePirq => "struct physdev_get_free_pirq" {
        pub r#type: i32,
        pub pirq: u32,
    }
}

module_checks! {
    consts: [PHYSDEV_COMMANDS, PHYSDEV_VALUES],
    types: [
        PhysdevEoi,
        PhysdevPirqEoiGmfn,
        PhysdevIrqStatusQuery,
        PhysdevSetIopl,
        PhysdevSetIobitmap,
        PhysdevApic,
        PhysdevIrq,
        PhysdevMapPirq,
        PhysdevUnmapPirq,
        PhysdevSetupGsi,
        PhysdevGetFreePirq,
    ],
}
