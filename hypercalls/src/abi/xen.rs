//! The core interface (`xen/xen.h`): hypercall numbers, page-table update
//! commands, domain ids, and the boot-time structures `start_info`,
//! `shared_info` and `vcpu_info`. The x86_64 parts (`xen/arch-x86/*.h`) are
//! re-exported from here, as C's `xen.h` includes them.

pub use super::arch_x86::*;
pub use super::xen_structs::*;

xen_consts! {
    HYPERCALL_NUMBERS;
    /// Hypercall numbers: the entry at `hypercall_page + 32 * nr` issues it.
    pub const __HYPERVISOR_set_trap_table: u32 = 0;
    pub const __HYPERVISOR_mmu_update: u32 = 1;
    pub const __HYPERVISOR_set_gdt: u32 = 2;
    pub const __HYPERVISOR_stack_switch: u32 = 3;
    pub const __HYPERVISOR_set_callbacks: u32 = 4;
    pub const __HYPERVISOR_fpu_taskswitch: u32 = 5;
    /// Superseded by `__HYPERVISOR_sched_op`.
    pub const __HYPERVISOR_sched_op_compat: u32 = 6;
    pub const __HYPERVISOR_platform_op: u32 = 7;
    pub const __HYPERVISOR_set_debugreg: u32 = 8;
    pub const __HYPERVISOR_get_debugreg: u32 = 9;
    pub const __HYPERVISOR_update_descriptor: u32 = 10;
    pub const __HYPERVISOR_memory_op: u32 = 12;
    pub const __HYPERVISOR_multicall: u32 = 13;
    pub const __HYPERVISOR_update_va_mapping: u32 = 14;
    pub const __HYPERVISOR_set_timer_op: u32 = 15;
    /// Superseded by `__HYPERVISOR_event_channel_op`.
    pub const __HYPERVISOR_event_channel_op_compat: u32 = 16;
    pub const __HYPERVISOR_xen_version: u32 = 17;
    pub const __HYPERVISOR_console_io: u32 = 18;
    /// Superseded by `__HYPERVISOR_physdev_op`.
    pub const __HYPERVISOR_physdev_op_compat: u32 = 19;
    pub const __HYPERVISOR_grant_table_op: u32 = 20;
    pub const __HYPERVISOR_vm_assist: u32 = 21;
    pub const __HYPERVISOR_update_va_mapping_otherdomain: u32 = 22;
    pub const __HYPERVISOR_iret: u32 = 23;
    pub const __HYPERVISOR_vcpu_op: u32 = 24;
    pub const __HYPERVISOR_set_segment_base: u32 = 25;
    pub const __HYPERVISOR_mmuext_op: u32 = 26;
    pub const __HYPERVISOR_xsm_op: u32 = 27;
    pub const __HYPERVISOR_nmi_op: u32 = 28;
    pub const __HYPERVISOR_sched_op: u32 = 29;
    pub const __HYPERVISOR_callback_op: u32 = 30;
    pub const __HYPERVISOR_xenoprof_op: u32 = 31;
    pub const __HYPERVISOR_event_channel_op: u32 = 32;
    pub const __HYPERVISOR_physdev_op: u32 = 33;
    pub const __HYPERVISOR_hvm_op: u32 = 34;
    pub const __HYPERVISOR_sysctl: u32 = 35;
    pub const __HYPERVISOR_domctl: u32 = 36;
    pub const __HYPERVISOR_kexec_op: u32 = 37;
    pub const __HYPERVISOR_tmem_op: u32 = 38;
    pub const __HYPERVISOR_argo_op: u32 = 39;
    pub const __HYPERVISOR_xenpmu_op: u32 = 40;
    pub const __HYPERVISOR_dm_op: u32 = 41;
    pub const __HYPERVISOR_hypfs_op: u32 = 42;
    /// Architecture-specific hypercalls (x86: `arch_1` is `paging_domctl_cont`).
    pub const __HYPERVISOR_arch_0: u32 = 48;
    pub const __HYPERVISOR_arch_1: u32 = 49;
    pub const __HYPERVISOR_arch_2: u32 = 50;
    pub const __HYPERVISOR_arch_3: u32 = 51;
    pub const __HYPERVISOR_arch_4: u32 = 52;
    pub const __HYPERVISOR_arch_5: u32 = 53;
    pub const __HYPERVISOR_arch_6: u32 = 54;
    pub const __HYPERVISOR_arch_7: u32 = 55;
}

