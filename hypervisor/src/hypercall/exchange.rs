//! `XENMEM_exchange`: a PV guest trades some of its frames for new ones,
//! typically to get machine-contiguous or low (DMA-able) memory. The work
//! goes in chunks (the larger of the two extent sizes); a chunk is either
//! exchanged whole or not at all, and `nr_exchanged` tells the guest how
//! many input extents are done.
//!
//! Both lists are checked to be guest memory before any frame moves: the
//! missing check on the output list was XSA-212.

use core::mem::offset_of;

use hypercalls::abi::memory::{XENMEMF_exact_node_request, XenMemoryExchange, XenMemoryReservation};
use hypercalls::abi::xen::DOMID_SELF;
use hypercalls::XenError;

use super::guest_frames::{self, MAX_EXTENT_ORDER, NO_ADDRESS_LIMIT};
use super::HypercallResult;
use crate::arch::guest_access;
use crate::domain::{build, BACKEND_DOMID, GUEST_DOMID};

pub fn exchange(argument: u64) -> HypercallResult {
    let mut request: XenMemoryExchange = guest_access::read_struct(argument).map_err(|_| XenError::EFAULT)?;
    let result = exchange_chunks(&mut request);
    // Progress is reported whatever happened, and a guest that cannot
    // receive it gets -EFAULT instead.
    let at = argument + offset_of!(XenMemoryExchange, nr_exchanged) as u64;
    if guest_access::write(at, &request.nr_exchanged.to_le_bytes()).is_err() {
        return Err(XenError::EFAULT);
    }
    result
}

/// Sizes of one chunk: how many input and output extents it takes.
struct Chunk {
    in_extents: u64,
    out_extents: u64,
}

fn check_request(request: &XenMemoryExchange) -> Result<Chunk, XenError> {
    let (input, output) = (&request.r#in, &request.out);
    if input.extent_order.max(output.extent_order) > MAX_EXTENT_ORDER {
        return Err(XenError::EPERM);
    }
    let pages = |list: &XenMemoryReservation| list.nr_extents.checked_mul(1 << list.extent_order);
    let sizes_match = matches!((pages(input), pages(output)), (Some(a), Some(b)) if a == b);
    if request.nr_exchanged > input.nr_extents || input.domid != output.domid || !sizes_match {
        return Err(XenError::EINVAL);
    }
    let chunk = if input.extent_order <= output.extent_order {
        Chunk { in_extents: 1 << (output.extent_order - input.extent_order), out_extents: 1 }
    } else {
        Chunk { in_extents: 1, out_extents: 1 << (input.extent_order - output.extent_order) }
    };
    Ok(chunk)
}

/// `true` when entries `[first, last]` of a guest list are guest memory.
fn list_is_guest(list: u64, first: u64, last: u64) -> bool {
    list.checked_add(8 * first)
        .is_some_and(|start| guest_access::is_guest_range(start, 8 * (last - first + 1)))
}

fn exchange_chunks(request: &mut XenMemoryExchange) -> HypercallResult {
    let chunk = check_request(request)?;
    if request.nr_exchanged == request.r#in.nr_extents {
        return Ok(0);
    }
    let (input, output) = (request.r#in, request.out);
    let first_chunk = request.nr_exchanged / chunk.in_extents;
    if !list_is_guest(input.extent_start, request.nr_exchanged, input.nr_extents - 1)
        || !list_is_guest(output.extent_start, first_chunk * chunk.out_extents, output.nr_extents - 1)
    {
        return Err(XenError::EFAULT);
    }
    // A domU may not ask for a NUMA node exactly (it has no say in placement).
    let node = (output.mem_flags >> 8) & 0xff;
    if node != 0 && output.mem_flags & XENMEMF_exact_node_request != 0 {
        return Err(XenError::EINVAL);
    }
    match input.domid {
        DOMID_SELF | GUEST_DOMID => {}
        BACKEND_DOMID => return Err(XenError::EPERM),
        _ => return Err(XenError::ESRCH),
    }
    let address_bits = output.mem_flags & 0xff;
    let frame_limit = match address_bits {
        0 => NO_ADDRESS_LIMIT,
        bits => 1u64.checked_shl(bits.saturating_sub(12)).unwrap_or(NO_ADDRESS_LIMIT),
    };
    let chunks = input.nr_extents / chunk.in_extents;
    for index in first_chunk..chunks {
        if let Err(error) = exchange_one_chunk(&input, &output, &chunk, index, frame_limit) {
            request.nr_exchanged = index * chunk.in_extents;
            return Err(error);
        }
    }
    request.nr_exchanged = input.nr_extents;
    Ok(0)
}

/// Exchanges chunk `index`: every input frame must be the guest's and
/// unused (Xen's `steal_page`), or nothing changes.
fn exchange_one_chunk(
    input: &XenMemoryReservation,
    output: &XenMemoryReservation,
    chunk: &Chunk,
    index: u64,
    frame_limit: u64,
) -> Result<(), XenError> {
    let in_pages = 1u64 << input.extent_order;
    let out_pages = 1u64 << output.extent_order;
    // Input extents taken so far (first frame each).
    let mut stolen = alloc::vec::Vec::new();
    let stealing = (0..chunk.in_extents).try_for_each(|extent| {
        let slot = input.extent_start + 8 * (index * chunk.in_extents + extent);
        let first = guest_access::read_u64(slot).map_err(|_| XenError::EFAULT)?;
        guest_frames::steal(first, in_pages)?;
        stolen.push(first);
        Ok(())
    });
    let mut allocated = alloc::vec::Vec::new();
    let allocating = stealing.and_then(|()| {
        (0..chunk.out_extents).try_for_each(|_| {
            allocated.push(guest_frames::allocate(out_pages, frame_limit)?);
            Ok(())
        })
    });
    if let Err(error) = allocating {
        for &first in &stolen {
            guest_frames::give_back(first, in_pages);
        }
        for &first in &allocated {
            guest_frames::take_back_and_free(first, out_pages);
        }
        return Err(error);
    }
    for &first in &stolen {
        guest_frames::free_stolen(first, in_pages);
    }
    // From here the chunk cannot fail; an output slot the guest took away
    // meanwhile only costs it the news of which frame it got.
    let mut result = Ok(());
    for (extent, &first) in allocated.iter().enumerate() {
        let slot = output.extent_start + 8 * (index * chunk.out_extents + extent as u64);
        match guest_access::read_u64(slot) {
            Ok(first_pfn) => {
                for offset in 0..out_pages {
                    build::m2p_set(first + offset, first_pfn.wrapping_add(offset));
                }
                if guest_access::write(slot, &first.to_le_bytes()).is_err() {
                    result = Err(XenError::EFAULT);
                }
            }
            Err(_) => result = Err(XenError::EFAULT),
        }
    }
    result
}
