//! The guest's grant table as the hypervisor sizes it: which version is in
//! use and how many shared frames exist, with Xen's answers for
//! `GNTTABOP_query_size`, `setup_table`, `set_version` and `get_version`.
//! Only version 1 is offered (as Xen with `gnttab=max-ver:1`).

use hypercalls::abi::grant_table::{
    GNTST_general_error, GTF_permit_access, GNTTAB_RESERVED_CONSOLE, GNTTAB_RESERVED_XENSTORE,
};
use hypercalls::abi::xen::DomId;
use hypercalls::XenError;

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

#[cfg(test)]
mod tests {
    use super::*;
    use hypercalls::abi::grant_table::GrantEntryV1;

    #[test]
    fn only_version_one_is_offered() {
        let mut table = GrantTableSize::new();
        assert_eq!(table.set_version(1), (Ok(()), 1));
        assert_eq!(table.set_version(2), (Err(XenError::ENOSYS), 1));
        assert_eq!(table.set_version(0), (Err(XenError::EINVAL), 1));
        assert_eq!(table.set_version(3), (Err(XenError::EINVAL), 1));
        assert_eq!(table.version(), 1);
    }

    #[test]
    fn the_table_grows_on_demand_up_to_the_maximum() {
        let mut table = GrantTableSize::new();
        assert_eq!(table.frames(), 1);
        assert_eq!(table.frames_to_add(0), Ok(0));
        assert_eq!(table.frames_to_add(1), Ok(0));
        assert_eq!(table.frames_to_add(4), Ok(3));
        table.grew_to(4);
        assert_eq!(table.frames(), 4);
        assert_eq!(table.frames_to_add(2), Ok(0), "never shrinks");
        assert_eq!(table.frames_to_add(MAX_FRAMES), Ok(MAX_FRAMES - 4));
        assert_eq!(table.frames_to_add(MAX_FRAMES + 1), Err(GNTST_general_error));
    }

    #[test]
    fn seed_entries_have_the_v1_layout() {
        let entries = seed_entries(0, 0x1234, 0xabcdef);
        assert_eq!(entries[0].0, GNTTAB_RESERVED_CONSOLE);
        assert_eq!(entries[1].0, GNTTAB_RESERVED_XENSTORE);
        let entry = GrantEntryV1 {
            flags: u16::from_le_bytes([entries[1].1[0], entries[1].1[1]]),
            domid: u16::from_le_bytes([entries[1].1[2], entries[1].1[3]]),
            frame: u32::from_le_bytes(entries[1].1[4..8].try_into().unwrap()),
        };
        assert_eq!((entry.flags, entry.domid, entry.frame), (GTF_permit_access, 0, 0xabcdef));
        assert_eq!(core::mem::size_of::<GrantEntryV1>(), 8);
        assert_eq!(core::mem::offset_of!(GrantEntryV1, frame), 4);
    }
}
