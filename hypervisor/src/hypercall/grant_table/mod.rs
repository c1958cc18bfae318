//! `grant_table_op(cmd, uop, count)`: the guest's own grant table (v1).
//!
//! The table's frames are hypervisor frames shared read-write with the
//! guest (like `shared_info`), which a PV guest maps itself after
//! `GNTTABOP_setup_table` tells it their machine frame numbers. The first
//! frame holds the toolstack's reserved entries for the console and
//! xenstore pages.
//!
//! The guest is the only domain that grants it anything (the built-in
//! backends read the rings directly and grant nothing), so mapping and
//! copying ([`map`], [`copy`]) work on grants the guest made to itself,
//! as Xen allows. Transfers are not offered (`ENOSYS`).

mod copy;
mod map;

use core::mem::{offset_of, size_of};

use hypercalls::abi::grant_table::*;
use hypercalls::abi::xen::{XenPfn, DOMID_SELF};
use hypercalls::XenError;
use hypervisor::mm::SharedAccess;
use hypervisor::services::grants::{
    self, ActiveGrants, GrantTableSize, Maptrack, SharedEntries, ENTRIES_PER_FRAME, MAX_FRAMES,
};
use spin::Mutex;

use super::{Args, HypercallResult};
use crate::arch::guest_access;
use crate::arch::memory::{self, PAGE_SIZE};
use crate::domain::{self, BACKEND_DOMID, GUEST_DOMID};

/// Bits of `cmd` above this carry a continuation argument, which only
/// `GNTTABOP_cache_flush` may have.
const CONTINUATION_SHIFT: u32 = 12;

struct GrantTable {
    size: GrantTableSize,
    /// Machine frame numbers of the table's frames (0: not yet allocated).
    frames: [u64; MAX_FRAMES as usize],
    /// Entries of this table in use by mappings and copies.
    active: ActiveGrants,
    /// The mappings the guest holds (of any domain's grants).
    maptrack: Maptrack,
}

impl GrantTable {
    /// The shared entries, alongside the active ones.
    fn split(&mut self) -> (GuestEntries<'_>, &mut ActiveGrants, &mut Maptrack) {
        let entries = GuestEntries { frames: &self.frames, len: self.size.frames() * ENTRIES_PER_FRAME };
        (entries, &mut self.active, &mut self.maptrack)
    }
}

/// The guest's shared entries in the table's machine frames.
struct GuestEntries<'a> {
    frames: &'a [u64; MAX_FRAMES as usize],
    len: u32,
}

impl GuestEntries<'_> {
    fn entry_address(&self, gref: GrantRef) -> u64 {
        let frame = self.frames[(gref / ENTRIES_PER_FRAME) as usize];
        frame * PAGE_SIZE + u64::from(gref % ENTRIES_PER_FRAME) * 8
    }
}

impl SharedEntries for GuestEntries<'_> {
    fn len(&self) -> u32 {
        self.len
    }

    fn read(&self, gref: GrantRef) -> GrantEntryV1 {
        let raw = memory::read_u64(self.entry_address(gref));
        GrantEntryV1 { flags: raw as u16, domid: (raw >> 16) as u16, frame: (raw >> 32) as u32 }
    }

    fn write_flags(&mut self, gref: GrantRef, flags: u16) {
        // Only the flags: the guest owns domid and frame.
        memory::write_bytes(self.entry_address(gref), &flags.to_le_bytes());
    }
}

static TABLE: Mutex<Option<GrantTable>> = Mutex::new(None);

/// Creates the table's first frame and seeds the reserved entries, once.
fn with_table<R>(f: impl FnOnce(&mut GrantTable) -> R) -> Result<R, XenError> {
    let mut guard = TABLE.lock();
    if guard.is_none() {
        let mut table = GrantTable {
            size: GrantTableSize::new(),
            frames: [0; MAX_FRAMES as usize],
            active: ActiveGrants::new(),
            maptrack: Maptrack::new(),
        };
        let first = new_frame().ok_or(XenError::ENOMEM)?;
        let (console, store) = domain::with(|d| (d.console_ring / PAGE_SIZE, d.store_ring / PAGE_SIZE));
        for (entry, bytes) in grants::seed_entries(BACKEND_DOMID, console as u32, store as u32) {
            memory::write_bytes(first * PAGE_SIZE + u64::from(entry) * 8, &bytes);
        }
        table.frames[0] = first;
        *guard = Some(table);
    }
    Ok(f(guard.as_mut().expect("created above")))
}

/// A zeroed hypervisor frame shared read-write with the guest.
fn new_frame() -> Option<u64> {
    let machine = memory::allocate_frame()?;
    let mfn = machine / PAGE_SIZE;
    match domain::memory::share_with_domain(GUEST_DOMID, mfn, SharedAccess::ReadWrite) {
        Ok(()) => Some(mfn),
        Err(error) => {
            log::error!("grant table: cannot share frame {mfn:#x} with the guest: {error:?}");
            memory::free_frame(machine);
            None
        }
    }
}

enum Target {
    Guest,
    /// Domain 0: exists, but the guest may not look at its table.
    Backend,
}

fn lookup(dom: u16) -> Option<Target> {
    match dom {
        DOMID_SELF | GUEST_DOMID => Some(Target::Guest),
        BACKEND_DOMID => Some(Target::Backend),
        _ => None,
    }
}

