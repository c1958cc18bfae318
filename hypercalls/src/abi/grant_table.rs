//! `grant_table_op` (`xen/grant_table.h`): sharing pages between domains.
//!
//! A domain grants access to one of its frames by filling an entry of its
//! grant table (version 1: [`GrantEntryV1`]); the grantee maps or copies it
//! by grant reference.

use super::xen::{DomId, GuestHandle, XenPfn};

xen_consts! {
    GNTTAB_COMMANDS;
    pub const GNTTABOP_map_grant_ref: u32 = 0;
    pub const GNTTABOP_unmap_grant_ref: u32 = 1;
    /// Ask for the frames of the caller's grant table (`GnttabSetupTable`).
    pub const GNTTABOP_setup_table: u32 = 2;
    pub const GNTTABOP_dump_table: u32 = 3;
    pub const GNTTABOP_transfer: u32 = 4;
    pub const GNTTABOP_copy: u32 = 5;
    /// Current and maximum grant-table frames (`GnttabQuerySize`).
    pub const GNTTABOP_query_size: u32 = 6;
    pub const GNTTABOP_unmap_and_replace: u32 = 7;
    /// Select table format 1 or 2 (`GnttabSetVersion`).
    pub const GNTTABOP_set_version: u32 = 8;
    pub const GNTTABOP_get_status_frames: u32 = 9;
    pub const GNTTABOP_get_version: u32 = 10;
    pub const GNTTABOP_swap_grant_ref: u32 = 11;
    pub const GNTTABOP_cache_flush: u32 = 12;
}

xen_consts! {
    GNTTAB_VALUES;
    /// Entries reserved for the toolstack; guests allocate from here on.
    pub const GNTTAB_NR_RESERVED_ENTRIES: u32 = 8;
    pub const GNTTAB_RESERVED_CONSOLE: u32 = 0;
    pub const GNTTAB_RESERVED_XENSTORE: u32 = 1;
    /// `GrantEntryV1::flags`: entry type (bits 1:0) ...
    pub const GTF_invalid: u16 = 0;
    pub const GTF_permit_access: u16 = 1;
    pub const GTF_accept_transfer: u16 = 2;
    pub const GTF_transitive: u16 = 3;
    pub const GTF_type_mask: u16 = 3;
    /// ... and sub-flags.
    pub const _GTF_readonly: u16 = 2;
    pub const GTF_readonly: u16 = 1 << _GTF_readonly;
    pub const _GTF_reading: u16 = 3;
    pub const GTF_reading: u16 = 1 << _GTF_reading;
    pub const _GTF_writing: u16 = 4;
    pub const GTF_writing: u16 = 1 << _GTF_writing;
    pub const _GTF_PWT: u16 = 5;
    pub const GTF_PWT: u16 = 1 << _GTF_PWT;
    pub const _GTF_PCD: u16 = 6;
    pub const GTF_PCD: u16 = 1 << _GTF_PCD;
    pub const _GTF_PAT: u16 = 7;
    pub const GTF_PAT: u16 = 1 << _GTF_PAT;
    pub const _GTF_sub_page: u16 = 8;
    pub const GTF_sub_page: u16 = 1 << _GTF_sub_page;
    pub const _GTF_transfer_committed: u16 = 2;
    pub const GTF_transfer_committed: u16 = 1 << _GTF_transfer_committed;
    pub const _GTF_transfer_completed: u16 = 3;
    pub const GTF_transfer_completed: u16 = 1 << _GTF_transfer_completed;
    /// `GnttabMapGrantRef::flags`.
    pub const _GNTMAP_device_map: u32 = 0;
    pub const GNTMAP_device_map: u32 = 1 << _GNTMAP_device_map;
    pub const _GNTMAP_host_map: u32 = 1;
    pub const GNTMAP_host_map: u32 = 1 << _GNTMAP_host_map;
    pub const _GNTMAP_readonly: u32 = 2;
    pub const GNTMAP_readonly: u32 = 1 << _GNTMAP_readonly;
    pub const _GNTMAP_application_map: u32 = 3;
    pub const GNTMAP_application_map: u32 = 1 << _GNTMAP_application_map;
    pub const _GNTMAP_contains_pte: u32 = 4;
    pub const GNTMAP_contains_pte: u32 = 1 << _GNTMAP_contains_pte;
    /// `GnttabCopy::flags`.
    pub const _GNTCOPY_source_gref: u16 = 0;
    pub const GNTCOPY_source_gref: u16 = 1 << _GNTCOPY_source_gref;
    pub const _GNTCOPY_dest_gref: u16 = 1;
    pub const GNTCOPY_dest_gref: u16 = 1 << _GNTCOPY_dest_gref;
    /// Per-operation `status` values (not errnos).
    pub const GNTST_okay: i16 = 0;
    pub const GNTST_general_error: i16 = -1;
    pub const GNTST_bad_domain: i16 = -2;
    pub const GNTST_bad_gntref: i16 = -3;
    pub const GNTST_bad_handle: i16 = -4;
    pub const GNTST_bad_virt_addr: i16 = -5;
    pub const GNTST_bad_dev_addr: i16 = -6;
    pub const GNTST_no_device_space: i16 = -7;
    pub const GNTST_permission_denied: i16 = -8;
    pub const GNTST_bad_page: i16 = -9;
    pub const GNTST_bad_copy_arg: i16 = -10;
    pub const GNTST_address_too_big: i16 = -11;
    pub const GNTST_eagain: i16 = -12;
    pub const GNTST_no_space: i16 = -13;
}

