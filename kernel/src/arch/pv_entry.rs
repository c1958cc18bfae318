//! Exception and event entry for the Xen PV platform: the counterpart of
//! `traps.rs` (the native IDT stubs), to be read side by side with it.
//!
//! A 64-bit PV kernel runs in ring 3 and has no IDT of its own. Xen takes
//! every exception and event itself and "bounces" it to the guest: it
//! switches to the guest kernel stack, pushes a *bounce frame* and jumps to
//! the address the guest registered (with `set_trap_table` for exceptions,
//! `callback_op` for events). From the stack pointer up the frame holds
//!
//! ```text
//!     rcx, r11, [error code], rip, cs, rflags, rsp, ss
//! ```
//!
//! i.e. the hardware frame plus the two registers `syscall` clobbered on
//! the way into Xen (`cs` carries the saved event mask in bits 32..39, and
//! `rflags.IF` mirrors "events were enabled"). The stubs below restore rcx
//! and r11, which leaves exactly the shape the native stubs produce, so the
//! same [`TrapFrame`] and the same policy code (`crate::traps`) serve both.
//!
//! The way back is not `iretq` (ring 3 cannot restore the event mask or
//! return to an arbitrary frame) but the `iret` hypercall: the guest pushes
//! a flags word under the hardware frame and *jumps* to the `iret` slot of
//! the hypercall page, which pushes rax, r11 and rcx and enters Xen; Xen
//! restores all of it, sets the event mask from the frame's `rflags.IF`,
//! and delivers any event that became pending meanwhile.

use core::arch::global_asm;

use hypercalls::abi::arch_x86::{TrapInfo, FLAT_KERNEL_CS};
use hypercalls::abi::xen::__HYPERVISOR_iret;

use super::traps::TrapFrame;

/// The `vector` value the event callback stores in its frame.
pub const EVENT_VECTOR: u64 = 0x100;

global_asm!(
    r#"
    .macro pv_save_registers
        push %rax
        push %rbx
        push %rcx
        push %rdx
        push %rsi
        push %rdi
        push %rbp
        push %r8
        push %r9
        push %r10
        push %r11
        push %r12
        push %r13
        push %r14
        push %r15
    .endm

    /* Restores the registers, drops vector and error code, and returns
       through the iret hypercall with flags 0 (not returning from a syscall). */
    .macro pv_restore_and_iret
        pop %r15
        pop %r14
        pop %r13
        pop %r12
        pop %r11
        pop %r10
        pop %r9
        pop %r8
        pop %rbp
        pop %rdi
        pop %rsi
        pop %rdx
        pop %rcx
        pop %rbx
        pop %rax
        add $16, %rsp
        push $0
        jmp hypercall_page + {iret} * 32
    .endm

    .macro pv_exception_stub vector:req
        .balign 16
        pv_exception_stub_\vector:
        pop %rcx
        pop %r11
        .if \vector != 8 && \vector != 10 && \vector != 11 && \vector != 12 && \vector != 13 && \vector != 14 && \vector != 17 && \vector != 21 && \vector != 29 && \vector != 30
            push $0
        .endif
        push $\vector
        jmp pv_exception_common
    .endm

    .pushsection .text.pv_entry, "ax", @progbits
    .irp vector, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        pv_exception_stub \vector
    .endr

    pv_exception_common:
        pv_save_registers
        /* Xen aligned the frame like the CPU does: %rsp is 16-byte aligned. */
        mov %rsp, %rdi
        call {exception_handler}
        pv_restore_and_iret

    /* Event upcall: a bounce frame without error code, events masked. */
    .balign 16
    .global pv_event_callback
    pv_event_callback:
        pop %rcx
        pop %r11
        push $0
        push ${event_vector}
        pv_save_registers
        mov %rsp, %rdi
        call {event_handler}
        pv_restore_and_iret

    /* Failsafe: Xen could not return to us (a bad segment in an iret
       frame). Nothing can be resumed; report and stop. */
    .balign 16
    .global pv_failsafe_callback
    pv_failsafe_callback:
        mov %rsp, %rdi
        and $-16, %rsp
        call {failsafe_handler}
        ud2
    .popsection

    .pushsection .rodata.pv_entry, "a", @progbits
    .balign 8
    pv_exception_stub_table:
    .irp vector, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        .quad pv_exception_stub_\vector
    .endr
    .popsection
    "#,
    iret = const __HYPERVISOR_iret,
    event_vector = const EVENT_VECTOR,
    exception_handler = sym pv_exception_entry,
    event_handler = sym pv_event_entry,
    failsafe_handler = sym pv_failsafe_entry,
    options(att_syntax)
);

