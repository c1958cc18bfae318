//! Parsing good and malformed guest ELFs.

use hypercalls::abi::elfnote::*;
use hypercalls::abi::features::{XENFEAT_dom0, XENFEAT_writable_page_tables};

use super::elf_writer::*;
use crate::domain_builder::{parse_guest_image, ImageError, NoteSource, MAX_LOAD_SEGMENTS};

fn notes_without(note_type: u32) -> Vec<Vec<u8>> {
    standard_notes()
        .into_iter()
        .filter(|n| u32::from_le_bytes([n[8], n[9], n[10], n[11]]) != note_type)
        .collect()
}

fn notes_with(extra: Vec<u8>) -> Vec<Vec<u8>> {
    let mut notes = standard_notes();
    notes.push(extra);
    notes
}

fn parse_err(bytes: &[u8]) -> ImageError {
    parse_guest_image(bytes).expect_err("image should be rejected")
}

#[test]
fn standard_kernel_parses_with_the_expected_addresses_and_load_plan() {
    let bytes = standard_kernel();
    let image = parse_guest_image(&bytes).unwrap();
    assert_eq!(image.virt_base, VIRT_BASE);
    assert_eq!(image.paddr_offset, 0);
    assert_eq!(image.kernel_start, TEXT_VADDR);
    assert_eq!(image.kernel_end, VIRT_BASE + DATA_PADDR + 0x3000);
    assert_eq!(image.entry, TEXT_VADDR);
    assert_eq!(image.hypercall_page, Some(HYPERCALL_PAGE));
    assert_eq!(image.notes.source, NoteSource::ProgramHeaders);
    assert_eq!(image.notes.guest_os, Some("test-kernel"));
    assert_eq!(image.notes.count, 7);

    let segments = image.load_segments();
    assert_eq!(segments.len(), 2);
    assert_eq!(segments[0].dest_vaddr, TEXT_VADDR);
    assert_eq!(segments[0].guest_paddr, TEXT_PADDR);
    assert!(bytes[segments[0].file_range()].iter().all(|&b| b == 0x90));
    assert_eq!(segments[0].file_range().len(), 0x3000);
    assert_eq!(segments[1].dest_vaddr, VIRT_BASE + DATA_PADDR);
    assert!(bytes[segments[1].file_range()].iter().all(|&b| b == 0xda));
    assert_eq!(segments[1].zero_fill_len(), 0x2000);
}

#[test]
fn truncated_images_are_rejected() {
    let bytes = standard_kernel();
    assert_eq!(parse_err(&bytes[..2]), ImageError::TooShort { len: 2 });
    assert_eq!(parse_err(&bytes[..40]), ImageError::TooShort { len: 40 });
    // The program headers are cut off.
    assert!(matches!(parse_err(&bytes[..100]), ImageError::Malformed(_)));
    // The headers survive but the text segment's bytes do not.
    let cut = 64 + 3 * 56 + 0x100;
    assert!(matches!(parse_err(&bytes[..cut]), ImageError::SegmentOutsideFile { index: 0, .. }));
}

#[test]
fn wrong_identity_and_header_fields_are_named() {
    let mut writer = kernel_with_notes(&standard_notes());
    writer.class = 1;
    assert_eq!(parse_err(&writer.build()), ImageError::Elf32);
    writer.class = 7;
    assert_eq!(parse_err(&writer.build()), ImageError::BadClass(7));
    writer.class = 2;
    writer.data_encoding = 2;
    assert_eq!(parse_err(&writer.build()), ImageError::NotLittleEndian(2));
    writer.data_encoding = 1;
    writer.machine = 183;
    assert_eq!(parse_err(&writer.build()), ImageError::WrongMachine(183));
    writer.machine = EM_X86_64;
    writer.e_type = 3;
    assert_eq!(parse_err(&writer.build()), ImageError::NotExecutable(3));
    assert_eq!(parse_err(b"\x1f\x8b\x08\x00gzip data..."), ImageError::NotElf);
}

