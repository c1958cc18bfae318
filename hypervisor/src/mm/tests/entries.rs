//! Per-entry rules: reserved bits, ownership of targets, the references an
//! entry holds, hypervisor L4 slots, guest-entry adjustment.

use super::*;
use mm::pte::{self, DIRTY, GLOBAL, GNTTAB, GUEST_KERNEL, NX, PAT, PCD, PSE, PWT};
use mm::{errno, MmError, PageType, HYPERVISOR_L4_SLOTS};

/// A pinned table of `level` in domain frame 0.
fn pinned(level: Level) -> (Harness, Mfn) {
    let mut h = Harness::new();
    let table = dom_frame(0);
    h.pin(table, level).unwrap();
    (h, table)
}

/// A frame validated as the level below `level`, for entries to point to.
fn lower_table(h: &mut Harness, level: Level) -> Mfn {
    let target = dom_frame(1);
    if let Some(lower) = level.lower() {
        h.pin(target, lower).unwrap();
    }
    target
}

#[test]
fn reserved_bits_are_refused_per_level() {
    let cases: [(Level, &[u64], &[u64]); 4] = [
        (Level::L1, &[PWT, PCD, PAT], &[GLOBAL, NX, 1 << 9, 1 << 55, GNTTAB]),
        (Level::L2, &[PWT, PCD, PSE, GLOBAL], &[NX, 1 << 9, GNTTAB]),
        (Level::L3, &[PWT, PCD, PSE, GLOBAL], &[NX, 1 << 11, GNTTAB]),
        (Level::L4, &[PWT, PCD, PSE, GLOBAL], &[NX, 1 << 10, GNTTAB]),
    ];
    for (level, refused, allowed) in cases {
        let (mut h, table) = pinned(level);
        let target = lower_table(&mut h, level);
        for &bit in refused {
            let err = h.update(table, 0, entry(target, RO | bit)).unwrap_err();
            assert_eq!(err, MmError::ReservedBits { level, bits: bit }, "{level:?} {bit:#x}");
            assert_eq!(err.xen_errno(), errno::EINVAL);
            assert_eq!(h.get(table, 0), 0);
        }
        for &bit in allowed {
            h.update(table, 0, entry(target, RO | bit))
                .unwrap_or_else(|e| panic!("{level:?} {bit:#x}: {e:?}"));
        }
        h.audit(&[]);
    }
}

#[test]
fn reserved_bits_are_refused_on_the_fast_path_too() {
    // G is in the fast-path whitelist, but it is still reserved in L2-L4.
    for (level, bit) in [(Level::L2, GLOBAL), (Level::L3, GLOBAL), (Level::L4, GLOBAL)] {
        let (mut h, table) = pinned(level);
        let target = lower_table(&mut h, level);
        h.update(table, 0, entry(target, RO)).unwrap();
        let before = h.get(table, 0);
        let err = h.update(table, 0, entry(target, RO | bit)).unwrap_err();
        assert_eq!(err, MmError::ReservedBits { level, bits: bit });
        assert_eq!(h.get(table, 0), before);
        h.audit(&[]);
    }
}

#[test]
fn cache_attributes_need_permission() {
    let (mut h, table) = pinned(Level::L1);
    let data = dom_frame(1);
    assert!(h.update(table, 0, entry(data, WR | PCD | PWT)).is_err());
    h.ft.set_cache_attributes_permitted(true);
    h.update(table, 0, entry(data, WR | PCD | PWT)).unwrap();
    // Only for L1: PWT stays reserved higher up.
    let (mut h, table) = pinned(Level::L2);
    h.ft.set_cache_attributes_permitted(true);
    let l1 = lower_table(&mut h, Level::L2);
    assert!(h.update(table, 0, entry(l1, RO | PWT)).is_err());
}

#[test]
fn l1_entries_map_only_own_frames() {
    let (mut h, table) = pinned(Level::L1);
    for (target, error) in [
        (HYP, MmError::ForeignFrame(HYP)),
        (FREE, MmError::ForeignFrame(FREE)),
        (FOREIGN, MmError::ForeignFrame(FOREIGN)),
        (OUT_OF_RANGE, MmError::MmioDenied(OUT_OF_RANGE)),
    ] {
        for flags in [RO, WR] {
            assert_eq!(h.update(table, 0, entry(target, flags)), Err(error));
        }
    }
    assert_eq!(MmError::ForeignFrame(HYP).xen_errno(), errno::EBUSY);
    assert_eq!(MmError::MmioDenied(HYP).xen_errno(), errno::EPERM);
    assert_eq!(h.counts(HYP), (0, 0));
    h.audit(&[]);
}

