//! General and type references, pinning, base pointers, ownership.

use super::*;
use mm::{errno, MmError, PageType};

#[test]
fn get_page_takes_a_reference_only_on_own_frames() {
    let mut h = Harness::new();
    let frame = dom_frame(0);
    h.ft.get_page(frame, DOM).unwrap();
    assert_eq!(h.counts(frame), (1, 0));
    for other in [HYP, FREE, FOREIGN] {
        assert_eq!(h.ft.get_page(other, DOM), Err(MmError::NotOwner(other)));
        assert_eq!(h.counts(other).0, 0);
    }
    assert_eq!(h.ft.get_page(OUT_OF_RANGE, DOM), Err(MmError::FrameOutOfRange(OUT_OF_RANGE)));
    assert_eq!(h.ft.get_page(frame, OTHER_DOM), Err(MmError::NotOwner(frame)));
    h.ft.put_page(frame);
    assert_eq!(h.counts(frame), (0, 0));
}

#[test]
fn type_changes_only_while_unused() {
    let mut h = Harness::new();
    let frame = dom_frame(0);
    h.ft.get_page_type(&mut h.mem[..], frame, PageType::Writable).unwrap();
    let refused = h.ft.get_page_type(&mut h.mem[..], frame, PageType::L1);
    assert_eq!(
        refused,
        Err(MmError::TypeConflict { mfn: frame, current: PageType::Writable, wanted: PageType::L1 })
    );
    assert_eq!(refused.unwrap_err().xen_errno(), errno::EINVAL);
    h.ft.put_page_type(&mut h.mem[..], frame);
    h.ft.get_page_type(&mut h.mem[..], frame, PageType::L1).unwrap();
    assert_eq!(h.info(frame).page_type(), PageType::L1);
    assert!(h.info(frame).is_validated());
}

#[test]
fn writably_mapped_frame_cannot_become_a_page_table() {
    let mut h = Harness::new();
    let frame = dom_frame(0);
    h.ft.map_writable(&mut h.mem[..], DOM, frame).unwrap();
    for level in [Level::L1, Level::L2, Level::L3, Level::L4] {
        let err = h.pin(frame, level).unwrap_err();
        assert!(matches!(err, MmError::TypeConflict { .. }), "{err:?}");
    }
    // Nor can a table reference it as its next level.
    let l2 = dom_frame(1);
    h.set(l2, 3, entry(frame, WR));
    assert!(h.pin(l2, Level::L2).is_err());
    assert_eq!(h.counts(frame), (1, 1));
    h.ft.unmap_writable(&mut h.mem[..], frame).unwrap();
    h.pin(frame, Level::L1).unwrap();
    h.audit(&[]);
}

#[test]
fn page_table_cannot_be_mapped_writable() {
    let mut h = Harness::new();
    let table = dom_frame(0);
    h.pin(table, Level::L1).unwrap();
    assert_eq!(h.ft.map_writable(&mut h.mem[..], DOM, table), Err(MmError::WritableMappingRefused(table)));
    let l1 = dom_frame(1);
    h.pin(l1, Level::L1).unwrap();
    let err = h.update(l1, 0, entry(table, WR)).unwrap_err();
    assert_eq!(err, MmError::WritableMappingRefused(table));
    assert_eq!(err.xen_errno(), errno::EBUSY);
    // Read-only is fine and takes only a general reference.
    h.update(l1, 0, entry(table, RO)).unwrap();
    assert_eq!(h.counts(table), (2, 1));
    h.audit(&[]);
}

#[test]
fn validation_takes_references_recursively_and_release_drops_them() {
    let mut h = Harness::new();
    let [l4, l3, l2, l1, data] = h.write_tree();
    h.pin(l4, Level::L4).unwrap();
    assert_eq!(h.counts(l4), (1, 1));
    for (frame, page_type) in
        [(l3, PageType::L3), (l2, PageType::L2), (l1, PageType::L1), (data, PageType::Writable)]
    {
        assert_eq!(h.info(frame).page_type(), page_type);
        assert_eq!(h.counts(frame), (1, 1));
    }
    h.audit(&[]);
    h.unpin(l4).unwrap();
    h.assert_all_released();
    assert!(!h.info(l3).is_validated());
}

