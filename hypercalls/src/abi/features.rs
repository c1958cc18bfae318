//! Feature bits reported by `XENVER_get_features` (`xen/features.h`).
//!
//! Each constant is a bit number within submap 0 (the only submap). Bit 12
//! (`grant_map_identity`) is deprecated and commented out of the 4.17 header.

xen_consts! {
    FEATURE_BITS;
    /// The guest may write its page tables directly (trapped and validated).
    pub const XENFEAT_writable_page_tables: u32 = 0;
    /// The guest may write its descriptor tables directly.
    pub const XENFEAT_writable_descriptor_tables: u32 = 1;
    /// Xen translates guest-physical to machine addresses (HVM/PVH).
    pub const XENFEAT_auto_translated_physmap: u32 = 2;
    /// The guest kernel runs in ring 0.
    pub const XENFEAT_supervisor_mode_kernel: u32 = 3;
    /// PAE page directories may live above 4GB.
    pub const XENFEAT_pae_pgdir_above_4gb: u32 = 4;
    /// `MMU_PT_UPDATE_PRESERVE_AD` is available.
    pub const XENFEAT_mmu_pt_update_preserve_ad: u32 = 5;
    /// `VMASST_TYPE_m2p_strict`-era highmem assist.
    pub const XENFEAT_highmem_assist: u32 = 6;
    /// Grant mappings may use the PTE's available bits.
    pub const XENFEAT_gnttab_map_avail_bits: u32 = 7;
    /// HVM events may be delivered on an IDT vector.
    pub const XENFEAT_hvm_callback_vector: u32 = 8;
    /// The HVM guest may use the PV clock.
    pub const XENFEAT_hvm_safe_pvclock: u32 = 9;
    /// HVM PIRQs are delivered as event channels.
    pub const XENFEAT_hvm_pirqs: u32 = 10;
    /// This domain is the control domain.
    pub const XENFEAT_dom0: u32 = 11;
    /// `XENMEM_get_vnumainfo` is supported.
    pub const XENFEAT_memory_op_vnode_supported: u32 = 13;
    /// ARM SMCCC is supported.
    pub const XENFEAT_ARM_SMCCC_supported: u32 = 14;
    /// Linux may place the RSDP anywhere.
    pub const XENFEAT_linux_rsdp_unrestricted: u32 = 15;
    /// Guest memory is not 1:1 mapped (ARM).
    pub const XENFEAT_not_direct_mapped: u32 = 16;
    /// Guest memory is 1:1 mapped (ARM).
    pub const XENFEAT_direct_mapped: u32 = 17;
    /// Number of 32-bit submaps `XENVER_get_features` can return.
    pub const XENFEAT_NR_SUBMAPS: u32 = 1;
}

module_checks! { consts: [FEATURE_BITS], types: [] }
