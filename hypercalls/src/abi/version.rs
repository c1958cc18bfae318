//! `xen_version` (`xen/version.h`).

use super::xen::XenUlong;

xen_consts! {
    VERSION_COMMANDS;
    /// Returns `major << 16 | minor`; no argument.
    pub const XENVER_version: u32 = 0;
    /// Fills a `XenExtraversion`.
    pub const XENVER_extraversion: u32 = 1;
    pub const XENVER_compile_info: u32 = 2;
    /// Fills a `XenCapabilitiesInfo`, e.g. "xen-3.0-x86_64 hvm-3.0-x86_64".
    pub const XENVER_capabilities: u32 = 3;
    pub const XENVER_changeset: u32 = 4;
    /// Fills a `XenPlatformParameters`.
    pub const XENVER_platform_parameters: u32 = 5;
    /// Fills a `XenFeatureInfo` for the given submap.
    pub const XENVER_get_features: u32 = 6;
    /// Returns the page size.
    pub const XENVER_pagesize: u32 = 7;
    pub const XENVER_guest_handle: u32 = 8;
    pub const XENVER_commandline: u32 = 9;
    pub const XENVER_build_id: u32 = 10;
    pub const XEN_EXTRAVERSION_LEN: usize = 16;
    pub const XEN_CAPABILITIES_INFO_LEN: usize = 1024;
    pub const XEN_CHANGESET_INFO_LEN: usize = 64;
}

xen_typedefs! {
    VERSION_STRINGS;
    /// NUL-terminated strings Xen fills.
    pub type XenExtraversion = [u8; XEN_EXTRAVERSION_LEN] => "xen_extraversion_t";
    pub type XenCapabilitiesInfo = [u8; XEN_CAPABILITIES_INFO_LEN] => "xen_capabilities_info_t";
    pub type XenChangesetInfo = [u8; XEN_CHANGESET_INFO_LEN] => "xen_changeset_info_t";
    pub type XenCommandline = [u8; 1024] => "xen_commandline_t";
}

xen_struct! {
    /// `XENVER_compile_info`.
    pub struct XenCompileInfo => "struct xen_compile_info" {
        pub compiler: [u8; 64],
        pub compile_by: [u8; 16],
        pub compile_domain: [u8; 32],
        pub compile_date: [u8; 32],
    }
}

xen_struct! {
    /// `XENVER_platform_parameters`: where Xen's hole starts.
    #[derive(Default, PartialEq, Eq)]
    pub struct XenPlatformParameters => "struct xen_platform_parameters" {
        pub virt_start: XenUlong,
    }
}

xen_struct! {
    /// `XENVER_get_features`: IN submap_idx; OUT 32 `XENFEAT_*` bits.
    #[derive(Default, PartialEq, Eq)]
    pub struct XenFeatureInfo => "struct xen_feature_info" {
        pub submap_idx: u32,
        pub submap: u32,
    }
}

xen_struct! {
    /// `XENVER_build_id` header; `len` bytes of id follow it.
    #[derive(Default, PartialEq, Eq)]
    pub struct XenBuildId => "struct xen_build_id" {
        pub len: u32,
    }
}

module_checks! {
    consts: [VERSION_COMMANDS, VERSION_STRINGS],
    types: [XenCompileInfo, XenPlatformParameters, XenFeatureInfo, XenBuildId],
}
