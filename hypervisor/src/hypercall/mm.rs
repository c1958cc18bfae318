//! The PV memory-management hypercalls: every change a guest makes to its
//! own page tables arrives here and is checked by the validator
//! (`hypervisor::mm`) before it reaches machine memory.

use hypercalls::abi::xen::*;
use hypercalls::XenError;
use hypervisor::mm::{Level, Mfn, MmError};

use super::{Args, HypercallResult};
use crate::arch::memory::{self, PAGE_SIZE};
use crate::arch::{cpu, guest_access};
use crate::domain::{self, build, memory as domain_memory, GUEST_DOMID};

/// Bit 31 of a count: "this call was preempted and restarted" (Xen's
/// MMU_UPDATE_PREEMPTED); the rest is the number of entries.
const PREEMPTED: u64 = 1 << 31;

fn mm_error(error: MmError) -> XenError {
    XenError::from_errno(error.xen_errno())
}

/// `foreigndom`, as Xen's get_pg_owner judges it: DOMID_SELF is the caller;
/// naming itself by id is refused (-ESRCH); the backend domain exists but a
/// domU may not touch it (-EPERM); any other id names no domain (-ESRCH).
fn check_foreign_domain(foreigndom: u64) -> Result<(), XenError> {
    match u16::try_from(foreigndom) {
        Ok(DOMID_SELF) => Ok(()),
        Ok(crate::domain::BACKEND_DOMID) => Err(XenError::EPERM),
        _ => Err(XenError::ESRCH),
    }
}

/// `mmu_update(reqs, count, done, foreigndom)`. Stops at the first failure,
/// reporting how many entries succeeded through `done`, as Xen does.
pub fn mmu_update(Args([requests, count, done, foreigndom, _]): Args) -> HypercallResult {
    check_foreign_domain(foreigndom)?;
    // Xen declares the count `unsigned int`: the upper 32 bits are not part of it.
    let count = count & 0xffff_ffff & !PREEMPTED;
    let mut succeeded = 0;
    let mut result = Ok(0);
    let mut changed_tables = false;
    while succeeded < count {
        let mut request = [0u8; 16];
        if guest_access::read(requests + 16 * succeeded, &mut request).is_err() {
            result = Err(XenError::EFAULT);
            break;
        }
        let pointer = u64::from_le_bytes(request[..8].try_into().unwrap_or_default());
        let value = u64::from_le_bytes(request[8..].try_into().unwrap_or_default());
        if let Err(error) = one_update(pointer, value, &mut changed_tables) {
            result = Err(error);
            break;
        }
        succeeded += 1;
    }
    if changed_tables {
        cpu::flush_tlb();
    }
    // Like Xen, a done-count the guest cannot receive is its own loss, not an error.
    if done != 0 {
        let _ = guest_access::write(done, &(succeeded as u32).to_le_bytes());
    }
    result
}

fn one_update(pointer: u64, value: u64, changed_tables: &mut bool) -> Result<(), XenError> {
    // The command sits in the low three bits (an entry is 8-byte aligned).
    let command = (pointer & 7) as u32;
    let address = pointer & !7;
    match command {
        // A PV guest's frame numbers are machine frames already, so the
        // no-translate form is the normal one.
        MMU_NORMAL_PT_UPDATE | MMU_PT_UPDATE_PRESERVE_AD | MMU_PT_UPDATE_NO_TRANSLATE => {
            if !address.is_multiple_of(8) {
                return Err(XenError::EINVAL);
            }
            let table = Mfn(address / PAGE_SIZE);
            let index = ((address % PAGE_SIZE) / 8) as usize;
            let preserve_ad = command == MMU_PT_UPDATE_PRESERVE_AD;
            domain_memory::with(|state, mem| {
                state.frames.update_entry(mem, GUEST_DOMID, table, index, value, preserve_ad)
            })
            .map_err(mm_error)?;
            *changed_tables = true;
            Ok(())
        }
        MMU_MACHPHYS_UPDATE => {
            let mfn = address / PAGE_SIZE;
            domain_memory::with(|state, _| state.frames.machphys_update(GUEST_DOMID, Mfn(mfn)))
                .map_err(mm_error)?;
            build::m2p_set(mfn, value);
            Ok(())
        }
        _ => Err(XenError::ENOSYS),
    }
}

