//! Which segment descriptors a 64-bit PV guest may put in its GDT or LDT
//! (the rules of Xen's `check_descriptor` for a 64-bit domain).

/// First GDT entry the hypervisor reserves (`FIRST_RESERVED_GDT_ENTRY` in
/// `public/arch-x86/xen.h`: page 14 of the GDT, 512 entries a page).
pub const FIRST_RESERVED_GDT_ENTRY: usize = 14 * 512;

/// The flat ring-3 kernel code selector Xen provides to 64-bit PV guests.
pub const FLAT_KERNEL_CS: u16 = 0xe033;

/// A 64-bit PV kernel runs in ring 3, so that is the most privileged DPL it
/// may give a descriptor.
const GUEST_KERNEL_RPL: u32 = 3;

const SEGMENT_TYPE: u32 = 0xf << 8;
const SEGMENT_S: u32 = 1 << 12;
const SEGMENT_DPL: u32 = 3 << 13;
const SEGMENT_P: u32 = 1 << 15;
const TYPE_CALL_GATE: u32 = 0xc << 8;

/// A gate may only lead to a guest GDT selector, an LDT selector or Xen's
/// flat kernel code segment: the RPL of a gate's selector is ignored, so a
/// Xen-private selector would give the guest ring 0.
fn gate_selector_okay(selector: u32) -> bool {
    ((selector >> 3) as usize) < FIRST_RESERVED_GDT_ENTRY
        || selector == u32::from(FLAT_KERNEL_CS)
        || selector & 4 != 0
}

/// Checks one 8-byte descriptor and returns the value to store (with its
/// DPL raised to the guest kernel's ring), or `None` if the guest may not
/// use it. Code and data segments and not-present descriptors are always
/// fine; of the system descriptors only call gates are, forced to DPL 0 so
/// that using them traps to the hypervisor.
pub fn check_descriptor(raw: u64) -> Option<u64> {
    let mut low = raw as u32;
    let mut high = (raw >> 32) as u32;

    if high & SEGMENT_P == 0 {
        return Some(raw);
    }
    let dpl = ((high >> 13) & 3).max(GUEST_KERNEL_RPL);
    high = (high & !SEGMENT_DPL) | (dpl << 13);

    if high & SEGMENT_S != 0 {
        return Some(u64::from(low) | (u64::from(high) << 32));
    }
    // Type 0 is harmless: it is the upper half of a 16-byte call gate.
    if high & SEGMENT_TYPE == 0 {
        return Some(raw);
    }
    if high & SEGMENT_TYPE != TYPE_CALL_GATE {
        return None;
    }
    let selector = low >> 16;
    if !gate_selector_okay(selector) {
        return None;
    }
    // The gate gets DPL 0 (so it faults and is emulated); the guest's DPL is
    // remembered in the selector's RPL.
    high &= !SEGMENT_DPL;
    let selector = (selector & !3) | dpl;
    low = (low & 0xffff) | (selector << 16);
    if high & 0xff != 0 {
        return None;
    }
    Some(u64::from(low) | (u64::from(high) << 32))
}
