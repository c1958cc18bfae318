//! `GNTTABOP_copy`: copies bytes between two pages, each named by a grant
//! reference (of the guest's own table, or of domain 0, which grants it
//! nothing) or, through `DOMID_SELF`, by one of the guest's machine frames.
//! Each operation's outcome goes to its `status`; the call fails only when
//! the array cannot be read or a status cannot be written (`EFAULT`).

use core::mem::{offset_of, size_of};

use hypercalls::abi::grant_table::*;
use hypercalls::XenError;
use hypervisor::mm::{Mfn, PageType};
use hypervisor::services::grants::active::copy_pin_increment;
use hypervisor::services::grants::{self, ActiveGrants, GrantUse, Granter, UngrantedTable};

use super::map::owned_by_guest;
use super::{array_okay, read, with_table, GrantTable};
use crate::arch::guest_access;
use crate::arch::memory::{self, PAGE_SIZE};
use crate::domain::{memory as domain_memory, BACKEND_DOMID, GUEST_DOMID};
use crate::hypercall::HypercallResult;

pub(super) fn copy(uop: u64, count: u32) -> HypercallResult {
    array_okay(uop)?;
    for index in 0..u64::from(count) {
        let at = uop + index * size_of::<GnttabCopy>() as u64;
        let op: GnttabCopy = read(at)?;
        let status = with_table(|table| copy_one(table, &op).err().unwrap_or(GNTST_okay))?;
        let status_at = at + offset_of!(GnttabCopy, status) as u64;
        guest_access::write(status_at, &status.to_le_bytes()).map_err(|_| XenError::EFAULT)?;
    }
    Ok(0)
}

/// Xen's `gnttab_copy_one`, in its order of checks.
fn copy_one(table: &mut GrantTable, op: &GnttabCopy) -> Result<(), i16> {
    let source_is_gref = op.flags & GNTCOPY_source_gref != 0;
    let dest_is_gref = op.flags & GNTCOPY_dest_gref != 0;
    let source_granter = grants::copy_granter(op.source.domid, source_is_gref, GUEST_DOMID, BACKEND_DOMID)?;
    let dest_granter = grants::copy_granter(op.dest.domid, dest_is_gref, GUEST_DOMID, BACKEND_DOMID)?;
    let source = Claim::take(table, &op.source, source_is_gref, source_granter, true)?;
    let dest = match Claim::take(table, &op.dest, dest_is_gref, dest_granter, false) {
        Ok(dest) => dest,
        Err(status) => {
            source.release(table);
            return Err(status);
        }
    };
    let result = grants::check_copy_bounds(op.source.offset, op.dest.offset, op.len);
    if result.is_ok() && op.len != 0 {
        copy_bytes(
            source.frame * PAGE_SIZE + u64::from(op.source.offset),
            dest.frame * PAGE_SIZE + u64::from(op.dest.offset),
            usize::from(op.len),
        );
    }
    dest.release(table);
    source.release(table);
    result
}

/// Copies within machine memory through a buffer, so that overlapping
/// ranges of one frame copy as a plain forward copy would.
fn copy_bytes(from: u64, to: u64, len: usize) {
    let mut staged = [0u8; PAGE_SIZE as usize];
    staged[..len].copy_from_slice(memory::bytes(from, len as u64));
    memory::write_bytes(to, &staged[..len]);
}

/// One end of a copy, held for its duration: a general reference on the
/// frame, a writable type reference for the destination, and the grant's
/// pin when it was named by reference.
struct Claim {
    frame: u64,
    gref: Option<GrantRef>,
    readonly: bool,
}

impl Claim {
    /// Xen's `gnttab_copy_claim_buf`.
    fn take(
        table: &mut GrantTable,
        end: &GnttabCopyPtr,
        is_gref: bool,
        granter: Granter,
        readonly: bool,
    ) -> Result<Claim, i16> {
        let claim = if is_gref {
            // `u.ref` is the union's low half.
            let gref = end.u as GrantRef;
            let grant_use = GrantUse::copy(GUEST_DOMID, readonly);
            let frame = match granter {
                Granter::Own => {
                    let (mut entries, active, _) = table.split();
                    active.pin(&mut entries, gref, grant_use, owned_by_guest)?
                }
                Granter::Backend => {
                    ActiveGrants::new().pin(&mut UngrantedTable, gref, grant_use, |_| false)?
                }
            };
            Claim { frame, gref: Some(gref), readonly }
        } else {
            if !owned_by_guest(end.u) {
                return Err(GNTST_bad_page);
            }
            Claim { frame: end.u, gref: None, readonly }
        };
        let referenced = domain_memory::with(|state, mem| {
            let mfn = Mfn(claim.frame);
            if readonly {
                state.frames.get_page(mfn, GUEST_DOMID).is_ok()
            } else {
                state.frames.get_page_and_type(mem, mfn, GUEST_DOMID, PageType::Writable).is_ok()
            }
        });
        if !referenced {
            // The frame is the guest's (checked above), so only a type
            // conflict gets here: the destination is a page table or
            // otherwise not writable.
            claim.unpin(table);
            return Err(GNTST_general_error);
        }
        Ok(claim)
    }

    fn release(self, table: &mut GrantTable) {
        domain_memory::with(|state, mem| {
            let mfn = Mfn(self.frame);
            if self.readonly {
                state.frames.put_page(mfn);
            } else {
                state.frames.put_page_and_type(mem, mfn);
            }
        });
        self.unpin(table);
    }

    fn unpin(&self, table: &mut GrantTable) {
        if let Some(gref) = self.gref {
            let (mut entries, active, _) = table.split();
            active.unpin(&mut entries, gref, copy_pin_increment(self.readonly), self.readonly);
        }
    }
}
