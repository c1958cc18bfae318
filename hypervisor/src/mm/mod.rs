//! Frame accounting and page-table validation for 64-bit PV guests.
//!
//! A PV guest writes its own page tables, but it may never *write* to them
//! directly: every frame in use as a page table is mapped read-only, and
//! changes go through `mmu_update` / `mmuext_op`, which land here. This module
//! is the rule book that keeps the guest from ever mapping memory it does not
//! own, and from ever holding a writable mapping of a frame the MMU walks.
//! It follows the model of Xen's `xen/arch/x86/mm.c` (facts only; the code is
//! our own):
//!
//! * Every machine frame has a [`FrameInfo`]: an [`Owner`], a [`PageType`]
//!   with a *type count*, a *general* reference count, and `pinned` /
//!   `validated` flags. [`FrameTable`] holds them in storage the caller owns.
//! * General references ([`FrameTable::get_page`]) say "this frame is in use";
//!   they check ownership. Type references ([`FrameTable::get_page_type`]) say
//!   "this frame is in use *as* X". A frame's type can change only while its
//!   type count is zero, so a frame with a writable mapping (a `Writable`
//!   type reference) can never become a page table, and a page table can
//!   never gain a writable mapping.
//! * Taking the first type reference of a page-table type validates the
//!   frame: every present entry is checked and takes the references its
//!   target needs (recursively: an L4 entry takes an L3 type reference on its
//!   target, an L1 entry mapping a frame writable takes a `Writable` type
//!   reference). Dropping the last type reference releases them again.
//!   Frame contents are read through [`FrameMemory`].
//! * Guest entries are vetted per level: reserved bits are refused (Xen's
//!   `L*_DISALLOW_MASK`, see [`pte`]), there are no superpages (XSA-148),
//!   L4 slots [`HYPERVISOR_L4_SLOTS`] belong to the hypervisor, and a table
//!   may point to another table of its own level ("linear page table") only
//!   read-only and only one level deep (XSA-240).
//! * A changed entry whose address or non-whitelisted flags changed is fully
//!   re-validated; only harmless bits (A/D, NX, G, U, software bits) take the
//!   fast path. `RW` is *not* harmless on L2-L4 entries (XSA-182).
//!
//! Frames the hypervisor shares with the guest (`shared_info`, ...) are
//! handled as Xen does: the frame's ownership passes to the domain and it
//! carries a permanent type reference (`Writable` for read-write sharing,
//! `None` for read-only), so it can be mapped but never turned into a page
//! table; see [`FrameTable::share_with_domain`]. So "the guest maps only
//! frames it owns" is the single ownership rule, with no separate allowlist.
//!
//! What the caller (the hypercall layer) must still do:
//!
//! * Flush the guest's TLB, global entries included, before the guest runs
//!   again after any operation that removed or changed a mapping or switched
//!   a base. The rules here are about page-table *contents*; a stale TLB
//!   entry could still let the guest write a frame that has meanwhile become
//!   a page table (Xen tracks this with TLB-flush timestamps).
//! * Build [`FrameTable::hypervisor_l4_entries`] without `USER`: the guest
//!   runs in ring 3, so that is what keeps those mappings out of its reach,
//!   also when an L4 is reached through a linear entry.
//! * Do the M2P write of `MMU_MACHPHYS_UPDATE`, and map LDT frames lazily
//!   with [`FrameTable::get_segdesc_frame`] as Xen does on an LDT fault.
//!
//! Not modelled: MMIO mappings (an L1 entry naming a frame outside the table
//! is refused with `EPERM`, as Xen refuses an unprivileged domain), grant
//! mappings, foreign (`DOMID_*`) page owners, preemption of long validations,
//! Xen's L1TF checks of non-present entries (`pv_l1tf_check_*`; a
//! non-present entry is stored as given) and 32-bit PV guests.

mod audit;
mod descriptor;
mod error;
mod frame;
pub mod pte;
mod table;
mod update;
mod validate;
mod vcpu;

#[cfg(test)]
mod tests;