#[test]
fn segment_sanity_is_checked() {
    let overlapping = kernel_with_notes(&standard_notes())
        .load(DATA_PADDR + 0x2000, VIRT_BASE, vec![1; 16], 0x2000, PF_R)
        .build();
    assert_eq!(parse_err(&overlapping), ImageError::OverlappingSegments { first: 1, second: 3 });

    let mut bss_smaller = kernel_with_notes(&standard_notes());
    bss_smaller.segments[1].memsz = 0x10;
    assert!(matches!(
        parse_err(&bss_smaller.build()),
        ImageError::SegmentFileLargerThanMemory { index: 1, .. }
    ));

    let mut no_flags = kernel_with_notes(&standard_notes());
    no_flags.segments.retain(|s| s.p_type != PT_LOAD);
    no_flags = no_flags.load(TEXT_PADDR, VIRT_BASE, vec![0; 16], 16, 0);
    assert_eq!(parse_err(&no_flags.build()), ImageError::NoLoadableSegments);

    let mut many = ElfWriter::new().entry(TEXT_VADDR).note_segment(standard_notes().concat());
    for i in 0..=MAX_LOAD_SEGMENTS as u64 {
        many = many.load(TEXT_PADDR + i * 0x1000, VIRT_BASE, vec![0; 16], 16, PF_R | PF_X);
    }
    assert_eq!(parse_err(&many.build()), ImageError::TooManyLoadSegments { count: MAX_LOAD_SEGMENTS + 1 });
}

#[test]
fn an_empty_segment_inside_another_is_not_an_overlap() {
    let bytes = kernel_with_notes(&standard_notes())
        .load(TEXT_PADDR + 0x1000, VIRT_BASE, Vec::new(), 0, PF_R)
        .build();
    assert_eq!(parse_guest_image(&bytes).unwrap().load_segments().len(), 3);
}

#[test]
fn missing_or_wrong_identity_notes_are_named() {
    let no_notes = ElfWriter::new()
        .entry(TEXT_VADDR)
        .load(TEXT_PADDR, VIRT_BASE, vec![0; 0x1000], 0x1000, PF_R | PF_X)
        .build();
    assert_eq!(parse_err(&no_notes), ImageError::NoXenNotes);

    let no_version = kernel_with_notes(&notes_without(XEN_ELFNOTE_XEN_VERSION)).build();
    assert_eq!(parse_err(&no_version), ImageError::MissingNote { note: "XEN_VERSION" });

    let mut wrong_version = notes_without(XEN_ELFNOTE_XEN_VERSION);
    wrong_version.push(xen_str(XEN_ELFNOTE_XEN_VERSION, "xen-4.0"));
    let err = parse_err(&kernel_with_notes(&wrong_version).build());
    assert!(matches!(err, ImageError::UnsupportedXenVersion(v) if v.as_str() == "xen-4.0"));

    let mut odd_loader = notes_without(XEN_ELFNOTE_LOADER);
    odd_loader.push(xen_str(XEN_ELFNOTE_LOADER, "elf"));
    let err = parse_err(&kernel_with_notes(&odd_loader).build());
    assert!(matches!(err, ImageError::UnsupportedLoader(found) if found.as_str().contains("LOADER \"elf\"")));

    // GUEST_OS "linux" stands in for LOADER "generic", as in libelf.
    let mut linux = notes_without(XEN_ELFNOTE_LOADER);
    linux.retain(|n| u32::from_le_bytes([n[8], n[9], n[10], n[11]]) != XEN_ELFNOTE_GUEST_OS);
    linux.push(xen_str(XEN_ELFNOTE_GUEST_OS, "linux"));
    assert!(parse_guest_image(&kernel_with_notes(&linux).build()).is_ok());

    let mut neither = notes_without(XEN_ELFNOTE_LOADER);
    neither.retain(|n| u32::from_le_bytes([n[8], n[9], n[10], n[11]]) != XEN_ELFNOTE_GUEST_OS);
    assert!(matches!(
        parse_err(&kernel_with_notes(&neither).build()),
        ImageError::MissingNote { note } if note.contains("LOADER")
    ));
}

