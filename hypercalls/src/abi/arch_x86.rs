//! x86_64-specific parts of the ABI (`xen/arch-x86/xen.h` and
//! `xen/arch-x86/xen-x86_64.h`). Re-exported from [`super::xen`], as the C
//! `xen.h` includes these headers.

use super::xen::XenPfn;

xen_consts! {
    SEGMENT_SELECTORS;
    /// Flat segments Xen provides for a 64-bit PV guest. The kernel and user
    /// both run in ring 3 on x86_64, so the KERNEL and USER selectors are
    /// equal: page-table U/S bits plus Xen's two page tables separate them.
    pub const FLAT_RING3_CS32: u16 = 0xe023;
    pub const FLAT_RING3_CS64: u16 = 0xe033;
    pub const FLAT_RING3_DS32: u16 = 0xe02b;
    pub const FLAT_RING3_DS64: u16 = 0x0000;
    pub const FLAT_RING3_SS32: u16 = 0xe02b;
    pub const FLAT_RING3_SS64: u16 = 0xe02b;
    pub const FLAT_KERNEL_DS64: u16 = FLAT_RING3_DS64;
    pub const FLAT_KERNEL_DS32: u16 = FLAT_RING3_DS32;
    pub const FLAT_KERNEL_DS: u16 = FLAT_KERNEL_DS64;
    pub const FLAT_KERNEL_CS64: u16 = FLAT_RING3_CS64;
    pub const FLAT_KERNEL_CS32: u16 = FLAT_RING3_CS32;
    pub const FLAT_KERNEL_CS: u16 = FLAT_KERNEL_CS64;
    pub const FLAT_KERNEL_SS64: u16 = FLAT_RING3_SS64;
    pub const FLAT_KERNEL_SS32: u16 = FLAT_RING3_SS32;
    pub const FLAT_KERNEL_SS: u16 = FLAT_KERNEL_SS64;
    pub const FLAT_USER_DS64: u16 = FLAT_RING3_DS64;
    pub const FLAT_USER_DS32: u16 = FLAT_RING3_DS32;
    pub const FLAT_USER_DS: u16 = FLAT_USER_DS64;
    pub const FLAT_USER_CS64: u16 = FLAT_RING3_CS64;
    pub const FLAT_USER_CS32: u16 = FLAT_RING3_CS32;
    pub const FLAT_USER_CS: u16 = FLAT_USER_CS64;
    pub const FLAT_USER_SS64: u16 = FLAT_RING3_SS64;
    pub const FLAT_USER_SS32: u16 = FLAT_RING3_SS32;
    pub const FLAT_USER_SS: u16 = FLAT_USER_SS64;
}

xen_consts! {
    ADDRESS_LAYOUT;
    /// The virtual-address hole reserved for Xen in every PV guest.
    pub const HYPERVISOR_VIRT_START: u64 = 0xFFFF_8000_0000_0000;
    pub const HYPERVISOR_VIRT_END: u64 = 0xFFFF_8800_0000_0000;
    pub const __HYPERVISOR_VIRT_START: u64 = HYPERVISOR_VIRT_START;
    pub const __HYPERVISOR_VIRT_END: u64 = HYPERVISOR_VIRT_END;
    /// The read-only machine-to-physical table mapped into PV guests.
    pub const MACH2PHYS_VIRT_START: u64 = 0xFFFF_8000_0000_0000;
    pub const MACH2PHYS_VIRT_END: u64 = 0xFFFF_8040_0000_0000;
    pub const __MACH2PHYS_VIRT_START: u64 = MACH2PHYS_VIRT_START;
    pub const __MACH2PHYS_VIRT_END: u64 = MACH2PHYS_VIRT_END;
    /// Entries (8 bytes each) in the machine-to-physical table.
    pub const MACH2PHYS_NR_ENTRIES: u64 = (MACH2PHYS_VIRT_END - MACH2PHYS_VIRT_START) >> 3;
    /// GDT page from which Xen reserves descriptors for itself.
    pub const FIRST_RESERVED_GDT_PAGE: u32 = 14;
    pub const FIRST_RESERVED_GDT_BYTE: u32 = FIRST_RESERVED_GDT_PAGE * 4096;
    pub const FIRST_RESERVED_GDT_ENTRY: u32 = FIRST_RESERVED_GDT_BYTE / 8;
    /// vcpu_info slots embedded in `shared_info`.
    pub const XEN_LEGACY_MAX_VCPUS: u32 = 32;
}

xen_consts! {
    SEGMENT_BASES;
    /// `set_segment_base` selectors.
    pub const SEGBASE_FS: u32 = 0;
    pub const SEGBASE_GS_USER: u32 = 1;
    pub const SEGBASE_GS_KERNEL: u32 = 2;
    /// Load the user %gs selector given in bits 15:0 of the base.
    pub const SEGBASE_GS_USER_SEL: u32 = 3;
    /// `iret` flag: return to the guest as if from a system call.
    pub const _VGCF_in_syscall: u32 = 8;
    pub const VGCF_in_syscall: u32 = 1 << _VGCF_in_syscall;
    pub const VGCF_IN_SYSCALL: u32 = VGCF_in_syscall;
}

xen_sys_struct! {
    /// One virtual IDT entry for `set_trap_table`. `flags` bits 0-1 hold the
    /// DPL allowed to raise the vector with `int`; bit 2 masks events on entry.
    /// A table is terminated by an all-zero entry.
    pub type TrapInfo = xen_sys::trap_info => "struct trap_info" { vector, flags, cs, address }
}