/// `mmuext_op(ops, count, done, foreigndom)`.
pub fn mmuext_op(Args([ops, count, done, foreigndom, _]): Args) -> HypercallResult {
    check_foreign_domain(foreigndom)?;
    // Xen declares the count `unsigned int`: the upper 32 bits are not part of it.
    let count = count & 0xffff_ffff & !PREEMPTED;
    let mut succeeded = 0;
    let mut result = Ok(0);
    while succeeded < count {
        let mut op = [0u8; 24];
        if guest_access::read(ops + 24 * succeeded, &mut op).is_err() {
            result = Err(XenError::EFAULT);
            break;
        }
        let command = u32::from_le_bytes(op[..4].try_into().unwrap_or_default());
        let arg1 = u64::from_le_bytes(op[8..16].try_into().unwrap_or_default());
        let arg2 = u64::from_le_bytes(op[16..24].try_into().unwrap_or_default());
        if let Err(error) = one_extended_op(command, arg1, arg2) {
            result = Err(error);
            break;
        }
        succeeded += 1;
    }
    // Like Xen, a done-count the guest cannot receive is its own loss, not an error.
    if done != 0 {
        let _ = guest_access::write(done, &(succeeded as u32).to_le_bytes());
    }
    result
}

fn one_extended_op(command: u32, arg1: u64, arg2: u64) -> Result<(), XenError> {
    match command {
        MMUEXT_PIN_L1_TABLE..=MMUEXT_PIN_L4_TABLE => {
            let level = Level::from_pin_command(command).ok_or(XenError::EINVAL)?;
            domain_memory::with(|state, mem| state.frames.pin(mem, GUEST_DOMID, Mfn(arg1), level))
                .map_err(mm_error)
        }
        MMUEXT_UNPIN_TABLE => {
            domain_memory::with(|state, mem| state.frames.unpin(mem, GUEST_DOMID, Mfn(arg1)))
                .map_err(mm_error)?;
            cpu::flush_tlb();
            Ok(())
        }
        MMUEXT_NEW_BASEPTR => {
            domain_memory::with(|state, mem| {
                let frames = &mut state.frames;
                state.bases.new_baseptr(frames, mem, GUEST_DOMID, Mfn(arg1))
            })
            .map_err(mm_error)?;
            let root = arg1 * PAGE_SIZE;
            let in_kernel = domain::with(|d| {
                d.vcpu.kernel_root = root;
                domain::in_kernel_mode()
            });
            if in_kernel {
                memory::switch_to_guest_root(root);
            }
            Ok(())
        }
        MMUEXT_NEW_USER_BASEPTR => {
            let mfn = (arg1 != 0).then_some(Mfn(arg1));
            domain_memory::with(|state, mem| {
                let frames = &mut state.frames;
                state.bases.new_user_baseptr(frames, mem, GUEST_DOMID, mfn)
            })
            .map_err(mm_error)?;
            domain::with(|d| d.vcpu.user_root = arg1 * PAGE_SIZE);
            Ok(())
        }
        // The vCPU set of a _MULTI form must be readable even though the
        // one vCPU is always in it; Xen answers an unreadable one -EINVAL.
        MMUEXT_TLB_FLUSH_MULTI | MMUEXT_INVLPG_MULTI if read_vcpu_mask(arg2).is_err() => {
            Err(XenError::EINVAL)
        }
        MMUEXT_TLB_FLUSH_LOCAL | MMUEXT_TLB_FLUSH_MULTI | MMUEXT_TLB_FLUSH_ALL => {
            cpu::flush_tlb();
            Ok(())
        }
        MMUEXT_INVLPG_LOCAL | MMUEXT_INVLPG_MULTI | MMUEXT_INVLPG_ALL => {
            if guest_access::is_guest_range(arg1, 1) {
                cpu::invlpg(arg1);
            }
            Ok(())
        }
        // Only domains with cache-flush rights (hardware access) may do these.
        MMUEXT_FLUSH_CACHE => Err(XenError::EACCES),
        MMUEXT_FLUSH_CACHE_GLOBAL => Err(XenError::EINVAL),
        // Superpage accounting is not offered (Xen's default for PV).
        MMUEXT_MARK_SUPER | MMUEXT_UNMARK_SUPER => Err(XenError::EOPNOTSUPP),
        // `nr_ents` is an unsigned int in a union with 64-bit members.
        MMUEXT_SET_LDT => crate::ldt::set_ldt(arg1, arg2 as u32),
        MMUEXT_CLEAR_PAGE => with_writable_frame(arg1, memory::zero_frame),
        MMUEXT_COPY_PAGE => {
            let source = Mfn(arg2);
            domain_memory::with(|state, mem| {
                state.frames.get_page(source, GUEST_DOMID)?;
                let result = state.frames.get_page_type(mem, source, hypervisor::mm::PageType::Writable);
                if result.is_ok() {
                    state.frames.put_page_type(mem, source);
                }
                state.frames.put_page(source);
                result
            })
            .map_err(mm_error)?;
            with_writable_frame(arg1, |destination| memory::copy_frame(source.0 * PAGE_SIZE, destination))
        }
        _ => Err(XenError::ENOSYS),
    }
}

