//! x86-64 page-table entry bits and the per-level rules for guest entries.
//!
//! The masks are the 64-bit PV values of Xen's `base_disallow_mask` and
//! `L1..L4_DISALLOW_MASK` (see `arch_init_memory()` in `xen/arch/x86/mm.c`),
//! written as 64-bit PTE masks instead of Xen's packed 24-bit flag words.

use super::{Level, Mfn};

pub const PRESENT: u64 = 1 << 0;
pub const RW: u64 = 1 << 1;
pub const USER: u64 = 1 << 2;
pub const PWT: u64 = 1 << 3;
pub const PCD: u64 = 1 << 4;
pub const ACCESSED: u64 = 1 << 5;
pub const DIRTY: u64 = 1 << 6;
/// Page size in L2/L3 entries; the PAT bit in L1 entries.
pub const PSE: u64 = 1 << 7;
pub const PAT: u64 = 1 << 7;
pub const GLOBAL: u64 = 1 << 8;
/// Software-available bits 9-11.
pub const AVAIL: u64 = 0x7 << 9;
/// Machine address bits 12-51.
pub const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
/// Software-available bits 52-62.
pub const AVAIL_HIGH: u64 = 0x7ff << 52;
/// Bit 52: Xen marks guest-kernel L1 mappings with it, because a 64-bit PV
/// kernel runs in ring 3 and every mapping must therefore carry `USER`.
pub const GUEST_KERNEL: u64 = 1 << 52;
/// Bit 62: debug builds of Xen mark grant mappings with it and refuse it
/// from guests; release builds (Debian's 4.17, our reference) leave it to
/// the guest like the other available bits, and so do we.
pub const GNTTAB: u64 = 1 << 62;
pub const NX: u64 = 1 << 63;

/// Cache-attribute bits of an L1 entry.
pub const CACHE_ATTRS: u64 = PWT | PCD | PAT;

/// Flag bits a guest may set in a present entry at any level: everything
/// else (PWT, PCD, PSE/PAT, G) is reserved by `base_disallow_mask`.
const GUEST_FLAGS: u64 = PRESENT | RW | USER | ACCESSED | DIRTY | AVAIL | AVAIL_HIGH | NX;

/// Bits refused in a present L2/L3/L4 entry. It contains `PSE`: PV guests get
/// no superpages, so no 2 MiB / 1 GiB mapping can cover frames the guest does
/// not own or its own page tables (XSA-148).
pub const BASE_DISALLOW: u64 = !(GUEST_FLAGS | ADDR_MASK);
/// Bits refused in a present L1 entry: `G` is allowed (user mappings).
pub const L1_DISALLOW: u64 = BASE_DISALLOW & !GLOBAL;
pub const L2_DISALLOW: u64 = BASE_DISALLOW;
pub const L3_DISALLOW: u64 = BASE_DISALLOW;
pub const L4_DISALLOW: u64 = BASE_DISALLOW;

/// Bits whose change never needs re-validation (Xen's
/// `FASTPATH_FLAG_WHITELIST`). `RW` is absent on purpose at every level:
/// flipping an L1 entry to writable needs a `Writable` type reference, and
/// flipping a read-only linear L2-L4 entry to writable would hand the guest
/// write access to its own page tables (XSA-182).
pub const FASTPATH_WHITELIST: u64 = NX | AVAIL_HIGH | AVAIL | GLOBAL | DIRTY | ACCESSED | USER;

/// The reserved-bit mask for a present entry at `level`. A domain allowed to
/// flush caches (one with I/O memory) may choose L1 cache attributes, as in
/// Xen's `l1_disallow_mask()`.
pub const fn disallow_mask(level: Level, cache_attrs_permitted: bool) -> u64 {
    match level {
        Level::L1 if cache_attrs_permitted => L1_DISALLOW & !CACHE_ATTRS,
        Level::L1 => L1_DISALLOW,
        Level::L2 => L2_DISALLOW,
        Level::L3 => L3_DISALLOW,
        Level::L4 => L4_DISALLOW,
    }
}

pub const fn is_present(entry: u64) -> bool {
    entry & PRESENT != 0
}

pub const fn is_writable(entry: u64) -> bool {
    entry & RW != 0
}

/// The frame an entry points to.
pub const fn entry_mfn(entry: u64) -> Mfn {
    Mfn((entry & ADDR_MASK) >> 12)
}

/// Builds an entry pointing to `mfn` with `flags`.
pub const fn make_entry(mfn: Mfn, flags: u64) -> u64 {
    ((mfn.0 << 12) & ADDR_MASK) | (flags & !ADDR_MASK)
}

/// Whether replacing `old` with the present entry `new` must go through full
/// validation: yes unless `old` was present, points to the same frame and
/// differs only in [`FASTPATH_WHITELIST`] bits.
pub const fn needs_revalidation(old: u64, new: u64) -> bool {
    (old ^ new) & !FASTPATH_WHITELIST != 0 || !is_present(old)
}

/// The value stored for a guest's present entry, as Xen's
/// `adjust_guest_l*e()` do for a 64-bit PV domain: its kernel runs in ring 3,
/// so every level gets `USER`; L1 kernel mappings are tagged with
/// [`GUEST_KERNEL`] and L1 user mappings become global. L4 entries are
/// always marked accessed. Hypervisor code that switches the guest's `%cr3`
/// must therefore flush global TLB entries too.
pub const fn adjust_guest_entry(level: Level, entry: u64) -> u64 {
    if !is_present(entry) {
        return entry;
    }
    match level {
        Level::L1 => {
            let mut adjusted = entry;
            if adjusted & USER == 0 {
                adjusted |= GUEST_KERNEL | USER;
            }
            if adjusted & GUEST_KERNEL == 0 {
                adjusted |= GLOBAL | USER;
            }
            adjusted
        }
        Level::L2 | Level::L3 => entry | USER,
        Level::L4 => entry | USER | ACCESSED,
    }
}

/// The value written for `MMU_PT_UPDATE_PRESERVE_AD`: the new entry keeps
/// the accessed/dirty bits the CPU had set in the old one.
pub const fn with_preserved_ad(old: u64, new: u64, preserve_ad: bool) -> u64 {
    if preserve_ad {
        new | (old & (ACCESSED | DIRTY))
    } else {
        new
    }
}
