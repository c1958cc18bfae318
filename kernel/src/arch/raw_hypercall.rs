//! Raw hypercalls for the hostile-guest suite (`crate::hostile`) and the
//! hypercall fuzzer (`crate::fuzz`): "issue hypercall N with these five
//! words and tell me what came back".
//!
//! Everywhere else the kernel goes through `hypercalls::ops`, whose typed
//! wrappers are `unsafe` because a hypercall can rewrite the caller's page
//! tables, trap table or memory. These functions are safe to call because
//! of how their two callers choose arguments, which is their contract:
//!
//! * every pointer argument names memory the hypervisor must refuse (null,
//!   non-canonical, the hypervisor's own range, unmapped space), or scratch
//!   pages the caller owns and nothing else uses;
//! * every frame or page-table slot named is either one the hypervisor must
//!   refuse, or a scratch frame/slot the caller owns; never a page of the
//!   running kernel's own mappings unless the operation is one the
//!   hypervisor must refuse (and the caller then restores the old value);
//! * operations that would legitimately destroy the guest (shutting it
//!   down, switching to a foreign base table, closing its event channels,
//!   moving `vcpu_info`) are never issued; the fuzzer's exclusions are in
//!   `kernel::hostile_plan::fuzz` and tested on the host.
//!
//! If the hypervisor nevertheless accepts what Xen refuses, the damage is
//! confined to scratch state; that is the finding the caller reports.

use core::arch::{asm, global_asm};

use hypercalls::abi::arch_x86::FLAT_KERNEL_CS;
use hypercalls::abi::callback::{CALLBACKF_mask_events, CALLBACKOP_register, CALLBACKTYPE_failsafe};
use hypercalls::abi::xen::{__HYPERVISOR_callback_op, __HYPERVISOR_iret, __HYPERVISOR_set_trap_table};

/// Stubs in the hypercall page (4 KiB of 32-byte stubs).
const PAGE_STUBS: u64 = 128;

/// What [`hypercall`] returns for `__HYPERVISOR_iret`, which it never issues:
/// the iret stub consumes a frame from the stack and does not return.
pub const NOT_ISSUED: i64 = i64::MIN;

/// Issues hypercall `number` (the full 64-bit `%rax`) with five argument
/// words and returns `%rax` as the hypervisor left it. Numbers that have a
/// stub in the hypercall page go through it, like every other hypercall of
/// the kernel; larger ones (never valid) are issued with `syscall` directly,
/// which is all a stub does.
pub fn hypercall(number: u64, args: [u64; 5]) -> i64 {
    if number == u64::from(__HYPERVISOR_iret) {
        return NOT_ISSUED;
    }
    if number < PAGE_STUBS {
        let [a1, a2, a3, a4, a5] = args;
        // SAFETY: the module contract above; the shared transport calls the
        // stub with the Xen x86_64 convention.
        unsafe { hypercalls::transport::hypercall5(number as u32, a1, a2, a3, a4, a5) }
    } else {
        // SAFETY: as above; `syscall` from guest kernel mode is a hypercall,
        // and rcx/r11 (which it overwrites) are declared clobbered.
        unsafe { direct_syscall(number, args) }
    }
}

unsafe fn direct_syscall(number: u64, args: [u64; 5]) -> i64 {
    let result: i64;
    // SAFETY: see `hypercall`.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") number as i64 => result,
            inout("rdi") args[0] => _,
            inout("rsi") args[1] => _,
            inout("rdx") args[2] => _,
            inout("r10") args[3] => _,
            inout("r8") args[4] => _,
            out("r9") _,
            out("rcx") _,
            out("r11") _,
        );
    }
    result
}

