//! start_info values and their C layout.

use hypercalls::abi::elfnote::XEN_ELFNOTE_INIT_P2M;

use super::elf_writer::*;
use crate::domain_builder::{
    compute_layout, parse_guest_image, start_info_fields, Layout, LayoutRequest, StartInfoInputs,
    START_INFO_SIZE,
};

fn mfn_of(pfn: u64) -> u64 {
    0x9_0000 + 5 * pfn
}

fn layout_for(bytes: &[u8], request: LayoutRequest) -> Layout {
    compute_layout(&parse_guest_image(bytes).unwrap(), &request).unwrap()
}

fn inputs(cmdline: &[u8]) -> StartInfoInputs<'_> {
    StartInfoInputs { shared_info_maddr: 0x1234_5000, store_evtchn: 1, console_evtchn: 2, flags: 0, cmdline }
}

#[test]
fn fields_come_from_the_layout_and_the_frame_assignment() {
    let layout = layout_for(&standard_kernel(), LayoutRequest::new(32768));
    let si = start_info_fields(&layout, mfn_of, &inputs(b"console=hvc0 loglevel=8"));
    assert_eq!(&si.magic[..15], b"xen-3.0-x86_64\0");
    assert!(si.magic[15..].iter().all(|&b| b == 0));
    assert_eq!(si.nr_pages, 32768);
    assert_eq!(si.shared_info, 0x1234_5000);
    assert_eq!(si.flags, 0);
    assert_eq!(si.store_mfn, mfn_of(layout.xenstore_pfn()));
    assert_eq!(si.console_mfn, mfn_of(layout.console_pfn()));
    assert_eq!((si.store_evtchn, si.console_evtchn), (1, 2));
    assert_eq!(si.pt_base, layout.page_tables.start);
    assert_eq!(si.nr_pt_frames, layout.nr_pt_frames);
    assert_eq!(si.mfn_list, layout.p2m.start);
    assert_eq!((si.mod_start, si.mod_len), (0, 0));
    assert_eq!((si.first_p2m_pfn, si.nr_p2m_frames), (0, 0));
    assert_eq!(si.cmd_line_text(), b"console=hvc0 loglevel=8");
}

#[test]
fn the_command_line_is_cut_to_1023_bytes_and_at_a_nul() {
    let layout = layout_for(&standard_kernel(), LayoutRequest::new(32768));
    let long = vec![b'x'; 2000];
    let si = start_info_fields(&layout, mfn_of, &inputs(&long));
    assert_eq!(si.cmd_line_text().len(), 1023);
    assert_eq!(si.cmd_line[1023], 0);

    let si = start_info_fields(&layout, mfn_of, &inputs(b"root=/dev/xvda\0garbage"));
    assert_eq!(si.cmd_line_text(), b"root=/dev/xvda");
    assert!(si.cmd_line[14..].iter().all(|&b| b == 0));
}

#[test]
fn an_initrd_and_a_relocated_p2m_are_announced() {
    let mut notes = standard_notes();
    notes.push(xen_u64(XEN_ELFNOTE_INIT_P2M, 0x80_0000_0000));
    let request = LayoutRequest { initrd_len: 12345, ..LayoutRequest::new(32768) };
    let layout = layout_for(&kernel_with_notes(&notes).build(), request);
    let si = start_info_fields(&layout, mfn_of, &inputs(b""));
    assert_eq!(si.mod_start, layout.initrd.start);
    assert_eq!(si.mod_len, 12345);
    let p2m = layout.relocated_p2m.unwrap();
    assert_eq!(si.mfn_list, 0x80_0000_0000);
    assert_eq!(si.first_p2m_pfn, layout.region_pages());
    assert_eq!(si.nr_p2m_frames, p2m.nr_p2m_pages + p2m.nr_pt_frames);
}

fn u64_at(bytes: &[u8], offset: usize) -> u64 {
    u64::from_le_bytes(bytes[offset..offset + 8].try_into().unwrap())
}

fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap())
}

#[test]
fn bytes_follow_the_c_layout_of_struct_start_info() {
    // Offsets measured by compiling against Xen 4.17's public xen.h (x86_64).
    assert_eq!(START_INFO_SIZE, 1168);
    let layout =
        layout_for(&standard_kernel(), LayoutRequest { initrd_len: 77, ..LayoutRequest::new(32768) });
    let si = start_info_fields(&layout, mfn_of, &inputs(b"abc"));
    let bytes = si.to_bytes();
    assert_eq!(&bytes[0..14], b"xen-3.0-x86_64");
    assert_eq!(u64_at(&bytes, 32), si.nr_pages);
    assert_eq!(u64_at(&bytes, 40), si.shared_info);
    assert_eq!(u32_at(&bytes, 48), si.flags);
    assert_eq!(u64_at(&bytes, 56), si.store_mfn);
    assert_eq!(u32_at(&bytes, 64), si.store_evtchn);
    assert_eq!(u64_at(&bytes, 72), si.console_mfn);
    assert_eq!(u32_at(&bytes, 80), si.console_evtchn);
    assert_eq!(u64_at(&bytes, 88), si.pt_base);
    assert_eq!(u64_at(&bytes, 96), si.nr_pt_frames);
    assert_eq!(u64_at(&bytes, 104), si.mfn_list);
    assert_eq!(u64_at(&bytes, 112), si.mod_start);
    assert_eq!(u64_at(&bytes, 120), 77);
    assert_eq!(&bytes[128..132], b"abc\0");
    assert_eq!(u64_at(&bytes, 1152), si.first_p2m_pfn);
    assert_eq!(u64_at(&bytes, 1160), si.nr_p2m_frames);

    let abi = si.to_abi();
    assert_eq!(abi.magic_bytes(), b"xen-3.0-x86_64");
    assert_eq!(abi.console.mfn, si.console_mfn);
    assert_eq!(abi.cmd_line_bytes(), b"abc");
    assert_eq!(abi.pt_base, si.pt_base);
}
