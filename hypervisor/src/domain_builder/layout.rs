//! The start-of-day layout of a 64-bit PV domain, following the contract
//! above `struct start_info` in `xen/xen.h`:
//!
//! kernel, initrd, p2m list, start_info, xenstore ring, console ring,
//! bootstrap page tables, boot stack, each 4 KiB aligned and packed in that
//! order from VIRT_BASE, mapped 1:1 onto pfns from 0; the region ends on a
//! 4 MiB boundary with at least 512 KiB of mapped padding after the stack.
//!
//! With an INIT_P2M note the p2m list instead gets its own mapping at that
//! address, backed by pfns after the region (libxenguest's domU rule: only
//! when the address is page aligned and below VIRT_BASE).

use core::fmt;

use super::error::LayoutError;
use super::image::GuestImage;
use super::{is_canonical_range, overlaps_hypervisor, page_round_up, PAGE_SHIFT, PAGE_SIZE};

/// The region ends on a multiple of this (xen.h item 2).
const REGION_ALIGN: u64 = 4 << 20;
/// At least this much mapped space follows the boot stack (xen.h item 7).
const MIN_PADDING: u64 = 512 << 10;
/// Bytes per p2m entry (an `unsigned long` MFN).
const P2M_ENTRY_SIZE: u64 = 8;

/// Shifts of the virtual span one L3, L2 and L1 table covers.
pub(crate) const TABLE_SPAN_SHIFTS: [u32; 3] = [39, 30, 21];

/// A half-open virtual address range `[start, end)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VirtRange {
    pub start: u64,
    pub end: u64,
}

impl VirtRange {
    /// Bytes in the range.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Whether the range holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Whether `vaddr` lies in the range.
    pub fn contains(&self, vaddr: u64) -> bool {
        (self.start..self.end).contains(&vaddr)
    }
}

/// What the layout depends on besides the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayoutRequest {
    /// Pages of guest memory (`start_info.nr_pages`).
    pub nr_pages: u64,
    /// Bytes of initial ramdisk, mapped after the kernel (0: none).
    pub initrd_len: u64,
    /// Whether to map the p2m where an INIT_P2M note asks (when allowed).
    pub honor_init_p2m: bool,
}

impl LayoutRequest {
    /// A guest of `nr_pages` pages with no initrd, honouring INIT_P2M.
    pub fn new(nr_pages: u64) -> Self {
        Self { nr_pages, initrd_len: 0, honor_init_p2m: true }
    }
}

/// The p2m list when INIT_P2M moved it out of the bootstrap region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RelocatedP2m {
    /// Where the p2m list is mapped (whole pages).
    pub range: VirtRange,
    /// Pfn of the first p2m page; the list's pages are contiguous pfns.
    pub first_pfn: u64,
    pub nr_p2m_pages: u64,
    /// Pfn of the first page-table frame of this extra mapping (right after
    /// the p2m pages); these frames are not mapped anywhere.
    pub first_pt_pfn: u64,
    pub nr_pt_frames: u64,
}

/// The whole start-of-day arrangement of a PV domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub nr_pages: u64,
    /// The bootstrap region `[v_start, v_end)`; `v_start` (VIRT_BASE) is pfn 0.
    pub v_start: u64,
    pub v_end: u64,
    pub kernel: VirtRange,
    /// Empty (at the page after the kernel) when there is no initrd.
    pub initrd: VirtRange,
    /// The p2m list (`mfn_list`): 8 bytes per page, or wherever INIT_P2M put
    /// it (then also described by `relocated_p2m`).
    pub p2m: VirtRange,
    pub start_info: VirtRange,
    pub xenstore: VirtRange,
    pub console: VirtRange,
    /// The bootstrap page tables; `page_tables.start` is `pt_base`, the L4.
    pub page_tables: VirtRange,
    pub boot_stack: VirtRange,
    /// Frames in `page_tables`.
    pub nr_pt_frames: u64,
    pub entry: u64,
    pub hypercall_page: Option<u64>,
    pub relocated_p2m: Option<RelocatedP2m>,
}

/// Number of distinct `2^shift`-aligned blocks that `[start, end)` touches.
pub(crate) fn blocks_spanned(start: u64, end: u64, shift: u32) -> u64 {
    if end <= start {
        return 0;
    }
    ((end - 1) >> shift) - (start >> shift) + 1
}

/// Page-table frames (one L4 plus L3, L2, L1 tables) mapping `[start, end)`.
fn tables_for_region(start: u64, end: u64) -> u64 {
    1 + TABLE_SPAN_SHIFTS.iter().map(|&shift| blocks_spanned(start, end, shift)).sum::<u64>()
}

