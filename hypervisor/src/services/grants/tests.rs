//! Host tests of the grant-table policy.

use super::active::*;
use super::*;
use hypercalls::abi::grant_table::*;

#[test]
fn only_version_one_is_offered() {
    let mut table = GrantTableSize::new();
    assert_eq!(table.set_version(1), (Ok(()), 1));
    assert_eq!(table.set_version(2), (Err(XenError::ENOSYS), 1));
    assert_eq!(table.set_version(0), (Err(XenError::EINVAL), 1));
    assert_eq!(table.set_version(3), (Err(XenError::EINVAL), 1));
    assert_eq!(table.version(), 1);
}

#[test]
fn the_table_grows_on_demand_up_to_the_maximum() {
    let mut table = GrantTableSize::new();
    assert_eq!(table.frames(), 1);
    assert_eq!(table.frames_to_add(0), Ok(0));
    assert_eq!(table.frames_to_add(1), Ok(0));
    assert_eq!(table.frames_to_add(4), Ok(3));
    table.grew_to(4);
    assert_eq!(table.frames(), 4);
    assert_eq!(table.frames_to_add(2), Ok(0), "never shrinks");
    assert_eq!(table.frames_to_add(MAX_FRAMES), Ok(MAX_FRAMES - 4));
    assert_eq!(table.frames_to_add(MAX_FRAMES + 1), Err(GNTST_general_error));
}

#[test]
fn seed_entries_have_the_v1_layout() {
    let entries = seed_entries(0, 0x1234, 0xabcdef);
    assert_eq!(entries[0].0, GNTTAB_RESERVED_CONSOLE);
    assert_eq!(entries[1].0, GNTTAB_RESERVED_XENSTORE);
    let entry = GrantEntryV1 {
        flags: u16::from_le_bytes([entries[1].1[0], entries[1].1[1]]),
        domid: u16::from_le_bytes([entries[1].1[2], entries[1].1[3]]),
        frame: u32::from_le_bytes(entries[1].1[4..8].try_into().unwrap()),
    };
    assert_eq!((entry.flags, entry.domid, entry.frame), (GTF_permit_access, 0, 0xabcdef));
    assert_eq!(core::mem::size_of::<GrantEntryV1>(), 8);
    assert_eq!(core::mem::offset_of!(GrantEntryV1, frame), 4);
}

const OWN: DomId = 1;
const BACKEND: DomId = 0;

/// A version-1 table in a plain array.
struct Table(Vec<GrantEntryV1>);

impl Table {
    fn new(entries: u32) -> Self {
        Table(vec![GrantEntryV1::default(); entries as usize])
    }

    fn grant(&mut self, gref: GrantRef, grantee: DomId, frame: u32, readonly: bool) {
        let flags = GTF_permit_access | if readonly { GTF_readonly } else { 0 };
        self.0[gref as usize] = GrantEntryV1 { flags, domid: grantee, frame };
    }

    fn flags(&self, gref: GrantRef) -> u16 {
        self.0[gref as usize].flags
    }
}

impl SharedEntries for Table {
    fn len(&self) -> u32 {
        self.0.len() as u32
    }

    fn read(&self, gref: GrantRef) -> GrantEntryV1 {
        self.0[gref as usize]
    }

    fn write_flags(&mut self, gref: GrantRef, flags: u16) {
        self.0[gref as usize].flags = flags;
    }
}

fn owned(frame: u64) -> bool {
    frame >= 0x100
}

const HOST_RO: u32 = GNTMAP_host_map | GNTMAP_readonly;

fn map(active: &mut ActiveGrants, table: &mut Table, gref: GrantRef, flags: u32) -> Result<u64, i16> {
    active.pin(table, gref, GrantUse::map(OWN, flags), owned)
}

fn unmap(active: &mut ActiveGrants, table: &mut Table, gref: GrantRef, flags: u32) {
    active.unpin(table, gref, map_pin_increment(flags), flags & GNTMAP_readonly != 0);
}

#[test]
fn map_flags_choose_the_pin_counters() {
    assert_eq!(map_pin_increment(0), 0, "neither host nor device");
    assert_eq!(map_pin_increment(GNTMAP_readonly | GNTMAP_contains_pte), 0);
    assert_eq!(map_pin_increment(GNTMAP_host_map), PIN_HOST_WRITE);
    assert_eq!(map_pin_increment(HOST_RO), PIN_HOST_READ);
    assert_eq!(map_pin_increment(GNTMAP_device_map | GNTMAP_host_map), PIN_HOST_WRITE + PIN_DEVICE_WRITE);
    assert_eq!(map_pin_increment(GNTMAP_device_map | GNTMAP_readonly), PIN_DEVICE_READ);
    assert_eq!(copy_pin_increment(true), PIN_HOST_READ);
    assert_eq!(copy_pin_increment(false), PIN_HOST_WRITE);
}

