//! Planning a whole page-table tree before writing any of it.
//!
//! A Xen PV kernel cannot build its first address space the way a native
//! one does (allocate a table, store into it, walk on): it cannot store into
//! a table at all once Xen knows it is one, and every frame it maps writable
//! must not be a table. Deciding the complete shape first solves both: the
//! kernel knows every table frame before it writes a single entry, so it can
//! map exactly those frames read-only, and it can emit all entries as one
//! long stream that the platform batches into `mmu_update` calls.
//!
//! A plan covers a few *spans* (contiguous runs of 4 KiB pages) that each own
//! their L4 slots: no table below the L4 is shared between spans, so the
//! tables of each span are numbered by arithmetic alone. Table 0 is the L4;
//! then, span by span, its L3, L2 and L1 tables in address order.

/// Entries per table at every level.
pub const ENTRIES: u64 = 512;

/// Up to this many spans per plan.
pub const MAX_SPANS: usize = 4;

/// A contiguous run of pages at virtual address `start` (page aligned,
/// canonical, not crossing the canonical hole).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: u64,
    pub pages: u64,
}

impl Span {
    fn last(&self) -> u64 {
        self.start + (self.pages - 1) * 4096
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanError {
    TooManySpans,
    /// A span is empty, unaligned, non-canonical or crosses the canonical hole.
    BadSpan(Span),
    /// Two spans use the same L4 slot, so they would share tables.
    SharedSlot {
        slot: u64,
    },
}

/// What one entry points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The table with this index in the plan.
    Table(u64),
    /// The 4 KiB page at this virtual address (a leaf entry).
    Page(u64),
}

/// One entry to write: entry `index` of table number `table` (at `level`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub table: u64,
    pub level: u8,
    pub index: u16,
    pub target: Target,
}

/// The tree for up to [`MAX_SPANS`] spans.
#[derive(Clone, Debug)]
pub struct TablePlan {
    spans: [Span; MAX_SPANS],
    len: usize,
    /// `first[span][level - 1]`: the index of the span's first table of `level` (1..=3).
    first: [[u64; 3]; MAX_SPANS],
    tables: u64,
}

/// Bits of virtual address below an item of `level` (0 = a page, 1 = what one L1 covers, ...).
const fn shift(level: u8) -> u32 {
    12 + 9 * level as u32
}

fn is_canonical(address: u64) -> bool {
    let top = address >> 47;
    top == 0 || top == 0x1ffff
}

/// How many distinct level-`level` items (pages or tables) `span` touches.
fn items(span: &Span, level: u8) -> u64 {
    (span.last() >> shift(level)) - (span.start >> shift(level)) + 1
}

impl TablePlan {
    pub fn new(spans: &[Span]) -> Result<Self, PlanError> {
        if spans.len() > MAX_SPANS {
            return Err(PlanError::TooManySpans);
        }
        for span in spans {
            let bad = span.pages == 0
                || span.start % 4096 != 0
                || span.pages > (1 << 36)
                || !is_canonical(span.start)
                || !is_canonical(span.last())
                || (span.start >> 47) != (span.last() >> 47);
            if bad {
                return Err(PlanError::BadSpan(*span));
            }
        }
        for (i, a) in spans.iter().enumerate() {
            for b in &spans[i + 1..] {
                let slots = |s: &Span| (s.start >> 39) & 511..=(s.last() >> 39) & 511;
                let (sa, sb) = (slots(a), slots(b));
                if sa.start() <= sb.end() && sb.start() <= sa.end() {
                    return Err(PlanError::SharedSlot { slot: *sa.start().max(sb.start()) });
                }
            }
        }
        let mut plan = Self {
            spans: [Span { start: 0, pages: 0 }; MAX_SPANS],
            len: spans.len(),
            first: [[0; 3]; MAX_SPANS],
            tables: 1,
        };
        for (i, span) in spans.iter().enumerate() {
            plan.spans[i] = *span;
            for level in (1..=3u8).rev() {
                plan.first[i][usize::from(level - 1)] = plan.tables;
                plan.tables += items(span, level);
            }
        }
        Ok(plan)
    }

