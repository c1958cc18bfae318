//! The start-of-day layout against xen.h's contract.

use std::collections::HashSet;

use hypercalls::abi::elfnote::{
    XEN_ELFNOTE_GUEST_OS, XEN_ELFNOTE_INIT_P2M, XEN_ELFNOTE_LOADER, XEN_ELFNOTE_VIRT_BASE,
    XEN_ELFNOTE_XEN_VERSION,
};

use super::elf_writer::*;
use crate::domain_builder::{
    compute_layout, parse_guest_image, Layout, LayoutError, LayoutRequest, PAGE_SIZE,
};

const MIB: u64 = 1 << 20;

fn layout_of(bytes: &[u8], request: LayoutRequest) -> Result<Layout, LayoutError> {
    let image = parse_guest_image(bytes).unwrap();
    compute_layout(&image, &request)
}

/// Page-table frames mapping `[start, end)`, counted page by page.
fn brute_force_table_count(start: u64, end: u64) -> u64 {
    let mut l3s = HashSet::new();
    let mut l2s = HashSet::new();
    let mut l1s = HashSet::new();
    let mut va = start;
    while va < end {
        l3s.insert(va >> 39);
        l2s.insert(va >> 30);
        l1s.insert(va >> 21);
        va += PAGE_SIZE;
    }
    1 + (l3s.len() + l2s.len() + l1s.len()) as u64
}

fn is_page_aligned(v: u64) -> bool {
    v.is_multiple_of(PAGE_SIZE)
}

fn round_up_page(v: u64) -> u64 {
    v.div_ceil(PAGE_SIZE) * PAGE_SIZE
}

#[test]
fn elements_come_in_xen_order_packed_on_page_boundaries() {
    let layout = layout_of(&standard_kernel(), LayoutRequest::new(32768)).unwrap();
    assert_eq!(layout.v_start, VIRT_BASE);
    assert_eq!(layout.kernel.start, TEXT_VADDR);
    assert!(layout.initrd.is_empty());
    assert_eq!(layout.initrd.start, round_up_page(layout.kernel.end));
    assert_eq!(layout.p2m.start, round_up_page(layout.initrd.end));
    assert_eq!(layout.p2m.len(), 32768 * 8);
    assert_eq!(layout.start_info.start, round_up_page(layout.p2m.end));
    assert_eq!(layout.xenstore.start, layout.start_info.start + PAGE_SIZE);
    assert_eq!(layout.console.start, layout.xenstore.start + PAGE_SIZE);
    assert_eq!(layout.page_tables.start, layout.console.start + PAGE_SIZE);
    assert_eq!(layout.page_tables.len(), layout.nr_pt_frames * PAGE_SIZE);
    assert_eq!(layout.boot_stack.start, layout.page_tables.end);
    assert_eq!(layout.boot_stack.len(), PAGE_SIZE);
    for range in [layout.start_info, layout.xenstore, layout.console, layout.page_tables, layout.boot_stack] {
        assert!(is_page_aligned(range.start) && is_page_aligned(range.end));
    }
    // pfn 0 is VIRT_BASE; the region is mapped 1:1 onto pfns.
    assert_eq!(layout.pfn_of(VIRT_BASE), Some(0));
    assert_eq!(layout.start_info_pfn(), (layout.start_info.start - VIRT_BASE) / PAGE_SIZE);
    assert_eq!(layout.vaddr_of_region_pfn(layout.console_pfn()), Some(layout.console.start));
    assert_eq!(layout.initial_stack_pointer(), layout.boot_stack.end);
    assert_eq!(layout.pfn_of(layout.v_end), None);
    assert!(layout.relocated_p2m.is_none());
}

#[test]
fn the_region_ends_on_4mib_with_at_least_512kib_padding() {
    let mut saw_extension = false;
    let mut saw_plain_rounding = false;
    for step in 0..160u64 {
        let mut writer = kernel_with_notes(&standard_notes());
        writer.segments[1].memsz = 0x3000 + step * 0x1_0000;
        let layout = layout_of(&writer.build(), LayoutRequest::new(65536)).unwrap();
        let padding = layout.v_end - layout.boot_stack.end;
        assert_eq!(layout.v_end % (4 * MIB), 0);
        assert!(padding >= 512 * 1024, "step {step}: padding {padding:#x}");
        // Never more than one extra 4 MiB beyond what rounding gives.
        assert!(padding < 4 * MIB + 512 * 1024, "step {step}: padding {padding:#x}");
        saw_extension |= padding >= 4 * MIB;
        saw_plain_rounding |= padding < 4 * MIB;
    }
    assert!(saw_extension && saw_plain_rounding);
}

