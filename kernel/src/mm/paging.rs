//! Page-table editing on top of the platform's PTE operations.
//!
//! The `x86_64` crate supplies the types (pages, frames, flags, indices).
//! Its own `Mapper` is not used because it stores to page tables directly,
//! which a PV guest may not do: here every store goes through
//! [`Platform::pte_write`], so one walker serves native, PV and PVH.

use core::sync::atomic::{AtomicU32, Ordering};

use x86_64::structures::paging::{PageTableFlags as Flags, PageTableIndex};
use x86_64::VirtAddr;

use crate::mm::frames;
use crate::platform;

pub const ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;

/// Open [`batch`] scopes; page-table changes are committed when the last closes.
static BATCH_DEPTH: AtomicU32 = AtomicU32::new(0);

/// Runs `f` with page-table changes left queued, then commits them all at
/// once. Under Xen PV that turns many `map`/`unmap` calls into a few
/// `mmu_update` hypercalls; natively it changes nothing.
pub fn batch<R>(f: impl FnOnce() -> R) -> R {
    BATCH_DEPTH.fetch_add(1, Ordering::SeqCst);
    let result = f();
    if BATCH_DEPTH.fetch_sub(1, Ordering::SeqCst) == 1 {
        platform::current().pte_commit();
    }
    result
}

/// Commits queued changes unless a [`batch`] scope is open: every public
/// operation ends with this, so its effect is visible when it returns.
fn commit() {
    if BATCH_DEPTH.load(Ordering::SeqCst) == 0 {
        platform::current().pte_commit();
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// No frame was left for an intermediate page table.
    OutOfFrames,
    /// The address is already mapped (to `existing`).
    AlreadyMapped {
        existing: u64,
    },
    NotMapped,
    /// A 2 MiB or 1 GiB page covers the address; it cannot be split here.
    InsideLargePage,
}

/// An address space, named by the guest-physical address of its L4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressSpace {
    pub root: u64,
}

fn indices(address: VirtAddr) -> [PageTableIndex; 4] {
    [address.p4_index(), address.p3_index(), address.p2_index(), address.p1_index()]
}

impl AddressSpace {
    /// A new, empty address space.
    pub fn new() -> Result<Self, MapError> {
        let root = new_table(4)?;
        Ok(Self { root })
    }

    pub fn current() -> Self {
        Self { root: platform::current().current_root() }
    }

    /// Walks to the table of `level` (1 = L1) covering `address`, creating
    /// missing intermediate tables when `create` is set. Returns the table's
    /// guest-physical address.
    fn table_for(&self, address: VirtAddr, level: u8, create: bool) -> Result<u64, MapError> {
        let platform = platform::current();
        let mut table = self.root;
        for (depth, index) in indices(address).into_iter().enumerate().take(4 - level as usize) {
            let entry_level = 4 - depth as u8;
            let entry = platform.pte_read(table, usize::from(index));
            let flags = Flags::from_bits_truncate(entry);
            if flags.contains(Flags::PRESENT) {
                if flags.contains(Flags::HUGE_PAGE) {
                    return Err(MapError::InsideLargePage);
                }
                table = entry & ADDRESS_MASK;
            } else if create {
                let next = new_table(entry_level - 1)?;
                // Intermediate entries grant everything; the leaf decides.
                let grant = Flags::PRESENT | Flags::WRITABLE | Flags::USER_ACCESSIBLE;
                platform.pte_write(table, entry_level, usize::from(index), next | grant.bits());
                table = next;
            } else {
                return Err(MapError::NotMapped);
            }
        }
        Ok(table)
    }

    /// Maps the 4 KiB page at `address` to the frame at guest-physical `frame`.
    pub fn map(&self, address: u64, frame: u64, flags: Flags) -> Result<(), MapError> {
        self.map_at_level(address, frame, flags, 1)
    }

    /// Maps a 2 MiB page (native and PVH only: Xen PV refuses superpages).
    pub fn map_2mib(&self, address: u64, frame: u64, flags: Flags) -> Result<(), MapError> {
        self.map_at_level(address, frame, flags | Flags::HUGE_PAGE, 2)
    }

    fn map_at_level(&self, address: u64, frame: u64, flags: Flags, level: u8) -> Result<(), MapError> {
        let address = VirtAddr::new(address);
        let table = self.table_for(address, level, true)?;
        let index = usize::from(indices(address)[4 - level as usize]);
        let platform = platform::current();
        let existing = platform.pte_read(table, index);
        if existing & Flags::PRESENT.bits() != 0 {
            return Err(MapError::AlreadyMapped { existing: existing & ADDRESS_MASK });
        }
        platform.pte_write(table, level, index, frame | (flags | Flags::PRESENT).bits());
        commit();
        Ok(())
    }

    /// Removes the 4 KiB mapping at `address` and returns the frame it mapped.
    pub fn unmap(&self, address: u64) -> Result<u64, MapError> {
        let (table, index, entry) = self.leaf(address)?;
        let platform = platform::current();
        platform.pte_write(table, 1, index, 0);
        platform.flush_tlb_page(address);
        commit();
        Ok(entry & ADDRESS_MASK)
    }

    /// Changes the flags of the 4 KiB mapping at `address`.
    pub fn protect(&self, address: u64, flags: Flags) -> Result<(), MapError> {
        let (table, index, entry) = self.leaf(address)?;
        let platform = platform::current();
        platform.pte_write(table, 1, index, (entry & ADDRESS_MASK) | (flags | Flags::PRESENT).bits());
        platform.flush_tlb_page(address);
        commit();
        Ok(())
    }

    /// The frame and flags mapped at `address`, if any (4 KiB pages only).
    pub fn translate(&self, address: u64) -> Option<(u64, Flags)> {
        let (_, _, entry) = self.leaf(address).ok()?;
        Some((entry & ADDRESS_MASK, Flags::from_bits_truncate(entry)))
    }

    /// Where the 4 KiB mapping of `address` lives: (guest-physical L1
    /// table, index, current entry).
    pub fn leaf(&self, address: u64) -> Result<(u64, usize, u64), MapError> {
        let virt = VirtAddr::new(address);
        let table = self.table_for(virt, 1, false)?;
        let index = usize::from(virt.p1_index());
        let entry = platform::current().pte_read(table, index);
        if entry & Flags::PRESENT.bits() == 0 {
            return Err(MapError::NotMapped);
        }
        Ok((table, index, entry))
    }

    /// Makes this address space current.
    pub fn activate(&self) {
        platform::current().load_root(self.root);
    }
}

fn new_table(level: u8) -> Result<u64, MapError> {
    let frame = frames::allocate_zeroed().ok_or(MapError::OutOfFrames)?;
    platform::current().prepare_page_table(frame, level);
    Ok(frame)
}

/// The flags for data mappings: writable and, where supported, not executable.
pub fn data_flags() -> Flags {
    let mut flags = Flags::PRESENT | Flags::WRITABLE;
    if platform::current().nx_enabled() {
        flags |= Flags::NO_EXECUTE;
    }
    flags
}