#[test]
fn failed_validation_releases_everything_and_leaves_contents() {
    let mut h = Harness::new();
    let [l2, l1, bad] = [0, 1, 2].map(dom_frame);
    h.set(l2, 0, entry(l1, WR));
    h.set(l2, 1, entry(bad, WR | mm::pte::PSE));
    let before = h.mem.clone();
    let err = h.pin(l2, Level::L2).unwrap_err();
    assert!(matches!(err, MmError::ReservedBits { level: Level::L2, .. }));
    h.assert_all_released();
    assert_eq!(h.info(l2).page_type(), PageType::None);
    assert_eq!(h.mem, before, "a refused table must not be rewritten");
}

#[test]
fn pinning_at_the_wrong_level_fails() {
    let mut h = Harness::new();
    let table = dom_frame(0);
    h.pin(table, Level::L2).unwrap();
    for level in [Level::L1, Level::L3, Level::L4] {
        let err = h.pin(table, level).unwrap_err();
        assert_eq!(err.xen_errno(), errno::EINVAL);
    }
    assert_eq!(h.counts(table), (1, 1));
    h.audit(&[]);
}

#[test]
fn double_pin_is_einval_and_changes_nothing() {
    let mut h = Harness::new();
    let table = dom_frame(0);
    h.pin(table, Level::L3).unwrap();
    let err = h.pin(table, Level::L3).unwrap_err();
    assert_eq!(err, MmError::AlreadyPinned(table));
    assert_eq!(err.xen_errno(), errno::EINVAL);
    assert_eq!(h.counts(table), (1, 1));
    h.unpin(table).unwrap();
    h.assert_all_released();
}

#[test]
fn unpin_needs_a_pinned_own_frame() {
    let mut h = Harness::new();
    let table = dom_frame(0);
    assert_eq!(h.unpin(table), Err(MmError::NotPinned(table)));
    assert_eq!(h.unpin(FOREIGN), Err(MmError::NotOwner(FOREIGN)));
    h.pin(table, Level::L1).unwrap();
    assert_eq!(h.ft.unpin(&mut h.mem[..], OTHER_DOM, table), Err(MmError::NotOwner(table)));
    h.unpin(table).unwrap();
    assert_eq!(h.unpin(table), Err(MmError::NotPinned(table)));
    h.assert_all_released();
}

#[test]
fn base_pointer_keeps_an_unpinned_table_valid() {
    let mut h = Harness::new();
    let [l4, l3, ..] = h.write_tree();
    h.pin(l4, Level::L4).unwrap();
    assert_eq!(h.new_baseptr(l4), Ok(None));
    h.unpin(l4).unwrap();
    assert!(h.info(l4).is_validated());
    assert_eq!(h.counts(l4), (1, 1));
    assert_eq!(h.counts(l3), (1, 1));
    h.audit(&[]);
    // Switching away drops the last references of the old tree.
    let other = dom_frame(10);
    assert_eq!(h.new_baseptr(other), Ok(Some(l4)));
    assert_eq!(h.counts(l4), (0, 0));
    assert_eq!(h.counts(l3), (0, 0));
    assert_eq!(h.new_baseptr(other), Ok(None), "same base is a no-op");
    h.audit(&[]);
    h.vcpu.release(&mut h.ft, &mut h.mem[..]);
    h.assert_all_released();
}