    pub fn spans(&self) -> &[Span] {
        &self.spans[..self.len]
    }

    /// How many table frames the tree needs, the L4 included.
    pub fn table_count(&self) -> u64 {
        self.tables
    }

    /// The index of the level-`level` table (1..=4) that maps `address`,
    /// if `address` lies in one of the spans.
    pub fn table_for(&self, level: u8, address: u64) -> Option<u64> {
        let span_index = self.spans().iter().position(|span| {
            address >= span.start && address <= span.last() + 4095 && (address >> 47) == (span.start >> 47)
        })?;
        match level {
            4 => Some(0),
            1..=3 => {
                let span = &self.spans[span_index];
                let s = shift(level);
                Some(self.first[span_index][usize::from(level - 1)] + (address >> s) - (span.start >> s))
            }
            _ => None,
        }
    }

    /// The level of table number `table`.
    pub fn level_of(&self, table: u64) -> Option<u8> {
        if table == 0 {
            return Some(4);
        }
        if table >= self.tables {
            return None;
        }
        (0..self.len).rev().find_map(|i| {
            (1..=3u8).find(|&level| {
                let first = self.first[i][usize::from(level - 1)];
                table >= first && table < first + items(&self.spans[i], level)
            })
        })
    }

    /// Calls `f` for every present entry of the tree: the links from each
    /// table to its children, then every leaf, span by span and from the
    /// top level down. Each table except the L4 is linked exactly once and
    /// each page of the spans has exactly one leaf.
    pub fn for_each_entry(&self, mut f: impl FnMut(Entry)) {
        for (i, span) in self.spans().iter().enumerate() {
            // Items of level `child` (0 = pages) hang from tables of `child + 1`.
            for child in (0..=3u8).rev() {
                let parent = child + 1;
                let first_item = span.start >> shift(child);
                for item in first_item..first_item + items(span, child) {
                    let table = if parent == 4 {
                        0
                    } else {
                        self.first[i][usize::from(parent - 1)] + (item >> 9) - (span.start >> shift(parent))
                    };
                    let target = if child == 0 {
                        Target::Page(sign_extend(item << 12))
                    } else {
                        Target::Table(self.first[i][usize::from(child - 1)] + item - first_item)
                    };
                    f(Entry { table, level: parent, index: (item & (ENTRIES - 1)) as u16, target });
                }
            }
        }
    }
}

