//! The bootstrap page tables, checked by walking them like the MMU does.

use std::collections::HashMap;

use hypercalls::abi::elfnote::{
    XEN_ELFNOTE_GUEST_OS, XEN_ELFNOTE_INIT_P2M, XEN_ELFNOTE_LOADER, XEN_ELFNOTE_VIRT_BASE,
    XEN_ELFNOTE_XEN_VERSION,
};

use super::elf_writer::*;
use crate::domain_builder::{
    compute_layout, parse_guest_image, BootPageTables, Layout, LayoutRequest, PageTableLevel, PAGE_SIZE,
    PTE_ACCESSED, PTE_DIRTY, PTE_PRESENT, PTE_RW, PTE_USER, RESERVED_L4_SLOTS,
};

const ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;
const NX: u64 = 1 << 63;
const LEAF: u64 = PTE_PRESENT | PTE_RW | PTE_USER | PTE_ACCESSED;
const UPPER: u64 = LEAF | PTE_DIRTY;

/// Machine frames deliberately scattered: pfn i lives in mfn 0x40000 + 3i.
fn mfn_of(pfn: u64) -> u64 {
    0x40000 + 3 * pfn
}

fn pfn_of_mfn(mfn: u64) -> u64 {
    assert_eq!((mfn - 0x40000) % 3, 0, "mfn {mfn:#x} was never handed out");
    (mfn - 0x40000) / 3
}

struct Built {
    root_mfn: u64,
    tables: HashMap<u64, (PageTableLevel, [u64; 512])>,
}

fn build(layout: &Layout) -> Built {
    let pts = BootPageTables::new(layout);
    let tables: HashMap<_, _> = pts
        .frames_with_contents(mfn_of)
        .map(|(frame, entries)| (mfn_of(frame.pfn), (frame.level, entries)))
        .collect();
    assert_eq!(tables.len(), pts.len());
    Built { root_mfn: mfn_of(pts.l4_pfn()), tables }
}

/// Walks the tables: the leaf's (mfn, flags), checking upper entries on the way.
fn translate(built: &Built, va: u64) -> Option<(u64, u64)> {
    let mut table = built.root_mfn;
    for shift in [39, 30, 21] {
        let (_, entries) = &built.tables[&table];
        let entry = entries[((va >> shift) & 511) as usize];
        if entry & PTE_PRESENT == 0 {
            return None;
        }
        assert_eq!(entry & !ADDRESS_MASK, UPPER, "upper entry for {va:#x}");
        table = (entry & ADDRESS_MASK) >> 12;
        assert!(built.tables.contains_key(&table), "entry points at a non-table");
    }
    let (_, entries) = &built.tables[&table];
    let entry = entries[((va >> 12) & 511) as usize];
    (entry & PTE_PRESENT != 0).then_some(((entry & ADDRESS_MASK) >> 12, entry & !ADDRESS_MASK))
}

fn layout_for(bytes: &[u8], nr_pages: u64) -> Layout {
    compute_layout(&parse_guest_image(bytes).unwrap(), &LayoutRequest::new(nr_pages)).unwrap()
}

#[test]
fn every_region_page_maps_its_own_pfn_and_only_tables_are_read_only() {
    let layout = layout_for(&standard_kernel(), 32768);
    let built = build(&layout);
    let mut read_only = Vec::new();
    let mut va = layout.v_start;
    while va < layout.v_end {
        let pfn = (va - layout.v_start) / PAGE_SIZE;
        let (mfn, flags) = translate(&built, va).expect("region page mapped");
        assert_eq!(mfn, mfn_of(pfn));
        assert_eq!(flags & NX, 0);
        if flags & PTE_RW == 0 {
            read_only.push(pfn);
        }
        assert_eq!(flags | PTE_RW, LEAF, "leaf flags at {va:#x}");
        va += PAGE_SIZE;
    }
    let first = layout.pt_base_pfn();
    let expected: Vec<u64> = (first..first + layout.nr_pt_frames).collect();
    assert_eq!(read_only, expected);
    assert!(translate(&built, layout.v_start - PAGE_SIZE).is_none());
    assert!(translate(&built, layout.v_end).is_none());
}

#[test]
fn frames_start_with_the_l4_at_pt_base_and_fill_the_page_table_area() {
    let layout = layout_for(&standard_kernel(), 1 << 20);
    let pts = BootPageTables::new(&layout);
    let frames: Vec<_> = pts.frames().collect();
    assert_eq!(frames.len() as u64, layout.nr_pt_frames);
    assert_eq!(frames[0].level, PageTableLevel::L4);
    assert_eq!(frames[0].pfn, layout.pt_base_pfn());
    for (i, frame) in frames.iter().enumerate() {
        assert_eq!(frame.pfn, layout.pt_base_pfn() + i as u64);
    }
    assert!(frames.windows(2).all(|w| w[0].level >= w[1].level));
}