#[test]
fn set_status_checks_type_grantee_and_readonly() {
    let entry = |flags, domid| GrantEntryV1 { flags, domid, frame: 0x200 };
    let granted = entry(GTF_permit_access, OWN);
    assert_eq!(set_status(granted, false, true, Purpose::Map, OWN), Ok(GTF_permit_access | GTF_reading));
    assert_eq!(
        set_status(granted, false, false, Purpose::Map, OWN),
        Ok(GTF_permit_access | GTF_reading | GTF_writing)
    );
    assert_eq!(set_status(granted, false, true, Purpose::Map, 7), Err(GNTST_general_error), "other grantee");
    for bad_type in [GTF_invalid, GTF_accept_transfer, GTF_transitive] {
        assert_eq!(
            set_status(entry(bad_type, OWN), false, true, Purpose::Copy, OWN),
            Err(GNTST_general_error)
        );
    }
    let read_only = entry(GTF_permit_access | GTF_readonly, OWN);
    assert_eq!(set_status(read_only, false, false, Purpose::Copy, OWN), Err(GNTST_general_error));
    assert!(set_status(read_only, false, true, Purpose::Copy, OWN).is_ok());
    let sub_page = entry(GTF_permit_access | GTF_sub_page, OWN);
    assert_eq!(set_status(sub_page, false, true, Purpose::Map, OWN), Err(GNTST_general_error));
    assert!(set_status(sub_page, false, true, Purpose::Copy, OWN).is_ok(), "copies ignore sub_page in v1");
    // A pinned entry is not re-checked for type or grantee, only for readonly.
    assert!(set_status(entry(GTF_invalid, 9), true, true, Purpose::Map, OWN).is_ok());
    assert_eq!(set_status(read_only, true, false, Purpose::Map, OWN), Err(GNTST_general_error));
}

#[test]
fn reduce_status_follows_the_remaining_pins() {
    let both = GTF_permit_access | GTF_reading | GTF_writing;
    assert_eq!(reduce_status_for_pin(both, 0, false), GTF_permit_access);
    assert_eq!(
        reduce_status_for_pin(both, 0, true),
        GTF_permit_access | GTF_writing,
        "a reader never clears writing"
    );
    assert_eq!(reduce_status_for_pin(both, PIN_HOST_READ, false), GTF_permit_access | GTF_reading);
    assert_eq!(reduce_status_for_pin(both, PIN_DEVICE_WRITE, false), both);
    assert_eq!(reduce_status_for_pin(both, PIN_HOST_WRITE, true), both);
}

#[test]
fn mapping_sets_and_unmapping_clears_the_shared_flags() {
    let mut table = Table::new(512);
    table.grant(10, OWN, 0x345, false);
    let mut active = ActiveGrants::new();
    assert_eq!(map(&mut active, &mut table, 10, HOST_RO), Ok(0x345));
    assert_eq!(table.flags(10), GTF_permit_access | GTF_reading);
    assert_eq!(map(&mut active, &mut table, 10, GNTMAP_host_map), Ok(0x345));
    assert_eq!(table.flags(10), GTF_permit_access | GTF_reading | GTF_writing);
    assert_eq!(active.pin_count(10), PIN_HOST_READ + PIN_HOST_WRITE);
    unmap(&mut active, &mut table, 10, GNTMAP_host_map);
    assert_eq!(table.flags(10), GTF_permit_access | GTF_reading, "the reader remains");
    unmap(&mut active, &mut table, 10, HOST_RO);
    assert_eq!(table.flags(10), GTF_permit_access);
    assert_eq!(active.pin_count(10), 0);
    assert_eq!(active.frame(10), None);
}

#[test]
fn pin_refuses_bad_references_entries_and_frames() {
    let mut table = Table::new(512);
    let mut active = ActiveGrants::new();
    assert_eq!(map(&mut active, &mut table, 512, HOST_RO), Err(GNTST_bad_gntref));
    assert_eq!(map(&mut active, &mut table, u32::MAX, HOST_RO), Err(GNTST_bad_gntref));
    assert_eq!(map(&mut active, &mut table, 3, HOST_RO), Err(GNTST_general_error), "nothing granted");
    table.grant(4, 9, 0x345, false);
    assert_eq!(map(&mut active, &mut table, 4, HOST_RO), Err(GNTST_general_error), "granted to another");
    table.grant(5, OWN, 0x345, true);
    assert_eq!(map(&mut active, &mut table, 5, GNTMAP_host_map), Err(GNTST_general_error), "read-only grant");
    assert_eq!(table.flags(5), GTF_permit_access | GTF_readonly, "a refusal leaves the flags alone");
    table.grant(6, OWN, 0x10, false);
    assert_eq!(map(&mut active, &mut table, 6, HOST_RO), Err(GNTST_bad_page), "not the granter's frame");
    assert_eq!(table.flags(6), GTF_permit_access, "the reading bit set on the way is cleared again");
    assert_eq!(active.pin_count(6), 0);
}

