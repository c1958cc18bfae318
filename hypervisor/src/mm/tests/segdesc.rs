//! Descriptor-table frames: what may be in them, and that they stay out of
//! the guest's writable reach while in use.

use super::*;
use mm::{check_descriptor, errno, MmError, PageType, FIRST_RESERVED_GDT_ENTRY, FLAT_KERNEL_CS};

/// A flat 64-bit code segment with the given DPL.
const fn code_segment(dpl: u64) -> u64 {
    0x0020_9a00_0000_ffff | (dpl << 45)
}

/// A 64-bit call gate (lower half) to `selector` with the given DPL.
const fn call_gate(selector: u64, dpl: u64) -> u64 {
    (selector << 16) | (0x8c00 << 32) | (dpl << 45)
}

const TSS_DESCRIPTOR: u64 = 0x0000_8900_0000_0067;

#[test]
fn descriptors_are_fixed_up_or_refused() {
    // Code/data: DPL raised to the ring-3 guest kernel.
    assert_eq!(check_descriptor(code_segment(0)), Some(code_segment(3)));
    assert_eq!(check_descriptor(code_segment(3)), Some(code_segment(3)));
    // Not present and type-0 system descriptors are harmless.
    assert_eq!(check_descriptor(0x1234), Some(0x1234));
    assert_eq!(check_descriptor(0x0000_8000_0000_0000), Some(0x0000_8000_0000_0000));
    // A TSS or LDT descriptor would hand out hypervisor state.
    assert_eq!(check_descriptor(TSS_DESCRIPTOR), None);
    assert_eq!(check_descriptor(0x0000_8200_0000_0000), None);
    // Call gates: DPL forced to 0, the guest's DPL kept in the RPL.
    assert_eq!(check_descriptor(call_gate(0x10, 3)), Some(call_gate(0x13, 0)));
    let flat = u64::from(FLAT_KERNEL_CS);
    assert_eq!(check_descriptor(call_gate(flat, 3)), Some(call_gate(flat, 0)));
    let ldt_selector = 0xfff4;
    assert!(check_descriptor(call_gate(ldt_selector, 3)).is_some());
    let reserved = (FIRST_RESERVED_GDT_ENTRY as u64) << 3;
    assert_eq!(check_descriptor(call_gate(reserved, 3)), None);
    assert_eq!(check_descriptor(call_gate(0x10, 3) | (1 << 32)), None);
}

#[test]
fn gdt_frames_are_validated_and_never_writable() {
    let mut h = Harness::new();
    let [gdt, l1] = [0, 1].map(dom_frame);
    h.set(gdt, 1, code_segment(0));
    h.vcpu.set_gdt(&mut h.ft, &mut h.mem[..], DOM, &[gdt], 16).unwrap();
    assert_eq!(h.info(gdt).page_type(), PageType::SegDesc);
    assert_eq!(h.get(gdt, 1), code_segment(3));
    assert_eq!(h.counts(gdt), (1, 1));
    h.pin(l1, Level::L1).unwrap();
    assert_eq!(h.update(l1, 0, entry(gdt, WR)), Err(MmError::WritableMappingRefused(gdt)));
    h.update(l1, 0, entry(gdt, RO)).unwrap();
    assert_eq!(h.update(gdt, 0, 0), Err(MmError::NotUpdatable(gdt)));
    h.audit(&[]);
}

