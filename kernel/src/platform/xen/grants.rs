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
/// number of entries available. This is the PV way: `GNTTABOP_setup_table`
/// names the machine frames Xen holds the table in.
pub fn init(map_frame: super::MapFrame) -> Result<usize, GrantsError> {
    let wanted = frames_wanted()?;
    let mut frames = [0u64; MAX_FRAMES];
    gnttab::setup_table(&mut frames[..wanted]).map_err(GrantsError::Xen)?;
    for (index, &frame) in frames[..wanted].iter().enumerate() {
        map_frame(frame_address(index), frame).map_err(GrantsError::Xen)?;
    }
    Ok(finish(wanted))
}

/// How an auto-translated guest (PVH) puts grant-table frame `index` at
/// the guest frame behind `virt`, a page of [`TABLE`].
pub type PlaceFrame = fn(index: u64, virt: u64) -> Result<(), XenError>;

/// [`init`] for an auto-translated guest: there is no machine frame to map,
/// so each table frame is placed into the guest's own physical address
/// space, where [`TABLE`] already is (`XENMEM_add_to_physmap` with
/// `XENMAPSPACE_grant_table`; QEMU's emulation has no `setup_table`).
pub fn init_placed(place: PlaceFrame) -> Result<usize, GrantsError> {
    let wanted = frames_wanted()?;
    for index in 0..wanted {
        place(index as u64, frame_address(index)).map_err(GrantsError::Xen)?;
    }
    Ok(finish(wanted))
}

fn frames_wanted() -> Result<usize, GrantsError> {
    let size = gnttab::query_size().map_err(GrantsError::Xen)?;
    Ok((size.max_nr_frames as usize).clamp(1, MAX_FRAMES))
}

fn frame_address(index: usize) -> u64 {
    &TABLE as *const GrantTablePages as u64 + (index * 4096) as u64
}

fn finish(frames: usize) -> usize {
    FRAMES_MAPPED.store(frames, Ordering::Release);
    *REFS.lock() = Some(GrantRefAllocator::new((frames * ENTRIES_PER_FRAME) as u32));
    frames * ENTRIES_PER_FRAME
}

/// Lets `domid` map the frame `gfn` (a machine frame under PV, a guest
/// frame under PVH) through a new reference, read-only if asked.
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
