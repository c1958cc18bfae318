//! `memory_op`: reservations, the physmap and the memory map.

use crate::abi::memory::*;
use crate::abi::xen::{__HYPERVISOR_memory_op, DomId, XenPfn};
use crate::transport::{addr_of_mut, hypercall2};
use crate::XenError;

/// Issues `XENMEM_<cmd>` on `arg`.
///
/// # Safety
///
/// `arg` must be the struct `cmd` takes, and any guest handles in it must
/// be valid for what `cmd` does with them.
unsafe fn op<T>(cmd: u32, arg: &mut T) -> Result<u64, XenError> {
    // SAFETY: `arg` is mutably borrowed for the call; the rest is the
    // caller's contract.
    XenError::from_return(unsafe { hypercall2(__HYPERVISOR_memory_op, cmd as u64, addr_of_mut(arg)) })
}

/// The highest machine frame number in the system.
pub fn maximum_ram_page() -> Result<u64, XenError> {
    // SAFETY: XENMEM_maximum_ram_page takes no argument.
    XenError::from_return(unsafe { hypercall2(__HYPERVISOR_memory_op, XENMEM_maximum_ram_page as u64, 0) })
}

/// Pages currently allocated to `domid`.
pub fn current_reservation(domid: DomId) -> Result<u64, XenError> {
    let mut arg = domid;
    // SAFETY: Xen reads the `domid_t` borrowed here.
    unsafe { op(XENMEM_current_reservation, &mut arg) }
}

/// Pages `domid` may have at most.
pub fn maximum_reservation(domid: DomId) -> Result<u64, XenError> {
    let mut arg = domid;
    // SAFETY: Xen reads the `domid_t` borrowed here.
    unsafe { op(XENMEM_maximum_reservation, &mut arg) }
}

/// Where the machine-to-physical table is mapped (PV).
pub fn machphys_mapping() -> Result<XenMachphysMapping, XenError> {
    let mut arg = XenMachphysMapping::default();
    // SAFETY: Xen writes the `XenMachphysMapping` borrowed here.
    unsafe { op(XENMEM_machphys_mapping, &mut arg) }.map(|_| arg)
}

/// `XENMEM_exchange`: trades the extents `input` names (a PV guest's
/// machine frames) for new ones, writing the new frames' numbers over
/// `output` (which names the guest frames they will back). `address_bits`
/// (0: no limit) caps the new frames' machine addresses. Returns how many
/// input extents were exchanged alongside Xen's verdict: on failure some
/// chunks may already be done.
///
/// # Safety
///
/// The input frames leave the domain: the caller must have removed every
/// use of them (Xen refuses frames that are still mapped, but not ones the
/// guest merely remembers), and must record the new frames in its p2m.
pub unsafe fn exchange(
    input: &[u64],
    input_order: u32,
    output: &mut [u64],
    output_order: u32,
    address_bits: u32,
) -> (u64, Result<(), XenError>) {
    let reservation = |list: u64, len: usize, order: u32, flags: u32| XenMemoryReservation {
        extent_start: list,
        nr_extents: len as u64,
        extent_order: order,
        mem_flags: flags,
        domid: crate::abi::xen::DOMID_SELF,
    };
    let mut arg = XenMemoryExchange {
        r#in: reservation(input.as_ptr() as u64, input.len(), input_order, 0),
        out: reservation(addr_of_mut(output), output.len(), output_order, xenmemf_address_bits(address_bits)),
        nr_exchanged: 0,
    };
    // SAFETY: Xen reads `input` and writes within `output`, both borrowed
    // for the call; the frames changing hands are the caller's contract.
    let result = unsafe { op(XENMEM_exchange, &mut arg) };
    (arg.nr_exchanged, result.map(|_| ()))
}

/// Fills `entries` with the domain's pseudo-physical memory map; returns
/// how many entries were written.
pub fn memory_map(entries: &mut [E820Entry]) -> Result<usize, XenError> {
    let mut arg = XenMemoryMap { nr_entries: super::count(entries.len())?, buffer: addr_of_mut(entries) };
    // SAFETY: Xen writes at most `nr_entries` entries to `entries`, which
    // is mutably borrowed for the call, and updates the borrowed `arg`.
    unsafe { op(XENMEM_memory_map, &mut arg) }?;
    Ok((arg.nr_entries as usize).min(entries.len()))
}