#[test]
fn base_pointer_must_be_an_own_l4() {
    let mut h = Harness::new();
    let l2 = dom_frame(0);
    h.pin(l2, Level::L2).unwrap();
    assert!(matches!(h.new_baseptr(l2), Err(MmError::TypeConflict { .. })));
    assert_eq!(h.new_baseptr(FOREIGN), Err(MmError::NotOwner(FOREIGN)));
    assert_eq!(h.new_baseptr(HYP), Err(MmError::NotOwner(HYP)));
    assert_eq!(h.vcpu.kernel_base(), None);
    assert_eq!(h.counts(l2), (1, 1));
    h.audit(&[]);
}

#[test]
fn user_base_pointer_can_be_cleared() {
    let mut h = Harness::new();
    let user = dom_frame(0);
    let vcpu = &mut h.vcpu;
    vcpu.new_user_baseptr(&mut h.ft, &mut h.mem[..], DOM, Some(user)).unwrap();
    assert_eq!(h.counts(user), (1, 1));
    let old = h.vcpu.new_user_baseptr(&mut h.ft, &mut h.mem[..], DOM, None).unwrap();
    assert_eq!(old, Some(user));
    assert_eq!(h.vcpu.user_base(), None);
    h.assert_all_released();
}

#[test]
fn machphys_update_needs_ownership() {
    let mut h = Harness::new();
    h.ft.machphys_update(DOM, dom_frame(3)).unwrap();
    h.ft.machphys_update(DOM, SHARED_RW).unwrap();
    for other in [HYP, FREE, FOREIGN, OUT_OF_RANGE] {
        let err = h.ft.machphys_update(DOM, other).unwrap_err();
        assert_eq!(err.xen_errno(), errno::EINVAL);
    }
    h.assert_all_released();
}

#[test]
fn normal_update_of_a_plain_frame_writes_data() {
    let mut h = Harness::new();
    let frame = dom_frame(0);
    h.update(frame, 7, 0xdead_beef).unwrap();
    assert_eq!(h.get(frame, 7), 0xdead_beef);
    assert_eq!(h.info(frame).page_type(), PageType::Writable);
    assert_eq!(h.counts(frame), (0, 0));
    h.update(SHARED_RW, 1, 42).unwrap();
    assert_eq!(h.get(SHARED_RW, 1), 42);
    assert_eq!(h.update(SHARED_RO, 1, 42), Err(MmError::NotUpdatable(SHARED_RO)));
    assert_eq!(h.update(FOREIGN, 1, 42), Err(MmError::NotOwner(FOREIGN)));
    assert_eq!(h.update(HYP, 1, 42), Err(MmError::NotOwner(HYP)));
    assert_eq!(h.update(frame, 512, 1), Err(MmError::BadIndex(512)));
    assert_eq!(h.get(SHARED_RO, 1), 0);
    h.assert_all_released();
}

#[test]
fn shared_frames_are_mappable_but_never_page_tables() {
    let mut h = Harness::new();
    let l1 = dom_frame(0);
    h.pin(l1, Level::L1).unwrap();
    h.update(l1, 0, entry(SHARED_RW, WR)).unwrap();
    h.update(l1, 1, entry(SHARED_RO, RO)).unwrap();
    assert_eq!(h.update(l1, 2, entry(SHARED_RO, WR)), Err(MmError::WritableMappingRefused(SHARED_RO)));
    for shared in [SHARED_RO, SHARED_RW] {
        assert!(h.pin(shared, Level::L1).is_err());
        assert_eq!(h.ft.unshare(shared), Err(MmError::FrameInUse(shared)));
    }
    h.audit(&[]);
    h.unpin(l1).unwrap();
    h.ft.unshare(SHARED_RO).unwrap();
    assert_eq!(h.info(SHARED_RO).owner(), Owner::Hypervisor);
    assert_eq!(h.ft.get_page(SHARED_RO, DOM), Err(MmError::NotOwner(SHARED_RO)));
    h.assert_all_released();
}

