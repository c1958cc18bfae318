//! Self-test of grant mapping and copying on grants this domain makes to
//! itself, which Xen allows: `GNTTABOP_map_grant_ref` read-only and
//! writable at a virtual address, `GNTTABOP_copy` by reference and by
//! frame, `GNTTABOP_unmap_grant_ref`, the `GTF_reading`/`GTF_writing` bits
//! the hypervisor keeps in the entries meanwhile, the statuses for bad
//! references, handles, domains and bounds, and that a page table granted
//! writable still cannot be written through a grant. Xen PV only:
//! elsewhere `SKIP`.

use alloc::format;
use alloc::string::String;

use hypercalls::abi::errno::XEN_EFAULT;
use hypercalls::abi::grant_table::*;
use hypercalls::abi::xen::{__HYPERVISOR_grant_table_op, DomId, DOMID_SELF};
use kernel::layout::PAGE_SIZE;
use kernel::selftest::Outcome;
use x86_64::structures::paging::PageTableFlags as Flags;

use super::{Context, SCRATCH_VA};
use crate::arch::{memory, raw_hypercall, traps};
use crate::mm::{frames, paging};
use crate::platform::xen::grants;
use crate::platform::{self, pv::PV};

/// This file's part of the scratch range: two pages where grants are mapped.
const READ_VA: u64 = SCRATCH_VA + (48 << 20);
const WRITE_VA: u64 = READ_VA + PAGE_SIZE;
/// A domain id no domain has.
const NO_DOMAIN: DomId = 0x1234;
const MARKERS: [u64; 4] = [0x6772_616e_7430, 0x6772_616e_7431, 0x6772_616e_7432, 0x6772_616e_7433];

type Checked = Result<(), String>;

macro_rules! check {
    ($condition:expr, $($message:tt)+) => {
        if !$condition {
            return Err(format!($($message)+));
        }
    };
}

/// The frames and grants the checks use.
struct Fixture {
    own: DomId,
    /// The granted page (guest-physical) and its machine frame.
    page: u64,
    mfn: u64,
    /// A second page, the target of frame-named copies.
    other: u64,
    other_mfn: u64,
    /// Mapped at both scratch addresses first, so their L1 table exists.
    placeholder: u64,
    read_only: GrantRef,
    writable: GrantRef,
}

pub fn map_copy_unmap(_: &mut Context) -> Outcome {
    if platform::current().name() != "pv" {
        return Outcome::Skip("not a Xen PV guest");
    }
    let Some(own) = crate::hostile::env::own_domid() else {
        return Outcome::Fail("cannot learn this domain's id".into());
    };
    let fixture = match Fixture::new(own) {
        Ok(fixture) => fixture,
        Err(reason) => return Outcome::Fail(reason),
    };
    let result = map_and_unmap(&fixture)
        .and_then(|()| copies(&fixture))
        .and_then(|()| statuses(&fixture))
        .and_then(|()| page_tables(&fixture));
    let released = fixture.release();
    match result.and(released) {
        Ok(()) => Outcome::Pass,
        Err(reason) => Outcome::Fail(reason),
    }
}

impl Fixture {
    fn new(own: DomId) -> Result<Self, String> {
        let allocate = || frames::allocate_zeroed().ok_or_else(|| String::from("out of frames"));
        let machine = |page: u64| PV.mmu.mfn(page / PAGE_SIZE).ok_or_else(|| format!("no MFN for {page:#x}"));
        let (page, other, placeholder) = (allocate()?, allocate()?, allocate()?);
        for (index, marker) in MARKERS.iter().enumerate() {
            memory::write_u64(page + 8 * index as u64, *marker);
        }
        let space = paging::AddressSpace::current();
        for address in [READ_VA, WRITE_VA] {
            space
                .map(address, placeholder, paging::data_flags())
                .map_err(|error| format!("map: {error:?}"))?;
        }
        let (mfn, other_mfn) = (machine(page)?, machine(other)?);
        let read_only = grants::grant_access(own, mfn, true).map_err(|error| format!("grant: {error:?}"))?;
        let writable = grants::grant_access(own, mfn, false).map_err(|error| format!("grant: {error:?}"))?;
        Ok(Fixture { own, page, mfn, other, other_mfn, placeholder, read_only, writable })
    }