/// Maps page `idx` of `space` (`XENMAPSPACE_*`) at guest frame `gpfn`,
/// e.g. the shared-info page for an HVM/PVH guest.
///
/// # Safety
///
/// Whatever was at `gpfn` is replaced: no live data or reference may rely
/// on that frame, and for `XENMAPSPACE_shared_info` the caller must treat
/// the frame as shared with Xen from now on.
pub unsafe fn add_to_physmap(space: u32, idx: u64, gpfn: XenPfn) -> Result<(), XenError> {
    let mut arg = XenAddToPhysmap { domid: crate::abi::xen::DOMID_SELF, size: 0, space, idx, gpfn };
    // SAFETY: the struct is borrowed for the call; the physmap change is
    // the caller's contract above.
    unsafe { op(XENMEM_add_to_physmap, &mut arg) }.map(|_| ())
}

/// `XENMEM_increase_reservation`, `XENMEM_decrease_reservation` or
/// `XENMEM_populate_physmap` on the frames in `frames`; returns how many
/// extents were done.
///
/// # Safety
///
/// Decreasing gives the listed frames back to Xen: nothing may use them
/// afterwards. Populating changes what guest frames are backed by.
pub unsafe fn reservation_op(
    cmd: u32,
    frames: &mut [XenPfn],
    extent_order: u32,
    domid: DomId,
) -> Result<u64, XenError> {
    let mut arg = XenMemoryReservation {
        extent_start: addr_of_mut(frames),
        nr_extents: frames.len() as u64,
        extent_order,
        mem_flags: 0,
        domid,
    };
    // SAFETY: Xen reads/writes at most `nr_extents` frames of `frames`,
    // borrowed for the call; the memory effects are the caller's contract.
    unsafe { op(cmd, &mut arg) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::hvm::XEN_HVM_MEMMAP_TYPE_RAM;
    use crate::abi::xen::DOMID_SELF;
    use crate::transport::testing::{read_guest, with_responder, write_guest};

    #[test]
    fn memory_map_returns_what_xen_filled() {
        let mut entries = [E820Entry::default(); 4];
        let (result, calls) = with_responder(
            |call| {
                let mut arg: XenMemoryMap = read_guest(call.args[1]);
                assert_eq!(arg.nr_entries, 4);
                let ram = E820Entry { addr: 0, size: 0x10_0000, r#type: XEN_HVM_MEMMAP_TYPE_RAM };
                write_guest(arg.buffer, ram);
                arg.nr_entries = 1;
                write_guest(call.args[1], arg);
                0
            },
            || memory_map(&mut entries),
        );
        assert_eq!(result, Ok(1));
        assert_eq!(calls[0].args[0], XENMEM_memory_map as u64);
        assert_eq!({ entries[0].size }, 0x10_0000);
    }

    #[test]
    fn add_to_physmap_places_shared_info() {
        let (result, calls) = with_responder(
            |call| {
                let arg: XenAddToPhysmap = read_guest(call.args[1]);
                assert_eq!((arg.domid, arg.space, arg.idx, arg.gpfn), (DOMID_SELF, 0, 0, 0x123));
                0
            },
            // SAFETY: intercepted.
            || unsafe { add_to_physmap(XENMAPSPACE_shared_info, 0, 0x123) },
        );
        assert_eq!(result, Ok(()));
        assert_eq!((calls[0].nr, calls[0].args[0]), (__HYPERVISOR_memory_op, XENMEM_add_to_physmap as u64));
    }

    #[test]
    fn reservation_queries_return_the_value() {
        let (result, calls) = with_responder(
            |call| {
                assert_eq!(read_guest::<DomId>(call.args[1]), DOMID_SELF);
                4096
            },
            || current_reservation(DOMID_SELF),
        );
        assert_eq!(result, Ok(4096));
        assert_eq!(calls[0].args[0], XENMEM_current_reservation as u64);
        let (max, _) = with_responder(|_| 0xfffff, maximum_ram_page);
        assert_eq!(max, Ok(0xfffff));
    }
}