xen_struct! {
    /// Architecture part of `vcpu_info`: the guest's virtual CR2.
    #[derive(Default)]
    pub struct ArchVcpuInfo => "struct arch_vcpu_info" {
        pub cr2: u64,
        pub pad: u64,
    }
}

xen_struct! {
    /// Architecture part of `shared_info`: how tools find the p2m list.
    #[derive(Default)]
    pub struct ArchSharedInfo => "struct arch_shared_info" {
        pub max_pfn: u64,
        pub pfn_to_mfn_frame_list_list: XenPfn,
        pub nmi_reason: u64,
        pub p2m_cr3: u64,
        pub p2m_vaddr: u64,
        pub p2m_generation: u64,
    }
}

xen_struct! {
    /// The frame Xen pushes on the guest stack for the `iret` hypercall:
    /// `rax, r11, rcx` are restored, then an ordinary iret frame.
    #[derive(Default)]
    pub struct IretContext => "struct iret_context" {
        pub rax: u64,
        pub r11: u64,
        pub rcx: u64,
        pub flags: u64,
        pub rip: u64,
        pub cs: u64,
        pub rflags: u64,
        pub rsp: u64,
        pub ss: u64,
    }
}

xen_struct! {
    /// Saved guest registers, as Xen lays them out (guest-view names).
    #[derive(Default)]
    pub struct CpuUserRegs => "struct cpu_user_regs" {
        pub r15: u64,
        pub r14: u64,
        pub r13: u64,
        pub r12: u64,
        pub rbp: u64,
        pub rbx: u64,
        pub r11: u64,
        pub r10: u64,
        pub r9: u64,
        pub r8: u64,
        pub rax: u64,
        pub rcx: u64,
        pub rdx: u64,
        pub rsi: u64,
        pub rdi: u64,
        pub error_code: u32,
        pub entry_vector: u32,
        pub rip: u64,
        pub cs: u16,
        pub _pad0: [u16; 1],
        pub saved_upcall_mask: u8,
        pub _pad1: [u8; 3],
        pub rflags: u64,
        pub rsp: u64,
        pub ss: u16,
        pub _pad2: [u16; 3],
        pub es: u16,
        pub _pad3: [u16; 3],
        pub ds: u16,
        pub _pad4: [u16; 3],
        pub fs: u16,
        pub _pad5: [u16; 3],
        pub gs: u16,
        pub _pad6: [u16; 3],
    }
}

xen_consts! {
    GUEST_CONTEXT_FLAGS;
    /// `VcpuGuestContext::flags` bits.
    pub const VGCF_I387_VALID: u64 = 1 << 0;
    pub const VGCF_IN_KERNEL: u64 = 1 << 2;
    pub const _VGCF_i387_valid: u64 = 0;
    pub const VGCF_i387_valid: u64 = 1 << _VGCF_i387_valid;
    pub const _VGCF_in_kernel: u64 = 2;
    pub const VGCF_in_kernel: u64 = 1 << _VGCF_in_kernel;
    pub const _VGCF_failsafe_disables_events: u64 = 3;
    pub const VGCF_failsafe_disables_events: u64 = 1 << _VGCF_failsafe_disables_events;
    pub const _VGCF_syscall_disables_events: u64 = 4;
    pub const VGCF_syscall_disables_events: u64 = 1 << _VGCF_syscall_disables_events;
    pub const _VGCF_online: u64 = 5;
    pub const VGCF_online: u64 = 1 << _VGCF_online;
}

xen_struct! {
    /// The full register state of a PV vCPU, for `VCPUOP_initialise`
    /// (bringing up secondary vCPUs). The user page table of an x86_64 PV
    /// guest goes in `ctrlreg[1]`, the kernel one in `ctrlreg[3]`, both as
    /// `xen_pfn_to_cr3` values.
    pub struct VcpuGuestContext => "struct vcpu_guest_context" {
        /// FXSAVE image.
        pub fpu_ctxt: [u8; 512],
        /// `VGCF_*` bits.
        pub flags: u64,
        pub user_regs: CpuUserRegs,
        /// Virtual IDT, as for `set_trap_table`.
        pub trap_ctxt: [TrapInfo; 256],
        pub ldt_base: u64,
        pub ldt_ents: u64,
        pub gdt_frames: [u64; 16],
        pub gdt_ents: u64,
        pub kernel_ss: u64,
        pub kernel_sp: u64,
        pub ctrlreg: [u64; 8],
        pub debugreg: [u64; 8],
        pub event_callback_eip: u64,
        pub failsafe_callback_eip: u64,
        pub syscall_callback_eip: u64,
        /// `VMASST_TYPE_*` bitmap.
        pub vm_assist: u64,
        pub fs_base: u64,
        pub gs_base_kernel: u64,
        pub gs_base_user: u64,
    }
}

xen_typedefs! {
    ARCH_SCALARS;
    /// Address of a guest callback (`set_callbacks`, `callback_op`).
    pub type XenCallback = u64 => "xen_callback_t";
}

/// Assembles the CR3 value for a page-table frame (`xen_pfn_to_cr3`).
pub const fn xen_pfn_to_cr3(pfn: XenPfn) -> u64 {
    pfn << 12
}

/// The frame named by a CR3 value (`xen_cr3_to_pfn`).
pub const fn xen_cr3_to_pfn(cr3: u64) -> XenPfn {
    cr3 >> 12
}

module_checks! {
    consts: [SEGMENT_SELECTORS, ADDRESS_LAYOUT, SEGMENT_BASES, GUEST_CONTEXT_FLAGS, ARCH_SCALARS],
    types: [TrapInfo, ArchVcpuInfo, ArchSharedInfo, IretContext, CpuUserRegs, VcpuGuestContext],
}
