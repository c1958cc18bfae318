//! Every entry into the hypervisor lands here (see `arch::entry`): faults
//! in the hypervisor itself, hypercalls, guest exceptions and interrupts.

use drivers::debug_exit::Verdict;

use crate::arch::entry::{Frame, COMPAT_SYSCALL_VECTOR, SPURIOUS_VECTOR, SYSCALL_VECTOR, TIMER_VECTOR};
use crate::arch::{cpu, guest_access};
use crate::{console, domain, hypercall, time};

#[inline(always)]
pub fn dispatch(frame: &mut Frame) {
    if frame.interrupted_hypervisor() {
        hypervisor_entry(frame);
        return;
    }
    match frame.vector {
        SYSCALL_VECTOR if domain::in_kernel_mode() => hypercall::dispatch(frame),
        // A system call from guest user space is the guest kernel's business.
        SYSCALL_VECTOR => crate::exceptions::user_syscall(frame),
        COMPAT_SYSCALL_VECTOR => crash_domain(frame, "32-bit SYSCALL from a 64-bit PV guest"),
        vector if vector == u64::from(TIMER_VECTOR) => time::timer_interrupt(),
        vector if vector == u64::from(SPURIOUS_VECTOR) => {}
        _ => crate::exceptions::guest_exception(frame),
    }
    before_guest_resumes(frame);
}

/// Work done on every way back to the guest: stop it if it shut down,
/// else run timers and backends and deliver a pending event upcall.
#[inline(always)]
fn before_guest_resumes(frame: &mut Frame) {
    if let Some(reason) = domain::shutdown_reason() {
        finish(reason);
    }
    crate::events::before_guest_resumes(frame);
}

/// Ends the run for a guest that shut down, mapping Xen's shutdown
/// reasons to the test runner's verdicts.
pub fn finish(reason: u32) -> ! {
    use hypercalls::abi::sched::{SHUTDOWN_crash, SHUTDOWN_poweroff, SHUTDOWN_reboot};
    let (name, verdict) = match reason {
        SHUTDOWN_poweroff => ("poweroff", Verdict::Success),
        SHUTDOWN_reboot => ("reboot", Verdict::Reboot),
        SHUTDOWN_crash => ("crash", Verdict::Failure),
        _ => ("other", Verdict::Failure),
    };
    log::info!("Guest domain shut down: reason {reason} ({name})");
    console::exit(verdict)
}

/// A guest problem the guest cannot be told about: dump its state and
/// stop it as crashed, as Xen's domain_crash does.
pub fn crash_domain(frame: &Frame, why: &str) -> ! {
    log::error!("domain crashed: {why}");
    dump(frame);
    finish(hypercalls::abi::sched::SHUTDOWN_crash)
}

fn hypervisor_entry(frame: &mut Frame) {
    if frame.vector == u64::from(TIMER_VECTOR) {
        time::timer_interrupt();
        return;
    }
    if frame.vector == u64::from(SPURIOUS_VECTOR) {
        return;
    }
    if let Some(fixup) = guest_access::exception_fixup(frame.rip) {
        frame.rip = fixup;
        return;
    }
    console::emergency(format_args!(
        "FATAL: hypervisor exception {} (error {:#x}) at RIP {:#x}, CR2 {:#x}",
        frame.vector,
        frame.error_code,
        frame.rip,
        cpu::read_cr2()
    ));
    dump(frame);
    console::exit(Verdict::HypervisorFault)
}

pub fn dump(frame: &Frame) {
    log::error!(
        "RIP {:#018x} CS {:#x} RFLAGS {:#x} RSP {:#018x} SS {:#x} vector {} error {:#x}",
        frame.rip,
        frame.cs,
        frame.rflags,
        frame.rsp,
        frame.ss,
        frame.vector,
        frame.error_code
    );
    log::error!(
        "RAX {:#018x} RBX {:#018x} RCX {:#018x} RDX {:#018x}",
        frame.rax,
        frame.rbx,
        frame.rcx,
        frame.rdx
    );
    log::error!(
        "RSI {:#018x} RDI {:#018x} RBP {:#018x} R8  {:#018x}",
        frame.rsi,
        frame.rdi,
        frame.rbp,
        frame.r8
    );
    log::error!(
        "R9  {:#018x} R10 {:#018x} R11 {:#018x} R12 {:#018x}",
        frame.r9,
        frame.r10,
        frame.r11,
        frame.r12
    );
    log::error!(
        "R13 {:#018x} R14 {:#018x} R15 {:#018x} CR2 {:#018x}",
        frame.r13,
        frame.r14,
        frame.r15,
        cpu::read_cr2()
    );
}
