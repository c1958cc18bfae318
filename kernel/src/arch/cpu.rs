//! Single instructions, wrapped. Most are privileged: only the native
//! platform (and PVH, which runs in ring 0 of its own VM) may call them. The
//! PV platform uses the hypercall that replaces each one instead; see
//! `docs/PORTING.md` for the pairs.

use core::arch::asm;

pub struct CpuidResult {
    pub eax: u32,
    pub ebx: u32,
    pub ecx: u32,
    pub edx: u32,
}

/// CPUID is unprivileged, so it works everywhere; under PV it reports the
/// real CPU unless the forced-emulation prefix is used (see `cpuid_pv`).
pub fn cpuid(leaf: u32, subleaf: u32) -> CpuidResult {
    let result = core::arch::x86_64::__cpuid_count(leaf, subleaf);
    CpuidResult { eax: result.eax, ebx: result.ebx, ecx: result.ecx, edx: result.edx }
}

/// CPUID through Xen's forced-emulation prefix (`ud2; .ascii "xen";
/// cpuid`): the #UD traps to the hypervisor, which recognises the marker,
/// emulates CPUID with the domain's policy and resumes after it. This is the
/// PV guest's trap-and-emulate path for a privileged read.
///
/// Only meaningful under Xen PV (or a hypervisor that emulates the same
/// prefix): anywhere else the `ud2` raises #UD in the kernel itself.
pub fn cpuid_pv(leaf: u32, subleaf: u32) -> CpuidResult {
    let (eax, ebx, ecx, edx): (u32, u32, u32, u32);
    // SAFETY: the sequence reads no memory; CPUID writes eax..edx. rbx is
    // reserved by LLVM, so it is swapped out around the instruction.
    unsafe {
        asm!(
            "mov {saved:r}, rbx",
            "ud2",
            ".ascii \"xen\"",
            "cpuid",
            "xchg {saved:r}, rbx",
            saved = out(reg) ebx,
            inout("eax") leaf => eax,
            inout("ecx") subleaf => ecx,
            out("edx") edx,
            options(nostack),
        )
    };
    CpuidResult { eax, ebx, ecx, edx }
}

/// Serialised timestamp read: `lfence` keeps earlier instructions from
/// drifting past the read, so a timed region is measured whole.
pub fn rdtsc_serialized() -> u64 {
    // SAFETY: lfence and rdtsc have no memory effects.
    unsafe {
        core::arch::x86_64::_mm_lfence();
        let tsc = core::arch::x86_64::_rdtsc();
        core::arch::x86_64::_mm_lfence();
        tsc
    }
}

/// Port I/O, the way the native platform reaches the UART and isa-debug-exit.
pub struct PortIo;

impl drivers::PortIo for PortIo {
    fn read8(&mut self, port: u16) -> u8 {
        let value: u8;
        // SAFETY: the ports used (COM1, isa-debug-exit) have no memory side effects.
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

/// Whether EFER.NXE is on, so page-table entries may use the NX bit.
/// (`rdmsr` is privileged: the PV platform asks CPUID instead.)
pub fn nx_enabled() -> bool {
    x86_64::registers::model_specific::Efer::read()
        .contains(x86_64::registers::model_specific::EferFlags::NO_EXECUTE_ENABLE)
}

/// Whether the CPU offers the NX bit (CPUID 0x8000_0001 EDX bit 20); Xen
/// enables it for PV guests whenever the CPU has it.
pub fn nx_supported() -> bool {
    cpuid(0x8000_0000, 0).eax >= 0x8000_0001 && cpuid(0x8000_0001, 0).edx & (1 << 20) != 0
}

pub fn read_cr2() -> u64 {
    x86_64::registers::control::Cr2::read_raw()
}

pub fn read_cr3() -> u64 {
    x86_64::registers::control::Cr3::read_raw().0.start_address().as_u64()
}

/// Loads a new root page table.
///
/// # Safety
/// `root` must be the physical address of a valid PML4 that maps the
/// currently running code, its stack and everything the kernel still uses.
pub unsafe fn write_cr3(root: u64) {
    // SAFETY: the caller guarantees the new tables keep the kernel mapped.
    unsafe { asm!("mov cr3, {}", in(reg) root, options(nostack, preserves_flags)) };
}

pub fn invlpg(address: u64) {
    // SAFETY: dropping a TLB entry cannot break memory safety; at worst the
    // next access walks the page tables again.
    unsafe { asm!("invlpg [{}]", in(reg) address, options(nostack, preserves_flags)) };
}

pub fn interrupts_enable() {
    x86_64::instructions::interrupts::enable();
}

pub fn interrupts_disable() {
    x86_64::instructions::interrupts::disable();
}

pub fn interrupts_enabled() -> bool {
    x86_64::instructions::interrupts::are_enabled()
}

/// Waits for an interrupt, enabling interrupts atomically with the wait.
pub fn enable_interrupts_and_halt() {
    x86_64::instructions::interrupts::enable_and_hlt();
}

pub fn halt() {
    x86_64::instructions::hlt();
}

pub fn breakpoint() {
    x86_64::instructions::interrupts::int3();
}

/// Stores to `address` on purpose, for the `crash=` command-line test of
/// the exception handlers. The address must not be mapped.
pub fn deliberate_fault_write(address: u64) {
    // SAFETY: callers pass an address that is not mapped, so the store
    // faults before it can change any memory; the handler never resumes.
    unsafe { (address as *mut u64).write_volatile(0x5a5a) };
}

/// Executes `ud2`, for the same purpose.
pub fn deliberate_invalid_opcode() {
    // SAFETY: ud2 only raises #UD.
    unsafe { asm!("ud2", options(nomem, nostack)) };
}

/// `lar`: the access-rights bits of the descriptor `selector` names (type,
/// DPL, present and flags, as in the descriptor's second word, masked with
/// 0x00f0ff00), if the CPU lets the current ring see that descriptor.
pub fn access_rights(selector: u16) -> Option<u32> {
    let rights: u32;
    let visible: u8;
    // SAFETY: `lar` only reads the descriptor table and sets ZF; it does not
    // fault on any selector value.
    unsafe {
        core::arch::asm!(
            "lar {rights:e}, {selector:e}",
            "setz {visible}",
            selector = in(reg) u32::from(selector),
            rights = out(reg) rights,
            visible = out(reg_byte) visible,
            options(nostack, readonly),
        );
    }
    (visible != 0).then_some(rights)
}
