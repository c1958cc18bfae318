//! The classes of bug behind Xen security advisories 148 (L2 superpages),
//! 182 (fast-path entry updates) and 240 (linear page tables).

use super::*;
use mm::pte::{DIRTY, NX, PSE};
use mm::{errno, MmError, PageType};

/// XSA-148: a PV guest must not create a superpage. A writable 2 MiB
/// mapping would cover 512 frames none of which were checked: its own page
/// tables, other domains' memory, the hypervisor.
#[test]
fn xsa148_l2_superpage_is_refused_by_update_and_validation() {
    let mut h = Harness::new();
    let l2 = dom_frame(0);
    h.pin(l2, Level::L2).unwrap();
    for flags in [WR | PSE, RO | PSE] {
        let err = h.update(l2, 0, entry(Mfn(0), flags)).unwrap_err();
        assert_eq!(err, MmError::ReservedBits { level: Level::L2, bits: PSE });
        assert_eq!(err.xen_errno(), errno::EINVAL);
        assert_eq!(h.get(l2, 0), 0);
    }
    for frame in 0..FRAMES as u64 {
        if Mfn(frame) != l2 {
            assert_eq!(h.counts(Mfn(frame)).0, 0, "mfn {frame} was referenced");
        }
    }
    // The same entry written while the frame was not a table is caught
    // when it becomes one.
    let fresh = dom_frame(1);
    h.update(fresh, 0, entry(dom_frame(2), WR | PSE)).unwrap();
    assert!(matches!(h.pin(fresh, Level::L2), Err(MmError::ReservedBits { level: Level::L2, .. })));
    h.audit(&[]);
}

#[test]
fn xsa148_l3_gigapage_is_refused_too() {
    let mut h = Harness::new();
    let l3 = dom_frame(0);
    h.pin(l3, Level::L3).unwrap();
    let err = h.update(l3, 0, entry(Mfn(0), WR | PSE)).unwrap_err();
    assert_eq!(err, MmError::ReservedBits { level: Level::L3, bits: PSE });
    let l4 = dom_frame(1);
    let l3b = dom_frame(2);
    h.set(l4, 0, entry(l3b, WR));
    h.set(l3b, 0, entry(Mfn(0), WR | PSE));
    assert!(h.pin(l4, Level::L4).is_err());
    h.audit(&[]);
}

/// XSA-182: an update that only flips "harmless" bits skips re-validation.
/// `RW` is not harmless: flipping it on a read-only linear entry would give
/// the guest a writable view of its own page tables.
#[test]
fn xsa182_linear_entry_cannot_be_flipped_writable() {
    for level in [Level::L2, Level::L3, Level::L4] {
        let mut h = Harness::new();
        let [table, other] = [0, 1].map(dom_frame);
        h.pin(table, level).unwrap();
        h.pin(other, level).unwrap();
        for (slot, target) in [(1, table), (2, other)] {
            h.update(table, slot, entry(target, RO)).unwrap();
            let before = (h.get(table, slot), h.counts(target));
            let err = h.update(table, slot, entry(target, WR)).unwrap_err();
            assert_eq!(err, MmError::LinearRefused(target), "{level:?} slot {slot}");
            assert_eq!(err.xen_errno(), errno::EINVAL);
            assert_eq!((h.get(table, slot), h.counts(target)), before);
            // Truly harmless bits still take the fast path.
            h.update(table, slot, entry(target, RO | NX | DIRTY)).unwrap();
            assert_eq!(h.counts(target), before.1);
        }
        h.audit(&[]);
    }
}

#[test]
fn xsa182_read_only_mapping_of_a_page_table_cannot_be_flipped_writable() {
    let mut h = Harness::new();
    let [l4, _, l2, l1, _] = h.write_tree();
    h.pin(l4, Level::L4).unwrap();
    h.update(l1, 7, entry(l2, RO)).unwrap();
    let before = (h.get(l1, 7), h.counts(l2));
    let err = h.update(l1, 7, entry(l2, WR)).unwrap_err();
    assert_eq!(err, MmError::WritableMappingRefused(l2));
    assert_eq!(err.xen_errno(), errno::EBUSY);
    assert_eq!((h.get(l1, 7), h.counts(l2)), before);
    // And with preserve-A/D semantics just the same.
    let err = h.ft.update_entry(&mut h.mem[..], DOM, l1, 7, entry(l2, WR), true).unwrap_err();
    assert_eq!(err, MmError::WritableMappingRefused(l2));
    assert_eq!(h.info(l2).page_type(), PageType::L2);
    h.audit(&[]);
}

