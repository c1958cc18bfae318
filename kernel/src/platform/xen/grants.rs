//! Grant tables, version 1: this domain's table of "domain D may map my
//! frame F" entries. `GNTTABOP_setup_table` names the table's frames; the
//! platform maps them at a reserved, page-aligned range of the kernel image
//! ([`TABLE`]); the entry protocol is `drivers::grant_table`.

use core::sync::atomic::{AtomicUsize, Ordering};

use drivers::grant_table::{self, GrantEntryV1View, GrantError, GrantRefAllocator, ENTRIES_PER_FRAME};
use hypercalls::abi::grant_table::GrantRef;
use hypercalls::abi::xen::DomId;
use hypercalls::ops::grant_table as gnttab;
use hypercalls::XenError;

/// Grant-table frames the kernel maps (2048 entries).
pub const MAX_FRAMES: usize = 4;

/// Where the table's frames are mapped: until then, ordinary zeroed pages.
#[repr(C, align(4096))]
pub struct GrantTablePages([GrantEntryV1View; MAX_FRAMES * ENTRIES_PER_FRAME]);

pub static TABLE: GrantTablePages =
    GrantTablePages([const { GrantEntryV1View::new() }; MAX_FRAMES * ENTRIES_PER_FRAME]);

static FRAMES_MAPPED: AtomicUsize = AtomicUsize::new(0);
static REFS: spin::Mutex<Option<GrantRefAllocator>> = spin::Mutex::new(None);

fn entries() -> &'static [GrantEntryV1View] {
    &TABLE.0[..FRAMES_MAPPED.load(Ordering::Acquire) * ENTRIES_PER_FRAME]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantsError {
    NotSetUp,
    Xen(XenError),
    Table(GrantError),
    NoFreeReference,
}

/// Sets up the table and maps its frames with `map_frame`; returns the
/// number of entries available.
pub fn init(map_frame: super::MapFrame) -> Result<usize, GrantsError> {
    let size = gnttab::query_size().map_err(GrantsError::Xen)?;
    let wanted = (size.max_nr_frames as usize).clamp(1, MAX_FRAMES);
    let mut frames = [0u64; MAX_FRAMES];
    gnttab::setup_table(&mut frames[..wanted]).map_err(GrantsError::Xen)?;
    let base = &TABLE as *const GrantTablePages as u64;
    for (index, &frame) in frames[..wanted].iter().enumerate() {
        map_frame(base + (index * 4096) as u64, frame).map_err(GrantsError::Xen)?;
    }
    FRAMES_MAPPED.store(wanted, Ordering::Release);
    *REFS.lock() = Some(GrantRefAllocator::new((wanted * ENTRIES_PER_FRAME) as u32));
    Ok(wanted * ENTRIES_PER_FRAME)
}

/// Lets `domid` map the frame `gfn` (a machine frame under PV) through a
/// new reference, read-only if asked.
pub fn grant_access(domid: DomId, gfn: u64, readonly: bool) -> Result<GrantRef, GrantsError> {
    let gref =
        REFS.lock().as_mut().ok_or(GrantsError::NotSetUp)?.alloc().ok_or(GrantsError::NoFreeReference)?;
    if let Err(error) = grant_table::grant_access(entries(), gref, domid, gfn, readonly) {
        let _ = REFS.lock().as_mut().map(|refs| refs.free(gref));
        return Err(GrantsError::Table(error));
    }
    Ok(gref)
}

/// Revokes `gref` and frees it (fails while the grantee has it mapped).
pub fn end_access(gref: GrantRef) -> Result<(), GrantsError> {
    grant_table::end_access(entries(), gref).map_err(GrantsError::Table)?;
    REFS.lock().as_mut().ok_or(GrantsError::NotSetUp)?.free(gref).map_err(GrantsError::Table)
}

/// Whether `gref` currently grants access.
pub fn is_granted(gref: GrantRef) -> bool {
    grant_table::is_in_use(entries(), gref).unwrap_or(false)
}

/// The entry behind `gref`, for inspection: (flags, domid, frame).
pub fn entry(gref: GrantRef) -> Option<(u16, u16, u32)> {
    let entry = entries().get(gref as usize)?;
    Some((
        entry.flags.load(Ordering::Acquire),
        entry.domid.load(Ordering::Acquire),
        entry.frame.load(Ordering::Acquire),
    ))
}

/// Entries mapped (0 before [`init`]).
pub fn capacity() -> usize {
    entries().len()
}
