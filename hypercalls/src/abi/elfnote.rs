//! ELF note types a kernel image uses to describe itself to the domain
//! builder (`xen/elfnote.h`). Each note has owner name [`XEN_ELFNOTE_OWNER`].
//!
//! Xen 4.17 defines types 0 to 18; `XEN_ELFNOTE_PHYS32_RELOC` (19) arrived in
//! Xen 4.19 and is deliberately absent so the conformance check against the
//! 4.17 headers stays meaningful.

/// The owner ("name") field of every Xen ELF note, NUL-terminated.
pub const XEN_ELFNOTE_OWNER: &[u8; 4] = b"Xen\0";

xen_consts! {
    ELFNOTE_TYPES;
    /// NAME=VALUE pair (string). Legacy.
    pub const XEN_ELFNOTE_INFO: u32 = 0;
    /// Virtual address of the PV entry point (numeric).
    pub const XEN_ELFNOTE_ENTRY: u32 = 1;
    /// Virtual address of the hypercall page the builder fills (numeric).
    pub const XEN_ELFNOTE_HYPERCALL_PAGE: u32 = 2;
    /// Virtual address the image is linked to start at (numeric).
    pub const XEN_ELFNOTE_VIRT_BASE: u32 = 3;
    /// Offset of ELF paddr fields from the real pseudo-physical address.
    pub const XEN_ELFNOTE_PADDR_OFFSET: u32 = 4;
    /// Xen version the kernel was written for (string).
    pub const XEN_ELFNOTE_XEN_VERSION: u32 = 5;
    /// Guest OS name (string).
    pub const XEN_ELFNOTE_GUEST_OS: u32 = 6;
    /// Guest OS version (string).
    pub const XEN_ELFNOTE_GUEST_VERSION: u32 = 7;
    /// Loader type, "generic" (string).
    pub const XEN_ELFNOTE_LOADER: u32 = 8;
    /// PAE support, x86_32 only (string).
    pub const XEN_ELFNOTE_PAE_MODE: u32 = 9;
    /// `|`-separated XENFEAT names, `!` marking required ones (string).
    pub const XEN_ELFNOTE_FEATURES: u32 = 10;
    /// Whether the symbol table must be loaded (string).
    pub const XEN_ELFNOTE_BSD_SYMTAB: u32 = 11;
    /// Lowest address the hypervisor hole may start at (numeric).
    pub const XEN_ELFNOTE_HV_START_LOW: u32 = 12;
    /// Mask/value pairs recognising non-present L1 entries with valid MFNs.
    pub const XEN_ELFNOTE_L1_MFN_VALID: u32 = 13;
    /// Cooperative suspend cancellation supported (numeric).
    pub const XEN_ELFNOTE_SUSPEND_CANCEL: u32 = 14;
    /// Where the builder should place the initial p2m list (numeric).
    pub const XEN_ELFNOTE_INIT_P2M: u32 = 15;
    /// The kernel accepts a module not mapped by the initial page tables.
    pub const XEN_ELFNOTE_MOD_START_PFN: u32 = 16;
    /// Bitmap of supported XENFEAT bits (numeric).
    pub const XEN_ELFNOTE_SUPPORTED_FEATURES: u32 = 17;
    /// 32-bit physical entry point used for PVH boots (numeric).
    pub const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
    /// The highest note type defined.
    pub const XEN_ELFNOTE_MAX: u32 = XEN_ELFNOTE_PHYS32_ENTRY;
    /// Crash-dump notes, used in core files only.
    pub const XEN_ELFNOTE_CRASH_INFO: u32 = 0x100_0001;
    pub const XEN_ELFNOTE_CRASH_REGS: u32 = 0x100_0002;
    pub const XEN_ELFNOTE_DUMPCORE_NONE: u32 = 0x200_0000;
    pub const XEN_ELFNOTE_DUMPCORE_HEADER: u32 = 0x200_0001;
    pub const XEN_ELFNOTE_DUMPCORE_XEN_VERSION: u32 = 0x200_0002;
    pub const XEN_ELFNOTE_DUMPCORE_FORMAT_VERSION: u32 = 0x200_0003;
}

module_checks! { consts: [ELFNOTE_TYPES], types: [] }