#[test]
fn io_memory_is_denied_and_invalid_mfn_is_invalid() {
    let (mut h, table) = pinned(Level::L1);
    h.ft.assign_owner(FREE, Owner::Io).unwrap();
    let invalid_mfn = Mfn(mm::pte::ADDR_MASK >> 12);
    for flags in [RO, WR] {
        let io = h.update(table, 0, entry(FREE, flags)).unwrap_err();
        assert_eq!((io, io.xen_errno()), (MmError::MmioDenied(FREE), errno::EPERM));
        let invalid = h.update(table, 0, entry(invalid_mfn, flags)).unwrap_err();
        assert_eq!(invalid.xen_errno(), errno::EINVAL, "{invalid:?}");
    }
    assert_eq!(h.counts(FREE), (0, 0));
    h.audit(&[]);
}

#[test]
fn upper_entries_point_only_to_own_frames() {
    for level in [Level::L2, Level::L3, Level::L4] {
        let (mut h, table) = pinned(level);
        for target in [HYP, FREE, FOREIGN, OUT_OF_RANGE, SHARED_RO] {
            let err = h.update(table, 0, entry(target, RO)).unwrap_err();
            assert_eq!(err.xen_errno(), errno::EINVAL, "{level:?} -> {target:?}");
        }
        // Validation refuses them just the same.
        let fresh = dom_frame(5);
        h.set(fresh, 3, entry(HYP, RO));
        assert!(h.pin(fresh, level).is_err());
        h.audit(&[]);
    }
}

#[test]
fn l1_writable_entry_takes_a_writable_type_reference() {
    let (mut h, table) = pinned(Level::L1);
    let data = dom_frame(1);
    h.update(table, 0, entry(data, RO)).unwrap();
    assert_eq!(h.counts(data), (1, 0));
    h.update(table, 1, entry(data, WR)).unwrap();
    assert_eq!(h.counts(data), (2, 1));
    assert_eq!(h.info(data).page_type(), PageType::Writable);
    // Rewriting to read-only drops the type reference; clearing drops all.
    h.update(table, 1, entry(data, RO)).unwrap();
    assert_eq!(h.counts(data), (2, 0));
    h.update(table, 0, 0).unwrap();
    h.update(table, 1, 0).unwrap();
    assert_eq!(h.counts(data), (0, 0));
    h.audit(&[]);
}

#[test]
fn upper_entry_types_its_target_as_the_next_level() {
    for level in [Level::L2, Level::L3, Level::L4] {
        let (mut h, table) = pinned(level);
        let target = dom_frame(1);
        h.update(table, 5, entry(target, WR)).unwrap();
        assert_eq!(Some(h.info(target).page_type()), level.lower().map(Level::page_type));
        assert_eq!(h.counts(target), (1, 1));
        // Replacing the entry moves the references.
        let other = dom_frame(2);
        h.update(table, 5, entry(other, WR)).unwrap();
        assert_eq!(h.counts(target), (0, 0));
        assert_eq!(h.counts(other), (1, 1));
        h.audit(&[]);
        h.unpin(table).unwrap();
        h.assert_all_released();
    }
}

#[test]
fn upper_entry_refuses_a_target_typed_otherwise() {
    let (mut h, l4) = pinned(Level::L4);
    let l1 = dom_frame(1);
    h.pin(l1, Level::L1).unwrap();
    let err = h.update(l4, 0, entry(l1, RO)).unwrap_err();
    assert!(matches!(err, MmError::TypeConflict { .. }), "{err:?}");
    assert_eq!(h.counts(l1), (1, 1));
    h.audit(&[]);
}

#[test]
fn hypervisor_l4_slots_are_not_the_guests() {
    let (mut h, l4) = pinned(Level::L4);
    let l3 = dom_frame(1);
    for slot in [HYPERVISOR_L4_SLOTS.start, 260, HYPERVISOR_L4_SLOTS.end - 1] {
        let err = h.update(l4, slot, entry(l3, RO)).unwrap_err();
        assert_eq!(err, MmError::HypervisorSlot(slot));
        assert_eq!(err.xen_errno(), errno::EINVAL);
        assert_eq!(h.update(l4, slot, 0), Err(MmError::HypervisorSlot(slot)));
    }
    assert_eq!(h.get(l4, 256), h.ft.hypervisor_l4_entries()[0]);
    // The slots either side are the guest's.
    h.update(l4, 255, entry(l3, RO)).unwrap();
    h.update(l4, 272, 0).unwrap();
    h.audit(&[]);
}

