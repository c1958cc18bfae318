//! `platform_op` (`xen/platform.h`): machine-wide controls for the hardware
//! domain. Only the envelope is modelled: a hypervisor that refuses every
//! command still reads it whole and checks its version first, as Xen does.

xen_consts! {
    PLATFORM_VALUES;
    /// `XenPlatformOp::interface_version` must hold this.
    pub const XENPF_INTERFACE_VERSION: u32 = 0x0300_0001;
}

xen_struct! {
    /// `struct xen_platform_op`: a command, the interface version, and a
    /// union of per-command arguments (128 bytes, 8-byte aligned).
    #[derive(Default, PartialEq, Eq)]
    pub struct XenPlatformOp => "struct xen_platform_op" {
        pub cmd: u32,
        pub interface_version: u32,
        pub u: [u64; 16],
    }
}

module_checks! {
    consts: [PLATFORM_VALUES],
    types: [XenPlatformOp],
}
