//! What to do about an exception, whichever platform delivered it.

use core::sync::atomic::{AtomicU64, Ordering};

use drivers::debug_exit::Verdict;

use crate::arch::traps::TrapFrame;
use crate::{platform, println};

/// Breakpoints taken so far (`int3` is used by the recovery self-test).
static BREAKPOINTS: AtomicU64 = AtomicU64::new(0);

pub fn breakpoints_taken() -> u64 {
    BREAKPOINTS.load(Ordering::SeqCst)
}

const BREAKPOINT: u64 = 3;

/// Names for the 32 architectural exception vectors.
const EXCEPTIONS: [(&str, &str); 32] = [
    ("divide error", "#DE"),
    ("debug", "#DB"),
    ("non-maskable interrupt", "NMI"),
    ("breakpoint", "#BP"),
    ("overflow", "#OF"),
    ("bound range exceeded", "#BR"),
    ("invalid opcode", "#UD"),
    ("device not available", "#NM"),
    ("double fault", "#DF"),
    ("coprocessor segment overrun", "#MF9"),
    ("invalid TSS", "#TS"),
    ("segment not present", "#NP"),
    ("stack-segment fault", "#SS"),
    ("general protection fault", "#GP"),
    ("page fault", "#PF"),
    ("reserved", "#15"),
    ("x87 floating-point error", "#MF"),
    ("alignment check", "#AC"),
    ("machine check", "#MC"),
    ("SIMD floating-point error", "#XM"),
    ("virtualization exception", "#VE"),
    ("control protection", "#CP"),
    ("reserved", "#22"),
    ("reserved", "#23"),
    ("reserved", "#24"),
    ("reserved", "#25"),
    ("reserved", "#26"),
    ("reserved", "#27"),
    ("hypervisor injection", "#HV"),
    ("VMM communication", "#VC"),
    ("security exception", "#SX"),
    ("reserved", "#31"),
];

/// Called by the entry stubs with the interrupted state, which it may edit,
/// and for a page fault the faulting address (natively from CR2; under Xen
/// PV from `vcpu_info.arch.cr2`, because `mov %cr2` is privileged).
/// Returns to resume; a fault nobody expected ends the run.
pub fn handle_exception(frame: &mut TrapFrame, fault_address: u64) {
    if frame.vector == BREAKPOINT {
        BREAKPOINTS.fetch_add(1, Ordering::SeqCst);
        return;
    }
    if let Some(fixup) = crate::arch::traps::exception_fixup(frame.rip) {
        frame.rip = fixup;
        return;
    }
    report(frame, fault_address);
    platform::current().shutdown(Verdict::Failure);
}

fn report(frame: &TrapFrame, cr2: u64) {
    let (name, mnemonic) = EXCEPTIONS.get(frame.vector as usize).copied().unwrap_or(("interrupt", "?"));
    println!(
        "EXCEPTION: {name} ({mnemonic}, vector {}), error code {:#x}, RIP {:#x}, CR2 {cr2:#x}",
        frame.vector, frame.error_code, frame.rip
    );
    println!(
        "  RAX {:#018x} RBX {:#018x} RCX {:#018x} RDX {:#018x}",
        frame.rax, frame.rbx, frame.rcx, frame.rdx
    );
    println!(
        "  RSI {:#018x} RDI {:#018x} RBP {:#018x} RSP {:#018x}",
        frame.rsi, frame.rdi, frame.rbp, frame.rsp
    );
    println!(
        "  R8  {:#018x} R9  {:#018x} R10 {:#018x} R11 {:#018x}",
        frame.r8, frame.r9, frame.r10, frame.r11
    );
    println!(
        "  R12 {:#018x} R13 {:#018x} R14 {:#018x} R15 {:#018x}",
        frame.r12, frame.r13, frame.r14, frame.r15
    );
    println!("  CS {:#x} SS {:#x} RFLAGS {:#x}", frame.cs, frame.ss, frame.rflags);
}

/// Xen PV's failsafe callback: Xen could not return to the kernel (for
/// example an `iret` frame with a bad selector). Nothing can be resumed.
pub fn handle_failsafe(rip: u64, cs: u64) -> ! {
    println!("EXCEPTION: Xen failsafe callback: cannot return to RIP {rip:#x}, CS {cs:#x}");
    platform::current().shutdown(Verdict::Failure)
}
