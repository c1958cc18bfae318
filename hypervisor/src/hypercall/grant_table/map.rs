//! `GNTTABOP_map_grant_ref`, `GNTTABOP_unmap_grant_ref` and
//! `GNTTABOP_unmap_and_replace` for a 64-bit PV guest, with Xen's answers
//! (`xen/common/grant_table.c`, `xen/arch/x86/pv/grant_table.c`).
//!
//! A host mapping is an L1 entry written through the page-type validator,
//! so the entry itself holds the frame's references, exactly those Xen's
//! grant code takes for it (a general reference, and a writable type
//! reference unless read-only): a frame in use as a page table can never
//! be grant-mapped writable, and removing the entry, by unmapping or by the
//! guest overwriting it, drops them. A device mapping has no entry; the
//! grant holds those references itself until it is unmapped.

use core::mem::{offset_of, size_of};

use hypercalls::abi::grant_table::*;
use hypercalls::XenError;
use hypervisor::mm::{FrameMemory, FrameTable, Mfn, Owner, PageType};
use hypervisor::services::grants::active::{
    self, PIN_DEVICE_READ, PIN_DEVICE_WRITE, PIN_HOST_READ, PIN_HOST_WRITE,
};
use hypervisor::services::grants::{self, ActiveGrants, GrantUse, Granter, Mapping, UngrantedTable};

use super::{array_okay, read, with_table, write, GrantTable};
use crate::arch::memory::PAGE_SIZE;
use crate::arch::{cpu, guest_access};
use crate::domain::{self, memory as domain_memory, BACKEND_DOMID, GUEST_DOMID};
use crate::hypercall::mm::l1_slot;
use crate::hypercall::HypercallResult;

pub(super) fn map_grant_ref(uop: u64, count: u32) -> HypercallResult {
    array_okay(uop)?;
    for index in 0..u64::from(count) {
        let at = uop + index * size_of::<GnttabMapGrantRef>() as u64;
        let mut op: GnttabMapGrantRef = read(at)?;
        map_one(&mut op)?;
        write(at, &op)?;
    }
    Ok(0)
}

pub(super) fn unmap_grant_ref(uop: u64, count: u32) -> HypercallResult {
    array_okay(uop)?;
    for index in 0..u64::from(count) {
        let at = uop + index * size_of::<GnttabUnmapGrantRef>() as u64;
        let op: GnttabUnmapGrantRef = read(at)?;
        let unmap =
            Unmap { handle: op.handle, host_addr: op.host_addr, dev_bus_addr: op.dev_bus_addr, new_addr: 0 };
        let status = with_table(|table| unmap.run(table))?;
        write_status(at + offset_of!(GnttabUnmapGrantRef, status) as u64, status)?;
    }
    Ok(0)
}

/// Like unmap, but the entry at `new_addr` moves into the unmapped slot
/// and `new_addr` is cleared (a relic of old Linux kernels, kept by Xen).
pub(super) fn unmap_and_replace(uop: u64, count: u32) -> HypercallResult {
    array_okay(uop)?;
    for index in 0..u64::from(count) {
        let at = uop + index * size_of::<GnttabUnmapAndReplace>() as u64;
        let op: GnttabUnmapAndReplace = read(at)?;
        let unmap =
            Unmap { handle: op.handle, host_addr: op.host_addr, dev_bus_addr: 0, new_addr: op.new_addr };
        let status = with_table(|table| unmap.run(table))?;
        write_status(at + offset_of!(GnttabUnmapAndReplace, status) as u64, status)?;
    }
    Ok(0)
}

fn write_status(at: u64, status: i16) -> Result<(), XenError> {
    guest_access::write(at, &status.to_le_bytes()).map_err(|_| XenError::EFAULT)
}

