//! The start-of-day memory layout of a Xen PV guest, from `start_info`.
//!
//! Xen's contract (`xen/include/public/xen.h`, "Start-of-day memory
//! layout"): the domain starts inside one contiguous virtual region at the
//! kernel's `VIRT_BASE` that maps the first guest-physical frames 1:1
//! (virtual `VIRT_BASE + p` is guest-physical `p`). The region holds, in
//! order, the kernel, an optional module, the p2m list, `start_info`, for a
//! domU the xenstore and console pages, the bootstrap page tables and a
//! one-page stack; it then has at least 512 KiB of padding and ends on a
//! 4 MiB boundary. Nothing beyond it is mapped. This module turns those
//! rules into numbers and checks that `start_info` obeys them.

use core::ops::Range;

use crate::layout::{page_align_up, PAGE_SIZE};

/// The fields of `start_info` that describe the layout (virtual addresses
/// unless named otherwise).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartOfDay {
    /// The kernel's `XEN_ELFNOTE_VIRT_BASE`: virtual address of PFN 0.
    pub virt_base: u64,
    pub nr_pages: u64,
    pub pt_base: u64,
    pub nr_pt_frames: u64,
    pub mfn_list: u64,
    /// The module (initrd), if any: its virtual address and length.
    pub module: Option<(u64, u64)>,
    pub start_info: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// A structure lies below `virt_base` or is not page aligned.
    Misplaced(&'static str, u64),
    /// The p2m list is too short for `nr_pages` or overlaps the tables.
    BadP2m,
    /// The bootstrap region reaches beyond the domain's memory.
    TooSmall { needed_pages: u64, nr_pages: u64 },
}

/// The bootstrap region, in guest-physical frame numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootstrapRegion {
    /// The bootstrap page-table frames (read-only, pinned by Xen).
    pub page_tables: Range<u64>,
    /// Xen's one-page boot stack, after the tables.
    pub stack: u64,
    /// The p2m list's frames.
    pub p2m: Range<u64>,
    /// The `start_info` page.
    pub start_info: u64,
    /// The whole region mapped at entry: `0..end`.
    pub end: u64,
}

impl BootstrapRegion {
    /// The free padding after the stack (mapped, writable, unused).
    pub fn padding(&self) -> Range<u64> {
        self.stack + 1..self.end
    }
}

/// Padding Xen guarantees after the last bootstrap element.
pub const MIN_PADDING: u64 = 512 << 10;
/// The region ends on this boundary.
pub const REGION_ALIGN: u64 = 4 << 20;

impl StartOfDay {
    fn pfn(&self, what: &'static str, address: u64) -> Result<u64, LayoutError> {
        if address < self.virt_base || (!address.is_multiple_of(PAGE_SIZE) && what != "start_info") {
            return Err(LayoutError::Misplaced(what, address));
        }
        Ok((address - self.virt_base) / PAGE_SIZE)
    }

    /// Works out the bootstrap region and checks it against Xen's rules.
    pub fn region(&self) -> Result<BootstrapRegion, LayoutError> {
        let tables = self.pfn("pt_base", self.pt_base)?;
        let stack = tables + self.nr_pt_frames;
        let stack_end = self.virt_base + (stack + 1) * PAGE_SIZE;
        let end_address = (stack_end + MIN_PADDING).next_multiple_of(REGION_ALIGN);
        let end = (end_address - self.virt_base) / PAGE_SIZE;
        let p2m_first = self.pfn("mfn_list", self.mfn_list)?;
        let p2m_len = page_align_up(self.nr_pages * 8) / PAGE_SIZE;
        let p2m = p2m_first..p2m_first + p2m_len;
        if p2m.end > tables {
            return Err(LayoutError::BadP2m);
        }
        if let Some((start, _)) = self.module {
            self.pfn("mod_start", start)?;
        }
        let start_info = self.pfn("start_info", self.start_info)?;
        if end > self.nr_pages {
            return Err(LayoutError::TooSmall { needed_pages: end, nr_pages: self.nr_pages });
        }
        Ok(BootstrapRegion { page_tables: tables..stack, stack, p2m, start_info, end })
    }

    /// The module's frames, if there is one.
    pub fn module_frames(&self) -> Option<Range<u64>> {
        let (start, len) = self.module?;
        let first = (start - self.virt_base) / PAGE_SIZE;
        Some(first..first + page_align_up(len) / PAGE_SIZE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: u64 = 0xffff_ffff_8000_0000;

    /// The layout real Xen 4.17 gave a 512 MiB dom0 of this kernel.
    fn xen_dom0() -> StartOfDay {
        StartOfDay {
            virt_base: BASE,
            nr_pages: 131_072,
            pt_base: BASE + 0x249000,
            nr_pt_frames: 5,
            mfn_list: BASE + 0x148000,
            module: None,
            start_info: BASE + 0x248000,
        }
    }

    #[test]
    fn matches_what_xen_printed() {
        let region = xen_dom0().region().unwrap();
        assert_eq!(region.page_tables, 0x249..0x24e);
        assert_eq!(region.stack, 0x24e);
        assert_eq!(region.end, 0x400, "TOTAL ended at VIRT_BASE + 4 MiB");
        assert_eq!(region.p2m, 0x148..0x248);
        assert_eq!(region.start_info, 0x248);
        assert_eq!(region.padding(), 0x24f..0x400);
    }

    #[test]
    fn short_padding_extends_the_region_by_4_mib() {
        let mut layout = xen_dom0();
        layout.pt_base = BASE + 0x3a0000;
        let region = layout.region().unwrap();
        assert_eq!(region.end, 0x800);
        assert!((region.end - region.stack - 1) * PAGE_SIZE >= MIN_PADDING);
    }

    #[test]
    fn inconsistent_layouts_are_refused() {
        let mut layout = xen_dom0();
        layout.pt_base = BASE - 0x1000;
        assert_eq!(layout.region(), Err(LayoutError::Misplaced("pt_base", BASE - 0x1000)));
        let mut layout = xen_dom0();
        layout.nr_pages = 1 << 20;
        assert_eq!(layout.region(), Err(LayoutError::BadP2m), "a 4 GiB p2m cannot fit before the tables");
        let mut layout = xen_dom0();
        layout.nr_pages = 0x300;
        layout.mfn_list = BASE + 0x100000;
        assert_eq!(layout.region(), Err(LayoutError::TooSmall { needed_pages: 0x400, nr_pages: 0x300 }));
    }

    #[test]
    fn module_frames_round_up() {
        let mut layout = xen_dom0();
        layout.module = Some((BASE + 0x140000, 0x1001));
        assert_eq!(layout.module_frames(), Some(0x140..0x142));
        assert_eq!(xen_dom0().module_frames(), None);
    }
}