extern "C" {
    static pv_exception_stub_table: [u64; 32];
    fn pv_event_callback();
    fn pv_failsafe_callback();
}

/// Where Xen reads the fault address for a PV guest's page fault; set by
/// the platform once `shared_info` is mapped.
static FAULT_ADDRESS_SOURCE: spin::Once<fn() -> u64> = spin::Once::new();

/// Tells the exception path how to read the virtual CR2.
pub fn set_fault_address_source(source: fn() -> u64) {
    FAULT_ADDRESS_SOURCE.call_once(|| source);
}

extern "C" fn pv_exception_entry(frame: &mut TrapFrame) {
    let fault_address = match (frame.vector, FAULT_ADDRESS_SOURCE.get()) {
        (14, Some(source)) => source(),
        _ => 0,
    };
    crate::traps::handle_exception(frame, fault_address);
}

/// Event handler, set by the platform before callbacks are registered.
static EVENT_HANDLER: spin::Once<fn()> = spin::Once::new();

pub fn set_event_handler(handler: fn()) {
    EVENT_HANDLER.call_once(|| handler);
}

extern "C" fn pv_event_entry(_frame: &mut TrapFrame) {
    if let Some(handler) = EVENT_HANDLER.get() {
        handler();
    }
}

extern "C" fn pv_failsafe_entry(frame: *const u64) -> ! {
    // SAFETY: Xen pushed the failsafe frame (rcx, r11, ds, es, fs, gs, rip,
    // cs, rflags, rsp, ss) at `frame`; only its first eleven words are read.
    let words: [u64; 11] = unsafe { frame.cast::<[u64; 11]>().read() };
    crate::traps::handle_failsafe(words[6], words[7]);
}

/// Exceptions the PV kernel handles. Xen keeps NMI (a separate callback)
/// and double fault (its own) to itself; vectors above 21 are reserved.
const PV_VECTORS: [u8; 19] = [0, 1, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20];

/// `trap_info` flags: bits 0-1 the privilege level allowed to raise the
/// vector with `int n`; bit 2 masks events on entry, like an interrupt gate.
const TRAP_MASKS_EVENTS: u8 = 1 << 2;

/// The virtual IDT for `set_trap_table`, terminated by an all-zero entry.
pub fn trap_table() -> [TrapInfo; PV_VECTORS.len() + 1] {
    // SAFETY: the table is emitted by the assembly above and never written.
    let stubs = unsafe { &pv_exception_stub_table };
    let mut table = [TrapInfo { vector: 0, flags: 0, cs: 0, address: 0 }; PV_VECTORS.len() + 1];
    for (slot, &vector) in table.iter_mut().zip(PV_VECTORS.iter()) {
        // int3 and into are meant to be raised by software.
        let dpl = if vector == 3 || vector == 4 { 3 } else { 0 };
        *slot = TrapInfo {
            vector,
            flags: dpl | TRAP_MASKS_EVENTS,
            cs: FLAT_KERNEL_CS,
            address: stubs[usize::from(vector)],
        };
    }
    table
}

/// The addresses to register as event and failsafe callbacks.
pub fn callback_addresses() -> (u64, u64) {
    (pv_event_callback as *const () as u64, pv_failsafe_callback as *const () as u64)
}