#[test]
fn kernel_range_may_not_touch_the_hypervisor_or_leave_canonical_space() {
    // VIRT_BASE inside Xen's reserved range.
    let base = 0xffff_8000_0000_0000;
    let mut notes = notes_without(XEN_ELFNOTE_VIRT_BASE);
    notes.retain(|n| {
        let t = u32::from_le_bytes([n[8], n[9], n[10], n[11]]);
        t != XEN_ELFNOTE_ENTRY && t != XEN_ELFNOTE_HYPERCALL_PAGE
    });
    notes.push(xen_u64(XEN_ELFNOTE_VIRT_BASE, base));
    let inside = kernel_with_notes(&notes).entry(base + TEXT_PADDR).build();
    assert_eq!(
        parse_err(&inside),
        ImageError::OverlapsHypervisor { start: base, end: base + DATA_PADDR + 0x3000 }
    );

    // Just above the reserved range is fine.
    let above = 0xffff_8800_0000_0000;
    notes.pop();
    notes.push(xen_u64(XEN_ELFNOTE_VIRT_BASE, above));
    let ok = kernel_with_notes(&notes).entry(above + TEXT_PADDR).build();
    assert_eq!(parse_guest_image(&ok).unwrap().kernel_start, above + TEXT_PADDR);

    // In the non-canonical hole.
    let hole = 0x0000_8000_0000_0000;
    notes.pop();
    notes.push(xen_u64(XEN_ELFNOTE_VIRT_BASE, hole));
    let bad = kernel_with_notes(&notes).entry(hole + TEXT_PADDR).build();
    assert!(matches!(parse_err(&bad), ImageError::NonCanonical { start, .. } if start == hole));
}

#[test]
fn entry_must_lie_in_the_kernel() {
    let outside = VIRT_BASE + 0x100_0000;
    let mut notes = notes_without(XEN_ELFNOTE_ENTRY);
    notes.push(xen_u64(XEN_ELFNOTE_ENTRY, outside));
    let err = parse_err(&kernel_with_notes(&notes).build());
    assert!(matches!(err, ImageError::EntryOutOfBounds { entry, .. } if entry == outside));

    // Without an ENTRY note, e_entry is used and checked.
    let no_entry_note = kernel_with_notes(&notes_without(XEN_ELFNOTE_ENTRY)).entry(0x1234).build();
    assert!(matches!(parse_err(&no_entry_note), ImageError::EntryOutOfBounds { entry: 0x1234, .. }));
    let e_entry = TEXT_VADDR + 0x20;
    let defaulted = kernel_with_notes(&notes_without(XEN_ELFNOTE_ENTRY)).entry(e_entry).build();
    assert_eq!(parse_guest_image(&defaulted).unwrap().entry, e_entry);
}

#[test]
fn notes_only_in_a_non_alloc_note_section_are_found() {
    let bytes = ElfWriter::new()
        .entry(TEXT_VADDR)
        .load(TEXT_PADDR, VIRT_BASE, vec![0x90; 0x3000], 0x3000, PF_R | PF_X)
        .section(".text", SHT_PROGBITS, vec![0x90; 16])
        .section(".note", SHT_NOTE, standard_notes().concat())
        .build();
    let image = parse_guest_image(&bytes).unwrap();
    assert_eq!(image.notes.source, NoteSource::Sections);
    assert_eq!(image.hypercall_page, Some(HYPERCALL_PAGE));
    assert_eq!(image.virt_base, VIRT_BASE);
}

#[test]
fn a_pt_note_without_xen_notes_falls_back_to_sections() {
    let gnu_only = note(b"GNU", 3, &[0xab; 20]);
    let bytes = ElfWriter::new()
        .entry(TEXT_VADDR)
        .load(TEXT_PADDR, VIRT_BASE, vec![0x90; 0x3000], 0x3000, PF_R | PF_X)
        .note_segment(gnu_only)
        .section(".note.Xen", SHT_NOTE, standard_notes().concat())
        .build();
    let image = parse_guest_image(&bytes).unwrap();
    assert_eq!(image.notes.source, NoteSource::Sections);
    assert_eq!(image.notes.xen_version, Some("xen-3.0"));
}