#[test]
fn validation_ignores_and_overwrites_hypervisor_l4_slots() {
    let mut h = Harness::new();
    let l4 = dom_frame(0);
    // Garbage there would fail every check; it is not looked at.
    h.set(l4, 256, entry(HYP, WR | PSE));
    h.set(l4, 271, entry(FOREIGN, WR));
    h.pin(l4, Level::L4).unwrap();
    for (offset, slot) in HYPERVISOR_L4_SLOTS.enumerate() {
        assert_eq!(h.get(l4, slot), h.ft.hypervisor_l4_entries()[offset]);
    }
    assert_eq!(h.counts(HYP), (0, 0));
    assert_eq!(h.counts(FOREIGN), (0, 0));
    h.audit(&[]);
    h.unpin(l4).unwrap();
    h.assert_all_released();
}

#[test]
fn guest_entries_are_adjusted_for_a_ring_3_kernel() {
    let mut h = Harness::new();
    let [l4, l3, l2, l1, data] = h.write_tree();
    h.set(l1, 1, entry(data, 0)); // kernel-only, read-only
    h.set(l4, 0, entry(l3, RW));
    h.pin(l4, Level::L4).unwrap();
    assert_eq!(h.get(l1, 1), entry(data, USER | GUEST_KERNEL));
    assert_eq!(h.get(l1, 0), entry(data, WR | GLOBAL));
    assert_eq!(h.get(l4, 0), entry(l3, RW | USER | ACCESSED));
    assert_eq!(h.get(l2, 0) & USER, USER);
    // Updates are adjusted too.
    h.update(l1, 2, entry(data, RW)).unwrap();
    assert_eq!(h.get(l1, 2), entry(data, RW | USER | GUEST_KERNEL));
}

#[test]
fn preserve_ad_keeps_the_cpu_set_bits() {
    let (mut h, l1) = pinned(Level::L1);
    let data = dom_frame(1);
    h.update(l1, 0, entry(data, WR | DIRTY)).unwrap();
    h.ft.update_entry(&mut h.mem[..], DOM, l1, 0, entry(data, USER | RW), true).unwrap();
    assert_eq!(h.get(l1, 0) & (ACCESSED | DIRTY), ACCESSED | DIRTY);
    h.ft.update_entry(&mut h.mem[..], DOM, l1, 0, entry(data, USER | RW), false).unwrap();
    assert_eq!(h.get(l1, 0) & (ACCESSED | DIRTY), 0);
}

#[test]
fn whitelisted_changes_take_the_fast_path() {
    let (mut h, l1) = pinned(Level::L1);
    let data = dom_frame(1);
    h.update(l1, 0, entry(data, WR)).unwrap();
    let counts = h.counts(data);
    for bits in [DIRTY, NX, GLOBAL, 1 << 9, 1 << 60] {
        h.update(l1, 0, entry(data, WR | bits)).unwrap();
        assert_eq!(h.get(l1, 0) & bits, bits);
        assert_eq!(h.counts(data), counts);
    }
    h.audit(&[]);
}

#[test]
fn non_present_entries_are_stored_as_given() {
    let (mut h, l2) = pinned(Level::L2);
    // Not present: nothing is mapped, so no bits are reserved.
    h.update(l2, 9, pte::make_entry(HYP, RW | PSE | GLOBAL)).unwrap();
    assert_eq!(h.get(l2, 9), pte::make_entry(HYP, RW | PSE | GLOBAL));
    assert_eq!(h.counts(HYP), (0, 0));
    h.audit(&[]);
}

#[test]
fn a_table_may_map_itself_read_only() {
    for level in [Level::L2, Level::L3, Level::L4] {
        let mut h = Harness::new();
        let table = dom_frame(0);
        h.set(table, 1, entry(table, RO));
        h.pin(table, level).unwrap();
        assert_eq!(h.counts(table), (1, 1), "a self-map takes no references");
        assert!(h.update(table, 2, entry(table, WR)).is_err());
        h.update(table, 2, entry(table, RO)).unwrap();
        h.audit(&[]);
        h.unpin(table).unwrap();
        h.assert_all_released();
        // Writable, it refuses validation.
        h.set(table, 1, entry(table, WR));
        assert_eq!(h.pin(table, level), Err(MmError::LinearRefused(table)));
    }
}

#[test]
fn l1_may_map_page_tables_read_only() {
    let mut h = Harness::new();
    let [l4, _, l2, l1, _] = h.write_tree();
    h.set(l1, 1, entry(l2, RO));
    h.set(l1, 2, entry(l1, RO));
    h.set(l1, 3, entry(l4, RO));
    h.pin(l4, Level::L4).unwrap();
    assert_eq!(h.counts(l2), (2, 1));
    h.audit(&[]);
    assert_eq!(h.update(l1, 2, entry(l1, WR)), Err(MmError::WritableMappingRefused(l1)));
}
