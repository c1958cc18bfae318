//! Frames changing hands between the guest and the hypervisor, for
//! ballooning and `XENMEM_exchange`. Every change goes through the frame
//! table, so a frame the guest still uses anywhere cannot be taken, and a
//! failure part-way leaves every frame where it was.

use hypercalls::XenError;
use hypervisor::mm::{Mfn, Owner};

use crate::arch::memory;
use crate::domain::{build, memory as domain_memory, GUEST_DOMID};

/// Largest extent order a domU may use (Xen's `domu_max_order` default).
pub const MAX_EXTENT_ORDER: u32 = 9;
/// Without an address limit, any machine frame will do.
pub const NO_ADDRESS_LIMIT: u64 = u64::MAX;

/// `pages` new zeroed frames below machine frame `frame_limit`, owned by
/// the guest; their first frame number.
pub fn allocate(pages: u64, frame_limit: u64) -> Result<u64, XenError> {
    let first =
        memory::allocate_frames_below(pages, frame_limit).ok_or(XenError::ENOMEM)? / memory::PAGE_SIZE;
    let assigned = domain_memory::with(|state, _| {
        (first..first + pages)
            .try_for_each(|mfn| state.frames.assign_owner(Mfn(mfn), Owner::Domain(GUEST_DOMID)))
    });
    if assigned.is_err() {
        take_back_and_free(first, pages);
        return Err(XenError::ENOMEM);
    }
    Ok(first)
}

/// Returns frames the guest never saw to the allocator.
pub fn take_back_and_free(first: u64, pages: u64) {
    domain_memory::with(|state, _| {
        for mfn in first..first + pages {
            let _ = state.frames.assign_owner(Mfn(mfn), Owner::Hypervisor);
        }
    });
    for mfn in first..first + pages {
        memory::free_frame(mfn * memory::PAGE_SIZE);
    }
}

/// Takes `pages` frames from `first` on away from the guest (Xen's
/// `steal_page`): each must be the guest's and unused. All or nothing;
/// `-EINVAL` otherwise.
pub fn steal(first: u64, pages: u64) -> Result<(), XenError> {
    let end = first.checked_add(pages).ok_or(XenError::EINVAL)?;
    domain_memory::with(|state, _| {
        for mfn in first..end {
            let owned =
                state.frames.frame(Mfn(mfn)).is_some_and(|info| info.owner() == Owner::Domain(GUEST_DOMID));
            let taken = owned && state.frames.assign_owner(Mfn(mfn), Owner::Hypervisor).is_ok();
            if !taken {
                // Just taken, so unused: handing them back cannot fail.
                for back in first..mfn {
                    let _ = state.frames.assign_owner(Mfn(back), Owner::Domain(GUEST_DOMID));
                }
                return Err(XenError::EINVAL);
            }
        }
        Ok(())
    })
}

/// Undoes [`steal`].
pub fn give_back(first: u64, pages: u64) {
    domain_memory::with(|state, _| {
        for mfn in first..first + pages {
            let _ = state.frames.assign_owner(Mfn(mfn), Owner::Domain(GUEST_DOMID));
        }
    });
}

/// Frees stolen frames for good: their M2P entries become invalid.
pub fn free_stolen(first: u64, pages: u64) {
    for mfn in first..first + pages {
        build::m2p_set(mfn, build::INVALID_M2P_ENTRY);
        memory::free_frame(mfn * memory::PAGE_SIZE);
    }
}