/// Restores the canonical upper bits of a 48-bit address rebuilt from a shift.
fn sign_extend(address: u64) -> u64 {
    if address & (1 << 47) != 0 {
        address | 0xffff_0000_0000_0000
    } else {
        address & 0x0000_ffff_ffff_ffff
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use std::collections::{HashMap, HashSet};

    const DIRECT: u64 = 0xffff_8880_0000_0000;
    const KERNEL: u64 = 0xffff_ffff_8010_0000;

    fn entries(plan: &TablePlan) -> Vec<Entry> {
        let mut all = Vec::new();
        plan.for_each_entry(|entry| all.push(entry));
        all
    }

    #[test]
    fn one_page_needs_one_table_per_level() {
        let plan = TablePlan::new(&[Span { start: KERNEL, pages: 1 }]).unwrap();
        assert_eq!(plan.table_count(), 4);
        let all = entries(&plan);
        assert_eq!(all.len(), 4);
        assert_eq!(all[0], Entry { table: 0, level: 4, index: 511, target: Target::Table(1) });
        assert_eq!(all[1], Entry { table: 1, level: 3, index: 510, target: Target::Table(2) });
        assert_eq!(all[2], Entry { table: 2, level: 2, index: 0, target: Target::Table(3) });
        assert_eq!(all[3], Entry { table: 3, level: 1, index: 256, target: Target::Page(KERNEL) });
    }

    #[test]
    fn direct_map_of_512_mib_and_a_kernel_image() {
        let spans = [Span { start: DIRECT, pages: 131_072 }, Span { start: KERNEL, pages: 80 }];
        let plan = TablePlan::new(&spans).unwrap();
        // L4 + (1 L3 + 1 L2 + 256 L1) + (1 + 1 + 1).
        assert_eq!(plan.table_count(), 1 + 258 + 3);
        assert_eq!(plan.table_for(4, DIRECT), Some(0));
        assert_eq!(plan.table_for(1, DIRECT + (3 << 21) + 5), Some(3 + 3));
        assert_eq!(plan.table_for(1, KERNEL), Some(261));
        assert_eq!(plan.table_for(1, KERNEL + 80 * 4096), None);
        assert_eq!(plan.level_of(0), Some(4));
        assert_eq!(plan.level_of(2), Some(2));
        assert_eq!(plan.level_of(3), Some(1));
        assert_eq!(plan.level_of(259), Some(3));
        assert_eq!(plan.level_of(262), None);
    }

    #[test]
    fn every_page_has_one_leaf_and_every_table_one_parent() {
        // Crosses a 1 GiB boundary, so it needs two L2 tables.
        let start = DIRECT + (1 << 30) - (3 << 21);
        let spans = [Span { start, pages: 2048 }, Span { start: KERNEL, pages: 700 }];
        let plan = TablePlan::new(&spans).unwrap();
        let mut leaves = HashSet::new();
        let mut parents: HashMap<u64, u64> = HashMap::new();
        let mut slots = HashSet::new();
        for entry in entries(&plan) {
            assert!(slots.insert((entry.table, entry.index)), "entry written twice: {entry:?}");
            assert_eq!(plan.level_of(entry.table), Some(entry.level));
            match entry.target {
                Target::Page(address) => {
                    assert_eq!(entry.level, 1);
                    assert_eq!(plan.table_for(1, address), Some(entry.table));
                    assert_eq!(u64::from(entry.index), (address >> 12) & 511);
                    assert!(leaves.insert(address));
                }
                Target::Table(child) => {
                    assert_eq!(plan.level_of(child), Some(entry.level - 1));
                    assert!(parents.insert(child, entry.table).is_none(), "table {child} linked twice");
                }
            }
        }
        assert_eq!(leaves.len(), 2048 + 700);
        assert!(leaves.contains(&start) && leaves.contains(&(KERNEL + 699 * 4096)));
        assert_eq!(parents.len() as u64, plan.table_count() - 1, "every table but the L4 has a parent");
        assert_eq!(plan.level_of(plan.table_for(2, start).unwrap()), Some(2));
        assert_ne!(plan.table_for(2, start), plan.table_for(2, start + (4 << 21)));
    }

    #[test]
    fn bad_spans_are_refused() {
        let bad = Span { start: KERNEL + 1, pages: 1 };
        assert_eq!(TablePlan::new(&[bad]).unwrap_err(), PlanError::BadSpan(bad));
        let hole = Span { start: 0x0000_7fff_ffff_f000, pages: 2 };
        assert_eq!(TablePlan::new(&[hole]).unwrap_err(), PlanError::BadSpan(hole));
        let empty = Span { start: DIRECT, pages: 0 };
        assert!(TablePlan::new(&[empty]).is_err());
        let same_slot = [Span { start: DIRECT, pages: 1 }, Span { start: DIRECT + (1 << 30), pages: 1 }];
        assert_eq!(TablePlan::new(&same_slot).unwrap_err(), PlanError::SharedSlot { slot: 273 });
        let five = [Span { start: 0, pages: 1 }; 5];
        assert_eq!(TablePlan::new(&five).unwrap_err(), PlanError::TooManySpans);
    }

    #[test]
    fn low_half_addresses_stay_low() {
        let plan = TablePlan::new(&[Span { start: 0x40_0000, pages: 2 }]).unwrap();
        let pages: Vec<u64> = entries(&plan)
            .into_iter()
            .filter_map(|e| match e.target {
                Target::Page(address) => Some(address),
                Target::Table(_) => None,
            })
            .collect();
        assert_eq!(pages, [0x40_0000, 0x40_1000]);
    }
}
