//! The values of the guest's `start_info` page, as libxenguest's
//! `start_info_x86_64` fills them for a domU.

use core::mem::{offset_of, size_of};

use hypercalls::abi::xen::{StartInfo, StartInfoConsole, MAX_GUEST_CMDLINE};

use super::layout::Layout;

/// `start_info.magic` for a 64-bit PV guest.
pub const START_INFO_MAGIC: &[u8] = b"xen-3.0-x86_64";

/// Size of `struct start_info` in its C layout.
pub const START_INFO_SIZE: usize = size_of::<StartInfo>();

/// What `start_info` needs beyond the layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartInfoInputs<'a> {
    /// Machine address of the domain's shared-info page.
    pub shared_info_maddr: u64,
    pub store_evtchn: u32,
    pub console_evtchn: u32,
    /// `SIF_*` bits; 0 for an unprivileged domain.
    pub flags: u32,
    /// The kernel command line; cut to 1023 bytes (and at any NUL).
    pub cmdline: &'a [u8],
}

/// Every field of `start_info`, with the C names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartInfoFields {
    pub magic: [u8; 32],
    pub nr_pages: u64,
    pub shared_info: u64,
    pub flags: u32,
    pub store_mfn: u64,
    pub store_evtchn: u32,
    pub console_mfn: u64,
    pub console_evtchn: u32,
    pub pt_base: u64,
    pub nr_pt_frames: u64,
    pub mfn_list: u64,
    pub mod_start: u64,
    pub mod_len: u64,
    /// NUL-terminated; at most `MAX_GUEST_CMDLINE - 1` bytes of text.
    pub cmd_line: [u8; MAX_GUEST_CMDLINE],
    pub first_p2m_pfn: u64,
    pub nr_p2m_frames: u64,
}

/// Computes `start_info` for `layout`, with `mfn_of(pfn)` the machine frame
/// backing guest pfn `pfn`.
pub fn start_info_fields(
    layout: &Layout,
    mfn_of: impl Fn(u64) -> u64,
    inputs: &StartInfoInputs<'_>,
) -> StartInfoFields {
    let mut magic = [0; 32];
    magic[..START_INFO_MAGIC.len()].copy_from_slice(START_INFO_MAGIC);

    let text_end = inputs
        .cmdline
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(inputs.cmdline.len())
        .min(MAX_GUEST_CMDLINE - 1);
    let mut cmd_line = [0; MAX_GUEST_CMDLINE];
    cmd_line[..text_end].copy_from_slice(&inputs.cmdline[..text_end]);

    let (mod_start, mod_len) =
        if layout.initrd.is_empty() { (0, 0) } else { (layout.initrd.start, layout.initrd.len()) };
    // Only a relocated p2m is announced this way; the pfn range covers its
    // list pages and the page tables mapping them.
    let (first_p2m_pfn, nr_p2m_frames) =
        layout.relocated_p2m.map_or((0, 0), |p2m| (p2m.first_pfn, p2m.nr_p2m_pages + p2m.nr_pt_frames));

    StartInfoFields {
        magic,
        nr_pages: layout.nr_pages,
        shared_info: inputs.shared_info_maddr,
        flags: inputs.flags,
        store_mfn: mfn_of(layout.xenstore_pfn()),
        store_evtchn: inputs.store_evtchn,
        console_mfn: mfn_of(layout.console_pfn()),
        console_evtchn: inputs.console_evtchn,
        pt_base: layout.page_tables.start,
        nr_pt_frames: layout.nr_pt_frames,
        mfn_list: layout.p2m.start,
        mod_start,
        mod_len,
        cmd_line,
        first_p2m_pfn,
        nr_p2m_frames,
    }
}

impl StartInfoFields {
    /// The command line without its NUL terminator.
    pub fn cmd_line_text(&self) -> &[u8] {
        let end = self.cmd_line.iter().position(|&b| b == 0).unwrap_or(self.cmd_line.len());
        &self.cmd_line[..end]
    }

    /// The ABI struct, for a hypervisor that writes it as a typed value.
    pub fn to_abi(&self) -> StartInfo {
        StartInfo {
            magic: self.magic,
            nr_pages: self.nr_pages,
            shared_info: self.shared_info,
            flags: self.flags,
            store_mfn: self.store_mfn,
            store_evtchn: self.store_evtchn,
            console: StartInfoConsole { mfn: self.console_mfn, evtchn: self.console_evtchn },
            pt_base: self.pt_base,
            nr_pt_frames: self.nr_pt_frames,
            mfn_list: self.mfn_list,
            mod_start: self.mod_start,
            mod_len: self.mod_len,
            cmd_line: self.cmd_line,
            first_p2m_pfn: self.first_p2m_pfn,
            nr_p2m_frames: self.nr_p2m_frames,
        }
    }

    /// The bytes of `struct start_info` (x86_64 C layout, padding zeroed),
    /// for a hypervisor that copies bytes into the start_info page.
    pub fn to_bytes(&self) -> [u8; START_INFO_SIZE] {
        let mut out = [0; START_INFO_SIZE];
        let mut put = |offset: usize, bytes: &[u8]| {
            out[offset..offset + bytes.len()].copy_from_slice(bytes);
        };
        put(offset_of!(StartInfo, magic), &self.magic);
        put(offset_of!(StartInfo, nr_pages), &self.nr_pages.to_le_bytes());
        put(offset_of!(StartInfo, shared_info), &self.shared_info.to_le_bytes());
        put(offset_of!(StartInfo, flags), &self.flags.to_le_bytes());
        put(offset_of!(StartInfo, store_mfn), &self.store_mfn.to_le_bytes());
        put(offset_of!(StartInfo, store_evtchn), &self.store_evtchn.to_le_bytes());
        let console = offset_of!(StartInfo, console);
        put(console + offset_of!(StartInfoConsole, mfn), &self.console_mfn.to_le_bytes());
        put(console + offset_of!(StartInfoConsole, evtchn), &self.console_evtchn.to_le_bytes());
        put(offset_of!(StartInfo, pt_base), &self.pt_base.to_le_bytes());
        put(offset_of!(StartInfo, nr_pt_frames), &self.nr_pt_frames.to_le_bytes());
        put(offset_of!(StartInfo, mfn_list), &self.mfn_list.to_le_bytes());
        put(offset_of!(StartInfo, mod_start), &self.mod_start.to_le_bytes());
        put(offset_of!(StartInfo, mod_len), &self.mod_len.to_le_bytes());
        put(offset_of!(StartInfo, cmd_line), &self.cmd_line);
        put(offset_of!(StartInfo, first_p2m_pfn), &self.first_p2m_pfn.to_le_bytes());
        put(offset_of!(StartInfo, nr_p2m_frames), &self.nr_p2m_frames.to_le_bytes());
        out
    }
}
