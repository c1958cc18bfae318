//! Active grants: which entries of a granting domain's table are in use
//! (mapped or being copied) and how often, and the `GTF_reading` /
//! `GTF_writing` bits that tell the granting domain so.
//!
//! This is Xen's `active_grant_entry` with its pin counter (one 8-bit
//! counter per kind of use), `_set_status_v1` and `reduce_status_for_pin`,
//! for version-1 tables. The shared entries live in memory the granting
//! domain can write at any time, so they are read through
//! [`SharedEntries`] and re-checked on every first use.

use alloc::collections::BTreeMap;

use hypercalls::abi::grant_table::{
    GNTMAP_device_map, GNTMAP_host_map, GNTMAP_readonly, GNTST_bad_domain, GNTST_bad_gntref, GNTST_bad_page,
    GNTST_general_error, GTF_permit_access, GTF_reading, GTF_readonly, GTF_sub_page, GTF_type_mask,
    GTF_writing, GrantEntryV1, GrantRef,
};
use hypercalls::abi::xen::DomId;

/// One pin of a writable host mapping (also: a copy into the grant).
pub const PIN_HOST_WRITE: u32 = 1;
/// One pin of a read-only host mapping (also: a copy out of the grant).
pub const PIN_HOST_READ: u32 = 1 << 8;
/// One pin of a writable device mapping.
pub const PIN_DEVICE_WRITE: u32 = 1 << 16;
/// One pin of a read-only device mapping.
pub const PIN_DEVICE_READ: u32 = 1 << 24;

const COUNTER_MASK: u32 = 0xff;
const WRITE_PINS: u32 = (COUNTER_MASK * PIN_HOST_WRITE) | (COUNTER_MASK * PIN_DEVICE_WRITE);

/// The top bit of each counter `increment` touches: a counter that reached
/// it takes no more pins (Xen's `GNTPIN_incr2oflow_mask`).
const fn overflow_mask(increment: u32) -> u32 {
    increment << 7
}

/// The pins a `GNTTABOP_map_grant_ref` with `flags` takes; 0 when it asks
/// for neither a host nor a device mapping (which Xen answers with
/// `GNTST_bad_gntref`).
pub const fn map_pin_increment(flags: u32) -> u32 {
    let readonly = flags & GNTMAP_readonly != 0;
    let mut increment = 0;
    if flags & GNTMAP_device_map != 0 {
        increment += if readonly { PIN_DEVICE_READ } else { PIN_DEVICE_WRITE };
    }
    if flags & GNTMAP_host_map != 0 {
        increment += if readonly { PIN_HOST_READ } else { PIN_HOST_WRITE };
    }
    increment
}

/// The pin a copy takes on its source (read) or destination (write) grant.
pub const fn copy_pin_increment(readonly: bool) -> u32 {
    if readonly {
        PIN_HOST_READ
    } else {
        PIN_HOST_WRITE
    }
}

/// The shared half of a granting domain's version-1 table.
pub trait SharedEntries {
    /// Number of entries (the table's frames times 512).
    fn len(&self) -> u32;
    /// Entry `gref`, below [`len`](Self::len).
    fn read(&self, gref: GrantRef) -> GrantEntryV1;
    /// Replaces the flags of entry `gref`, below [`len`](Self::len).
    fn write_flags(&mut self, gref: GrantRef, flags: u16);

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why an entry is pinned: mappings may not use sub-page grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    Map,
    Copy,
}

/// One use of a grant: by whom, which pins it takes, and whether it writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrantUse {
    pub grantee: DomId,
    pub increment: u32,
    pub readonly: bool,
    pub purpose: Purpose,
}

impl GrantUse {
    /// A `GNTTABOP_map_grant_ref` with `flags` (whose increment is 0 if it
    /// asks for no mapping at all; check that first).
    pub const fn map(grantee: DomId, flags: u32) -> Self {
        let readonly = flags & GNTMAP_readonly != 0;
        Self { grantee, increment: map_pin_increment(flags), readonly, purpose: Purpose::Map }
    }

    /// One end of a `GNTTABOP_copy`: the source reads, the destination writes.
    pub const fn copy(grantee: DomId, readonly: bool) -> Self {
        Self { grantee, increment: copy_pin_increment(readonly), readonly, purpose: Purpose::Copy }
    }
}

/// The flags an entry gets when `grantee` starts using it (Xen's
/// `_set_status_v1`), or `GNTST_general_error` when the entry does not
/// grant that use. An entry already pinned (`pinned`) is not re-checked
/// for type and grantee: the pin holds them.
pub fn set_status(
    entry: GrantEntryV1,
    pinned: bool,
    readonly: bool,
    purpose: Purpose,
    grantee: DomId,
) -> Result<u16, i16> {
    let mask = match purpose {
        Purpose::Map => GTF_type_mask | GTF_sub_page,
        Purpose::Copy => GTF_type_mask,
    };
    if !pinned && (entry.flags & mask != GTF_permit_access || entry.domid != grantee) {
        return Err(GNTST_general_error);
    }
    let mut flags = entry.flags | GTF_reading;
    if !readonly {
        if entry.flags & GTF_readonly != 0 {
            return Err(GNTST_general_error);
        }
        flags |= GTF_writing;
    }
    Ok(flags)
}

