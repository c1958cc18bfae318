//! The pure half of a Xen-compatible PV domain builder for one 64-bit guest.
//!
//! Everything here decides; nothing here touches memory. The bare-metal
//! hypervisor calls, in order:
//!
//! 1. [`parse_guest_image`]: checks the ELF, reads the Xen notes (as
//!    libelf does) and returns a [`GuestImage`] with its [`LoadSegment`]s.
//! 2. [`compute_layout`]: the start-of-day virtual/pseudo-physical layout
//!    from the contract above `struct start_info` in `xen/xen.h`.
//! 3. [`BootPageTables`]: the contents of every bootstrap page-table frame,
//!    given the pfn-to-mfn assignment the hypervisor made.
//! 4. [`start_info_fields`]: the values of `start_info`, convertible to
//!    `hypercalls::abi::xen::StartInfo` or to its C bytes.
//!
//! The hypervisor then only copies bytes, into frames that start zeroed
//! (every pfn below [`Layout::pages_in_use`] is either written here or must
//! read as zero: the gap below the kernel, the xenstore and console rings,
//! the stack, the padding): segment file bytes (zeroing up to `mem_size`),
//! the p2m list (entry `i` = mfn of pfn `i`, see
//! [`Layout::p2m_entry_location`]), the page tables, `start_info`, and its
//! hypercall stubs at [`Layout::hypercall_page`] when the kernel asked.
//! It enters the guest at [`Layout::entry`] with `%rsp` =
//! [`Layout::initial_stack_pointer`], `%rsi` = [`Layout::start_info`]`.start`
//! and `%cr3` = the machine address of [`Layout::pt_base_pfn`].

mod error;
mod features;
mod image;
mod layout;
mod notes;
mod page_tables;
mod start_info;

#[cfg(test)]
mod tests;

pub use error::{ImageError, LayoutError, ShortText};
pub use features::{
    feature_name, parse_feature_string, FeatureSet, HYPERVISOR_SUPPORTED_FEATURES, KNOWN_FEATURE_NAMES,
};
pub use image::{parse_guest_image, GuestImage, LoadSegment, MAX_LOAD_SEGMENTS};
pub use layout::{compute_layout, Layout, LayoutRequest, RelocatedP2m, VirtRange};
pub use notes::{NoteSource, XenNotes};
pub use page_tables::{
    BootPageTables, PageTableFrame, PageTableLevel, PTE_ACCESSED, PTE_DIRTY, PTE_PRESENT, PTE_RW, PTE_USER,
};
pub use start_info::{
    start_info_fields, StartInfoFields, StartInfoInputs, START_INFO_MAGIC, START_INFO_SIZE,
};

use core::ops::Range;

/// Size of the pages the bootstrap region is built from.
pub const PAGE_SIZE: u64 = 4096;
/// log2 of [`PAGE_SIZE`].
pub const PAGE_SHIFT: u32 = 12;

/// Start of the virtual range 64-bit PV guests may never map: it holds the
/// read-only M2P table and the hypervisor itself (`HYPERVISOR_VIRT_START`).
pub const HYPERVISOR_VIRT_START: u64 = hypercalls::abi::xen::HYPERVISOR_VIRT_START;
/// End (exclusive) of the hypervisor's reserved virtual range.
pub const HYPERVISOR_VIRT_END: u64 = hypercalls::abi::xen::HYPERVISOR_VIRT_END;

/// The hypervisor's reserved virtual range, `[HYPERVISOR_VIRT_START, HYPERVISOR_VIRT_END)`.
pub const HYPERVISOR_VIRT_RANGE: Range<u64> = HYPERVISOR_VIRT_START..HYPERVISOR_VIRT_END;

/// L4 slots covering [`HYPERVISOR_VIRT_RANGE`]. The builder leaves them empty
/// in the guest's L4; the hypervisor fills them (M2P at slot 256, ...), and
/// its page-table validator refuses guest entries there.
pub const RESERVED_L4_SLOTS: Range<usize> = 256..272;

/// Bytes of virtual address space one L4 slot covers (512 GiB).
pub const L4_SLOT_SPAN: u64 = 1 << 39;

// The slot range and the address range are two views of one fact.
const _: () = {
    assert!(((HYPERVISOR_VIRT_START >> 39) & 511) as usize == RESERVED_L4_SLOTS.start);
    assert!(
        (HYPERVISOR_VIRT_END - HYPERVISOR_VIRT_START) / L4_SLOT_SPAN
            == (RESERVED_L4_SLOTS.end - RESERVED_L4_SLOTS.start) as u64
    );
};

/// Whether `[start, end)` lies entirely within one canonical half of the
/// 48-bit x86_64 address space (an empty range at `start` counts as its half).
pub fn is_canonical_range(start: u64, end: u64) -> bool {
    const LOWER_END: u64 = 0x0000_8000_0000_0000;
    const UPPER_START: u64 = 0xffff_8000_0000_0000;
    if start > end {
        return false;
    }
    end <= LOWER_END || start >= UPPER_START
}

/// Whether `[start, end)` shares any byte with [`HYPERVISOR_VIRT_RANGE`].
pub fn overlaps_hypervisor(start: u64, end: u64) -> bool {
    start < HYPERVISOR_VIRT_END && end > HYPERVISOR_VIRT_START
}

pub(crate) const fn page_round_down(addr: u64) -> u64 {
    addr & !(PAGE_SIZE - 1)
}

pub(crate) fn page_round_up(addr: u64) -> Option<u64> {
    Some(addr.checked_add(PAGE_SIZE - 1)? & !(PAGE_SIZE - 1))
}