#[test]
fn a_kernel_linked_at_address_zero_loads() {
    // Mini-OS style: no VIRT_BASE or PADDR_OFFSET, 4-byte numbers.
    let notes = [
        xen_str(XEN_ELFNOTE_GUEST_OS, "Mini-OS"),
        xen_str(XEN_ELFNOTE_XEN_VERSION, "xen-3.0"),
        xen_str(XEN_ELFNOTE_LOADER, "generic"),
        xen_u32(XEN_ELFNOTE_HYPERCALL_PAGE, 0x2000),
    ];
    let bytes = ElfWriter::new()
        .entry(0)
        .load(0, 0, vec![0xcc; 0x5000], 0x8000, PF_R | PF_W | PF_X)
        .note_segment(notes.concat())
        .build();
    let image = parse_guest_image(&bytes).unwrap();
    assert_eq!((image.virt_base, image.paddr_offset), (0, 0));
    assert_eq!((image.kernel_start, image.kernel_end), (0, 0x8000));
    assert_eq!(image.entry, 0);
    assert_eq!(image.hypercall_page, Some(0x2000));
    assert_eq!(image.load_segments()[0].dest_vaddr, 0);
}

#[test]
fn unaligned_segments_keep_their_byte_offsets() {
    let bytes = ElfWriter::new()
        .entry(VIRT_BASE + 0x10_0123)
        .load(0x10_0123, VIRT_BASE, vec![7; 0x1801], 0x1801, PF_R | PF_X)
        .load(0x10_2345, VIRT_BASE, vec![8; 0x10], 0x99, PF_R | PF_W)
        .note_segment(
            notes_without(XEN_ELFNOTE_ENTRY)
                .into_iter()
                .filter(|n| u32::from_le_bytes([n[8], n[9], n[10], n[11]]) != XEN_ELFNOTE_HYPERCALL_PAGE)
                .collect::<Vec<_>>()
                .concat(),
        )
        .build();
    let image = parse_guest_image(&bytes).unwrap();
    assert_eq!(image.kernel_start, VIRT_BASE + 0x10_0123);
    assert_eq!(image.kernel_end, VIRT_BASE + 0x10_2345 + 0x99);
    let segs = image.load_segments();
    assert_eq!(segs[0].guest_paddr, 0x10_0123);
    assert_eq!(segs[1].dest_vaddr, VIRT_BASE + 0x10_2345);
    assert_eq!(segs[1].zero_fill_len(), 0x89);
}

#[test]
fn required_features_must_be_offered() {
    let ok = notes_with(xen_str(XEN_ELFNOTE_FEATURES, "!writable_page_tables|pae_pgdir_above_4gb"));
    let bytes = kernel_with_notes(&ok).build();
    let image = parse_guest_image(&bytes).unwrap();
    assert!(image.notes.required.contains(XENFEAT_writable_page_tables));

    for feature in ["auto_translated_physmap", "dom0", "supervisor_mode_kernel"] {
        let notes = notes_with(xen_str(XEN_ELFNOTE_FEATURES, &format!("writable_page_tables|!{feature}")));
        assert_eq!(
            parse_err(&kernel_with_notes(&notes).build()),
            ImageError::RequiredFeatureUnsupported { feature }
        );
    }

    let unknown = notes_with(xen_str(XEN_ELFNOTE_FEATURES, "!no_such_feature"));
    let err = parse_err(&kernel_with_notes(&unknown).build());
    assert!(matches!(err, ImageError::UnknownRequiredFeature(n) if n.as_str() == "no_such_feature"));

    // Unknown optional names are ignored; supporting dom0 is fine.
    let optional = notes_with(xen_str(XEN_ELFNOTE_FEATURES, "no_such_feature|dom0"));
    let mut notes = optional;
    notes.push(xen_u32(XEN_ELFNOTE_SUPPORTED_FEATURES, 1 << XENFEAT_dom0));
    let bytes = kernel_with_notes(&notes).build();
    let image = parse_guest_image(&bytes).unwrap();
    assert!(image.notes.supported.contains(XENFEAT_dom0));
    assert_eq!(image.notes.supported_features_bitmap, Some(1 << XENFEAT_dom0));
}