pub fn grant_table_op(Args([command, uop, count, ..]): Args) -> HypercallResult {
    let command = command as u32;
    // Xen's `unsigned int count`, refused when it would be negative as an int.
    let count = count as u32;
    if (count as i32) < 0 {
        return Err(XenError::EINVAL);
    }
    let operation = command & ((1 << CONTINUATION_SHIFT) - 1);
    if command >> CONTINUATION_SHIFT != 0 && operation != GNTTABOP_cache_flush {
        return Err(XenError::EINVAL);
    }
    match operation {
        GNTTABOP_query_size => query_size(uop, count),
        GNTTABOP_setup_table => setup_table(uop, count),
        GNTTABOP_set_version => set_version(uop),
        GNTTABOP_get_version => get_version(uop),
        GNTTABOP_map_grant_ref => map::map_grant_ref(uop, count),
        GNTTABOP_unmap_grant_ref => map::unmap_grant_ref(uop, count),
        GNTTABOP_unmap_and_replace => map::unmap_and_replace(uop, count),
        GNTTABOP_copy => copy::copy(uop, count),
        _ => Err(XenError::ENOSYS),
    }
}

/// Xen's `guest_handle_okay` for an operation array at `address`, checked
/// before any element is read: on x86-64 it looks only at where the array
/// starts (outside the hypervisor's range and the non-canonical hole; an
/// `unsigned int` count cannot make the size overflow). An element that
/// cannot be accessed is `EFAULT` when it is reached.
fn array_okay(address: u64) -> Result<(), XenError> {
    if guest_access::is_guest_range(address, 0) {
        Ok(())
    } else {
        Err(XenError::EFAULT)
    }
}

fn read<T: Copy + Default>(address: u64) -> Result<T, XenError> {
    guest_access::read_struct(address).map_err(|_| XenError::EFAULT)
}

fn write<T: Copy>(address: u64, value: &T) -> Result<(), XenError> {
    guest_access::write_struct(address, value).map_err(|_| XenError::EFAULT)
}

/// `GNTTABOP_query_size`: problems go in `status`; the call succeeds.
fn query_size(uop: u64, count: u32) -> HypercallResult {
    if count != 1 {
        return Err(XenError::EINVAL);
    }
    let mut op: GnttabQuerySize = read(uop)?;
    match lookup(op.dom) {
        None => op.status = GNTST_bad_domain,
        Some(Target::Backend) => op.status = GNTST_permission_denied,
        Some(Target::Guest) => {
            op.nr_frames = with_table(|table| table.size.frames())?;
            op.max_nr_frames = MAX_FRAMES;
            op.status = GNTST_okay;
        }
    }
    write(uop, &op)?;
    Ok(0)
}

/// `GNTTABOP_setup_table`: grows the table to `nr_frames` and lists the
/// frames. Only `status` is written back to the argument.
fn setup_table(uop: u64, count: u32) -> HypercallResult {
    if count != 1 {
        return Err(XenError::EINVAL);
    }
    let op: GnttabSetupTable = read(uop)?;
    let list_len = u64::from(op.nr_frames) * size_of::<XenPfn>() as u64;
    if !guest_access::is_guest_range(op.frame_list, list_len) {
        return Err(XenError::EFAULT);
    }
    let status = match lookup(op.dom) {
        None => GNTST_bad_domain,
        Some(Target::Backend) => GNTST_permission_denied,
        Some(Target::Guest) => with_table(|table| fill_frame_list(table, op.nr_frames, op.frame_list))?,
    };
    let status_at = uop + offset_of!(GnttabSetupTable, status) as u64;
    guest_access::write(status_at, &status.to_le_bytes()).map_err(|_| XenError::EFAULT)?;
    Ok(0)
}

fn fill_frame_list(table: &mut GrantTable, wanted: u32, list: u64) -> i16 {
    let add = match table.size.frames_to_add(wanted) {
        Ok(add) => add,
        Err(status) => return status,
    };
    let have = table.size.frames();
    for index in have..have + add {
        match new_frame() {
            Some(mfn) => table.frames[index as usize] = mfn,
            None => return GNTST_general_error,
        }
        table.size.grew_to(index + 1);
    }
    let mut status = GNTST_okay;
    for (index, &mfn) in table.frames[..wanted as usize].iter().enumerate() {
        let at = list + 8 * index as u64;
        if guest_access::write(at, &mfn.to_le_bytes()).is_err() {
            status = GNTST_bad_virt_addr;
        }
    }
    status
}

/// `GNTTABOP_set_version`: the version in use is written back either way.
fn set_version(uop: u64) -> HypercallResult {
    let mut op: GnttabSetVersion = read(uop)?;
    let (result, version) = with_table(|table| table.size.set_version(op.version))?;
    op.version = version;
    write(uop, &op)?;
    result.map(|()| 0)
}

/// `GNTTABOP_get_version`.
fn get_version(uop: u64) -> HypercallResult {
    let op: GnttabGetVersion = read(uop)?;
    match lookup(op.dom) {
        None => Err(XenError::ESRCH),
        Some(Target::Backend) => Err(XenError::EPERM),
        Some(Target::Guest) => {
            let version = with_table(|table| table.size.version())?;
            let at = uop + offset_of!(GnttabGetVersion, version) as u64;
            guest_access::write(at, &version.to_le_bytes()).map_err(|_| XenError::EFAULT)?;
            Ok(0)
        }
    }
}
