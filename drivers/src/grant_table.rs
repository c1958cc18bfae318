//! Version-1 grant tables (`xen/grant_table.h`), the granting guest's side.
//!
//! A guest shares one of its frames with another domain by filling an entry
//! of its grant table: `domid` and `frame` first, then, after a barrier,
//! `flags = GTF_permit_access` (plus `GTF_readonly`). While the grantee has
//! the frame mapped, Xen sets `GTF_reading`/`GTF_writing` in the same
//! `flags` word, so revoking access is a compare-exchange that fails while
//! either is set.
//!
//! [`GrantRefAllocator`] hands out free entry numbers; the first
//! [`GNTTAB_NR_RESERVED_ENTRIES`] belong to the toolstack (console, xenstore)
//! and are never handed out.

use core::sync::atomic::{AtomicU16, AtomicU32, Ordering};

use alloc::vec::Vec;

use hypercalls::abi::grant_table::{
    GTF_permit_access, GTF_reading, GTF_readonly, GTF_type_mask, GTF_writing, GrantEntryV1, GrantRef,
    GNTTAB_NR_RESERVED_ENTRIES,
};
use hypercalls::abi::xen::DomId;

/// One v1 grant entry, as atomics with exactly [`GrantEntryV1`]'s layout.
#[repr(C)]
pub struct GrantEntryV1View {
    pub flags: AtomicU16,
    pub domid: AtomicU16,
    pub frame: AtomicU32,
}

const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    assert!(size_of::<GrantEntryV1View>() == size_of::<GrantEntryV1>());
    assert!(align_of::<GrantEntryV1View>() == align_of::<GrantEntryV1>());
    assert!(offset_of!(GrantEntryV1View, flags) == offset_of!(GrantEntryV1, flags));
    assert!(offset_of!(GrantEntryV1View, domid) == offset_of!(GrantEntryV1, domid));
    assert!(offset_of!(GrantEntryV1View, frame) == offset_of!(GrantEntryV1, frame));
};

/// Grant entries in one 4 KiB grant-table frame.
pub const ENTRIES_PER_FRAME: usize = 4096 / core::mem::size_of::<GrantEntryV1>();

impl GrantEntryV1View {
    /// An invalid (unused) entry.
    pub const fn new() -> Self {
        Self { flags: AtomicU16::new(0), domid: AtomicU16::new(0), frame: AtomicU32::new(0) }
    }
}