global_asm!(
    r#"
    /* hostile_iret_probe(cs, ss, rflags, out): returns through the iret
       hypercall to the label below with the given cs, ss and rflags, and
       records there the cs, ss and rflags the CPU really runs with. If the
       return faults instead, the #GP goes to hostile_iret_gp (installed
       for vector 13 meanwhile), which records out[3] = 1. */
    .pushsection .text.hostile_iret, "ax", @progbits
    .global hostile_iret_probe
    hostile_iret_probe:
        push %rbx
        push %rbp
        push %r12
        push %r13
        push %r14
        push %r15
        mov %rcx, %r12
        mov %rsp, %r13
        movq $0, 24(%r12)
        push %rsi
        push %r13
        push %rdx
        push %rdi
        lea hostile_iret_target(%rip), %rax
        push %rax
        push $0
        jmp hypercall_page + {iret} * 32
    hostile_iret_target:
        mov %cs, %rax
        mov %rax, 0(%r12)
        mov %ss, %rax
        mov %rax, 8(%r12)
        pushfq
        pop %rax
        mov %rax, 16(%r12)
    hostile_iret_done:
        mov %r13, %rsp
        pop %r15
        pop %r14
        pop %r13
        pop %r12
        pop %rbp
        pop %rbx
        ret

    /* Vector 13 while probing: the frame the hypervisor could not return
       to is abandoned (its selector is the bad one); r12 and r13 still
       hold the probe's state. */
    .balign 16
    .global hostile_iret_gp
    hostile_iret_gp:
        movq $1, 24(%r12)
        jmp hostile_iret_done

    /* The failsafe callback used while probing: Xen could not return to the
       frame; resume after the probe instead of stopping the kernel. */
    .balign 16
    .global hostile_iret_failsafe
    hostile_iret_failsafe:
        movq $2, 24(%r12)
        jmp hostile_iret_done
    .popsection
    "#,
    iret = const __HYPERVISOR_iret,
    options(att_syntax)
);

extern "C" {
    fn hostile_iret_probe(cs: u64, ss: u64, rflags: u64, out: *mut [u64; 4]);
    fn hostile_iret_failsafe();
    fn hostile_iret_gp();
}

/// Where an `iret` with a doctored frame really took the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IretLanding {
    /// Execution resumed at the return address with these selectors and flags.
    Resumed { cs: u64, ss: u64, rflags: u64 },
    /// The return faulted (a #GP bounced to the guest).
    Faulted,
    /// The hypervisor could not return and entered the failsafe callback.
    Failsafe,
}

/// Points vector 13 at `handler` (flags: events masked, DPL 0).
fn set_gp_handler(handler: u64) -> i64 {
    let table = [[13 | 4 << 8 | u64::from(FLAT_KERNEL_CS) << 16, handler], [0, 0]];
    hypercall(__HYPERVISOR_set_trap_table.into(), [table.as_ptr() as u64, 0, 0, 0, 0])
}

fn register_failsafe(address: u64) -> i64 {
    let callback = [u64::from(CALLBACKTYPE_failsafe) | (u64::from(CALLBACKF_mask_events) << 16), address];
    hypercall(
        __HYPERVISOR_callback_op.into(),
        [CALLBACKOP_register.into(), callback.as_ptr() as u64, 0, 0, 0],
    )
}

/// Returns to the next instruction through the `iret` hypercall with the
/// given `cs`, `ss` and `rflags` in the frame (the stack pointer is the
/// current one), and reports where and how execution continued. Events
/// should be masked by the caller (`rflags.IF` in the frame sets the mask).
pub fn iret_probe(cs: u64, ss: u64, rflags: u64, normal_failsafe: u64) -> IretLanding {
    let mut out = [0u64; 4];
    let normal_gp = super::pv_entry::trap_table()
        .iter()
        .find(|entry| entry.vector == 13)
        .map_or(0, |entry| entry.address);
    register_failsafe(hostile_iret_failsafe as *const () as u64);
    set_gp_handler(hostile_iret_gp as *const () as u64);
    // SAFETY: the probe pushes a complete iret frame on the current stack
    // that returns to its own label with the current stack pointer; every
    // callee-saved register is restored from the stack, whichever way
    // (label, the #GP handler or the failsafe callback) execution comes back.
    unsafe { hostile_iret_probe(cs, ss, rflags, &mut out) };
    set_gp_handler(normal_gp);
    register_failsafe(normal_failsafe);
    match out[3] {
        0 => IretLanding::Resumed { cs: out[0], ss: out[1], rflags: out[2] },
        1 => IretLanding::Faulted,
        _ => IretLanding::Failsafe,
    }
}
