//! The contents of the bootstrap page tables, computed without touching
//! memory: the caller says which machine frame backs each pfn, and gets each
//! table frame's 512 entries.
//!
//! As Xen's PV dom0 builder: every level carries PRESENT|RW|USER|ACCESSED
//! (64-bit PV kernels run in ring 3, so USER is needed at every level), the
//! upper levels also DIRTY; 4 KiB leaf pages only; no NX; the frames holding
//! the tables themselves are mapped read-only (xen.h item 6). The L4 slots in
//! [`RESERVED_L4_SLOTS`](super::RESERVED_L4_SLOTS) are left empty for the
//! hypervisor to fill.
//!
//! Frame order inside the page-table area: the L4 first (it is `pt_base`),
//! then the L3s, L2s and L1s, each in address order. A relocated p2m's extra
//! tables follow its p2m pages in the same order.

use super::layout::{blocks_spanned, extra_tables_below, Layout, TABLE_SPAN_SHIFTS};
use super::{PAGE_SHIFT, PAGE_SIZE};

pub const PTE_PRESENT: u64 = 1 << 0;
pub const PTE_RW: u64 = 1 << 1;
pub const PTE_USER: u64 = 1 << 2;
pub const PTE_ACCESSED: u64 = 1 << 5;
pub const PTE_DIRTY: u64 = 1 << 6;

/// Flags of L1 entries (read-only ones drop [`PTE_RW`]).
const LEAF_FLAGS: u64 = PTE_PRESENT | PTE_RW | PTE_USER | PTE_ACCESSED;
/// Flags of L2, L3 and L4 entries.
const TABLE_FLAGS: u64 = LEAF_FLAGS | PTE_DIRTY;

const ENTRIES: u64 = 512;

/// Which level a page-table frame is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PageTableLevel {
    L1 = 1,
    L2 = 2,
    L3 = 3,
    L4 = 4,
}

impl PageTableLevel {
    /// Shift of the virtual span the whole table covers.
    fn span_shift(self) -> u32 {
        match self {
            PageTableLevel::L4 => 48,
            PageTableLevel::L3 => TABLE_SPAN_SHIFTS[0],
            PageTableLevel::L2 => TABLE_SPAN_SHIFTS[1],
            PageTableLevel::L1 => TABLE_SPAN_SHIFTS[2],
        }
    }

    fn from_run(run_level: usize) -> Self {
        [PageTableLevel::L3, PageTableLevel::L2, PageTableLevel::L1][run_level]
    }
}

/// One bootstrap page-table frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageTableFrame {
    /// The guest pfn holding this table.
    pub pfn: u64,
    pub level: PageTableLevel,
    /// The lowest virtual address this table translates (canonical; 0 for the L4).
    pub first_vaddr: u64,
}

/// Consecutive tables of one level: blocks `first_block..first_block+count`
/// (block = vaddr >> span shift) held in pfns from `first_pfn`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct TableRun {
    first_block: u64,
    count: u64,
    first_pfn: u64,
}

impl TableRun {
    fn pfn_of_block(&self, block: u64) -> Option<u64> {
        (self.first_block..self.first_block + self.count)
            .contains(&block)
            .then(|| self.first_pfn + (block - self.first_block))
    }
}

/// A range of virtual pages backed by consecutive pfns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Mapping {
    start: u64,
    end: u64,
    first_pfn: u64,
}

/// The bootstrap page tables of a [`Layout`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootPageTables {
    l4_pfn: u64,
    /// L3, L2 and L1 runs of the region, then of a relocated p2m.
    runs: [[TableRun; 3]; 2],
    mappings: [Option<Mapping>; 2],
    /// Pfn ranges holding page tables, mapped read-only wherever they appear.
    table_pfns: [(u64, u64); 2],
}

impl BootPageTables {
    /// Describes the tables `layout` reserved room for.
    pub fn new(layout: &Layout) -> Self {
        let l4_pfn = layout.pt_base_pfn();
        let mut runs = [[TableRun::default(); 3]; 2];
        let mut next_pfn = l4_pfn + 1;
        for (level, &shift) in TABLE_SPAN_SHIFTS.iter().enumerate() {
            let count = blocks_spanned(layout.v_start, layout.v_end, shift);
            runs[0][level] = TableRun { first_block: layout.v_start >> shift, count, first_pfn: next_pfn };
            next_pfn += count;
        }
        let region = Mapping { start: layout.v_start, end: layout.v_end, first_pfn: 0 };
        let mut mappings = [Some(region), None];
        let mut table_pfns = [(l4_pfn, l4_pfn + layout.nr_pt_frames), (0, 0)];
        if let Some(p2m) = layout.relocated_p2m {
            let (start, end) = (p2m.range.start, p2m.range.end);
            let mut next_pfn = p2m.first_pt_pfn;
            for (level, &shift) in TABLE_SPAN_SHIFTS.iter().enumerate() {
                let count = extra_tables_below(start, end, layout.v_start, shift);
                runs[1][level] = TableRun { first_block: start >> shift, count, first_pfn: next_pfn };
                next_pfn += count;
            }
            mappings[1] = Some(Mapping { start, end, first_pfn: p2m.first_pfn });
            table_pfns[1] = (p2m.first_pt_pfn, p2m.first_pt_pfn + p2m.nr_pt_frames);
        }
        Self { l4_pfn, runs, mappings, table_pfns }
    }