/// Tables the relocated p2m mapping `[start, end)` needs beyond those the
/// region `[region_start, ..)` above it already has. The p2m lies below the
/// region, so only its last table at each level can be shared.
pub(crate) fn extra_tables_below(start: u64, end: u64, region_start: u64, shift: u32) -> u64 {
    let count = blocks_spanned(start, end, shift);
    let shares_last = count > 0 && (end - 1) >> shift == region_start >> shift;
    count - u64::from(shares_last)
}

fn after(range_end: u64, bytes: u64) -> Result<VirtRange, LayoutError> {
    let start = page_round_up(range_end).ok_or(LayoutError::AddressOverflow)?;
    let end = start.checked_add(bytes).ok_or(LayoutError::AddressOverflow)?;
    Ok(VirtRange { start, end })
}

fn check_range(start: u64, end: u64) -> Result<(), LayoutError> {
    if !is_canonical_range(start, end) {
        return Err(LayoutError::NonCanonical { start, end });
    }
    if overlaps_hypervisor(start, end) {
        return Err(LayoutError::OverlapsHypervisor { start, end });
    }
    Ok(())
}

/// Computes the start-of-day layout for `image` in a guest of
/// `request.nr_pages` pages, as Xen's PV builders do.
pub fn compute_layout(image: &GuestImage<'_>, request: &LayoutRequest) -> Result<Layout, LayoutError> {
    let nr_pages = request.nr_pages;
    if nr_pages == 0 {
        return Err(LayoutError::NoMemory);
    }
    let v_start = image.virt_base;
    let p2m_bytes = nr_pages.checked_mul(P2M_ENTRY_SIZE).ok_or(LayoutError::AddressOverflow)?;
    let relocate_to = image
        .init_p2m
        .filter(|&base| request.honor_init_p2m && base.is_multiple_of(PAGE_SIZE) && base < v_start);

    let kernel = VirtRange { start: image.kernel_start, end: image.kernel_end };
    let initrd = after(kernel.end, request.initrd_len)?;
    let in_region_p2m = after(initrd.end, if relocate_to.is_some() { 0 } else { p2m_bytes })?;
    let start_info = after(in_region_p2m.end, PAGE_SIZE)?;
    let xenstore = after(start_info.end, PAGE_SIZE)?;
    let console = after(xenstore.end, PAGE_SIZE)?;

    // The tables map the whole region, themselves included, so their number
    // and the region's size depend on each other. Stepping to the count the
    // current guess needs finds the least consistent count, as Xen's search does.
    let mut nr_pt_frames = 1;
    let (page_tables, boot_stack, v_end) = loop {
        let page_tables = after(console.end, nr_pt_frames * PAGE_SIZE)?;
        let boot_stack = after(page_tables.end, PAGE_SIZE)?;
        let mut v_end =
            boot_stack.end.checked_next_multiple_of(REGION_ALIGN).ok_or(LayoutError::AddressOverflow)?;
        if v_end - boot_stack.end < MIN_PADDING {
            v_end = v_end.checked_add(REGION_ALIGN).ok_or(LayoutError::AddressOverflow)?;
        }
        let needed = tables_for_region(v_start, v_end);
        if needed <= nr_pt_frames {
            break (page_tables, boot_stack, v_end);
        }
        nr_pt_frames = needed;
    };
    check_range(v_start, v_end)?;
    let region_pages = (v_end - v_start) >> PAGE_SHIFT;

    let (p2m, relocated_p2m) = match relocate_to {
        None => (in_region_p2m, None),
        Some(base) => {
            let nr_p2m_pages = p2m_bytes.div_ceil(PAGE_SIZE);
            let end = base.checked_add(nr_p2m_pages << PAGE_SHIFT).ok_or(LayoutError::AddressOverflow)?;
            check_range(base, end)?;
            if end > v_start {
                return Err(LayoutError::P2mOverlapsRegion { p2m_start: base, p2m_end: end });
            }
            let nr_extra_tables =
                TABLE_SPAN_SHIFTS.iter().map(|&shift| extra_tables_below(base, end, v_start, shift)).sum();
            let relocated = RelocatedP2m {
                range: VirtRange { start: base, end },
                first_pfn: region_pages,
                nr_p2m_pages,
                first_pt_pfn: region_pages + nr_p2m_pages,
                nr_pt_frames: nr_extra_tables,
            };
            let list = VirtRange { start: base, end: base + p2m_bytes };
            (list, Some(relocated))
        }
    };

    let layout = Layout {
        nr_pages,
        v_start,
        v_end,
        kernel,
        initrd: VirtRange { start: initrd.start, end: initrd.end },
        p2m,
        start_info,
        xenstore,
        console,
        page_tables,
        boot_stack,
        nr_pt_frames,
        entry: image.entry,
        hypercall_page: image.hypercall_page,
        relocated_p2m,
    };
    let needed_pages = layout.pages_in_use();
    if needed_pages > nr_pages {
        return Err(LayoutError::NotEnoughMemory { needed_pages, nr_pages });
    }
    Ok(layout)
}

