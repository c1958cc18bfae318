//! Single instructions and MSRs, wrapped for the rest of the hypervisor.

use core::arch::asm;

pub struct CpuidResult {
    pub eax: u32,
    pub ebx: u32,
    pub ecx: u32,
    pub edx: u32,
}

#[allow(unused_unsafe)]
pub fn cpuid(leaf: u32, subleaf: u32) -> CpuidResult {
    // SAFETY: CPUID only writes its output registers (the intrinsic is
    // unsafe on older toolchains).
    let r = unsafe { core::arch::x86_64::__cpuid_count(leaf, subleaf) };
    CpuidResult { eax: r.eax, ebx: r.ebx, ecx: r.ecx, edx: r.edx }
}

pub fn rdtsc() -> u64 {
    // SAFETY: lfence and rdtsc have no memory effects.
    unsafe {
        core::arch::x86_64::_mm_lfence();
        core::arch::x86_64::_rdtsc()
    }
}

pub struct PortIo;

impl drivers::PortIo for PortIo {
    fn read8(&mut self, port: u16) -> u8 {
        let value: u8;
        // SAFETY: the hypervisor only touches ports of devices it drives
        // (COM1 including its line status, the PIT, the CMOS clock at
        // 0x70/0x71, the legacy PICs, isa-debug-exit), none of which
        // affects memory.
        unsafe {
            asm!("in al, dx", in("dx") port, out("al") value, options(nomem, nostack, preserves_flags))
        };
        value
    }

    fn write8(&mut self, port: u16, value: u8) {
        // SAFETY: as above.
        unsafe {
            asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags))
        };
    }
}

pub fn read_cr0() -> u64 {
    x86_64::registers::control::Cr0::read_raw()
}

pub fn read_cr2() -> u64 {
    x86_64::registers::control::Cr2::read_raw()
}

pub fn read_cr3() -> u64 {
    x86_64::registers::control::Cr3::read_raw().0.start_address().as_u64()
}

pub fn read_cr4() -> u64 {
    x86_64::registers::control::Cr4::read_raw()
}

/// Switches to the page tables at machine address `root`.
///
/// # Safety
/// `root` must map the hypervisor (its L4 slots 256..271 are the
/// hypervisor's own) so execution continues.
pub unsafe fn write_cr3(root: u64) {
    // SAFETY: guaranteed by the caller.
    unsafe { asm!("mov cr3, {}", in(reg) root, options(nostack, preserves_flags)) };
}

pub fn invlpg(address: u64) {
    // SAFETY: dropping a TLB entry cannot break memory safety.
    unsafe { asm!("invlpg [{}]", in(reg) address, options(nostack, preserves_flags)) };
}

/// Flushes all non-global TLB entries by reloading CR3.
pub fn flush_tlb() {
    // SAFETY: reloading the current root changes no mapping.
    unsafe { write_cr3(read_cr3()) };
}

pub fn read_msr(msr: u32) -> u64 {
    // SAFETY: callers read only architectural MSRs the CPU implements.
    unsafe { x86_64::registers::model_specific::Msr::new(msr).read() }
}

/// Writes one of the segment-base MSRs (FS, GS, kernel GS) for the guest.
pub fn write_segment_base_msr(msr: u32, value: u64) {
    assert!(matches!(msr, MSR_FS_BASE | MSR_GS_BASE | MSR_KERNEL_GS_BASE));
    // SAFETY: segment bases only affect %fs/%gs-relative accesses, which the
    // hypervisor never makes; the value was checked canonical by the caller
    // (a non-canonical one would #GP, caught as a hypervisor fault).
    unsafe { x86_64::registers::model_specific::Msr::new(msr).write(value) };
}

pub const MSR_FS_BASE: u32 = 0xc000_0100;
pub const MSR_GS_BASE: u32 = 0xc000_0101;
pub const MSR_KERNEL_GS_BASE: u32 = 0xc000_0102;

/// Swaps GS base with kernel GS base (guest kernel/user mode switch).
pub fn swapgs() {
    // SAFETY: the hypervisor never uses %gs, so swapping only affects the guest.
    unsafe { asm!("swapgs", options(nostack, preserves_flags)) };
}

/// Waits for an interrupt with interrupts enabled, then disables them again.
pub fn wait_for_interrupt() {
    x86_64::instructions::interrupts::enable_and_hlt();
    x86_64::instructions::interrupts::disable();
}

pub fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}

/// Turns on what the hypervisor and its guest need in CR0/CR4: SSE state
/// (guests use it; the hypervisor itself is soft-float and never touches
/// it, so guest FPU state needs no saving), and SMEP where available so
/// the hypervisor can never execute guest-controlled pages.
pub fn enable_cpu_features() {
    use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};
    let smep = cpuid(7, 0).ebx & (1 << 7) != 0;
    // SAFETY: these bits change only FPU/SSE availability and SMEP, which
    // the hypervisor's own code does not depend on.
    unsafe {
        Cr0::update(|flags| {
            flags.remove(Cr0Flags::EMULATE_COPROCESSOR);
            flags.insert(Cr0Flags::MONITOR_COPROCESSOR);
        });
        Cr4::update(|flags| {
            flags.insert(Cr4Flags::OSFXSR | Cr4Flags::OSXMMEXCPT_ENABLE);
            if smep {
                flags.insert(Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION);
            }
        });
    }
}

/// Sets or clears CR0.TS (the guest's `fpu_taskswitch`).
pub fn set_task_switched(set: bool) {
    use x86_64::registers::control::{Cr0, Cr0Flags};
    // SAFETY: TS only makes FPU/SSE instructions raise #NM; the hypervisor
    // is soft-float and never executes them.
    unsafe {
        Cr0::update(|flags| flags.set(Cr0Flags::TASK_SWITCHED, set));
    }
}
