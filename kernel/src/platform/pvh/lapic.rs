//! Just enough of the local APIC, in x2APIC mode, for Xen's per-vCPU event
//! vector: software-enable it, keep the legacy PIC out (LINT0), and
//! acknowledge each upcall with an EOI.
//!
//! A PVH guest has an emulated local APIC (Xen's vlapic; KVM's under QEMU's
//! Xen emulation). In x2APIC mode its registers are MSRs `0x800 + offset/16`,
//! so no MMIO mapping is needed.

use x86_64::registers::model_specific::Msr;

use crate::arch::cpu;

const IA32_APIC_BASE: u32 = 0x1b;
const APIC_BASE_X2APIC: u64 = 1 << 10;
const APIC_BASE_ENABLE: u64 = 1 << 11;

const X2APIC_TPR: u32 = 0x808;
const X2APIC_EOI: u32 = 0x80b;
const X2APIC_SVR: u32 = 0x80f;
/// In-service register, 32 vectors per MSR.
const X2APIC_ISR0: u32 = 0x810;
const X2APIC_LVT_TIMER: u32 = 0x832;
const X2APIC_LVT_LINT0: u32 = 0x835;

const SVR_SOFTWARE_ENABLE: u64 = 1 << 8;
const LVT_MASKED: u64 = 1 << 16;

/// CPUID.1:ECX bit 21.
pub fn has_x2apic() -> bool {
    cpu::cpuid(1, 0).ecx & (1 << 21) != 0
}

fn read(msr: u32) -> u64 {
    // SAFETY: only called for APIC MSRs after `has_x2apic` said they exist;
    // reading them has no side effects.
    unsafe { Msr::new(msr).read() }
}

fn write(msr: u32, value: u64) {
    // SAFETY: APIC registers in x2APIC mode; the values written only enable
    // the APIC, mask local interrupt sources or acknowledge an interrupt.
    unsafe { Msr::new(msr).write(value) }
}

/// Switches the APIC to x2APIC mode and software-enables it with
/// `spurious_vector`. LINT0 (where firmware routes the 8259 PIC in virtual
/// wire mode) and the APIC timer are masked: the upcall is the only
/// interrupt this kernel takes.
pub fn enable_x2apic(spurious_vector: u8) {
    let base = read(IA32_APIC_BASE);
    // Disabled -> xAPIC -> x2APIC: the architecture forbids skipping a step.
    if base & APIC_BASE_ENABLE == 0 {
        write(IA32_APIC_BASE, base | APIC_BASE_ENABLE);
    }
    if base & APIC_BASE_X2APIC == 0 {
        write(IA32_APIC_BASE, base | APIC_BASE_ENABLE | APIC_BASE_X2APIC);
    }
    write(X2APIC_LVT_LINT0, LVT_MASKED);
    write(X2APIC_LVT_TIMER, LVT_MASKED);
    write(X2APIC_TPR, 0);
    write(X2APIC_SVR, SVR_SOFTWARE_ENABLE | u64::from(spurious_vector));
}

/// Whether the APIC is in x2APIC mode and software-enabled.
pub fn is_enabled() -> bool {
    has_x2apic()
        && read(IA32_APIC_BASE) & (APIC_BASE_ENABLE | APIC_BASE_X2APIC) == APIC_BASE_ENABLE | APIC_BASE_X2APIC
        && read(X2APIC_SVR) & SVR_SOFTWARE_ENABLE != 0
}

/// Ends the interrupt in service, so the APIC delivers the next one at the
/// same or a lower priority.
pub fn eoi() {
    write(X2APIC_EOI, 0);
}

/// Whether `vector` is in service (delivered, not yet acknowledged).
pub fn in_service(vector: u8) -> bool {
    read(X2APIC_ISR0 + u32::from(vector / 32)) & (1 << (vector % 32)) != 0
}