impl Layout {
    /// Pages in the bootstrap region, i.e. pfns `0..region_pages()`.
    pub fn region_pages(&self) -> u64 {
        (self.v_end - self.v_start) >> PAGE_SHIFT
    }

    /// Pfns with a start-of-day role: the region plus any relocated p2m and
    /// its page tables. Pfns from here to `nr_pages` are plain free memory.
    pub fn pages_in_use(&self) -> u64 {
        self.region_pages() + self.relocated_p2m.map_or(0, |p2m| p2m.nr_p2m_pages + p2m.nr_pt_frames)
    }

    /// The pfn mapped at `vaddr` by the initial page tables, if any.
    pub fn pfn_of(&self, vaddr: u64) -> Option<u64> {
        if (self.v_start..self.v_end).contains(&vaddr) {
            return Some((vaddr - self.v_start) >> PAGE_SHIFT);
        }
        let p2m = self.relocated_p2m?;
        p2m.range.contains(vaddr).then(|| p2m.first_pfn + ((vaddr - p2m.range.start) >> PAGE_SHIFT))
    }

    /// The virtual address of a pfn in the bootstrap region.
    pub fn vaddr_of_region_pfn(&self, pfn: u64) -> Option<u64> {
        (pfn < self.region_pages()).then(|| self.v_start + (pfn << PAGE_SHIFT))
    }

    /// Pfn of the L4 table (`pt_base`); its machine address goes in CR3.
    pub fn pt_base_pfn(&self) -> u64 {
        self.region_pfn(self.page_tables.start)
    }

    pub fn start_info_pfn(&self) -> u64 {
        self.region_pfn(self.start_info.start)
    }

    pub fn xenstore_pfn(&self) -> u64 {
        self.region_pfn(self.xenstore.start)
    }

    pub fn console_pfn(&self) -> u64 {
        self.region_pfn(self.console.start)
    }

    pub fn boot_stack_pfn(&self) -> u64 {
        self.region_pfn(self.boot_stack.start)
    }

    /// `%rsp` at entry: the top of the boot stack.
    pub fn initial_stack_pointer(&self) -> u64 {
        self.boot_stack.end
    }

    /// Whether `pfn` holds a bootstrap page table (and so must only ever be
    /// mapped read-only).
    pub fn is_page_table_pfn(&self, pfn: u64) -> bool {
        let first = self.pt_base_pfn();
        if (first..first + self.nr_pt_frames).contains(&pfn) {
            return true;
        }
        self.relocated_p2m
            .is_some_and(|p2m| (p2m.first_pt_pfn..p2m.first_pt_pfn + p2m.nr_pt_frames).contains(&pfn))
    }

    /// Where the p2m entry of guest pfn `pfn` is stored: `(pfn of the p2m
    /// page, byte offset in it)`. `None` when `pfn >= nr_pages`.
    pub fn p2m_entry_location(&self, pfn: u64) -> Option<(u64, usize)> {
        if pfn >= self.nr_pages {
            return None;
        }
        let byte = self.p2m.start + pfn * P2M_ENTRY_SIZE;
        let page = self.pfn_of(byte)?;
        Some((page, (byte % PAGE_SIZE) as usize))
    }

    fn region_pfn(&self, vaddr: u64) -> u64 {
        (vaddr - self.v_start) >> PAGE_SHIFT
    }
}

struct Span(VirtRange);

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}->{:016x}", self.0.start, self.0.end)
    }
}

impl fmt::Display for Layout {
    /// The arrangement, in the shape Xen prints with `dom0=verbose`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "VIRTUAL MEMORY ARRANGEMENT ({} pages of memory):", self.nr_pages)?;
        writeln!(f, " Loaded kernel: {}", Span(self.kernel))?;
        if !self.initrd.is_empty() {
            writeln!(f, " Init. ramdisk: {}", Span(self.initrd))?;
        }
        write!(f, " Phys-Mach map: {}", Span(self.p2m))?;
        match self.relocated_p2m {
            Some(p2m) => writeln!(
                f,
                " (INIT_P2M: pfns {:#x}+{:#x}, {} extra page-table frames)",
                p2m.first_pfn, p2m.nr_p2m_pages, p2m.nr_pt_frames
            )?,
            None => writeln!(f)?,
        }
        writeln!(f, " Start info:    {}", Span(self.start_info))?;
        writeln!(f, " Xenstore ring: {}", Span(self.xenstore))?;
        writeln!(f, " Console ring:  {}", Span(self.console))?;
        writeln!(f, " Page tables:   {} ({} frames)", Span(self.page_tables), self.nr_pt_frames)?;
        writeln!(f, " Boot stack:    {}", Span(self.boot_stack))?;
        writeln!(f, " TOTAL:         {}", Span(VirtRange { start: self.v_start, end: self.v_end }))?;
        writeln!(f, " ENTRY ADDRESS: {:016x}", self.entry)
    }
}