#[test]
fn xsa182_fast_path_cannot_retarget_an_entry() {
    let mut h = Harness::new();
    let l4 = dom_frame(0);
    h.pin(l4, Level::L4).unwrap();
    h.update(l4, 0, entry(dom_frame(1), RO)).unwrap();
    // Same flags, other frame (here the hypervisor's): full validation.
    let err = h.update(l4, 0, entry(HYP, RO)).unwrap_err();
    assert_eq!(err, MmError::NotOwner(HYP));
    h.audit(&[]);
}

/// XSA-240: linear page tables nest only one level deep, so putting a
/// table's last type reference can never recurse without bound (and a
/// chain of linear entries cannot form a cycle that keeps itself alive).
#[test]
fn xsa240_linear_entries_do_not_nest() {
    for level in [Level::L2, Level::L3, Level::L4] {
        let mut h = Harness::new();
        let [a, b, c] = [0, 1, 2].map(dom_frame);
        for table in [a, b, c] {
            h.pin(table, level).unwrap();
        }
        h.update(a, 0, entry(b, RO)).unwrap();
        assert_eq!(h.info(a).linear_count(), 1);
        assert_eq!(h.info(b).linear_count(), -1);
        // b is mapped linearly, so it may not hold linear entries...
        assert_eq!(h.update(b, 0, entry(c, RO)), Err(MmError::LinearRefused(c)));
        // ...and a holds one, so it may not be mapped linearly.
        assert_eq!(h.update(c, 0, entry(a, RO)), Err(MmError::LinearRefused(a)));
        // Fan-out and fan-in at one level are fine.
        h.update(a, 1, entry(c, RO)).unwrap();
        let d = dom_frame(3);
        h.pin(d, level).unwrap();
        h.update(d, 0, entry(b, RO)).unwrap();
        assert_eq!(h.info(b).linear_count(), -2);
        h.audit(&[]);
        for table in [a, b, c, d] {
            h.unpin(table).unwrap();
        }
        h.assert_all_released();
    }
}

#[test]
fn xsa240_linear_entries_are_read_only_and_same_domain() {
    let mut h = Harness::new();
    let [a, b] = [0, 1].map(dom_frame);
    h.pin(a, Level::L2).unwrap();
    h.pin(b, Level::L2).unwrap();
    assert_eq!(h.update(a, 0, entry(b, WR)), Err(MmError::LinearRefused(b)));
    assert_eq!(h.counts(b), (1, 1));
    assert_eq!(h.info(a).linear_count(), 0);
    let err = h.update(a, 0, entry(FOREIGN, RO)).unwrap_err();
    assert_eq!(err.xen_errno(), errno::EINVAL);
    h.audit(&[]);
}

#[test]
fn xsa240_linear_entry_keeps_its_target_valid_until_removed() {
    let mut h = Harness::new();
    let [a, b, l1] = [0, 1, 2].map(dom_frame);
    h.set(b, 0, entry(l1, WR));
    h.pin(a, Level::L2).unwrap();
    h.pin(b, Level::L2).unwrap();
    h.update(a, 4, entry(b, RO)).unwrap();
    assert_eq!(h.counts(b), (2, 2));
    h.unpin(b).unwrap();
    assert!(h.info(b).is_validated());
    assert_eq!(h.counts(l1), (1, 1));
    h.audit(&[]);
    h.update(a, 4, 0).unwrap();
    assert_eq!(h.counts(b), (0, 0));
    assert_eq!(h.counts(l1), (0, 0));
    assert_eq!(h.info(a).linear_count(), 0);
    h.unpin(a).unwrap();
    h.assert_all_released();
}

#[test]
fn xsa240_devalidating_a_table_releases_its_linear_entries() {
    let mut h = Harness::new();
    let [a, b] = [0, 1].map(dom_frame);
    h.pin(b, Level::L4).unwrap();
    h.set(a, 0, entry(b, RO));
    h.set(a, 1, entry(a, RO));
    h.pin(a, Level::L4).unwrap();
    assert_eq!(h.counts(b), (2, 2));
    h.unpin(b).unwrap();
    h.unpin(a).unwrap();
    h.assert_all_released();
}

#[test]
fn xsa240_linear_target_must_be_a_validated_table_of_that_level() {
    let mut h = Harness::new();
    let [a, b] = [0, 1].map(dom_frame);
    h.pin(a, Level::L3).unwrap();
    // b is an in-use L1: neither the next level down (L2) nor an L3.
    h.pin(b, Level::L1).unwrap();
    let err = h.update(a, 0, entry(b, RO)).unwrap_err();
    assert!(matches!(err, MmError::TypeConflict { .. }), "{err:?}");
    assert_eq!(h.info(a).linear_count(), 0);
    assert_eq!(h.counts(b), (1, 1));
    h.audit(&[]);
}
