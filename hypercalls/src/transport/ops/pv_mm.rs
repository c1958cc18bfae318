//! PV memory management: the hypercalls that replace writing page tables,
//! CR3 and descriptor tables directly. None of them exist for HVM/PVH
//! guests, which own their page tables.

use super::BatchError;
use crate::abi::xen::{
    __HYPERVISOR_mmu_update, __HYPERVISOR_mmuext_op, __HYPERVISOR_multicall, __HYPERVISOR_set_gdt,
    __HYPERVISOR_update_descriptor, __HYPERVISOR_update_va_mapping, DomId, MmuUpdate, MmuextOp,
    MulticallEntry, XenPfn,
};
use crate::transport::{addr_of, addr_of_mut, hypercall2, hypercall3, hypercall4};
use crate::XenError;

/// Applies a batch of page-table / M2P updates for `domid` (normally
/// `DOMID_SELF`); returns how many were done (all of them on success).
///
/// # Safety
///
/// The updates change the caller's address space: the caller must not
/// unmap or remap memory it (or any live Rust reference) still uses, and
/// must flush the TLB as Xen's documentation requires for the commands used.
pub unsafe fn mmu_update(reqs: &[MmuUpdate], domid: DomId) -> Result<u32, BatchError> {
    let nr = super::count(reqs.len()).map_err(|error| BatchError { error, done: 0 })?;
    let mut done = 0u32;
    // SAFETY: Xen reads `nr` requests from `reqs` and writes `done`, both
    // borrowed for the call; the address-space effects are the caller's
    // contract above.
    let ret = unsafe {
        hypercall4(__HYPERVISOR_mmu_update, addr_of(reqs), nr as u64, addr_of_mut(&mut done), domid as u64)
    };
    batch_result(ret, done)
}

/// Applies a batch of extended MMU operations (pin/unpin tables, new CR3,
/// TLB flushes, LDT); returns how many were done.
///
/// # Safety
///
/// As for [`mmu_update`]: `MMUEXT_NEW_BASEPTR` switches address space and
/// `MMUEXT_UNPIN_TABLE` may make a table writable again; any guest-virtual
/// cpumask named by `arg2` must be valid for the call.
pub unsafe fn mmuext_op(ops: &[MmuextOp], domid: DomId) -> Result<u32, BatchError> {
    let nr = super::count(ops.len()).map_err(|error| BatchError { error, done: 0 })?;
    let mut done = 0u32;
    // SAFETY: Xen reads `nr` ops from `ops` and writes `done`; the effects
    // of the ops themselves are the caller's contract above.
    let ret = unsafe {
        hypercall4(__HYPERVISOR_mmuext_op, addr_of(ops), nr as u64, addr_of_mut(&mut done), domid as u64)
    };
    batch_result(ret, done)
}

fn batch_result(ret: i64, done: u32) -> Result<u32, BatchError> {
    match XenError::from_return(ret) {
        Ok(_) => Ok(done),
        Err(error) => Err(BatchError { error, done }),
    }
}

/// Sets the PTE mapping virtual address `va` to `new_pte`, then flushes as
/// `flags` (`UVMF_*`) say.
///
/// # Safety
///
/// Changes the caller's address space; see [`mmu_update`]. With
/// `UVMF_MULTI`, `flags` carries a pointer to a valid vCPU mask.
pub unsafe fn update_va_mapping(va: u64, new_pte: u64, flags: u64) -> Result<(), XenError> {
    // SAFETY: no guest memory is passed by reference; the mapping change is
    // the caller's contract above.
    super::unit(unsafe { hypercall3(__HYPERVISOR_update_va_mapping, va, new_pte, flags) })
}

/// Issues a batch of hypercalls in one trap; each entry's `result` is set.
/// Returns an error only if the batch itself could not be processed.
///
/// # Safety
///
/// Each entry is an arbitrary hypercall with raw arguments: the caller must
/// uphold the contract of every one of them.
pub unsafe fn multicall(calls: &mut [MulticallEntry]) -> Result<(), XenError> {
    let nr = super::count(calls.len())?;
    // SAFETY: Xen reads and updates `nr` entries of `calls`, borrowed for
    // the call; the entries' own effects are the caller's contract.
    super::unit(unsafe { hypercall2(__HYPERVISOR_multicall, addr_of_mut(calls), nr as u64) })
}