xen_typedefs! {
    GNTTAB_TYPES;
    /// Index of an entry in a grant table.
    pub type GrantRef = u32 => "grant_ref_t";
    /// A mapping handle returned by `GNTTABOP_map_grant_ref`.
    pub type GrantHandle = u32 => "grant_handle_t";
    /// One entry of a v2 status frame.
    pub type GrantStatus = u16 => "grant_status_t";
}

xen_struct! {
    /// A version-1 grant entry: `domid` may access `frame` as `flags` say.
    /// Write `frame` and `domid` before `flags` (with a barrier between).
    #[derive(Default, PartialEq, Eq)]
    pub struct GrantEntryV1 => "struct grant_entry_v1" {
        pub flags: u16,
        pub domid: DomId,
        pub frame: u32,
    }
}

xen_struct! {
    /// `GNTTABOP_map_grant_ref`.
    #[derive(Default, PartialEq, Eq)]
    pub struct GnttabMapGrantRef => "struct gnttab_map_grant_ref" {
        pub host_addr: u64,
        pub flags: u32,
        pub r#ref: GrantRef,
        pub dom: DomId,
        pub status: i16,
        pub handle: GrantHandle,
        pub dev_bus_addr: u64,
    }
}

xen_struct! {
    /// `GNTTABOP_unmap_grant_ref`.
    #[derive(Default, PartialEq, Eq)]
    pub struct GnttabUnmapGrantRef => "struct gnttab_unmap_grant_ref" {
        pub host_addr: u64,
        pub dev_bus_addr: u64,
        pub handle: GrantHandle,
        pub status: i16,
    }
}

xen_struct! {
    /// `GNTTABOP_unmap_and_replace`: IN host_addr (the grant mapping to
    /// remove), new_addr (whose mapping moves there instead, then is
    /// cleared) and handle; OUT status (`GNTST_*`).
    #[derive(Default, PartialEq, Eq)]
    pub struct GnttabUnmapAndReplace => "struct gnttab_unmap_and_replace" {
        pub host_addr: u64,
        pub new_addr: u64,
        pub handle: GrantHandle,
        pub status: i16,
    }
}

xen_struct! {
    /// `GNTTABOP_setup_table`: IN dom, nr_frames, frame_list (room for
    /// nr_frames `XenPfn`s); OUT status (`GNTST_*`) and the frames.
    #[derive(Default, PartialEq, Eq)]
    pub struct GnttabSetupTable => "struct gnttab_setup_table" {
        pub dom: DomId,
        pub nr_frames: u32,
        pub status: i16,
        pub frame_list: GuestHandle,
    }
}

xen_struct! {
    /// `GNTTABOP_transfer`.
    #[derive(Default, PartialEq, Eq)]
    pub struct GnttabTransfer => "struct gnttab_transfer" {
        pub mfn: XenPfn,
        pub domid: DomId,
        pub r#ref: GrantRef,
        pub status: i16,
    }
}

xen_struct! {
    /// One end of a `GNTTABOP_copy`: `u` is a grant ref or a frame number
    /// (per `GNTCOPY_*_gref`).
    #[derive(Default, PartialEq, Eq)]
    pub struct GnttabCopyPtr => "struct gnttab_copy_ptr" {
        pub u: u64,
        pub domid: DomId,
        pub offset: u16,
    }
}

xen_struct! {
    /// `GNTTABOP_copy`.
    #[derive(Default, PartialEq, Eq)]
    pub struct GnttabCopy => "struct gnttab_copy" {
        pub source: GnttabCopyPtr,
        pub dest: GnttabCopyPtr,
        pub len: u16,
        pub flags: u16,
        pub status: i16,
    }
}

xen_struct! {
    /// `GNTTABOP_query_size`.
    #[derive(Default, PartialEq, Eq)]
    pub struct GnttabQuerySize => "struct gnttab_query_size" {
        pub dom: DomId,
        pub nr_frames: u32,
        pub max_nr_frames: u32,
        pub status: i16,
    }
}

xen_struct! {
    /// `GNTTABOP_set_version`: IN the wanted version; OUT the version in use.
    #[derive(Default, PartialEq, Eq)]
    pub struct GnttabSetVersion => "struct gnttab_set_version" {
        pub version: u32,
    }
}

xen_struct! {
    /// `GNTTABOP_get_version`.
    #[derive(Default, PartialEq, Eq)]
    pub struct GnttabGetVersion => "struct gnttab_get_version" {
        pub dom: DomId,
        pub pad: u16,
        pub version: u32,
    }
}

module_checks! {
    consts: [GNTTAB_COMMANDS, GNTTAB_VALUES, GNTTAB_TYPES],
    types: [
        GrantEntryV1,
        GnttabMapGrantRef,
        GnttabUnmapGrantRef,
        GnttabUnmapAndReplace,
        GnttabSetupTable,
        GnttabTransfer,
        GnttabCopyPtr,
        GnttabCopy,
        GnttabQuerySize,
        GnttabSetVersion,
        GnttabGetVersion,
    ],
}