#[test]
fn a_pinned_entry_keeps_its_frame_and_grantee() {
    let mut table = Table::new(512);
    table.grant(7, OWN, 0x345, false);
    let mut active = ActiveGrants::new();
    assert_eq!(map(&mut active, &mut table, 7, HOST_RO), Ok(0x345));
    // The granter rewrites the entry behind the mapping's back.
    table.0[7].frame = 0x999;
    table.0[7].domid = 9;
    assert_eq!(map(&mut active, &mut table, 7, GNTMAP_host_map), Ok(0x345), "maps keep the pinned frame");
    let copy = active.pin(&mut table, 7, GrantUse::copy(OWN, true), owned);
    assert_eq!(copy, Ok(0x345), "a reader of a pinned entry does not re-read it");
    active.unpin(&mut table, 7, PIN_HOST_READ, true);
    assert_eq!(
        active.pin(&mut table, 7, GrantUse::map(9, HOST_RO), owned),
        Err(GNTST_general_error),
        "another grantee of a pinned entry"
    );
}

#[test]
fn a_copy_that_adds_writing_rereads_the_frame() {
    let mut table = Table::new(512);
    table.grant(7, OWN, 0x345, false);
    let mut active = ActiveGrants::new();
    assert_eq!(map(&mut active, &mut table, 7, HOST_RO), Ok(0x345));
    table.0[7].frame = 0x999;
    let write = active.pin(&mut table, 7, GrantUse::copy(OWN, false), owned);
    assert_eq!(write, Err(GNTST_general_error));
    assert_eq!(table.flags(7), GTF_permit_access | GTF_reading, "writing is not left set");
    // A frame gone from the granter while pinned: the copy is refused.
    let gone = active.pin(&mut table, 7, GrantUse::copy(OWN, true), |frame| frame != 0x345);
    assert_eq!(gone, Err(GNTST_bad_domain));
    assert_eq!(active.pin_count(7), PIN_HOST_READ);
}

#[test]
fn pin_counters_stop_before_overflowing() {
    let mut table = Table::new(512);
    table.grant(9, OWN, 0x345, false);
    let mut active = ActiveGrants::new();
    let mut taken = 0;
    while map(&mut active, &mut table, 9, HOST_RO).is_ok() {
        taken += 1;
        assert!(taken <= 255, "the 8-bit counter would wrap");
    }
    assert_eq!(taken, 128);
    assert_eq!(map(&mut active, &mut table, 9, HOST_RO), Err(GNTST_general_error));
    assert!(map(&mut active, &mut table, 9, GNTMAP_host_map).is_ok(), "the write counter is separate");
    assert_eq!(active.pin_count(9), 128 * PIN_HOST_READ + PIN_HOST_WRITE);
}

#[test]
fn the_backend_domain_grants_nothing() {
    let mut active = ActiveGrants::new();
    let mut table = UngrantedTable;
    let pin = |active: &mut ActiveGrants, table: &mut UngrantedTable, gref| {
        active.pin(table, gref, GrantUse::map(OWN, HOST_RO), |_| true)
    };
    assert_eq!(pin(&mut active, &mut table, 0), Err(GNTST_general_error));
    assert_eq!(pin(&mut active, &mut table, 511), Err(GNTST_general_error));
    assert_eq!(pin(&mut active, &mut table, 512), Err(GNTST_bad_gntref));
}

#[test]
fn domains_a_map_or_copy_may_name() {
    assert_eq!(map_granter(OWN, OWN, BACKEND), Ok(Granter::Own));
    assert_eq!(map_granter(BACKEND, OWN, BACKEND), Ok(Granter::Backend));
    assert_eq!(map_granter(DOMID_SELF, OWN, BACKEND), Err(GNTST_bad_domain), "maps look domains up by id");
    assert_eq!(map_granter(0x1234, OWN, BACKEND), Err(GNTST_bad_domain));
    assert_eq!(copy_granter(DOMID_SELF, true, OWN, BACKEND), Ok(Granter::Own));
    assert_eq!(copy_granter(DOMID_SELF, false, OWN, BACKEND), Ok(Granter::Own));
    assert_eq!(copy_granter(OWN, true, OWN, BACKEND), Ok(Granter::Own));
    assert_eq!(copy_granter(OWN, false, OWN, BACKEND), Err(GNTST_permission_denied), "frames only via SELF");
    assert_eq!(copy_granter(0x1234, false, OWN, BACKEND), Err(GNTST_permission_denied));
    assert_eq!(copy_granter(0x1234, true, OWN, BACKEND), Err(GNTST_bad_domain));
    assert_eq!(copy_granter(BACKEND, true, OWN, BACKEND), Ok(Granter::Backend));
}