xen_consts! {
    VIRTUAL_IRQS;
    /// Virtual IRQs, bound to event channels with `EVTCHNOP_bind_virq`.
    /// Per-vCPU: timer tick or `set_timer_op` deadline.
    pub const VIRQ_TIMER: u32 = 0;
    pub const VIRQ_DEBUG: u32 = 1;
    pub const VIRQ_CONSOLE: u32 = 2;
    pub const VIRQ_DOM_EXC: u32 = 3;
    pub const VIRQ_TBUF: u32 = 4;
    pub const VIRQ_DEBUGGER: u32 = 6;
    pub const VIRQ_XENOPROF: u32 = 7;
    pub const VIRQ_CON_RING: u32 = 8;
    pub const VIRQ_PCPU_STATE: u32 = 9;
    pub const VIRQ_MEM_EVENT: u32 = 10;
    pub const VIRQ_ARGO: u32 = 11;
    pub const VIRQ_ENOMEM: u32 = 12;
    pub const VIRQ_XENPMU: u32 = 13;
    pub const VIRQ_ARCH_0: u32 = 16;
    pub const VIRQ_ARCH_1: u32 = 17;
    pub const VIRQ_ARCH_2: u32 = 18;
    pub const VIRQ_ARCH_3: u32 = 19;
    pub const VIRQ_ARCH_4: u32 = 20;
    pub const VIRQ_ARCH_5: u32 = 21;
    pub const VIRQ_ARCH_6: u32 = 22;
    pub const VIRQ_ARCH_7: u32 = 23;
    pub const NR_VIRQS: u32 = 24;
}

xen_consts! {
    MMU_UPDATE_COMMANDS;
    /// `mmu_update` commands, held in the low 2 bits of `MmuUpdate::ptr`.
    /// Checked `*ptr = val`; ptr is the machine address of a PTE.
    pub const MMU_NORMAL_PT_UPDATE: u32 = 0;
    /// Set M2P entry of the frame at ptr to val.
    pub const MMU_MACHPHYS_UPDATE: u32 = 1;
    /// As NORMAL, but keep the Accessed/Dirty bits Xen sees in the old PTE.
    pub const MMU_PT_UPDATE_PRESERVE_AD: u32 = 2;
    /// As NORMAL, with ptr a machine address even for translated guests.
    pub const MMU_PT_UPDATE_NO_TRANSLATE: u32 = 3;
}

xen_consts! {
    MMUEXT_COMMANDS;
    /// `mmuext_op` commands (`MmuextOp::cmd`).
    pub const MMUEXT_PIN_L1_TABLE: u32 = 0;
    pub const MMUEXT_PIN_L2_TABLE: u32 = 1;
    pub const MMUEXT_PIN_L3_TABLE: u32 = 2;
    pub const MMUEXT_PIN_L4_TABLE: u32 = 3;
    pub const MMUEXT_UNPIN_TABLE: u32 = 4;
    pub const MMUEXT_NEW_BASEPTR: u32 = 5;
    pub const MMUEXT_TLB_FLUSH_LOCAL: u32 = 6;
    pub const MMUEXT_INVLPG_LOCAL: u32 = 7;
    pub const MMUEXT_TLB_FLUSH_MULTI: u32 = 8;
    pub const MMUEXT_INVLPG_MULTI: u32 = 9;
    pub const MMUEXT_TLB_FLUSH_ALL: u32 = 10;
    pub const MMUEXT_INVLPG_ALL: u32 = 11;
    pub const MMUEXT_FLUSH_CACHE: u32 = 12;
    pub const MMUEXT_SET_LDT: u32 = 13;
    pub const MMUEXT_NEW_USER_BASEPTR: u32 = 15;
    pub const MMUEXT_CLEAR_PAGE: u32 = 16;
    pub const MMUEXT_COPY_PAGE: u32 = 17;
    pub const MMUEXT_FLUSH_CACHE_GLOBAL: u32 = 18;
    pub const MMUEXT_MARK_SUPER: u32 = 19;
    pub const MMUEXT_UNMARK_SUPER: u32 = 20;
}

