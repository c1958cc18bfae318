//! Shared-ring conventions (`xen/io/ring.h`).
//!
//! Ring indices are free-running 32-bit counters; a slot is
//! `index & (size - 1)` and sizes are powers of two, so `prod - cons`
//! (wrapping) is always the number of unconsumed entries.

xen_consts! {
    RING_CONSTANTS;
    /// Page size for ring protocols and hypercall interfaces, on every
    /// architecture.
    pub const XEN_PAGE_SHIFT: u32 = 12;
}

xen_typedefs! {
    RING_TYPES;
    /// A free-running ring index.
    pub type RingIdx = u32 => "RING_IDX";
}

/// Bytes in each direction of a flex ring of `2^order` pages
/// (`XEN_FLEX_RING_SIZE`): half the pages, as there are two rings.
pub const fn xen_flex_ring_size(order: u32) -> usize {
    1usize << (order + XEN_PAGE_SHIFT - 1)
}

/// The slot of a free-running `index` in a ring of `size` entries, where
/// `size` is a power of two.
pub const fn ring_slot(index: RingIdx, size: usize) -> usize {
    (index as usize) & (size - 1)
}

module_checks! { consts: [RING_CONSTANTS, RING_TYPES], types: [] }