#[test]
fn set_gdt_refuses_bad_frames_and_keeps_the_old_gdt() {
    let mut h = Harness::new();
    let [old, good, bad] = [0, 1, 2].map(dom_frame);
    h.vcpu.set_gdt(&mut h.ft, &mut h.mem[..], DOM, &[old], 8).unwrap();
    h.set(bad, 5, TSS_DESCRIPTOR);
    let err = h.vcpu.set_gdt(&mut h.ft, &mut h.mem[..], DOM, &[good, bad], 600).unwrap_err();
    assert_eq!(err, MmError::BadDescriptor { mfn: bad, index: 5 });
    assert_eq!(err.xen_errno(), errno::EINVAL);
    assert_eq!(h.counts(good), (0, 0));
    assert_eq!(h.vcpu.gdt_frames().collect::<Vec<_>>(), [old]);
    for frames in [&[HYP][..], &[FOREIGN], &[]] {
        let err = h.vcpu.set_gdt(&mut h.ft, &mut h.mem[..], DOM, frames, 1).unwrap_err();
        assert_eq!(err.xen_errno(), errno::EINVAL);
    }
    let too_many = FIRST_RESERVED_GDT_ENTRY + 1;
    assert_eq!(
        h.vcpu.set_gdt(&mut h.ft, &mut h.mem[..], DOM, &[good; 15], too_many),
        Err(MmError::TooManyGdtEntries(too_many))
    );
    // A writably mapped frame cannot become a GDT frame.
    h.ft.map_writable(&mut h.mem[..], DOM, good).unwrap();
    assert!(h.vcpu.set_gdt(&mut h.ft, &mut h.mem[..], DOM, &[good], 1).is_err());
    h.ft.unmap_writable(&mut h.mem[..], good).unwrap();
    // Replacing the GDT releases the old frames.
    h.vcpu.set_gdt(&mut h.ft, &mut h.mem[..], DOM, &[good], 1).unwrap();
    assert_eq!(h.counts(old), (0, 0));
    h.audit(&[]);
    h.vcpu.release(&mut h.ft, &mut h.mem[..]);
    h.assert_all_released();
}

#[test]
fn update_descriptor_checks_and_fixes_what_it_writes() {
    let mut h = Harness::new();
    let gdt = dom_frame(0);
    h.vcpu.set_gdt(&mut h.ft, &mut h.mem[..], DOM, &[gdt], 512).unwrap();
    h.ft.update_descriptor(&mut h.mem[..], DOM, gdt, 3, code_segment(1)).unwrap();
    assert_eq!(h.get(gdt, 3), code_segment(3));
    assert_eq!(
        h.ft.update_descriptor(&mut h.mem[..], DOM, gdt, 4, TSS_DESCRIPTOR),
        Err(MmError::BadDescriptor { mfn: gdt, index: 4 })
    );
    assert_eq!(h.get(gdt, 4), 0);
    // A plain frame may be written too, but not a page table.
    let plain = dom_frame(1);
    h.ft.update_descriptor(&mut h.mem[..], DOM, plain, 0, code_segment(3)).unwrap();
    let l1 = dom_frame(2);
    h.pin(l1, Level::L1).unwrap();
    assert_eq!(
        h.ft.update_descriptor(&mut h.mem[..], DOM, l1, 0, code_segment(3)),
        Err(MmError::NotUpdatable(l1))
    );
    assert_eq!(
        h.ft.update_descriptor(&mut h.mem[..], DOM, HYP, 0, code_segment(3)),
        Err(MmError::NotOwner(HYP))
    );
    h.audit(&[]);
}

