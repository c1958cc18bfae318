//! Exception entry for the native and PVH platforms: the IDT, 32 entry
//! stubs, and the exception fixup table.
//!
//! Every stub pushes a uniform [`TrapFrame`] and calls the policy code in
//! `crate::traps`, which may edit the frame (for example to resume at a
//! fixup address) before the stub returns with `iretq`. Under PV the same
//! policy code is reached from Xen's bounce frame instead (`set_trap_table`;
//! the stubs for that are in `pv_entry.rs`, to read side by side with these).

use core::arch::global_asm;
use core::mem::size_of;

use x86_64::instructions::tables::lidt;
use x86_64::structures::DescriptorTablePointer;
use x86_64::VirtAddr;

/// The registers saved on every exception, in the order the stubs push them
/// (lowest address first).
#[repr(C)]
#[derive(Debug)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error_code: u64,
    // Pushed by the CPU.
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

global_asm!(
    r#"
    .macro exception_stub vector:req
        .balign 16
        exception_stub_\vector:
        /* The CPU pushes an error code only for these vectors; the others
           get a zero so the frame has one shape. */
        .if \vector != 8 && \vector != 10 && \vector != 11 && \vector != 12 && \vector != 13 && \vector != 14 && \vector != 17 && \vector != 21 && \vector != 29 && \vector != 30
            push $0
        .endif
        push $\vector
        jmp exception_common
    .endm

    .pushsection .text.exceptions, "ax", @progbits
    .irp vector, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        exception_stub \vector
    .endr

    exception_common:
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
        /* 22 quadwords above a 16-byte-aligned CPU frame: %rsp is aligned. */
        mov %rsp, %rdi
        call {handler}
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
        iretq
    .popsection

    .pushsection .rodata.exceptions, "a", @progbits
    .balign 8
    .global exception_stub_table
    exception_stub_table:
    .irp vector, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        .quad exception_stub_\vector
    .endr
    .popsection

    /* probe_read_u64(address, out) -> 0 if read, 1 if it faulted. */
    .pushsection .text.probe, "ax", @progbits
    .global probe_read_u64
    probe_read_u64:
    1:  mov (%rdi), %rax
        mov %rax, (%rsi)
        xor %eax, %eax
        ret
    2:  mov $1, %eax
        ret

    /* probe_write_u64(address, value) -> 0 if written, 1 if it faulted. */
    .global probe_write_u64
    probe_write_u64:
    3:  mov %rsi, (%rdi)
        xor %eax, %eax
        ret
    4:  mov $1, %eax
        ret

    /* probe_load_es(selector) -> 0 if %es took it, 1 if the load faulted. */
    .global probe_load_es
    probe_load_es:
    5:  mov %di, %es
        xor %eax, %eax
        ret
    6:  mov $1, %eax
        ret
    .popsection
    .pushsection .extable, "a", @progbits
    .quad 1b, 2b
    .quad 3b, 4b
    .quad 5b, 6b
    .popsection
    "#,
    handler = sym exception_entry,
    options(att_syntax)
);

extern "C" {
    static exception_stub_table: [u64; 32];
    static __extable_start: [u64; 0];
    static __extable_end: [u64; 0];
    fn probe_read_u64(address: u64, out: *mut u64) -> u64;
    fn probe_write_u64(address: u64, value: u64) -> u64;
    fn probe_load_es(selector: u16) -> u64;
}

extern "C" fn exception_entry(frame: &mut TrapFrame) {
    let fault_address = if frame.vector == 14 { super::cpu::read_cr2() } else { 0 };
    crate::traps::handle_exception(frame, fault_address);
}

/// One 16-byte interrupt gate.
#[derive(Clone, Copy)]
#[repr(C)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attributes: u8,
    offset_middle: u16,
    offset_high: u32,
    reserved: u32,
}

impl Gate {
    const MISSING: Gate = Gate {
        offset_low: 0,
        selector: 0,
        ist: 0,
        type_attributes: 0,
        offset_middle: 0,
        offset_high: 0,
        reserved: 0,
    };