#[test]
fn page_table_count_is_the_least_self_consistent_one() {
    for nr_pages in [4096, 65536, 1 << 20, 3 << 20] {
        let layout = layout_of(&standard_kernel(), LayoutRequest::new(nr_pages)).unwrap();
        let mut expected = 0;
        for n in 1.. {
            let stack_end = layout.console.end + n * PAGE_SIZE + PAGE_SIZE;
            let mut v_end = stack_end.next_multiple_of(4 * MIB);
            if v_end - stack_end < 512 * 1024 {
                v_end += 4 * MIB;
            }
            if brute_force_table_count(layout.v_start, v_end) <= n {
                expected = n;
                break;
            }
        }
        assert_eq!(layout.nr_pt_frames, expected, "nr_pages {nr_pages}");
        assert_eq!(brute_force_table_count(layout.v_start, layout.v_end), layout.nr_pt_frames);
    }
}

#[test]
fn a_large_guest_gets_a_large_p2m_and_more_tables() {
    // 512 GiB of guest: a 1 GiB p2m list pushes the region across a 1 GiB
    // line, so it needs a second L2.
    let nr_pages = 1 << 27;
    let layout = layout_of(&standard_kernel(), LayoutRequest::new(nr_pages)).unwrap();
    assert_eq!(layout.p2m.len(), nr_pages * 8);
    assert!(layout.v_end > 0xffff_ffff_c000_0000);
    let l1s = (layout.v_end - layout.v_start) / (2 * MIB);
    assert_eq!(layout.nr_pt_frames, 1 + 1 + 2 + l1s);
}

#[test]
fn too_little_memory_for_the_region_is_an_error() {
    let err = layout_of(&standard_kernel(), LayoutRequest::new(300)).unwrap_err();
    let LayoutError::NotEnoughMemory { needed_pages, nr_pages } = err else {
        panic!("unexpected {err:?}");
    };
    assert_eq!(nr_pages, 300);
    // VIRT_BASE is 2 GiB below the top: the region covers at least the
    // first 1 MiB gap, the kernel and the 4 MiB rounding.
    assert!(needed_pages >= (4 * MIB) / PAGE_SIZE);
    assert!(!err.to_string().contains('\n'));
    assert_eq!(layout_of(&standard_kernel(), LayoutRequest::new(0)).unwrap_err(), LayoutError::NoMemory);
    // The smallest memory that works is exactly what its region uses.
    let smallest = (needed_pages..needed_pages + 4096)
        .find(|&n| layout_of(&standard_kernel(), LayoutRequest::new(n)).is_ok())
        .expect("some size fits");
    let layout = layout_of(&standard_kernel(), LayoutRequest::new(smallest)).unwrap();
    assert_eq!(layout.region_pages(), smallest);
}

fn linux_like_kernel(init_p2m: u64) -> Vec<u8> {
    let mut notes = standard_notes();
    notes.push(xen_u64(XEN_ELFNOTE_INIT_P2M, init_p2m));
    kernel_with_notes(&notes).build()
}

#[test]
fn init_p2m_below_virt_base_moves_the_p2m_out_of_the_region() {
    let nr_pages = 32768;
    let bytes = linux_like_kernel(0x80_0000_0000);
    let layout = layout_of(&bytes, LayoutRequest::new(nr_pages)).unwrap();
    let p2m = layout.relocated_p2m.expect("p2m relocated");
    assert_eq!(layout.p2m.start, 0x80_0000_0000);
    assert_eq!(layout.p2m.len(), nr_pages * 8);
    assert_eq!(p2m.nr_p2m_pages, nr_pages * 8 / PAGE_SIZE);
    assert_eq!(p2m.first_pfn, layout.region_pages());
    assert_eq!(p2m.first_pt_pfn, p2m.first_pfn + p2m.nr_p2m_pages);
    // Its own L3, L2 and L1 under L4 slot 1.
    assert_eq!(p2m.nr_pt_frames, 3);
    // The region no longer holds it: start_info follows the kernel directly.
    assert_eq!(layout.start_info.start, round_up_page(layout.kernel.end));
    assert_eq!(layout.pfn_of(0x80_0000_0000), Some(p2m.first_pfn));
    assert_eq!(layout.p2m_entry_location(513), Some((p2m.first_pfn + 1, 8)));
    assert_eq!(layout.pages_in_use(), layout.region_pages() + p2m.nr_p2m_pages + 3);
    assert!(layout.is_page_table_pfn(p2m.first_pt_pfn + 2));
    assert!(!layout.is_page_table_pfn(p2m.first_pfn));

    let kept = LayoutRequest { honor_init_p2m: false, ..LayoutRequest::new(nr_pages) };
    let in_region = layout_of(&bytes, kept).unwrap();
    assert!(in_region.relocated_p2m.is_none());
    assert_eq!(in_region.p2m.start, round_up_page(in_region.kernel.end));
}