#[test]
fn ldt_pages_are_taken_as_used_and_released_when_the_ldt_changes() {
    let mut h = Harness::new();
    let [first, second, bad] = [0, 1, 2].map(dom_frame);
    let base = 0x7000_0000;
    assert_eq!(h.vcpu.set_ldt(&mut h.ft, &mut h.mem[..], base, 1024), Ok(false));
    assert_eq!(h.vcpu.ldt(), (base, 1024));
    h.set(first, 7, code_segment(0));
    h.vcpu.map_ldt_frame(&mut h.ft, &mut h.mem[..], DOM, 0, first).unwrap();
    assert_eq!(h.get(first, 7), code_segment(3), "descriptors are fixed up as in a GDT");
    // Taking the same page again holds nothing more; another frame there is refused.
    h.vcpu.map_ldt_frame(&mut h.ft, &mut h.mem[..], DOM, 0, first).unwrap();
    assert_eq!(h.counts(first), (1, 1));
    assert!(h.vcpu.map_ldt_frame(&mut h.ft, &mut h.mem[..], DOM, 0, second).is_err());
    // Pages beyond the LDT, unsafe descriptors and foreign frames are refused.
    assert!(h.vcpu.map_ldt_frame(&mut h.ft, &mut h.mem[..], DOM, 2, second).is_err());
    h.set(bad, 9, TSS_DESCRIPTOR);
    assert_eq!(
        h.vcpu.map_ldt_frame(&mut h.ft, &mut h.mem[..], DOM, 1, bad),
        Err(MmError::BadDescriptor { mfn: bad, index: 9 })
    );
    assert!(h.vcpu.map_ldt_frame(&mut h.ft, &mut h.mem[..], DOM, 1, HYP).is_err());
    h.vcpu.map_ldt_frame(&mut h.ft, &mut h.mem[..], DOM, 1, second).unwrap();
    // In use, an LDT page cannot be mapped writable.
    let l1 = dom_frame(3);
    h.pin(l1, Level::L1).unwrap();
    assert_eq!(h.update(l1, 0, entry(first, WR)), Err(MmError::WritableMappingRefused(first)));
    h.audit(&[]);
    // The same LDT again changes nothing; a new one releases the pages.
    assert_eq!(h.vcpu.set_ldt(&mut h.ft, &mut h.mem[..], base, 1024), Ok(false));
    assert_eq!(h.vcpu.set_ldt(&mut h.ft, &mut h.mem[..], base, 0), Ok(true));
    assert_eq!(h.vcpu.ldt(), (0, 0));
    assert_eq!((h.counts(first), h.counts(second)), ((0, 0), (0, 0)));
    h.update(l1, 0, entry(first, WR)).unwrap();
    h.update(l1, 0, 0).unwrap();
    h.audit(&[]);
}

#[test]
fn set_ldt_refuses_what_xen_refuses() {
    let mut h = Harness::new();
    for (base, entries) in [(0x7000_0010, 1), (0x7000_0000, 8193)] {
        let err = h.vcpu.set_ldt(&mut h.ft, &mut h.mem[..], base, entries).unwrap_err();
        assert_eq!(err.xen_errno(), errno::EINVAL, "{base:#x} {entries}");
    }
    // With no entries the base does not matter.
    assert_eq!(h.vcpu.set_ldt(&mut h.ft, &mut h.mem[..], 0x7000_0010, 0), Ok(false));
    h.vcpu.set_ldt(&mut h.ft, &mut h.mem[..], 0x7000_0000, 8192).unwrap();
    h.vcpu.map_ldt_frame(&mut h.ft, &mut h.mem[..], DOM, 15, dom_frame(0)).unwrap();
    h.vcpu.release(&mut h.ft, &mut h.mem[..]);
    h.assert_all_released();
}

#[test]
fn unmapping_an_ldt_page_asks_for_the_ldt_to_be_dropped() {
    let mut h = Harness::new();
    let [ldt, l1] = [0, 1].map(dom_frame);
    h.pin(l1, Level::L1).unwrap();
    h.update(l1, 0, entry(ldt, RO)).unwrap();
    h.vcpu.set_ldt(&mut h.ft, &mut h.mem[..], 0x7000_0000, 16).unwrap();
    h.vcpu.map_ldt_frame(&mut h.ft, &mut h.mem[..], DOM, 0, ldt).unwrap();
    assert!(!h.ft.take_ldt_invalidation());
    h.update(l1, 0, 0).unwrap();
    assert!(h.ft.take_ldt_invalidation(), "the read-only mapping of an LDT page went away");
    assert!(!h.ft.take_ldt_invalidation(), "the request is taken once");
    assert!(h.vcpu.release_ldt(&mut h.ft, &mut h.mem[..]));
    assert_eq!(h.vcpu.ldt(), (0x7000_0000, 16), "the LDT itself stays");
    h.update(l1, 0, entry(ldt, WR)).unwrap();
    h.audit(&[]);
}
