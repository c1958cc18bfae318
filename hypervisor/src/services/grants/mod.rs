//! The guest's grant table as the hypervisor keeps it: which version is in
//! use and how many shared frames exist, with Xen's answers for
//! `GNTTABOP_query_size`, `setup_table`, `set_version` and `get_version`;
//! the active entries and their pins ([`active`]); the maptrack table of
//! mappings the guest holds ([`maptrack`]); and the rules of
//! `GNTTABOP_map_grant_ref`, `unmap_grant_ref` and `copy` that need no
//! machine memory (which domain may be named, the PTE a host mapping gets).
//! Only version 1 is offered (as Xen with `gnttab=max-ver:1`).

pub mod active;
pub mod maptrack;

#[cfg(test)]
mod tests;

pub use active::{ActiveGrants, GrantUse, Purpose, SharedEntries};
pub use maptrack::{Mapping, Maptrack};

use hypercalls::abi::grant_table::{
    GNTMAP_application_map, GNTMAP_readonly, GNTST_bad_copy_arg, GNTST_bad_domain, GNTST_general_error,
    GNTST_permission_denied, GTF_permit_access, GrantEntryV1, GrantRef, GNTTAB_RESERVED_CONSOLE,
    GNTTAB_RESERVED_XENSTORE,
};
use hypercalls::abi::xen::{DomId, DOMID_SELF};
use hypercalls::XenError;

use crate::mm::{pte, Mfn};

/// Xen's default `gnttab_max_frames`.
pub const MAX_FRAMES: u32 = 64;
/// Xen creates a domain's table with one frame.
pub const INITIAL_FRAMES: u32 = 1;
/// The only version this hypervisor implements.
pub const MAX_VERSION: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrantTableSize {
    version: u32,
    frames: u32,
}

impl Default for GrantTableSize {
    fn default() -> Self {
        Self::new()
    }
}

impl GrantTableSize {
    pub const fn new() -> Self {
        Self { version: 1, frames: INITIAL_FRAMES }
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn frames(&self) -> u32 {
        self.frames
    }

    /// `GNTTABOP_set_version`: 1 is accepted (and is already in use); 2 is
    /// `ENOSYS` because the maximum version is 1; anything else `EINVAL`.
    /// Either way the guest is told the version in use.
    pub fn set_version(&mut self, requested: u32) -> (Result<(), XenError>, u32) {
        let result = match requested {
            1 => Ok(()),
            2 => Err(XenError::ENOSYS),
            _ => Err(XenError::EINVAL),
        };
        (result, self.version)
    }

    /// `GNTTABOP_setup_table` for `wanted` frames: how many frames must be
    /// added before the table has them, or the `GNTST_*` status refusing it.
    /// The table never shrinks.
    pub fn frames_to_add(&self, wanted: u32) -> Result<u32, i16> {
        if wanted > MAX_FRAMES {
            return Err(GNTST_general_error);
        }
        Ok(wanted.saturating_sub(self.frames))
    }

    /// Records that the table grew to `frames` frames.
    pub fn grew_to(&mut self, frames: u32) {
        self.frames = self.frames.max(frames.min(MAX_FRAMES));
    }
}

/// A v1 grant entry (`flags`, `domid`, `frame`) as its 8 bytes.
pub fn entry_bytes(flags: u16, domid: DomId, frame: u32) -> [u8; 8] {
    let mut bytes = [0u8; 8];
    bytes[0..2].copy_from_slice(&flags.to_le_bytes());
    bytes[2..4].copy_from_slice(&domid.to_le_bytes());
    bytes[4..8].copy_from_slice(&frame.to_le_bytes());
    bytes
}

/// The entries the toolstack writes before a guest starts: the console and
/// xenstore pages granted to their backend domain (`xc_dom_gnttab_seed`).
/// Returns (entry index, entry bytes) pairs.
pub fn seed_entries(backend: DomId, console_frame: u32, xenstore_frame: u32) -> [(u32, [u8; 8]); 2] {
    [
        (GNTTAB_RESERVED_CONSOLE, entry_bytes(GTF_permit_access, backend, console_frame)),
        (GNTTAB_RESERVED_XENSTORE, entry_bytes(GTF_permit_access, backend, xenstore_frame)),
    ]
}

/// Bytes per page, the unit of grants.
pub const PAGE_SIZE: u32 = 4096;

/// Who `dom` of a `GNTTABOP_map_grant_ref` names: Xen looks the domain up
/// by id only, so `DOMID_SELF` (like any id no domain has) is
/// `GNTST_bad_domain`. Any existing domain may be named (the default XSM
/// policy lets every domain map from every other); what it granted decides.
pub fn map_granter(dom: DomId, own: DomId, backend: DomId) -> Result<Granter, i16> {
    match dom {
        _ if dom == own => Ok(Granter::Own),
        _ if dom == backend => Ok(Granter::Backend),
        _ => Err(GNTST_bad_domain),
    }
}

/// Who one end of a `GNTTABOP_copy` names. A frame number (`is_gref`
/// false) may only name the caller's own memory through `DOMID_SELF`
/// (`GNTST_permission_denied` otherwise, even for the caller's own id);
/// a grant reference may name any existing domain, `DOMID_SELF` included.
pub fn copy_granter(domid: DomId, is_gref: bool, own: DomId, backend: DomId) -> Result<Granter, i16> {
    if domid != DOMID_SELF && !is_gref {
        return Err(GNTST_permission_denied);
    }
    match domid {
        DOMID_SELF => Ok(Granter::Own),
        _ => map_granter(domid, own, backend),
    }
}

/// A domain whose grant table an operation uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granter {
    /// The calling guest itself.
    Own,
    /// The built-in backends' domain, which grants the guest nothing.
    Backend,
}

