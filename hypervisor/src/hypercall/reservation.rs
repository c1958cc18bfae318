//! Ballooning: `XENMEM_increase_reservation`, `XENMEM_decrease_reservation`
//! and `XENMEM_populate_physmap` for a PV guest, whose frame numbers are
//! machine frames. Every frame changes owner through the frame table, so a
//! guest can only give back frames it owns and nothing still maps.

use hypercalls::abi::memory::XenMemoryReservation;
use hypercalls::abi::xen::DOMID_SELF;
use hypercalls::XenError;

use super::guest_frames::{self, MAX_EXTENT_ORDER, NO_ADDRESS_LIMIT};
use super::memory::MEMOP_EXTENT_SHIFT;
use super::HypercallResult;
use crate::arch::guest_access;
use crate::domain::{self, build, GUEST_DOMID};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Increase,
    Decrease,
    Populate,
}

/// Largest `nr_extents` whose progress still fits in a continuation (the
/// bits of `cmd` above the command).
const MAX_EXTENTS: u64 = (u32::MAX >> MEMOP_EXTENT_SHIFT) as u64;

/// Reservation operations report progress, not errors: whatever goes wrong
/// (an unreadable argument or list, an unknown or forbidden domain, an
/// oversized extent, no memory) the answer is the number of extents done,
/// counting from `start_extent`, the continuation the caller passed in
/// `cmd`. Only a PV guest's own reservation may change.
pub fn reservation(operation: Operation, start_extent: u64, argument: u64) -> HypercallResult {
    let Ok(request) = guest_access::read_struct::<XenMemoryReservation>(argument) else {
        return Ok(start_extent);
    };
    if request.nr_extents > MAX_EXTENTS || start_extent >= request.nr_extents {
        return Ok(start_extent);
    }
    // Domain 0 exists but a domU may not touch its memory; other ids name no domain.
    if request.domid != DOMID_SELF && request.domid != GUEST_DOMID {
        return Ok(start_extent);
    }
    if request.extent_order > MAX_EXTENT_ORDER {
        return Ok(start_extent);
    }
    let list_may_be_null = operation == Operation::Increase && request.extent_start == 0;
    let list_bytes = 8 * (request.nr_extents - start_extent);
    if !list_may_be_null && !guest_access::is_guest_range(request.extent_start + 8 * start_extent, list_bytes)
    {
        return Ok(start_extent);
    }
    let pages_per_extent = 1u64 << request.extent_order;
    let mut done = start_extent;
    while done < request.nr_extents {
        let slot = (!list_may_be_null).then_some(request.extent_start + 8 * done);
        let completed = match (operation, slot) {
            (Operation::Increase, slot) => allocate_extent(pages_per_extent, None, slot),
            (_, None) => break,
            (Operation::Populate, Some(slot)) => match guest_access::read_u64(slot) {
                Ok(first_pfn) => allocate_extent(pages_per_extent, Some(first_pfn), Some(slot)),
                Err(_) => break,
            },
            (Operation::Decrease, Some(slot)) => match guest_access::read_u64(slot) {
                Ok(first_mfn) => release_extent(first_mfn, pages_per_extent),
                Err(_) => break,
            },
        };
        if completed.is_err() {
            break;
        }
        done += 1;
    }
    Ok(done)
}

/// Allocates one extent, records it for the domain and writes its first
/// MFN back to the guest. For populate_physmap the extent backs the pfns
/// starting at `first_pfn`.
fn allocate_extent(pages: u64, first_pfn: Option<u64>, slot: Option<u64>) -> Result<(), XenError> {
    let within_limit = domain::with(|d| d.tot_pages + pages <= d.max_pages);
    if !within_limit {
        return Err(XenError::ENOMEM);
    }
    if let Some(pfn) = first_pfn {
        let fits = domain::with(|d| pfn.checked_add(pages).is_some_and(|end| end <= d.max_pages));
        if !fits {
            return Err(XenError::EINVAL);
        }
    }
    let first = guest_frames::allocate(pages, NO_ADDRESS_LIMIT)?;
    domain::with(|d| {
        d.tot_pages += pages;
        if let Some(pfn) = first_pfn {
            for offset in 0..pages {
                let index = (pfn + offset) as usize;
                if d.p2m.len() <= index {
                    d.p2m.resize(index + 1, build::INVALID_M2P_ENTRY);
                }
                d.p2m[index] = first + offset;
                build::m2p_set(first + offset, pfn + offset);
            }
        }
    });
    match slot {
        Some(slot) => guest_access::write(slot, &first.to_le_bytes()).map_err(|_| XenError::EFAULT),
        None => Ok(()),
    }
}

/// Takes back an extent the guest owns and no longer uses anywhere.
fn release_extent(first_mfn: u64, pages: u64) -> Result<(), XenError> {
    guest_frames::steal(first_mfn, pages)?;
    guest_frames::free_stolen(first_mfn, pages);
    domain::with(|d| d.tot_pages -= pages);
    Ok(())
}