pub use audit::{AuditFailure, AuditProblem, AuditScratch, ExternalRef};
pub use descriptor::{check_descriptor, FIRST_RESERVED_GDT_ENTRY, FLAT_KERNEL_CS};
pub use error::{errno, MmError};
pub use frame::{FrameInfo, Owner, PageType, SharedAccess};
pub use table::FrameTable;
pub use vcpu::{VcpuPageTables, MAX_GDT_FRAMES};

use core::ops::Range;

/// Entries in one 4 KiB page-table frame (and descriptors in one GDT frame).
pub const ENTRIES_PER_TABLE: usize = 512;

/// L4 slots reserved for the hypervisor's own mappings, as in Xen
/// (`ROOT_PAGETABLE_FIRST_XEN_SLOT..=ROOT_PAGETABLE_LAST_XEN_SLOT`), i.e. the
/// virtual range `0xffff800000000000..0xffff880000000000`. The guest can
/// never write them; validating an L4 overwrites them with
/// [`FrameTable::hypervisor_l4_entries`].
pub const HYPERVISOR_L4_SLOTS: Range<usize> = 256..272;

/// A machine frame number (a host-physical address shifted right by 12).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mfn(pub u64);

/// A Xen domain id (`domid_t`).
pub type DomainId = u16;

/// A page-table level, for pinning and validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    L1,
    L2,
    L3,
    L4,
}

impl Level {
    /// The type a frame takes when it is used as a table of this level.
    pub const fn page_type(self) -> PageType {
        match self {
            Level::L1 => PageType::L1,
            Level::L2 => PageType::L2,
            Level::L3 => PageType::L3,
            Level::L4 => PageType::L4,
        }
    }

    /// The level of the tables this level's entries point to (`None` for
    /// L1, whose entries point to data frames).
    pub const fn lower(self) -> Option<Level> {
        match self {
            Level::L1 => None,
            Level::L2 => Some(Level::L1),
            Level::L3 => Some(Level::L2),
            Level::L4 => Some(Level::L3),
        }
    }

    /// The level an `MMUEXT_PIN_Ln_TABLE` command number names (`MMUEXT_PIN_L1_TABLE`
    /// is 0 .. `MMUEXT_PIN_L4_TABLE` is 3).
    pub const fn from_pin_command(cmd: u32) -> Option<Level> {
        match cmd {
            0 => Some(Level::L1),
            1 => Some(Level::L2),
            2 => Some(Level::L3),
            3 => Some(Level::L4),
            _ => None,
        }
    }
}

/// Whether `index` is an L4 slot the guest controls.
pub fn is_guest_l4_slot(index: usize) -> bool {
    index < ENTRIES_PER_TABLE && !HYPERVISOR_L4_SLOTS.contains(&index)
}

/// Access to the contents of machine frames, as 512 little 64-bit entries.
///
/// The bare-metal hypervisor implements it over its direct map; host tests
/// implement it over a `Vec`. [`FrameTable`] only asks for frames inside its
/// own table and indices below [`ENTRIES_PER_TABLE`].
pub trait FrameMemory {
    /// Reads entry `index` of frame `mfn`.
    fn read_entry(&self, mfn: Mfn, index: usize) -> u64;
    /// Writes entry `index` of frame `mfn`.
    fn write_entry(&mut self, mfn: Mfn, index: usize, value: u64);
}

/// Frame contents held as an array of pages, indexed by MFN. Reads outside
/// it return 0 and writes outside it are dropped: [`FrameTable`] never makes
/// such accesses when the array covers its frames.
impl FrameMemory for [[u64; ENTRIES_PER_TABLE]] {
    fn read_entry(&self, mfn: Mfn, index: usize) -> u64 {
        usize::try_from(mfn.0)
            .ok()
            .and_then(|frame| self.get(frame))
            .and_then(|page| page.get(index))
            .copied()
            .unwrap_or(0)
    }

    fn write_entry(&mut self, mfn: Mfn, index: usize, value: u64) {
        if let Some(slot) = usize::try_from(mfn.0)
            .ok()
            .and_then(|frame| self.get_mut(frame))
            .and_then(|page| page.get_mut(index))
        {
            *slot = value;
        }
    }
}