#[test]
fn ownership_changes_only_on_unused_frames() {
    let mut h = Harness::new();
    let frame = dom_frame(0);
    h.ft.get_page(frame, DOM).unwrap();
    assert_eq!(h.ft.assign_owner(frame, Owner::Free), Err(MmError::FrameInUse(frame)));
    h.ft.put_page(frame);
    h.ft.assign_owner(frame, Owner::Free).unwrap();
    assert_eq!(h.ft.get_page(frame, DOM), Err(MmError::NotOwner(frame)));
    assert_eq!(h.ft.assign_owner(SHARED_RW, Owner::Free), Err(MmError::FrameInUse(SHARED_RW)));
}

#[test]
fn reference_counts_refuse_to_overflow() {
    let mut h = Harness::new();
    let frame = dom_frame(0);
    h.ft.frames[frame.0 as usize].ref_count = u32::MAX;
    assert_eq!(h.ft.get_page(frame, DOM), Err(MmError::CountOverflow(frame)));
    h.ft.frames[frame.0 as usize].ref_count = 0;
    h.ft.map_writable(&mut h.mem[..], DOM, frame).unwrap();
    h.ft.frames[frame.0 as usize].type_count = u32::MAX;
    let err = h.ft.get_page_type(&mut h.mem[..], frame, PageType::Writable).unwrap_err();
    assert_eq!(err, MmError::CountOverflow(frame));
}

#[test]
fn map_writable_and_unmap_balance() {
    let mut h = Harness::new();
    let frame = dom_frame(0);
    h.ft.map_writable(&mut h.mem[..], DOM, frame).unwrap();
    h.ft.map_writable(&mut h.mem[..], DOM, frame).unwrap();
    h.audit(&[ExternalRef::Writable(frame), ExternalRef::Writable(frame)]);
    h.ft.unmap_writable(&mut h.mem[..], frame).unwrap();
    h.ft.unmap_writable(&mut h.mem[..], frame).unwrap();
    assert!(h.ft.unmap_writable(&mut h.mem[..], frame).is_err());
    assert_eq!(h.ft.map_writable(&mut h.mem[..], DOM, HYP), Err(MmError::NotOwner(HYP)));
    h.assert_all_released();
}

#[test]
fn initial_domain_state_pins_and_bases_the_l4() {
    let mut h = Harness::new();
    let [l4, l3, l2, l1, data] = h.write_tree();
    let tables = [(l4, Level::L4), (l3, Level::L3), (l2, Level::L2), (l1, Level::L1)];
    let vcpu = VcpuPageTables::build_initial(&mut h.ft, &mut h.mem[..], DOM, &tables).unwrap();
    assert_eq!(vcpu.kernel_base(), Some(l4));
    assert!(h.info(l4).is_pinned());
    assert_eq!(h.counts(l4), (2, 2));
    assert_eq!(h.info(data).page_type(), PageType::Writable);
    h.vcpu = vcpu;
    h.audit(&[]);
}

#[test]
fn initial_domain_state_refuses_unreachable_or_writable_tables() {
    let mut h = Harness::new();
    let [l4, l3, l2, l1, _] = h.write_tree();
    let stray = dom_frame(9);
    let tables = [(l4, Level::L4), (l3, Level::L3), (stray, Level::L2)];
    let err = VcpuPageTables::build_initial(&mut h.ft, &mut h.mem[..], DOM, &tables).unwrap_err();
    assert_eq!(err, MmError::NotValidated(stray));
    h.assert_all_released();

    // The builder mapped its own L2 writable: the tree cannot validate.
    h.set(l1, 1, entry(l2, WR));
    let tables = [(l4, Level::L4), (l3, Level::L3), (l2, Level::L2), (l1, Level::L1)];
    assert!(VcpuPageTables::build_initial(&mut h.ft, &mut h.mem[..], DOM, &tables).is_err());
    h.assert_all_released();

    assert_eq!(
        VcpuPageTables::build_initial(&mut h.ft, &mut h.mem[..], DOM, &[(l3, Level::L3)]),
        Err(MmError::NoRootTable)
    );
}