#[test]
fn every_table_but_the_l4_is_referenced_exactly_once() {
    let layout = layout_for(&standard_kernel(), 1 << 20);
    let built = build(&layout);
    let mut references: HashMap<u64, usize> = HashMap::new();
    for (level, entries) in built.tables.values() {
        if *level == PageTableLevel::L1 {
            continue;
        }
        for &entry in entries.iter().filter(|&&e| e & PTE_PRESENT != 0) {
            *references.entry((entry & ADDRESS_MASK) >> 12).or_default() += 1;
        }
    }
    for (mfn, (level, _)) in &built.tables {
        let expected = usize::from(*level != PageTableLevel::L4);
        assert_eq!(
            references.get(mfn).copied().unwrap_or(0),
            expected,
            "{level:?} at pfn {}",
            pfn_of_mfn(*mfn)
        );
    }
}

#[test]
fn reserved_l4_slots_stay_empty() {
    let just_above_xen = 0xffff_8800_0000_0000;
    let notes = [
        xen_str(XEN_ELFNOTE_GUEST_OS, "edge"),
        xen_str(XEN_ELFNOTE_XEN_VERSION, "xen-3.0"),
        xen_str(XEN_ELFNOTE_LOADER, "generic"),
        xen_u64(XEN_ELFNOTE_VIRT_BASE, just_above_xen),
    ];
    let edge = ElfWriter::new()
        .entry(just_above_xen)
        .load(0, just_above_xen, vec![0; 0x1000], 0x1000, PF_R | PF_X)
        .note_segment(notes.concat())
        .build();
    for bytes in [standard_kernel(), edge] {
        let layout = layout_for(&bytes, 32768);
        let built = build(&layout);
        let (_, l4) = &built.tables[&built.root_mfn];
        for slot in RESERVED_L4_SLOTS {
            assert_eq!(l4[slot], 0, "slot {slot}");
        }
        assert_eq!(l4.iter().filter(|&&e| e != 0).count(), 1);
    }
}

#[test]
fn a_kernel_at_address_zero_maps_pfn_zero_at_zero() {
    let notes = [
        xen_str(XEN_ELFNOTE_GUEST_OS, "Mini-OS"),
        xen_str(XEN_ELFNOTE_XEN_VERSION, "xen-3.0"),
        xen_str(XEN_ELFNOTE_LOADER, "generic"),
    ];
    let bytes = ElfWriter::new()
        .entry(0)
        .load(0, 0, vec![0; 0x2000], 0x2000, PF_R | PF_W | PF_X)
        .note_segment(notes.concat())
        .build();
    let layout = layout_for(&bytes, 8192);
    let built = build(&layout);
    assert_eq!(translate(&built, 0), Some((mfn_of(0), LEAF)));
    let (_, l4) = &built.tables[&built.root_mfn];
    assert_ne!(l4[0], 0);
}

#[test]
fn a_relocated_p2m_gets_its_own_writable_mapping_and_tables() {
    let mut notes = standard_notes();
    notes.push(xen_u64(XEN_ELFNOTE_INIT_P2M, 0x80_0000_0000));
    let layout = layout_for(&kernel_with_notes(&notes).build(), 32768);
    let p2m = layout.relocated_p2m.unwrap();
    let built = build(&layout);
    assert_eq!(built.tables.len() as u64, layout.nr_pt_frames + p2m.nr_pt_frames);
    for i in 0..p2m.nr_p2m_pages {
        let va = p2m.range.start + i * PAGE_SIZE;
        assert_eq!(translate(&built, va), Some((mfn_of(p2m.first_pfn + i), LEAF)));
    }
    assert!(translate(&built, p2m.range.end).is_none());
    for pfn in p2m.first_pt_pfn..p2m.first_pt_pfn + p2m.nr_pt_frames {
        assert!(built.tables.contains_key(&mfn_of(pfn)));
        // Not reachable through the bootstrap region.
        assert!(pfn >= layout.region_pages());
    }
}

#[test]
fn a_relocated_p2m_sharing_the_regions_tables_is_linked_from_them() {
    // 2 MiB below a VIRT_BASE that is not 1 GiB aligned: a new L1 under the region's L2.
    // 1 MiB below one that is not 2 MiB aligned: entries in the region's own L1.
    for (base, p2m_base, extra_tables) in
        [(VIRT_BASE + (4 << 20), VIRT_BASE + (2 << 20), 1), (VIRT_BASE + (5 << 20), VIRT_BASE + (4 << 20), 0)]
    {
        let bytes = kernel_at(base, &[xen_u64(XEN_ELFNOTE_INIT_P2M, p2m_base)]);
        let layout = layout_for(&bytes, 32768);
        let p2m = layout.relocated_p2m.unwrap();
        assert_eq!(p2m.nr_pt_frames, extra_tables);
        let built = build(&layout);
        assert_eq!(built.tables.len() as u64, layout.nr_pt_frames + extra_tables);
        for i in 0..p2m.nr_p2m_pages {
            let va = p2m_base + i * PAGE_SIZE;
            assert_eq!(translate(&built, va), Some((mfn_of(p2m.first_pfn + i), LEAF)));
        }
        assert_eq!(translate(&built, base), Some((mfn_of(0), LEAF)));
        assert!(translate(&built, p2m.range.end).is_none());
        assert!(translate(&built, p2m_base - PAGE_SIZE).is_none());
    }
}