#[test]
fn init_p2m_that_libxenguest_would_ignore_is_ignored() {
    for ignored in [0x80_0000_0008, VIRT_BASE + 0x4000_0000] {
        let layout = layout_of(&linux_like_kernel(ignored), LayoutRequest::new(32768)).unwrap();
        assert!(layout.relocated_p2m.is_none(), "{ignored:#x}");
        assert_eq!(layout.p2m.start, round_up_page(layout.kernel.end));
    }
}

#[test]
fn a_relocated_p2m_may_share_upper_tables_but_not_overlap_the_region() {
    let request = LayoutRequest::new(32768);
    // VIRT_BASE 1 GiB aligned: a p2m just below it needs its own L2 and L1.
    let below_aligned = VIRT_BASE - 2 * MIB;
    let layout = layout_of(&linux_like_kernel(below_aligned), request).unwrap();
    assert_eq!(layout.relocated_p2m.unwrap().nr_pt_frames, 2);

    // VIRT_BASE 4 MiB into a 1 GiB block: the p2m shares the L3 and L2.
    let base = VIRT_BASE + 4 * MIB;
    let p2m = base - 2 * MIB;
    let bytes = kernel_at(base, &[xen_u64(XEN_ELFNOTE_INIT_P2M, p2m)]);
    let layout = layout_of(&bytes, request).unwrap();
    assert_eq!(layout.relocated_p2m.unwrap().nr_pt_frames, 1);

    // 1 MiB into a 2 MiB block: the p2m shares even the region's first L1.
    let base = VIRT_BASE + 5 * MIB;
    let bytes = kernel_at(base, &[xen_u64(XEN_ELFNOTE_INIT_P2M, base - MIB)]);
    let layout = layout_of(&bytes, request).unwrap();
    assert_eq!(layout.relocated_p2m.unwrap().nr_pt_frames, 0);

    let overlapping = VIRT_BASE - 64 * 1024;
    assert_eq!(
        layout_of(&linux_like_kernel(overlapping), request).unwrap_err(),
        LayoutError::P2mOverlapsRegion { p2m_start: overlapping, p2m_end: overlapping + 32768 * 8 }
    );
}

#[test]
fn a_region_running_out_of_canonical_space_is_an_error() {
    let base = 0x0000_7fff_ffc0_0000;
    let notes = [
        xen_str(XEN_ELFNOTE_GUEST_OS, "test-kernel"),
        xen_str(XEN_ELFNOTE_XEN_VERSION, "xen-3.0"),
        xen_str(XEN_ELFNOTE_LOADER, "generic"),
        xen_u64(XEN_ELFNOTE_VIRT_BASE, base),
    ];
    let bytes = ElfWriter::new()
        .entry(base)
        .load(0, base, vec![0; 0x1000], 0x1000, PF_R | PF_X)
        .note_segment(notes.concat())
        .build();
    // The kernel itself is canonical; the region with an 8 MiB p2m is not.
    assert!(parse_guest_image(&bytes).is_ok());
    let err = layout_of(&bytes, LayoutRequest::new(1 << 20)).unwrap_err();
    assert!(matches!(err, LayoutError::NonCanonical { start, .. } if start == base));
}

#[test]
fn an_initrd_sits_between_kernel_and_p2m() {
    let request = LayoutRequest { initrd_len: 12345, ..LayoutRequest::new(32768) };
    let layout = layout_of(&standard_kernel(), request).unwrap();
    assert_eq!(layout.initrd.start, round_up_page(layout.kernel.end));
    assert_eq!(layout.initrd.len(), 12345);
    assert_eq!(layout.p2m.start, round_up_page(layout.initrd.end));
}

#[test]
fn display_reads_like_xens_verbose_dump() {
    let layout = layout_of(&standard_kernel(), LayoutRequest::new(32768)).unwrap();
    let text = layout.to_string();
    for label in [
        "Loaded kernel:",
        "Phys-Mach map:",
        "Start info:",
        "Page tables:",
        "Boot stack:",
        "TOTAL:",
        "ENTRY ADDRESS:",
    ] {
        assert!(text.contains(label), "{label} missing from\n{text}");
    }
    assert!(!text.contains("Init. ramdisk:"));
    assert!(text.contains(&format!("{:016x}->{:016x}", layout.v_start, layout.v_end)));
    assert!(text.contains(&format!("ENTRY ADDRESS: {:016x}", TEXT_VADDR)));
}