    /// How many frames [`frames`](Self::frames) yields.
    pub fn len(&self) -> usize {
        1 + self.runs.iter().flatten().map(|run| run.count as usize).sum::<usize>()
    }

    /// Always false: there is at least the L4.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Pfn of the L4 table.
    pub fn l4_pfn(&self) -> u64 {
        self.l4_pfn
    }

    /// Every table frame: the L4, then L3s, L2s, L1s of the region, then
    /// those of a relocated p2m.
    pub fn frames(&self) -> impl Iterator<Item = PageTableFrame> + '_ {
        let l4 = PageTableFrame { pfn: self.l4_pfn, level: PageTableLevel::L4, first_vaddr: 0 };
        let rest = self.runs.iter().flat_map(|levels| {
            levels.iter().enumerate().flat_map(|(level, run)| {
                let level = PageTableLevel::from_run(level);
                (0..run.count).map(move |i| PageTableFrame {
                    pfn: run.first_pfn + i,
                    level,
                    first_vaddr: (run.first_block + i) << level.span_shift(),
                })
            })
        });
        core::iter::once(l4).chain(rest)
    }

    /// Writes the 512 entries of `frame` into `out`, with `mfn_of(pfn)` the
    /// machine frame backing guest pfn `pfn`.
    pub fn fill(&self, frame: &PageTableFrame, mfn_of: impl Fn(u64) -> u64, out: &mut [u64; 512]) {
        out.fill(0);
        match frame.level {
            PageTableLevel::L4 => self.fill_upper(0, 0, mfn_of, out),
            PageTableLevel::L3 => self.fill_upper(1, frame.first_vaddr >> 39, mfn_of, out),
            PageTableLevel::L2 => self.fill_upper(2, frame.first_vaddr >> 30, mfn_of, out),
            PageTableLevel::L1 => self.fill_leaf(frame.first_vaddr, mfn_of, out),
        }
    }

    /// Every frame with its contents, for callers with a spare 4 KiB buffer.
    pub fn frames_with_contents<'a>(
        &'a self,
        mfn_of: impl Fn(u64) -> u64 + Copy + 'a,
    ) -> impl Iterator<Item = (PageTableFrame, [u64; 512])> + 'a {
        self.frames().map(move |frame| {
            let mut entries = [0; 512];
            self.fill(&frame, mfn_of, &mut entries);
            (frame, entries)
        })
    }

    /// Fills a table whose entries point at the tables of run level
    /// `child_level` (0 = L3s) lying under block `parent_block`.
    fn fill_upper(
        &self,
        child_level: usize,
        parent_block: u64,
        mfn_of: impl Fn(u64) -> u64,
        out: &mut [u64; 512],
    ) {
        for runs in &self.runs {
            let run = runs[child_level];
            let (mut first, mut end) = (run.first_block, run.first_block + run.count);
            // Every L3 belongs to the single L4, whatever its sign bits; other
            // tables only hold the children inside their own span.
            if child_level != 0 {
                first = first.max(parent_block * ENTRIES);
                end = end.min((parent_block + 1) * ENTRIES);
            }
            for block in first..end {
                if let Some(pfn) = run.pfn_of_block(block) {
                    out[(block % ENTRIES) as usize] = (mfn_of(pfn) << PAGE_SHIFT) | TABLE_FLAGS;
                }
            }
        }
    }

    fn fill_leaf(&self, table_start: u64, mfn_of: impl Fn(u64) -> u64, out: &mut [u64; 512]) {
        let table_end = table_start.wrapping_add(ENTRIES * PAGE_SIZE);
        for mapping in self.mappings.iter().flatten() {
            let start = mapping.start.max(table_start);
            // `table_end` wraps to 0 for the very last table of the address space.
            let end = if table_end == 0 { mapping.end } else { mapping.end.min(table_end) };
            let mut vaddr = start;
            while vaddr < end {
                let pfn = mapping.first_pfn + ((vaddr - mapping.start) >> PAGE_SHIFT);
                let slot = ((vaddr - table_start) >> PAGE_SHIFT) as usize;
                let flags = if self.is_table_pfn(pfn) { LEAF_FLAGS & !PTE_RW } else { LEAF_FLAGS };
                out[slot] = (mfn_of(pfn) << PAGE_SHIFT) | flags;
                vaddr += PAGE_SIZE;
            }
        }
    }

    fn is_table_pfn(&self, pfn: u64) -> bool {
        self.table_pfns.iter().any(|&(first, end)| (first..end).contains(&pfn))
    }
}
