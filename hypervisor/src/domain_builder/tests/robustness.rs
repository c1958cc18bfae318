//! Damaged images must be refused with an error, never a panic, all the way
//! through layout and page-table construction.

use proptest::prelude::*;

use super::elf_writer::standard_kernel;
use crate::domain_builder::{
    compute_layout, parse_guest_image, start_info_fields, BootPageTables, LayoutRequest, StartInfoInputs,
};

fn build_everything(bytes: &[u8]) {
    let Ok(image) = parse_guest_image(bytes) else {
        return;
    };
    for seg in image.load_segments() {
        assert!(bytes.get(seg.file_range()).is_some());
        assert!(seg.mem_size >= seg.file_size);
    }
    let Ok(layout) = compute_layout(&image, &LayoutRequest::new(1 << 16)) else {
        return;
    };
    let tables = BootPageTables::new(&layout);
    let mut entries = [0; 512];
    for frame in tables.frames() {
        tables.fill(&frame, |pfn| pfn + 7, &mut entries);
    }
    let inputs =
        StartInfoInputs { shared_info_maddr: 0, store_evtchn: 0, console_evtchn: 0, flags: 0, cmdline: b"" };
    let _ = start_info_fields(&layout, |pfn| pfn, &inputs).to_bytes();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn corrupted_kernels_never_panic(
        edits in prop::collection::vec((0usize..1024, any::<u8>()), 1..8),
        keep in 0usize..20_000,
    ) {
        let mut bytes = standard_kernel();
        for (at, value) in edits {
            // Concentrate on the headers and the notes, where parsing happens.
            let at = if at < 512 { at } else { bytes.len() - (at - 511) };
            bytes[at] = value;
        }
        bytes.truncate(keep.max(1));
        build_everything(&bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        build_everything(&bytes);
    }
}