    /// Ends the grants (which fails while the hypervisor still has them in
    /// use) and gives everything back.
    fn release(self) -> Checked {
        let ended = [self.read_only, self.writable].map(grants::end_access);
        for address in [READ_VA, WRITE_VA] {
            // A grant mapping or its removal left the kernel's entry changed
            // behind its back: put the placeholder back before unmapping.
            let _ = PV.scratch_update_va_mapping(address, self.placeholder | paging::data_flags().bits());
            let _ = paging::AddressSpace::current().unmap(address);
        }
        for frame in [self.page, self.other, self.placeholder] {
            frames::free(frame);
        }
        check!(ended.iter().all(Result::is_ok), "ending the grants failed (still in use?): {ended:?}");
        Ok(())
    }

    fn flags(&self, gref: GrantRef) -> u16 {
        grants::entry(gref).map_or(0xffff, |(flags, _, _)| flags)
    }

    fn map_op(&self, address: u64, flags: u32, gref: GrantRef) -> GnttabMapGrantRef {
        GnttabMapGrantRef { host_addr: address, flags, r#ref: gref, dom: self.own, ..Default::default() }
    }
}

/// `grant_table_op(command, ops, ops.len())`. Within `raw_hypercall`'s
/// contract: maps and unmaps change only the PTEs of this file's scratch
/// pages, and copies write only this test's frames.
fn grant_op<T>(command: u32, ops: &mut [T]) -> i64 {
    grant_op_at(command, ops.as_mut_ptr() as u64, ops.len() as u64)
}

fn grant_op_at(command: u32, address: u64, count: u64) -> i64 {
    raw_hypercall::hypercall(__HYPERVISOR_grant_table_op.into(), [command.into(), address, count, 0, 0])
}

/// `GNTTABOP_query_size` with its argument at `address`: the hypervisor
/// reads it and writes it back, so it is a write through the mapping there.
fn query_size_at(address: u64) -> i64 {
    grant_op_at(GNTTABOP_query_size, address, 1)
}

/// Where in the granted page the query_size argument goes.
const QUERY_OFFSET: u64 = 64;

fn map(op: GnttabMapGrantRef) -> (i64, GnttabMapGrantRef) {
    let mut ops = [op];
    let rc = grant_op(GNTTABOP_map_grant_ref, &mut ops);
    (rc, ops[0])
}

fn unmap(host_addr: u64, handle: GrantHandle) -> (i64, i16) {
    let mut ops = [GnttabUnmapGrantRef { host_addr, handle, ..Default::default() }];
    let rc = grant_op(GNTTABOP_unmap_grant_ref, &mut ops);
    (rc, ops[0].status)
}

fn copy(ops: &mut [GnttabCopy]) -> i64 {
    grant_op(GNTTABOP_copy, ops)
}

fn copy_op(source: GnttabCopyPtr, dest: GnttabCopyPtr, len: u16, flags: u16) -> GnttabCopy {
    GnttabCopy { source, dest, len, flags, status: 1 }
}

fn by_ref(gref: GrantRef, domid: DomId, offset: u16) -> GnttabCopyPtr {
    GnttabCopyPtr { u: gref.into(), domid, offset }
}

fn by_frame(mfn: u64, domid: DomId, offset: u16) -> GnttabCopyPtr {
    GnttabCopyPtr { u: mfn, domid, offset }
}

fn map_and_unmap(f: &Fixture) -> Checked {
    let (rc, reader) = map(f.map_op(READ_VA, GNTMAP_host_map | GNTMAP_readonly, f.read_only));
    check!(rc == 0 && reader.status == GNTST_okay, "read-only map: rc {rc}, status {}", reader.status);
    check!(
        reader.dev_bus_addr == f.mfn * PAGE_SIZE,
        "dev_bus_addr {:#x}, frame {:#x}",
        reader.dev_bus_addr,
        f.mfn
    );
    check!(traps::probe_read(READ_VA) == Some(MARKERS[0]), "the mapping does not show the granted page");
    let seen = paging::AddressSpace::current().translate(READ_VA);
    check!(
        seen.is_some_and(|(frame, flags)| frame == f.page && !flags.contains(Flags::WRITABLE)),
        "the read-only mapping is {seen:x?}"
    );
    let reading = GTF_permit_access | GTF_readonly | GTF_reading;
    check!(f.flags(f.read_only) == reading, "entry flags {:#x} while mapped", f.flags(f.read_only));

    let (rc, refused) = map(f.map_op(WRITE_VA, GNTMAP_host_map, f.read_only));
    check!(
        rc == 0 && refused.status == GNTST_general_error,
        "writable map of a read-only grant: {}",
        refused.status
    );
    check!(f.flags(f.read_only) == reading, "the refusal changed the entry: {:#x}", f.flags(f.read_only));

    let (rc, writer) = map(f.map_op(WRITE_VA, GNTMAP_host_map, f.writable));
    check!(rc == 0 && writer.status == GNTST_okay, "writable map: rc {rc}, status {}", writer.status);
    let both = GTF_permit_access | GTF_reading | GTF_writing;
    check!(f.flags(f.writable) == both, "entry flags {:#x} while mapped writable", f.flags(f.writable));
    check!(grants::end_access(f.writable).is_err(), "a mapped grant could be ended");
    // The hypervisor writes through the mappings as the guest would.
    let query = f.page + QUERY_OFFSET;
    memory::write_u64(query, DOMID_SELF.into());
    memory::write_u64(query + 8, 0);
    let rc = query_size_at(READ_VA + QUERY_OFFSET);
    check!(rc == -i64::from(XEN_EFAULT), "a write through the read-only mapping: rc {rc}");
    check!(memory::read_u64(query + 8) == 0, "the read-only mapping was written");
    let rc = query_size_at(WRITE_VA + QUERY_OFFSET);
    let (frames, max_frames) = (memory::read_u64(query) >> 32, memory::read_u64(query + 8) as u32);
    check!(rc == 0 && frames >= 1 && max_frames >= 1, "a write through the writable mapping: rc {rc}");
    check!(
        traps::probe_read(READ_VA + QUERY_OFFSET) == Some(memory::read_u64(query)),
        "the mappings disagree"
    );

    check!(unmap(READ_VA, reader.handle) == (0, GNTST_okay), "unmapping the read-only mapping failed");
    check!(traps::probe_read(READ_VA).is_none(), "the page is still readable after unmap");
    check!(
        f.flags(f.read_only) == GTF_permit_access | GTF_readonly,
        "reading not cleared: {:#x}",
        f.flags(f.read_only)
    );
    check!(unmap(READ_VA, reader.handle) == (0, GNTST_bad_handle), "a handle unmapped twice");
    let wrong_place = unmap(READ_VA, writer.handle);
    check!(
        wrong_place == (0, GNTST_general_error),
        "unmap at an address not mapping the grant: {wrong_place:?}"
    );
    check!(traps::probe_read(WRITE_VA).is_some(), "a refused unmap removed the mapping");
    check!(unmap(WRITE_VA, writer.handle) == (0, GNTST_okay), "unmapping the writable mapping failed");
    check!(
        f.flags(f.writable) == GTF_permit_access,
        "reading/writing not cleared: {:#x}",
        f.flags(f.writable)
    );
    Ok(())
}

fn copies(f: &Fixture) -> Checked {
    let both_refs = GNTCOPY_source_gref | GNTCOPY_dest_gref;
    let mut ops = [
        // Out of the grant (named through this domain's id) into a frame.
        copy_op(
            by_ref(f.read_only, f.own, 8),
            by_frame(f.other_mfn, DOMID_SELF, 24),
            16,
            GNTCOPY_source_gref,
        ),
        // From a frame into the writable grant (named through DOMID_SELF).
        copy_op(
            by_frame(f.other_mfn, DOMID_SELF, 24),
            by_ref(f.writable, DOMID_SELF, 4000),
            8,
            GNTCOPY_dest_gref,
        ),
        copy_op(by_ref(f.writable, f.own, 0), by_ref(f.read_only, f.own, 0), 8, both_refs),
        copy_op(
            by_ref(f.read_only, f.own, 4090),
            by_frame(f.other_mfn, DOMID_SELF, 0),
            7,
            GNTCOPY_source_gref,
        ),
        copy_op(by_frame(f.mfn, f.own, 0), by_frame(f.other_mfn, DOMID_SELF, 0), 8, 0),
        copy_op(by_ref(0xffff_fff0, f.own, 0), by_frame(f.other_mfn, DOMID_SELF, 0), 8, GNTCOPY_source_gref),
        copy_op(
            by_ref(f.read_only, NO_DOMAIN, 0),
            by_frame(f.other_mfn, DOMID_SELF, 0),
            8,
            GNTCOPY_source_gref,
        ),
    ];
    let rc = copy(&mut ops);
    let statuses = ops.map(|op| op.status);
    let wanted = [
        GNTST_okay,
        GNTST_okay,
        GNTST_general_error,
        GNTST_bad_copy_arg,
        GNTST_permission_denied,
        GNTST_bad_gntref,
        GNTST_bad_domain,
    ];
    check!(rc == 0 && statuses == wanted, "copy: rc {rc}, statuses {statuses:?}, wanted {wanted:?}");
    let copied = [memory::read_u64(f.other + 24), memory::read_u64(f.other + 32)];
    check!(copied == [MARKERS[1], MARKERS[2]], "copied out of the grant: {copied:x?}");
    check!(memory::read_u64(f.page + 4000) == MARKERS[1], "the copy into the grant did not land");
    check!(memory::read_u64(f.other) == 0, "a refused copy wrote");
    let flags = (f.flags(f.read_only), f.flags(f.writable));
    check!(
        flags == (GTF_permit_access | GTF_readonly, GTF_permit_access),
        "copies left the entries in use: {flags:#x?}"
    );
    Ok(())
}

fn statuses(f: &Fixture) -> Checked {
    let read_only = GNTMAP_host_map | GNTMAP_readonly;
    let mut ops = [
        f.map_op(READ_VA, read_only, 0xffff_fff0),
        f.map_op(READ_VA, GNTMAP_readonly, f.read_only),
        GnttabMapGrantRef { dom: NO_DOMAIN, ..f.map_op(READ_VA, read_only, f.read_only) },
        GnttabMapGrantRef { dom: DOMID_SELF, ..f.map_op(READ_VA, read_only, f.read_only) },
        f.map_op(READ_VA, read_only, f.read_only),
    ];
    let rc = grant_op(GNTTABOP_map_grant_ref, &mut ops);
    let statuses = ops.map(|op| op.status);
    let wanted = [GNTST_bad_gntref, GNTST_bad_gntref, GNTST_bad_domain, GNTST_bad_domain, GNTST_okay];
    check!(rc == 0 && statuses == wanted, "map: rc {rc}, statuses {statuses:?}, wanted {wanted:?}");
    check!(traps::probe_read(READ_VA) == Some(MARKERS[0]), "the last map of the batch is not there");
    let mut unmaps = [
        GnttabUnmapGrantRef { host_addr: READ_VA, handle: 0xffff_fff0, ..Default::default() },
        GnttabUnmapGrantRef { host_addr: READ_VA, handle: ops[4].handle, ..Default::default() },
    ];
    let rc = grant_op(GNTTABOP_unmap_grant_ref, &mut unmaps);
    let statuses = unmaps.map(|op| op.status);
    check!(rc == 0 && statuses == [GNTST_bad_handle, GNTST_okay], "unmap: rc {rc}, statuses {statuses:?}");
    check!(f.flags(f.read_only) == GTF_permit_access | GTF_readonly, "the entry is still in use");
    Ok(())
}

/// The page-type rules hold for grants too: the running L4, granted
/// writable, maps only read-only and takes no copy.
fn page_tables(f: &Fixture) -> Checked {
    let root = platform::current().current_root();
    let root_mfn = PV.mmu.mfn(root / PAGE_SIZE).ok_or_else(|| String::from("no MFN for the root"))?;
    let gref = grants::grant_access(f.own, root_mfn, false).map_err(|error| format!("grant: {error:?}"))?;
    let result = page_table_grant(f, gref, root, root_mfn);
    let ended = grants::end_access(gref);
    result?;
    check!(ended.is_ok(), "the L4's grant is still in use: {ended:?}");
    Ok(())
}

fn page_table_grant(f: &Fixture, gref: GrantRef, root: u64, root_mfn: u64) -> Checked {
    let (rc, writable) = map(f.map_op(WRITE_VA, GNTMAP_host_map, gref));
    check!(rc == 0 && writable.status == GNTST_general_error, "writable map of the L4: {}", writable.status);
    check!(f.flags(gref) == GTF_permit_access, "the refused map left flags {:#x}", f.flags(gref));
    let (rc, reader) = map(f.map_op(READ_VA, GNTMAP_host_map | GNTMAP_readonly, gref));
    check!(rc == 0 && reader.status == GNTST_okay, "read-only map of the L4: {}", reader.status);
    let seen = traps::probe_read(READ_VA);
    let unmapped = unmap(READ_VA, reader.handle);
    check!(seen == Some(memory::read_u64(root)), "the L4 read through its grant: {seen:x?}");
    check!(unmapped == (0, GNTST_okay), "unmapping the L4: {unmapped:?}");
    let mut ops = [
        copy_op(by_frame(f.other_mfn, DOMID_SELF, 0), by_ref(gref, f.own, 0), 8, GNTCOPY_dest_gref),
        copy_op(by_frame(f.other_mfn, DOMID_SELF, 0), by_frame(root_mfn, DOMID_SELF, 0), 8, 0),
    ];
    let rc = copy(&mut ops);
    let statuses = ops.map(|op| op.status);
    check!(rc == 0 && statuses == [GNTST_general_error; 2], "copies into the L4: rc {rc}, {statuses:?}");
    Ok(())
}