#[test]
fn linux_style_notes_are_all_understood() {
    let notes = vec![
        xen_str(XEN_ELFNOTE_GUEST_OS, "linux"),
        xen_str(XEN_ELFNOTE_GUEST_VERSION, "2.6"),
        xen_str(XEN_ELFNOTE_XEN_VERSION, "xen-3.0"),
        xen_u64(XEN_ELFNOTE_VIRT_BASE, VIRT_BASE),
        xen_u64(XEN_ELFNOTE_PADDR_OFFSET, 0),
        xen_u64(XEN_ELFNOTE_ENTRY, TEXT_VADDR + 0x40),
        xen_u64(XEN_ELFNOTE_HYPERCALL_PAGE, HYPERCALL_PAGE),
        // Linux writes FEATURES with .ascii: no NUL inside the descriptor.
        note(b"Xen", XEN_ELFNOTE_FEATURES, b"!writable_page_tables"),
        xen_str(XEN_ELFNOTE_PAE_MODE, "yes"),
        note(b"Xen", XEN_ELFNOTE_L1_MFN_VALID, &[1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]),
        xen_u32(XEN_ELFNOTE_MOD_START_PFN, 1),
        xen_u64(XEN_ELFNOTE_INIT_P2M, 0x80_0000_0000),
        xen_u32(XEN_ELFNOTE_SUPPORTED_FEATURES, (1 << 0) | (1 << 11)),
        xen_u32(XEN_ELFNOTE_PHYS32_ENTRY, 0x100_0200),
        xen_u32(XEN_ELFNOTE_SUSPEND_CANCEL, 1),
        note(b"Xen", 0x77, b"a note type from the future"),
    ];
    let bytes = kernel_with_notes(&notes).build();
    let image = parse_guest_image(&bytes).unwrap();
    let n = image.notes;
    assert_eq!(n.features, Some("!writable_page_tables"));
    assert_eq!(n.pae_mode, Some("yes"));
    assert!(n.l1_mfn_valid);
    assert_eq!(n.mod_start_pfn, Some(1));
    assert_eq!(image.init_p2m, Some(0x80_0000_0000));
    assert_eq!(n.phys32_entry, Some(0x100_0200));
    assert_eq!(n.suspend_cancel, Some(1));
    assert_eq!(image.entry, TEXT_VADDR + 0x40);
    assert_eq!(n.count, 15);
    let shown = n.to_string();
    assert!(shown.contains("ELF: note: GUEST_OS = \"linux\""));
    assert!(shown.contains("ELF: note: INIT_P2M = 0x8000000000"));
}

#[test]
fn numeric_notes_must_have_a_numeric_size() {
    let bad = notes_with(note(b"Xen", XEN_ELFNOTE_INIT_P2M, &[1, 2, 3]));
    assert_eq!(
        parse_err(&kernel_with_notes(&bad).build()),
        ImageError::BadNumericNote { note: "INIT_P2M", size: 3 }
    );
}

#[test]
fn a_note_running_past_its_segment_is_rejected() {
    let mut broken = standard_notes().concat();
    let len = broken.len();
    // Claim a 4 KiB descriptor in the last note.
    let last = len - standard_notes().last().unwrap().len();
    broken[last + 4..last + 8].copy_from_slice(&0x1000u32.to_le_bytes());
    let err = parse_err(&kernel_with_notes(&[broken]).build());
    assert!(matches!(err, ImageError::TruncatedNote { .. }));
}

