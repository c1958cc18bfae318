//! `nmi_op` (`xen/nmi.h`): where a PV guest wants its virtual NMIs.

xen_consts! {
    NMI_COMMANDS;
    /// Register the vCPU's NMI handler (`XenNmiCallback`).
    pub const XENNMI_register_callback: u32 = 0;
    /// Forget it: NMIs are then dropped.
    pub const XENNMI_unregister_callback: u32 = 1;
}

xen_struct! {
    /// `XENNMI_register_callback`.
    #[derive(Default, PartialEq, Eq)]
    pub struct XenNmiCallback => "struct xennmi_callback" {
        pub handler_address: u64,
        pub pad: u64,
    }
}

module_checks! {
    consts: [NMI_COMMANDS],
    types: [XenNmiCallback],
}