#[test]
fn host_mapping_ptes_follow_the_flags() {
    let writable = host_mapping_pte(0x345, GNTMAP_host_map);
    assert_eq!(writable, 0x345_000 | pte::PRESENT | pte::RW | pte::ACCESSED | pte::DIRTY | pte::NX);
    let read_only = host_mapping_pte(0x345, HOST_RO | GNTMAP_application_map | 5 << 16);
    assert_eq!(read_only & pte::RW, 0);
    assert_ne!(read_only & pte::USER, 0);
    assert_eq!(read_only & pte::AVAIL, 5 << 9, "guest bits land in the PTE's software bits");
    assert!(is_host_mapping(writable | pte::USER | pte::GUEST_KERNEL, 0x345, GNTMAP_host_map));
    assert!(!is_host_mapping(writable, 0x346, GNTMAP_host_map), "another frame");
    assert!(!is_host_mapping(writable & !pte::RW, 0x345, GNTMAP_host_map), "made read-only since");
    assert!(!is_host_mapping(writable, 0x345, HOST_RO), "made writable since");
    assert!(!is_host_mapping(0, 0, HOST_RO), "not present");
}

#[test]
fn copies_stay_within_the_page() {
    assert_eq!(check_copy_bounds(0, 0, 4096), Ok(()));
    assert_eq!(check_copy_bounds(4095, 0, 1), Ok(()));
    assert_eq!(check_copy_bounds(4095, 0, 2), Err(GNTST_bad_copy_arg));
    assert_eq!(check_copy_bounds(0, 4000, 97), Err(GNTST_bad_copy_arg));
    assert_eq!(check_copy_bounds(u16::MAX, u16::MAX, u16::MAX), Err(GNTST_bad_copy_arg));
    assert_eq!(check_copy_bounds(8, 8, 0), Ok(()));
}

#[test]
fn maptrack_hands_out_handles_like_xen() {
    let mut maptrack = Maptrack::new();
    assert_eq!(maptrack.limit(), 0);
    assert_eq!(maptrack.lookup(0), Err(GNTST_bad_handle), "nothing mapped yet");
    let handles: Vec<_> = (0..255).map(|_| maptrack.get_handle().unwrap()).collect();
    assert_eq!(handles, (0..255).collect::<Vec<_>>());
    assert_eq!(maptrack.limit(), 256);
    // The last record of a frame stays in the list: the next frame starts.
    assert_eq!(maptrack.get_handle(), Some(256));
    assert_eq!(maptrack.limit(), 512);
    maptrack.set(3, Mapping { domid: OWN, gref: 12, flags: HOST_RO as u16 });
    assert_eq!(maptrack.lookup(3), Ok(Mapping { domid: OWN, gref: 12, flags: HOST_RO as u16 }));
    assert_eq!(maptrack.lookup(4), Err(GNTST_bad_handle), "handed out but not recorded");
    assert_eq!(maptrack.lookup(512), Err(GNTST_bad_handle));
    assert_eq!(maptrack.lookup(u32::MAX), Err(GNTST_bad_handle));
    maptrack.set_flags(3, GNTMAP_readonly as u16);
    assert_eq!(maptrack.lookup(3).map(|m| m.flags), Ok(GNTMAP_readonly as u16));
    maptrack.put_handle(3);
    assert_eq!(maptrack.lookup(3), Err(GNTST_bad_handle), "a freed handle");
    // Freed handles queue behind the rest of the free list.
    let next: Vec<_> = (0..256).map(|_| maptrack.get_handle().unwrap()).collect();
    assert_eq!(next[..255], (257..512).collect::<Vec<_>>()[..]);
    assert_eq!(next[255], 255);
    assert_eq!(maptrack.get_handle(), Some(512), "3 is now the record kept back");
}

#[test]
fn a_full_maptrack_reports_no_space() {
    let mut maptrack = Maptrack::with_max_frames(2);
    let mut handles = Vec::new();
    while let Some(handle) = maptrack.get_handle() {
        handles.push(handle);
        assert!(handles.len() <= 512);
    }
    assert_eq!(handles.len(), 511, "one record always stays free");
    maptrack.put_handle(100);
    assert_eq!(maptrack.get_handle(), Some(255), "the kept record goes once another is free");
    assert_eq!(maptrack.get_handle(), None);
}
