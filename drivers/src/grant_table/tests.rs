use super::*;

fn table(entries: usize) -> Vec<GrantEntryV1View> {
    (0..entries).map(|_| GrantEntryV1View::new()).collect()
}

#[test]
fn grant_access_fills_the_entry_with_permission_last() {
    let entries = table(16);
    grant_access(&entries, 9, 0, 0x1234, false).unwrap();
    assert_eq!(entries[9].domid.load(Ordering::Relaxed), 0);
    assert_eq!(entries[9].frame.load(Ordering::Relaxed), 0x1234);
    assert_eq!(entries[9].flags.load(Ordering::Relaxed), GTF_permit_access);
    grant_access(&entries, 10, 7, 0x99, true).unwrap();
    assert_eq!(entries[10].domid.load(Ordering::Relaxed), 7);
    assert_eq!(entries[10].flags.load(Ordering::Relaxed), GTF_permit_access | GTF_readonly);
    assert_eq!(is_in_use(&entries, 10), Ok(true));
    assert_eq!(is_in_use(&entries, 11), Ok(false));
}

#[test]
fn a_live_grant_cannot_be_overwritten() {
    let entries = table(16);
    grant_access(&entries, 8, 0, 1, false).unwrap();
    assert_eq!(grant_access(&entries, 8, 3, 2, false), Err(GrantError::InUse { gref: 8 }));
    assert_eq!(entries[8].frame.load(Ordering::Relaxed), 1);
}

#[test]
fn end_access_refuses_while_the_grantee_has_it_mapped() {
    let entries = table(16);
    grant_access(&entries, 12, 0, 5, false).unwrap();
    // Xen marks the entry while the grantee maps it.
    entries[12].flags.fetch_or(GTF_writing, Ordering::SeqCst);
    assert_eq!(end_access(&entries, 12), Err(GrantError::Busy { gref: 12 }));
    assert_eq!(entries[12].flags.load(Ordering::Relaxed), GTF_permit_access | GTF_writing);
    entries[12].flags.fetch_and(!GTF_writing, Ordering::SeqCst);
    entries[12].flags.fetch_or(GTF_reading, Ordering::SeqCst);
    assert_eq!(end_access(&entries, 12), Err(GrantError::Busy { gref: 12 }));
    entries[12].flags.fetch_and(!GTF_reading, Ordering::SeqCst);
    assert_eq!(end_access(&entries, 12), Ok(()));
    assert_eq!(entries[12].flags.load(Ordering::Relaxed), 0);
    // Once ended, the entry can be reused.
    grant_access(&entries, 12, 0, 6, true).unwrap();
}

#[test]
fn references_beyond_the_table_are_rejected() {
    let entries = table(16);
    let out = GrantError::RefOutOfRange { gref: 16, entries: 16 };
    assert_eq!(grant_access(&entries, 16, 0, 1, false), Err(out));
    assert_eq!(end_access(&entries, 16), Err(out));
    assert_eq!(is_in_use(&entries, 16), Err(out));
    assert_eq!(
        grant_access(&entries, 9, 0, 1 << 32, false),
        Err(GrantError::FrameTooLarge { frame: 1 << 32 })
    );
    assert_eq!(entries[9].flags.load(Ordering::Relaxed), 0);
}

#[test]
fn the_allocator_never_hands_out_reserved_or_duplicate_refs() {
    let mut allocator = GrantRefAllocator::new(20);
    assert_eq!(allocator.available(), 12);
    let mut handed = Vec::new();
    while let Some(gref) = allocator.alloc() {
        assert!((GNTTAB_NR_RESERVED_ENTRIES..20).contains(&gref));
        assert!(!handed.contains(&gref));
        handed.push(gref);
    }
    assert_eq!(handed.len(), 12);
    assert_eq!(allocator.available(), 0);
    allocator.free(13).unwrap();
    assert_eq!(allocator.alloc(), Some(13));
    assert_eq!(allocator.alloc(), None);
}

#[test]
fn the_allocator_rejects_bad_frees() {
    let mut allocator = GrantRefAllocator::new(16);
    let gref = allocator.alloc().unwrap();
    assert_eq!(allocator.free(gref), Ok(()));
    assert_eq!(allocator.free(gref), Err(GrantError::NotAllocated { gref }));
    assert_eq!(allocator.free(1), Err(GrantError::Reserved { gref: 1 }));
    assert_eq!(allocator.free(16), Err(GrantError::RefOutOfRange { gref: 16, entries: 16 }));
    assert_eq!(allocator.available(), 8);
}

#[test]
fn the_allocator_grows_with_the_table() {
    let mut allocator = GrantRefAllocator::new(4);
    assert_eq!(allocator.available(), 0);
    assert_eq!(allocator.alloc(), None);
    allocator.grow(ENTRIES_PER_FRAME as u32);
    assert_eq!(allocator.available(), ENTRIES_PER_FRAME as u32 - GNTTAB_NR_RESERVED_ENTRIES);
    for _ in 0..allocator.available() {
        assert!(allocator.alloc().is_some());
    }
    allocator.grow(2 * ENTRIES_PER_FRAME as u32);
    let next = allocator.alloc().unwrap();
    assert!(next >= ENTRIES_PER_FRAME as u32);
    allocator.grow(10);
    assert_eq!(allocator.entries(), 2 * ENTRIES_PER_FRAME as u32, "never shrinks");
}