xen_consts! {
    UPDATE_VA_MAPPING_FLAGS;
    /// `update_va_mapping` flags: which TLB flush to do (low 2 bits) ...
    pub const UVMF_NONE: u64 = 0;
    pub const UVMF_TLB_FLUSH: u64 = 1;
    pub const UVMF_INVLPG: u64 = 2;
    pub const UVMF_FLUSHTYPE_MASK: u64 = 3;
    /// ... and on which vCPUs (bit 2; MULTI ors in a pointer to a cpumask).
    pub const UVMF_MULTI: u64 = 0;
    pub const UVMF_LOCAL: u64 = 0;
    pub const UVMF_ALL: u64 = 1 << 2;
}

xen_consts! {
    MISC_COMMANDS;
    /// `console_io` commands.
    pub const CONSOLEIO_write: u32 = 0;
    pub const CONSOLEIO_read: u32 = 1;
    /// `vm_assist` commands and assist types.
    pub const VMASST_CMD_enable: u32 = 0;
    pub const VMASST_CMD_disable: u32 = 1;
    pub const VMASST_TYPE_4gb_segments: u32 = 0;
    pub const VMASST_TYPE_4gb_segments_notify: u32 = 1;
    pub const VMASST_TYPE_writable_pagetables: u32 = 2;
    pub const VMASST_TYPE_pae_extended_cr3: u32 = 3;
    pub const VMASST_TYPE_architectural_iopl: u32 = 4;
    pub const VMASST_TYPE_runstate_update_flag: u32 = 5;
    pub const VMASST_TYPE_m2p_strict: u32 = 32;
    /// `VcpuTimeInfo::flags` bits.
    pub const XEN_PVCLOCK_TSC_STABLE_BIT: u8 = 1 << 0;
    pub const XEN_PVCLOCK_GUEST_STOPPED: u8 = 1 << 1;
}

xen_consts! {
    DOMAIN_IDS;
    /// Domain ids at and above this are special, never real domains.
    pub const DOMID_FIRST_RESERVED: u16 = 0x7FF0;
    /// The calling domain.
    pub const DOMID_SELF: u16 = 0x7FF0;
    pub const DOMID_IO: u16 = 0x7FF1;
    pub const DOMID_XEN: u16 = 0x7FF2;
    pub const DOMID_COW: u16 = 0x7FF3;
    pub const DOMID_INVALID: u16 = 0x7FF4;
    pub const DOMID_IDLE: u16 = 0x7FFF;
    pub const DOMID_MASK: u16 = 0x7FFF;
}

xen_consts! {
    START_INFO_FLAGS;
    /// Length of `StartInfo::cmd_line`, including the NUL.
    pub const MAX_GUEST_CMDLINE: usize = 1024;
    /// `StartInfo::flags` bits.
    pub const SIF_PRIVILEGED: u32 = 1 << 0;
    pub const SIF_INITDOMAIN: u32 = 1 << 1;
    /// `mod_start` points at a list of `xen_multiboot_mod_list` entries.
    pub const SIF_MULTIBOOT_MOD: u32 = 1 << 2;
    /// `mod_start` is a PFN rather than a virtual address.
    pub const SIF_MOD_START_PFN: u32 = 1 << 3;
    pub const SIF_VIRT_P2M_4TOOLS: u32 = 1 << 4;
    pub const SIF_PM_MASK: u32 = 0xFF << 8;
}

xen_typedefs! {
    SCALAR_TYPES;
    /// A (pseudo-)physical or machine frame number.
    pub type XenPfn = u64 => "xen_pfn_t";
    /// The native machine word (event-channel bitmap words, multicall args).
    pub type XenUlong = u64 => "xen_ulong_t";
    /// A domain id (see `DOMID_*` for the special ones).
    pub type DomId = u16 => "domid_t";
    /// `XEN_GUEST_HANDLE(T)`: the guest-virtual address of a buffer the
    /// hypervisor reads or writes on the guest's behalf.
    pub type GuestHandle = u64 => "XEN_GUEST_HANDLE(void)";
}

module_checks! {
    consts: [
        HYPERCALL_NUMBERS,
        VIRTUAL_IRQS,
        MMU_UPDATE_COMMANDS,
        MMUEXT_COMMANDS,
        UPDATE_VA_MAPPING_FLAGS,
        MISC_COMMANDS,
        DOMAIN_IDS,
        START_INFO_FLAGS,
        SCALAR_TYPES,
    ],
    types: [],
}