/// Runs `f` on a guest frame that may be written as data (not a page table).
fn with_writable_frame(mfn: u64, f: impl FnOnce(u64)) -> Result<(), XenError> {
    domain_memory::with(|state, mem| {
        state.frames.get_page_and_type(mem, Mfn(mfn), GUEST_DOMID, hypervisor::mm::PageType::Writable)?;
        f(mfn * PAGE_SIZE);
        state.frames.put_page_and_type(mem, Mfn(mfn));
        Ok(())
    })
    .map_err(mm_error)
}

/// `update_va_mapping(va, val, flags)`: changes the L1 entry that maps `va`
/// in the current address space.
pub fn update_va_mapping(Args([address, value, flags, ..]): Args) -> HypercallResult {
    if !guest_access::is_guest_range(address, 1) {
        return Err(XenError::EINVAL);
    }
    let root = domain::current_root();
    let (table, index) = l1_slot(root, address).ok_or(XenError::EINVAL)?;
    domain_memory::with(|state, mem| state.frames.update_entry(mem, GUEST_DOMID, table, index, value, false))
        .map_err(mm_error)?;
    // Above the flush type: UVMF_LOCAL, UVMF_ALL, or else the address of
    // a vCPU bitmap, read only after the entry has changed (as in Xen, an
    // unreadable one fails the call but does not undo the update).
    let flush_type = flags & UVMF_FLUSHTYPE_MASK;
    let targets = flags & !UVMF_FLUSHTYPE_MASK;
    let mask_readable = match (flush_type, targets) {
        (UVMF_TLB_FLUSH | UVMF_INVLPG, UVMF_LOCAL | UVMF_ALL) => true,
        (UVMF_TLB_FLUSH | UVMF_INVLPG, bitmap) => read_vcpu_mask(bitmap).is_ok(),
        _ => true,
    };
    match flush_type {
        UVMF_TLB_FLUSH => cpu::flush_tlb(),
        _ => cpu::invlpg(address),
    }
    if mask_readable {
        Ok(0)
    } else {
        Err(XenError::EFAULT)
    }
}

/// The first word of a guest vCPU bitmap (this domain has one vCPU).
fn read_vcpu_mask(address: u64) -> Result<u64, XenError> {
    guest_access::read_u64(address).map_err(|_| XenError::EFAULT)
}

/// `update_va_mapping_otherdomain(va, val, flags, domid)`: with DOMID_SELF
/// it is update_va_mapping; another domain's tables are off limits, by the
/// same rules as `foreigndom`.
pub fn update_va_mapping_otherdomain(Args([address, value, flags, domid, _]): Args) -> HypercallResult {
    check_foreign_domain(domid)?;
    update_va_mapping(Args([address, value, flags, 0, 0]))
}

/// The L1 table and index mapping `address` under `root`, if the walk
/// reaches an L1 (no superpages exist in a validated PV address space).
pub fn l1_slot(root: u64, address: u64) -> Option<(Mfn, usize)> {
    let mut table = root;
    for level in (2..=4u32).rev() {
        let index = (address >> (12 + 9 * (level - 1))) & 511;
        let entry = memory::read_u64(table + 8 * index);
        if entry & memory::PTE_PRESENT == 0 || entry & memory::PTE_LARGE != 0 {
            return None;
        }
        table = entry & 0x000f_ffff_ffff_f000;
    }
    Some((Mfn(table / PAGE_SIZE), ((address >> 12) & 511) as usize))
}