#[test]
fn address_note_combinations_are_checked_like_libelf() {
    let offset_only = notes_without(XEN_ELFNOTE_VIRT_BASE);
    assert_eq!(parse_err(&kernel_with_notes(&offset_only).build()), ImageError::PaddrOffsetWithoutVirtBase);

    let mut base_above = notes_without(XEN_ELFNOTE_PADDR_OFFSET);
    base_above.push(xen_u64(XEN_ELFNOTE_PADDR_OFFSET, 0x20_0000));
    assert!(matches!(
        parse_err(&kernel_with_notes(&base_above).build()),
        ImageError::VirtBaseAboveKernel { virt_base: VIRT_BASE, .. }
    ));

    let mut unaligned = notes_without(XEN_ELFNOTE_VIRT_BASE);
    unaligned.push(xen_u64(XEN_ELFNOTE_VIRT_BASE, VIRT_BASE + 0x10));
    assert_eq!(
        parse_err(&kernel_with_notes(&unaligned).build()),
        ImageError::VirtBaseUnaligned(VIRT_BASE + 0x10)
    );

    let p2m_inside = notes_with(xen_u64(XEN_ELFNOTE_INIT_P2M, TEXT_VADDR + 0x1000));
    assert_eq!(
        parse_err(&kernel_with_notes(&p2m_inside).build()),
        ImageError::P2mBaseInsideKernel { p2m_base: TEXT_VADDR + 0x1000 }
    );
}

#[test]
fn hypercall_page_must_be_an_aligned_page_of_the_kernel() {
    for address in [HYPERCALL_PAGE + 8, VIRT_BASE + DATA_PADDR + 0x3000, VIRT_BASE] {
        let mut notes = notes_without(XEN_ELFNOTE_HYPERCALL_PAGE);
        notes.push(xen_u64(XEN_ELFNOTE_HYPERCALL_PAGE, address));
        assert!(matches!(
            parse_err(&kernel_with_notes(&notes).build()),
            ImageError::BadHypercallPage { address: a, .. } if a == address
        ));
    }
}

#[test]
fn the_legacy_guest_section_is_understood() {
    // Old kernels: p_paddr holds the virtual address, PADDR_OFFSET defaults to VIRT_BASE.
    let base = 0xffff_ffff_8000_0000;
    let info = b"GUEST_OS=linux,XEN_VER=xen-3.0,VIRT_BASE=0xffffffff80000000,HYPERCALL_PAGE=0x101\0";
    let bytes = ElfWriter::new()
        .entry(base + 0x10_0000)
        .load(base + 0x10_0000, 0, vec![0; 0x3000], 0x3000, PF_R | PF_X)
        .section("__xen_guest", SHT_PROGBITS, info.to_vec())
        .build();
    let image = parse_guest_image(&bytes).unwrap();
    assert_eq!(image.notes.source, NoteSource::LegacyGuestSection);
    assert_eq!(image.paddr_offset, base);
    assert_eq!(image.kernel_start, base + 0x10_0000);
    assert_eq!(image.hypercall_page, Some(base + 0x10_1000));
    assert_eq!(image.load_segments()[0].guest_paddr, 0x10_0000);
}

#[test]
fn every_error_displays_as_one_informative_line() {
    let bytes = standard_kernel();
    let errors = [
        parse_err(&bytes[..10]),
        parse_err(&bytes[..100]),
        parse_err(b"not an elf at all, really"),
        ImageError::Elf32,
        ImageError::OverlappingSegments { first: 0, second: 2 },
        ImageError::MissingNote { note: "XEN_VERSION" },
        ImageError::RequiredFeatureUnsupported { feature: "dom0" },
        ImageError::OverlapsHypervisor { start: 1, end: 2 },
        ImageError::NoXenNotes,
    ];
    for err in errors {
        let text = err.to_string();
        assert!(!text.is_empty() && !text.contains('\n'), "{text:?}");
    }
    assert!(ImageError::MissingNote { note: "XEN_VERSION" }.to_string().contains("XEN_VERSION"));
    assert!(ImageError::RequiredFeatureUnsupported { feature: "dom0" }.to_string().contains("dom0"));
}