impl Default for GrantEntryV1View {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a grant operation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantError {
    /// The reference is beyond the end of the table.
    RefOutOfRange { gref: GrantRef, entries: usize },
    /// The frame number does not fit the 32-bit `frame` field of a v1 entry.
    FrameTooLarge { frame: u64 },
    /// The entry already grants access (or is still being used by Xen);
    /// end the old grant first.
    InUse { gref: GrantRef },
    /// The grantee still has the frame mapped (`GTF_reading`/`GTF_writing`);
    /// try again after it unmaps.
    Busy { gref: GrantRef },
    /// The reference is one of the toolstack's reserved entries.
    Reserved { gref: GrantRef },
    /// The reference was not allocated (double free).
    NotAllocated { gref: GrantRef },
}

fn entry(entries: &[GrantEntryV1View], gref: GrantRef) -> Result<&GrantEntryV1View, GrantError> {
    entries.get(gref as usize).ok_or(GrantError::RefOutOfRange { gref, entries: entries.len() })
}

/// Grants `domid` access to `frame` through entry `gref`, read-only if
/// `readonly`. The entry must be unused.
pub fn grant_access(
    entries: &[GrantEntryV1View],
    gref: GrantRef,
    domid: DomId,
    frame: u64,
    readonly: bool,
) -> Result<(), GrantError> {
    let entry = entry(entries, gref)?;
    let frame = u32::try_from(frame).map_err(|_| GrantError::FrameTooLarge { frame })?;
    let flags = entry.flags.load(Ordering::Acquire);
    if flags & (GTF_type_mask | GTF_reading | GTF_writing) != 0 {
        return Err(GrantError::InUse { gref });
    }
    entry.domid.store(domid, Ordering::Relaxed);
    entry.frame.store(frame, Ordering::Relaxed);
    let access = if readonly { GTF_permit_access | GTF_readonly } else { GTF_permit_access };
    // Release: Xen must never see the permission before the domid and frame.
    entry.flags.store(access, Ordering::Release);
    Ok(())
}

/// Revokes the grant in entry `gref`, unless the grantee still has it
/// mapped, in which case nothing changes and [`GrantError::Busy`] says so.
pub fn end_access(entries: &[GrantEntryV1View], gref: GrantRef) -> Result<(), GrantError> {
    let entry = entry(entries, gref)?;
    let mut flags = entry.flags.load(Ordering::Acquire);
    loop {
        if flags & (GTF_reading | GTF_writing) != 0 {
            return Err(GrantError::Busy { gref });
        }
        // Xen may set GTF_reading/GTF_writing between our load and the
        // exchange; then the exchange fails and we look again.
        match entry.flags.compare_exchange(flags, 0, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Ok(()),
            Err(current) => flags = current,
        }
    }
}

/// Whether entry `gref` currently grants access or is in use by Xen.
pub fn is_in_use(entries: &[GrantEntryV1View], gref: GrantRef) -> Result<bool, GrantError> {
    let flags = entry(entries, gref)?.flags.load(Ordering::Acquire);
    Ok(flags & (GTF_type_mask | GTF_reading | GTF_writing) != 0)
}

/// Free grant references of a table, excluding the reserved ones.
pub struct GrantRefAllocator {
    /// Bit `r` set: reference `r` is handed out (reserved ones are set).
    allocated: Vec<u64>,
    entries: u32,
    /// Where the search for a free reference starts.
    hint: u32,
    free: u32,
}

impl GrantRefAllocator {
    /// An allocator for a table of `entries` entries; references below
    /// [`GNTTAB_NR_RESERVED_ENTRIES`] are never handed out.
    pub fn new(entries: u32) -> Self {
        let mut allocator = Self { allocated: Vec::new(), entries: 0, hint: 0, free: 0 };
        allocator.grow(entries);
        allocator
    }

    /// Extends the allocator after the table has grown to `entries` entries
    /// (it never shrinks).
    pub fn grow(&mut self, entries: u32) {
        if entries <= self.entries {
            return;
        }
        self.allocated.resize((entries as usize).div_ceil(64), 0);
        for gref in self.entries..entries.min(GNTTAB_NR_RESERVED_ENTRIES) {
            self.set(gref, true);
        }
        let first_free = self.entries.max(GNTTAB_NR_RESERVED_ENTRIES);
        self.free += entries.saturating_sub(first_free);
        if self.free > 0 && self.hint >= self.entries {
            self.hint = first_free;
        }
        self.entries = entries;
    }

    /// Entries the allocator covers.
    pub fn entries(&self) -> u32 {
        self.entries
    }

    /// References still available.
    pub fn available(&self) -> u32 {
        self.free
    }

    fn is_set(&self, gref: GrantRef) -> bool {
        self.allocated[gref as usize / 64] & (1 << (gref % 64)) != 0
    }

    fn set(&mut self, gref: GrantRef, allocated: bool) {
        let word = &mut self.allocated[gref as usize / 64];
        if allocated {
            *word |= 1 << (gref % 64);
        } else {
            *word &= !(1 << (gref % 64));
        }
    }

    /// Hands out a free reference, or `None` when all are in use.
    pub fn alloc(&mut self) -> Option<GrantRef> {
        if self.free == 0 {
            return None;
        }
        let start = self.hint.max(GNTTAB_NR_RESERVED_ENTRIES);
        let found = (start..self.entries)
            .chain(GNTTAB_NR_RESERVED_ENTRIES..start)
            .find(|&gref| !self.is_set(gref))?;
        self.set(found, true);
        self.free -= 1;
        self.hint = found + 1;
        Some(found)
    }

    /// Returns `gref` to the pool. The caller must have ended access first.
    pub fn free(&mut self, gref: GrantRef) -> Result<(), GrantError> {
        if gref >= self.entries {
            return Err(GrantError::RefOutOfRange { gref, entries: self.entries as usize });
        }
        if gref < GNTTAB_NR_RESERVED_ENTRIES {
            return Err(GrantError::Reserved { gref });
        }
        if !self.is_set(gref) {
            return Err(GrantError::NotAllocated { gref });
        }
        self.set(gref, false);
        self.free += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
