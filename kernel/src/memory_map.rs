//! The guest-physical memory map, however the loader described it
//! (`hvm_start_info`'s E820-style table for PVH, `nr_pages` for PV).

use core::fmt;

/// E820 region types, as `hvm_memmap_table_entry.type` and Xen's
/// `XENMEM_memory_map` use them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionKind {
    Ram,
    Reserved,
    AcpiReclaimable,
    AcpiNvs,
    Unusable,
    Persistent,
    Other(u32),
}

impl RegionKind {
    pub fn from_e820(kind: u32) -> Self {
        match kind {
            1 => Self::Ram,
            2 => Self::Reserved,
            3 => Self::AcpiReclaimable,
            4 => Self::AcpiNvs,
            5 => Self::Unusable,
            7 => Self::Persistent,
            other => Self::Other(other),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub start: u64,
    pub len: u64,
    pub kind: RegionKind,
}

impl Region {
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.len)
    }
}

/// Up to [`MemoryMap::CAPACITY`] regions; more are counted, not stored.
#[derive(Clone, Debug)]
pub struct MemoryMap {
    regions: [Region; Self::CAPACITY],
    len: usize,
    dropped: usize,
}

impl Default for MemoryMap {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryMap {
    pub const CAPACITY: usize = 64;

    pub const fn new() -> Self {
        const EMPTY: Region = Region { start: 0, len: 0, kind: RegionKind::Reserved };
        Self { regions: [EMPTY; Self::CAPACITY], len: 0, dropped: 0 }
    }

    /// Adds a region; empty regions are ignored.
    pub fn push(&mut self, region: Region) {
        if region.len == 0 {
            return;
        }
        if self.len == Self::CAPACITY {
            self.dropped += 1;
        } else {
            self.regions[self.len] = region;
            self.len += 1;
        }
    }

    pub fn regions(&self) -> &[Region] {
        &self.regions[..self.len]
    }

    /// Regions that did not fit and were ignored.
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    pub fn ram(&self) -> impl Iterator<Item = &Region> {
        self.regions().iter().filter(|region| region.kind == RegionKind::Ram)
    }

    pub fn total_ram(&self) -> u64 {
        self.ram().map(|region| region.len).sum()
    }

    /// One past the highest RAM address.
    pub fn ram_end(&self) -> u64 {
        self.ram().map(Region::end).max().unwrap_or(0)
    }
}

impl fmt::Display for MemoryMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for region in self.regions() {
            writeln!(
                f,
                "  [{:#014x}-{:#014x}] {:>8} KiB {:?}",
                region.start,
                region.end().saturating_sub(1),
                region.len / 1024,
                region.kind
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(start: u64, len: u64, kind: u32) -> Region {
        Region { start, len, kind: RegionKind::from_e820(kind) }
    }

    #[test]
    fn ram_totals_ignore_other_kinds_and_empty_regions() {
        let mut map = MemoryMap::new();
        map.push(region(0, 0x9fc00, 1));
        map.push(region(0x9fc00, 0x400, 2));
        map.push(region(0x100000, 0x7f00000, 1));
        map.push(region(0xfeffc000, 0x4000, 2));
        map.push(region(0x5000, 0, 1));
        assert_eq!(map.regions().len(), 4);
        assert_eq!(map.total_ram(), 0x9fc00 + 0x7f00000);
        assert_eq!(map.ram_end(), 0x8000000);
    }

    #[test]
    fn overflow_is_counted() {
        let mut map = MemoryMap::new();
        for i in 0..(MemoryMap::CAPACITY as u64 + 3) {
            map.push(region(i * 0x1000, 0x1000, 1));
        }
        assert_eq!(map.regions().len(), MemoryMap::CAPACITY);
        assert_eq!(map.dropped(), 3);
    }

    #[test]
    fn display_lists_each_region() {
        let mut map = MemoryMap::new();
        map.push(region(0x100000, 0x100000, 1));
        let text = std::format!("{map}");
        assert!(text.contains("0x000000100000-0x0000001fffff"), "{text}");
        assert!(text.contains("1024 KiB Ram"), "{text}");
    }
}