    fn interrupt(handler: u64, code_selector: u16, ist: u8) -> Gate {
        Gate {
            offset_low: handler as u16,
            selector: code_selector,
            ist,
            // Present, DPL 0, 64-bit interrupt gate (interrupts off on entry).
            type_attributes: 0x8e,
            offset_middle: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            reserved: 0,
        }
    }
}

#[repr(C, align(16))]
struct Idt([Gate; 256]);

static IDT: spin::Mutex<Idt> = spin::Mutex::new(Idt([Gate::MISSING; 256]));

/// Fills the 32 exception vectors and loads the IDT. The double fault runs
/// on its own stack (IST 1) so a kernel stack overflow is still reported.
pub fn install_exception_handlers(code_selector: u16) {
    let mut idt = IDT.lock();
    // SAFETY: the table is emitted by the assembly above and never written.
    let stubs = unsafe { &exception_stub_table };
    for (vector, &stub) in stubs.iter().enumerate() {
        let ist = if vector == 8 { super::descriptors::DOUBLE_FAULT_IST } else { 0 };
        idt.0[vector] = Gate::interrupt(stub, code_selector, ist);
    }
    let pointer =
        DescriptorTablePointer { limit: (size_of::<Idt>() - 1) as u16, base: VirtAddr::from_ptr(&idt.0) };
    // SAFETY: the IDT is a static, so it outlives its use by the CPU, and
    // every present gate points at a stub above.
    unsafe { lidt(&pointer) };
}

/// Points IDT `vector` (an external interrupt, 32 or above) at `handler`.
/// The PVH platform uses it for Xen's event upcall (`platform/pvh/upcall.rs`).
///
/// # Safety
/// `handler` must be an entry stub that preserves every register it uses
/// and returns with `iretq`, and [`install_exception_handlers`] must have
/// loaded the IDT (the gate takes effect at once, in the live table).
pub unsafe fn set_interrupt_gate(vector: u8, handler: u64, code_selector: u16) {
    assert!(vector >= 32, "vector {vector} belongs to a CPU exception");
    IDT.lock().0[usize::from(vector)] = Gate::interrupt(handler, code_selector, 0);
}

/// The fixup address for a faulting instruction, if the kernel expects it to fault.
pub fn exception_fixup(rip: u64) -> Option<u64> {
    // SAFETY: the linker script brackets the table with these symbols, and
    // it holds (fault address, fixup address) pairs of u64.
    let table = unsafe {
        let start = core::ptr::addr_of!(__extable_start) as *const u64;
        let end = core::ptr::addr_of!(__extable_end) as *const u64;
        core::slice::from_raw_parts(start, end.offset_from(start) as usize)
    };
    table.chunks_exact(2).find(|pair| pair[0] == rip).map(|pair| pair[1])
}

/// Stores a quadword where a fault is expected to be possible: under Xen PV
/// with writable page tables, a store to a read-only page-table page is
/// trapped and emulated by Xen, and a store Xen refuses comes back as a page
/// fault, which the fixup table turns into `false`.
///
/// # Safety
/// If the store succeeds it changes memory: `address` must be a word the
/// caller owns (or a page-table entry the hypervisor validates).
pub unsafe fn probe_write(address: u64, value: u64) -> bool {
    // SAFETY: the caller owns the word; a fault is recovered by the fixup table.
    (unsafe { probe_write_u64(address, value) }) == 0
}

/// Reads a quadword that may not be mapped, without crashing: a fault is
/// caught by the fixup table and reported as `None`.
pub fn probe_read(address: u64) -> Option<u64> {
    let mut value = 0;
    // SAFETY: probe_read_u64 writes only to `value`; a fault on `address` is
    // recovered through the fixup table.
    (unsafe { probe_read_u64(address, &mut value) } == 0).then_some(value)
}

/// Loads `selector` into %es, reporting whether the CPU accepted it (a
/// #GP or #NP is caught by the fixup table). 64-bit code ignores %es, so
/// the kernel is unaffected either way; callers put back the null selector.
pub fn load_es(selector: u16) -> bool {
    // SAFETY: only %es changes, and no kernel code depends on it in long mode.
    (unsafe { probe_load_es(selector) }) == 0
}