/// The grant table of a domain that has granted nothing: Xen's initial
/// single frame of empty entries. References beyond it are
/// `GNTST_bad_gntref`, the others `GNTST_general_error`.
#[derive(Clone, Copy, Debug, Default)]
pub struct UngrantedTable;

impl SharedEntries for UngrantedTable {
    fn len(&self) -> u32 {
        INITIAL_FRAMES * ENTRIES_PER_FRAME
    }

    fn read(&self, _: GrantRef) -> GrantEntryV1 {
        GrantEntryV1::default()
    }

    fn write_flags(&mut self, _: GrantRef, _: u16) {}
}

/// Version-1 entries in one table frame.
pub const ENTRIES_PER_FRAME: u32 = PAGE_SIZE / 8;

/// The L1 entry of a PV host mapping of `frame` (Xen's
/// `grant_to_pte_flags`): present, accessed, dirty and never executable;
/// writable unless `GNTMAP_readonly`; user-accessible with
/// `GNTMAP_application_map`; the software bits from the flags' guest-use
/// bits. The validator adds the 64-bit PV kernel/user bits when it stores it.
pub fn host_mapping_pte(frame: u64, map_flags: u32) -> u64 {
    let mut flags = pte::PRESENT | pte::ACCESSED | pte::DIRTY | pte::NX;
    if map_flags & GNTMAP_readonly == 0 {
        flags |= pte::RW;
    }
    if map_flags & GNTMAP_application_map != 0 {
        flags |= pte::USER;
    }
    flags |= (u64::from(map_flags >> GNTMAP_GUEST_AVAIL_SHIFT) << 9) & pte::AVAIL;
    pte::make_entry(Mfn(frame), flags)
}

/// `_GNTMAP_guest_avail0`: flag bits from here on are the guest's own.
const GNTMAP_GUEST_AVAIL_SHIFT: u32 = 16;

/// Whether an L1 entry still is the host mapping of `frame` made with
/// `map_flags`: same frame, present, and writable exactly when the mapping
/// is (Xen checks only these before removing it).
pub fn is_host_mapping(entry: u64, frame: u64, map_flags: u32) -> bool {
    let expected = host_mapping_pte(frame, map_flags);
    pte::entry_mfn(entry) == Mfn(frame) && (entry ^ expected) & (pte::PRESENT | pte::RW) == 0
}

/// `GNTTABOP_copy` bounds: each end's `offset + len` within the page, or
/// `GNTST_bad_copy_arg`.
pub fn check_copy_bounds(source_offset: u16, dest_offset: u16, len: u16) -> Result<(), i16> {
    let fits = |offset: u16| u32::from(offset) + u32::from(len) <= PAGE_SIZE;
    if fits(source_offset) && fits(dest_offset) {
        Ok(())
    } else {
        Err(GNTST_bad_copy_arg)
    }
}