/// The flags once the pins are down to `pin`: `GTF_reading` goes with the
/// last pin, `GTF_writing` with the last writable one (Xen's
/// `reduce_status_for_pin`). `readonly` says which kind of pin was dropped.
pub const fn reduce_status_for_pin(flags: u16, pin: u32, readonly: bool) -> u16 {
    let mut clear = if pin == 0 { GTF_reading } else { 0 };
    if !readonly && pin & WRITE_PINS == 0 {
        clear |= GTF_writing;
    }
    flags & !clear
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Active {
    pin: u32,
    grantee: DomId,
    frame: u64,
}

/// The active entries of one granting domain's table.
#[derive(Debug, Default)]
pub struct ActiveGrants {
    entries: BTreeMap<GrantRef, Active>,
}

impl ActiveGrants {
    pub const fn new() -> Self {
        Self { entries: BTreeMap::new() }
    }

    /// Pins entry `gref` of `table` for `grant_use` and returns the granted
    /// frame, as Xen's `map_grant_ref` (for [`Purpose::Map`]) and
    /// `acquire_grant_for_copy` (for [`Purpose::Copy`]) do before touching
    /// the frame. `frame_owned` says whether a frame belongs to the granting
    /// domain (Xen's `get_paged_frame`). On failure nothing stays pinned
    /// and the shared flags are as before; the answer is the `GNTST_*` status.
    pub fn pin(
        &mut self,
        table: &mut impl SharedEntries,
        gref: GrantRef,
        grant_use: GrantUse,
        frame_owned: impl Fn(u64) -> bool,
    ) -> Result<u64, i16> {
        let GrantUse { grantee, increment, readonly, purpose } = grant_use;
        if gref >= table.len() {
            return Err(GNTST_bad_gntref);
        }
        let current = self.entries.get(&gref).copied();
        if let Some(active) = current {
            if active.grantee != grantee || active.pin & overflow_mask(increment) != 0 {
                return Err(GNTST_general_error);
            }
        }
        let pin = current.map_or(0, |active| active.pin);
        let needs_status = pin == 0 || (!readonly && pin & WRITE_PINS == 0);
        let frame = if needs_status {
            let entry = table.read(gref);
            table.write_flags(gref, set_status(entry, pin != 0, readonly, purpose, grantee)?);
            let shared_frame = u64::from(entry.frame);
            match (current, purpose) {
                // A mapping that adds writing to a pinned entry keeps the
                // frame the pin recorded.
                (Some(active), Purpose::Map) => active.frame,
                _ if !frame_owned(shared_frame) => {
                    self.clear_status(table, gref, pin, readonly);
                    return Err(GNTST_bad_page);
                }
                // A copy re-reads the entry; it may not have moved since.
                (Some(active), Purpose::Copy) if active.frame != shared_frame => {
                    self.clear_status(table, gref, pin, readonly);
                    return Err(GNTST_general_error);
                }
                _ => shared_frame,
            }
        } else {
            let frame = current.map_or(0, |active| active.frame);
            // A copy through an entry already pinned for writing takes the
            // frame as recorded, which must still be the granter's.
            if purpose == Purpose::Copy && !frame_owned(frame) {
                self.clear_status(table, gref, pin, readonly);
                return Err(GNTST_bad_domain);
            }
            frame
        };
        self.entries.insert(gref, Active { pin: pin + increment, grantee, frame });
        Ok(frame)
    }

    /// Drops pins taken by [`pin`](Self::pin) with the same `increment`
    /// and `readonly`, clearing the shared flags the remaining pins no
    /// longer need.
    pub fn unpin(&mut self, table: &mut impl SharedEntries, gref: GrantRef, increment: u32, readonly: bool) {
        let Some(active) = self.entries.get_mut(&gref) else {
            return;
        };
        debug_assert!(active.pin >= increment, "unpin of {gref} below zero");
        active.pin = active.pin.saturating_sub(increment);
        let pin = active.pin;
        if pin == 0 {
            self.entries.remove(&gref);
        }
        self.clear_status(table, gref, pin, readonly);
    }

    /// The frame entry `gref` is pinned to, if it is.
    pub fn frame(&self, gref: GrantRef) -> Option<u64> {
        self.entries.get(&gref).map(|active| active.frame)
    }

    /// The pin counters of entry `gref` (0: not in use).
    pub fn pin_count(&self, gref: GrantRef) -> u32 {
        self.entries.get(&gref).map_or(0, |active| active.pin)
    }

    fn clear_status(&self, table: &mut impl SharedEntries, gref: GrantRef, pin: u32, readonly: bool) {
        if gref < table.len() {
            let flags = table.read(gref).flags;
            table.write_flags(gref, reduce_status_for_pin(flags, pin, readonly));
        }
    }
}