/// Replaces the GDT with the `frames` (read-only, validated by Xen)
/// holding `entries` descriptors.
///
/// # Safety
///
/// Segment selectors in use must stay valid in the new table.
pub unsafe fn set_gdt(frames: &[XenPfn], entries: u32) -> Result<(), XenError> {
    // SAFETY: Xen reads the frame list, borrowed for the call; switching
    // descriptor tables is the caller's contract above.
    super::unit(unsafe { hypercall2(__HYPERVISOR_set_gdt, addr_of(frames), entries as u64) })
}

/// Writes descriptor `desc` at machine address `maddr` in a GDT/LDT page.
///
/// # Safety
///
/// The caller must not invalidate a selector it is using.
pub unsafe fn update_descriptor(maddr: u64, desc: u64) -> Result<(), XenError> {
    // SAFETY: no guest memory is passed by reference; the descriptor change
    // is the caller's contract above.
    super::unit(unsafe { hypercall2(__HYPERVISOR_update_descriptor, maddr, desc) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::xen::{DOMID_SELF, MMUEXT_PIN_L4_TABLE, MMU_NORMAL_PT_UPDATE, UVMF_INVLPG};
    use crate::transport::testing::{read_guest_slice, with_responder, write_guest};

    #[test]
    fn mmu_update_passes_the_batch_and_returns_the_count() {
        let reqs = [
            MmuUpdate { ptr: 0x1000 | MMU_NORMAL_PT_UPDATE as u64, val: 0x2003 },
            MmuUpdate { ptr: 0x1008, val: 0x3003 },
        ];
        let (result, calls) = with_responder(
            |call| {
                let seen: Vec<MmuUpdate> = read_guest_slice(call.args[0], call.args[1] as usize);
                assert_eq!((seen[1].ptr, seen[1].val), (0x1008, 0x3003));
                write_guest(call.args[2], 2u32);
                0
            },
            // SAFETY: intercepted; no page table changes.
            || unsafe { mmu_update(&reqs, DOMID_SELF) },
        );
        assert_eq!(result, Ok(2));
        assert_eq!(calls[0].nr, __HYPERVISOR_mmu_update);
        assert_eq!(calls[0].args[3], DOMID_SELF as u64);
    }

    #[test]
    fn a_failed_batch_reports_how_far_it_got() {
        let op = MmuextOp::with_arg1(MMUEXT_PIN_L4_TABLE, 42);
        let (result, _) = with_responder(
            |call| {
                write_guest(call.args[2], 1u32);
                XenError::EINVAL.to_return()
            },
            // SAFETY: intercepted.
            || unsafe { mmuext_op(&[op, op], DOMID_SELF) },
        );
        assert_eq!(result, Err(BatchError { error: XenError::EINVAL, done: 1 }));
        assert_eq!(XenError::from(result.unwrap_err()), XenError::EINVAL);
    }

    #[test]
    fn update_va_mapping_passes_registers_in_order() {
        let (result, calls) = with_responder(
            |_| 0,
            // SAFETY: intercepted.
            || unsafe { update_va_mapping(0xdead_0000, 0x1234_5067, UVMF_INVLPG) },
        );
        assert_eq!(result, Ok(()));
        assert_eq!(calls[0].nr, __HYPERVISOR_update_va_mapping);
        assert_eq!(calls[0].args[..3], [0xdead_0000, 0x1234_5067, UVMF_INVLPG]);
    }

    #[test]
    fn multicall_lets_xen_fill_results() {
        let mut entries = [MulticallEntry { op: 29, result: 0, args: [0; 6] }; 2];
        let (result, calls) = with_responder(
            |call| {
                assert_eq!(call.args[1], 2);
                let mut seen: Vec<MulticallEntry> = read_guest_slice(call.args[0], 2);
                seen[1].result = 7;
                write_guest(call.args[0] + 64, seen[1]);
                0
            },
            // SAFETY: intercepted.
            || unsafe { multicall(&mut entries) },
        );
        assert_eq!(result, Ok(()));
        assert_eq!(calls[0].nr, __HYPERVISOR_multicall);
        assert_eq!(entries[1].result, 7);
    }
}