/// One map operation; its outcome goes to `op.status` (and on success
/// `op.handle` and `op.dev_bus_addr`).
fn map_one(op: &mut GnttabMapGrantRef) -> Result<(), XenError> {
    if active::map_pin_increment(op.flags) == 0 {
        op.status = GNTST_bad_gntref;
        return Ok(());
    }
    let granter = match grants::map_granter(op.dom, GUEST_DOMID, BACKEND_DOMID) {
        Ok(granter) => granter,
        Err(status) => {
            op.status = status;
            return Ok(());
        }
    };
    let root = current_root();
    with_table(|table| {
        // Xen takes the handle before it looks at the reference.
        let Some(handle) = table.maptrack.get_handle() else {
            op.status = GNTST_no_space;
            return;
        };
        let mapped = match granter {
            Granter::Own => map_own_grant(table, op, root),
            Granter::Backend => ActiveGrants::new().pin(
                &mut UngrantedTable,
                op.r#ref,
                GrantUse::map(GUEST_DOMID, op.flags),
                |_| false,
            ),
        };
        match mapped {
            Ok(frame) => {
                // Xen keeps the flags in 16 bits.
                table.maptrack.set(handle, Mapping { domid: op.dom, gref: op.r#ref, flags: op.flags as u16 });
                op.dev_bus_addr = frame * PAGE_SIZE;
                op.handle = handle;
                op.status = GNTST_okay;
            }
            Err(status) => {
                table.maptrack.put_handle(handle);
                op.status = status;
            }
        }
    })
}

/// Pins the guest's own entry and makes the mappings; returns the frame.
fn map_own_grant(table: &mut GrantTable, op: &GnttabMapGrantRef, root: u64) -> Result<u64, i16> {
    let grant_use = GrantUse::map(GUEST_DOMID, op.flags);
    let readonly = grant_use.readonly;
    let (mut entries, active, _) = table.split();
    let frame = active.pin(&mut entries, op.r#ref, grant_use, owned_by_guest)?;
    let device = op.flags & GNTMAP_device_map != 0;
    let mut result = Ok(());
    if device && hold_for_device(frame, readonly).is_err() {
        result = Err(GNTST_general_error);
    } else if op.flags & GNTMAP_host_map != 0 {
        result = create_host_mapping(op.host_addr, frame, op.flags, root);
        if result.is_err() && device {
            release_for_device(frame, readonly);
        }
    }
    match result {
        Ok(()) => Ok(frame),
        Err(status) => {
            active.unpin(&mut entries, op.r#ref, grant_use.increment, readonly);
            Err(status)
        }
    }
}

/// Xen's `get_paged_frame` for a PV domain: the frame must be the guest's.
pub(super) fn owned_by_guest(frame: u64) -> bool {
    domain_memory::with(|state, _| {
        state.frames.frame(Mfn(frame)).is_some_and(|info| info.owner() == Owner::Domain(GUEST_DOMID))
    })
}

/// The references a device mapping holds (no page-table entry holds them).
fn hold_for_device(frame: u64, readonly: bool) -> Result<(), ()> {
    domain_memory::with(|state, mem| {
        let mfn = Mfn(frame);
        if readonly {
            state.frames.get_page(mfn, GUEST_DOMID)
        } else {
            state.frames.get_page_and_type(mem, mfn, GUEST_DOMID, PageType::Writable)
        }
    })
    .map_err(|_| ())
}

fn release_for_device(frame: u64, readonly: bool) {
    domain_memory::with(|state, mem| {
        if readonly {
            state.frames.put_page(Mfn(frame));
        } else {
            state.frames.put_page_and_type(mem, Mfn(frame));
        }
    });
}

/// The address space the guest is in (Xen's `map_guest_l1e` walks the
/// current one).
fn current_root() -> u64 {
    domain::current_root()
}

/// The L1 slot a host mapping uses: with `GNTMAP_contains_pte`, `address`
/// is the machine address of the entry (8-byte aligned); otherwise a
/// virtual address whose L1 table must exist.
fn entry_slot(address: u64, flags: u32, root: u64) -> Option<(Mfn, usize)> {
    if flags & GNTMAP_contains_pte != 0 {
        if !address.is_multiple_of(8) {
            return None;
        }
        return Some((Mfn(address / PAGE_SIZE), ((address % PAGE_SIZE) / 8) as usize));
    }
    if !guest_access::is_guest_range(address, 1) {
        return None;
    }
    l1_slot(root, address)
}

/// Whether `table` is one of the guest's L1 tables, the only place a host
/// mapping may go.
fn is_guest_l1(frames: &FrameTable<'_>, table: Mfn) -> bool {
    frames.frame(table).is_some_and(|info| {
        info.owner() == Owner::Domain(GUEST_DOMID)
            && info.page_type() == PageType::L1
            && info.type_count() > 0
            && info.is_validated()
    })
}

fn flush(address: u64, flags: u32) {
    if flags & GNTMAP_contains_pte != 0 {
        cpu::flush_tlb();
    } else {
        cpu::invlpg(address);
    }
}

/// Xen's `create_grant_pv_mapping`: any failure is `GNTST_general_error`.
fn create_host_mapping(address: u64, frame: u64, flags: u32, root: u64) -> Result<(), i16> {
    let (table, index) = entry_slot(address, flags, root).ok_or(GNTST_general_error)?;
    let entry = grants::host_mapping_pte(frame, flags);
    let written = domain_memory::with(|state, mem| {
        if !is_guest_l1(&state.frames, table) {
            return false;
        }
        state.frames.update_entry(mem, GUEST_DOMID, table, index, entry, false).is_ok()
    });
    flush(address, flags);
    if written {
        Ok(())
    } else {
        Err(GNTST_general_error)
    }
}

/// One unmap (or unmap-and-replace) operation.
struct Unmap {
    handle: GrantHandle,
    host_addr: u64,
    dev_bus_addr: u64,
    new_addr: u64,
}

impl Unmap {
    /// Xen's `unmap_common` and `unmap_common_complete`: the status.
    fn run(&self, table: &mut GrantTable) -> i16 {
        let mapping = match table.maptrack.lookup(self.handle) {
            Ok(mapping) => mapping,
            Err(status) => return status,
        };
        let root = current_root();
        let (mut entries, active, maptrack) = table.split();
        let Some(frame) = active.frame(mapping.gref).filter(|_| mapping.domid == GUEST_DOMID) else {
            // Only the guest's own grants can be mapped, and a mapping pins them.
            return GNTST_bad_handle;
        };
        let flags = u32::from(mapping.flags);
        let readonly = flags & GNTMAP_readonly != 0;
        let device = self.dev_bus_addr != 0 && flags & GNTMAP_device_map != 0;
        if device && self.dev_bus_addr != frame * PAGE_SIZE {
            return GNTST_bad_dev_addr;
        }
        let mut remaining = flags;
        let mut increment = 0;
        if self.host_addr != 0 && flags & GNTMAP_host_map != 0 {
            if let Err(status) = replace_host_mapping(self.host_addr, frame, self.new_addr, flags, root) {
                return status;
            }
            remaining &= !GNTMAP_host_map;
            increment += if readonly { PIN_HOST_READ } else { PIN_HOST_WRITE };
        }
        if device {
            release_for_device(frame, readonly);
            remaining &= !GNTMAP_device_map;
            increment += if readonly { PIN_DEVICE_READ } else { PIN_DEVICE_WRITE };
        }
        if remaining & (GNTMAP_host_map | GNTMAP_device_map) == 0 {
            maptrack.put_handle(self.handle);
        } else {
            maptrack.set_flags(self.handle, remaining as u16);
        }
        if increment != 0 {
            active.unpin(&mut entries, mapping.gref, increment, readonly);
        }
        GNTST_okay
    }
}

/// Xen's `replace_grant_pv_mapping`: the entry at `address` must still map
/// `frame` (present, writable exactly when the grant mapping is); it
/// becomes empty, or takes over the entry at `new_addr`, which is cleared.
fn replace_host_mapping(address: u64, frame: u64, new_addr: u64, flags: u32, root: u64) -> Result<(), i16> {
    if flags & GNTMAP_contains_pte != 0 && new_addr != 0 {
        return Err(GNTST_general_error);
    }
    let replacement = if new_addr != 0 {
        let stolen = steal_entry(new_addr, root).ok_or(GNTST_general_error)?;
        cpu::invlpg(new_addr);
        stolen
    } else {
        0
    };
    // A stolen entry that finds no home is dropped, as in Xen.
    let (table, index) = entry_slot(address, flags, root).ok_or(GNTST_general_error)?;
    let replaced = domain_memory::with(|state, mem| {
        if !is_guest_l1(&state.frames, table)
            || !grants::is_host_mapping(mem.read_entry(table, index), frame, flags)
        {
            return false;
        }
        state.frames.update_entry(mem, GUEST_DOMID, table, index, replacement, false).is_ok()
    });
    if !replaced {
        return Err(GNTST_general_error);
    }
    flush(address, flags);
    Ok(())
}

/// Clears the L1 entry mapping `address` and returns what it held.
fn steal_entry(address: u64, root: u64) -> Option<u64> {
    if !guest_access::is_guest_range(address, 1) {
        return None;
    }
    let (table, index) = l1_slot(root, address)?;
    domain_memory::with(|state, mem| {
        if !is_guest_l1(&state.frames, table) {
            return None;
        }
        let old = mem.read_entry(table, index);
        state.frames.update_entry(mem, GUEST_DOMID, table, index, 0, false).ok()?;
        Some(old)
    })
}
