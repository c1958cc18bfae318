//! Every way into the hypervisor once it runs: exceptions and interrupts
//! (from the guest in ring 3 or from the hypervisor itself) and SYSCALL
//! (hypercalls from the guest kernel, and system calls from guest user
//! space, which are bounced to the guest kernel).
//!
//! All of them save the interrupted state as one [`Frame`] and call
//! `crate::traps::dispatch`, which may edit the frame (a hypercall's result
//! in rax, a bounce to a guest handler, an emulated instruction skipped)
//! before the common exit restores it with `iretq`.

use core::arch::global_asm;
use core::mem::size_of;

use x86_64::instructions::tables::lidt;
use x86_64::structures::DescriptorTablePointer;
use x86_64::VirtAddr;

use super::descriptors::{DOUBLE_FAULT_IST, GUEST_CS64, GUEST_SS, HYPERVISOR_CS};

/// The interrupted context, lowest address first (the order of the pushes).
#[repr(C)]
#[derive(Clone, Debug, Default)]
pub struct Frame {
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
    /// The exception or interrupt vector, or [`SYSCALL_VECTOR`].
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

impl Frame {
    /// Whether the hypervisor itself was interrupted (ring 0).
    pub fn interrupted_hypervisor(&self) -> bool {
        self.cs & 3 == 0
    }
}

/// The pseudo-vector for entries through SYSCALL (64-bit guests).
pub const SYSCALL_VECTOR: u64 = 0x100;
/// The pseudo-vector for SYSCALL from 32-bit code, which PV-64 guests never use.
pub const COMPAT_SYSCALL_VECTOR: u64 = 0x101;
/// The LAPIC timer's vector.
pub const TIMER_VECTOR: u8 = 0xf0;
/// The LAPIC's spurious-interrupt vector.
pub const SPURIOUS_VECTOR: u8 = 0xff;

global_asm!(
    r#"
    .macro vector_stub vector:req
        .balign 16
        hv_vector_\vector:
        .if \vector != 8 && \vector != 10 && \vector != 11 && \vector != 12 && \vector != 13 && \vector != 14 && \vector != 17 && \vector != 21 && \vector != 29 && \vector != 30
            push $0
        .endif
        push $\vector
        jmp hv_common_entry
    .endm

    .pushsection .text.entry, "ax", @progbits
    .irp vector, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,{timer},{spurious}
        vector_stub \vector
    .endr

    /* SYSCALL: %rcx = guest rip, %r11 = guest rflags, %rsp still the guest's.
       Build the same frame an exception from ring 3 would have built. */
    .balign 16
    .global hv_syscall_entry
    hv_syscall_entry:
        mov %rsp, hv_guest_rsp_scratch(%rip)
        lea hv_stack_top(%rip), %rsp
        push ${guest_ss}
        push hv_guest_rsp_scratch(%rip)
        push %r11
        push ${guest_cs}
        push %rcx
        push $0
        push ${syscall_vector}
        jmp hv_common_entry

    .balign 16
    .global hv_compat_syscall_entry
    hv_compat_syscall_entry:
        mov %rsp, hv_guest_rsp_scratch(%rip)
        lea hv_stack_top(%rip), %rsp
        push ${guest_ss}
        push hv_guest_rsp_scratch(%rip)
        push %r11
        push ${guest_cs}
        push %rcx
        push $0
        push ${compat_vector}
        jmp hv_common_entry

    hv_common_entry:
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
        cld
        mov %rsp, %rdi
        call {dispatch}
    /* Restores the Frame at %rsp and returns to it. */
    hv_restore_frame:
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

    .pushsection .bss.entry, "aw", @nobits
    .balign 8
    hv_guest_rsp_scratch: .skip 8
    .popsection

    .pushsection .rodata.entry, "a", @progbits
    .balign 8
    hv_vector_table:
    .irp vector, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,{timer},{spurious}
        .quad hv_vector_\vector
    .endr
    .popsection

    /* Enters the guest for the first time: %rdi points at a Frame. */
    .pushsection .text.entry, "ax", @progbits
    .global hv_enter_guest
    hv_enter_guest:
        mov %rdi, %rsp
        jmp hv_restore_frame
    .popsection
    "#,
    timer = const TIMER_VECTOR,
    spurious = const SPURIOUS_VECTOR,
    guest_ss = const GUEST_SS,
    guest_cs = const GUEST_CS64,
    syscall_vector = const SYSCALL_VECTOR,
    compat_vector = const COMPAT_SYSCALL_VECTOR,
    dispatch = sym hv_dispatch,
    options(att_syntax)
);

extern "C" {
    static hv_vector_table: [u64; 34];
    fn hv_enter_guest(frame: *const Frame) -> !;
}

extern "C" fn hv_dispatch(frame: &mut Frame) {
    crate::traps::dispatch(frame);
}

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

const NO_GATE: Gate = Gate {
    offset_low: 0,
    selector: 0,
    ist: 0,
    type_attributes: 0,
    offset_middle: 0,
    offset_high: 0,
    reserved: 0,
};

#[repr(C, align(16))]
struct Idt([Gate; 256]);

static IDT: spin::Mutex<Idt> = spin::Mutex::new(Idt([NO_GATE; 256]));

/// Fills and loads the IDT. Every gate has DPL 0, so a guest's `int $n`
/// raises #GP, which is bounced to it as Xen does; `int3` and `into` get
/// DPL 3 so guests can use them as on Xen.
pub fn install_idt() {
    let mut idt = IDT.lock();
    // SAFETY: the table is emitted by the assembly above and never written.
    let stubs = unsafe { &hv_vector_table };
    let vectors = (0..32u8).chain([TIMER_VECTOR, SPURIOUS_VECTOR]);
    for (vector, &stub) in vectors.zip(stubs.iter()) {
        let dpl3 = matches!(vector, 3 | 4);
        idt.0[usize::from(vector)] = Gate {
            offset_low: stub as u16,
            selector: HYPERVISOR_CS,
            ist: if vector == 8 { DOUBLE_FAULT_IST } else { 0 },
            type_attributes: if dpl3 { 0xee } else { 0x8e },
            offset_middle: (stub >> 16) as u16,
            offset_high: (stub >> 32) as u32,
            reserved: 0,
        };
    }
    let pointer =
        DescriptorTablePointer { limit: (size_of::<Idt>() - 1) as u16, base: VirtAddr::from_ptr(&idt.0) };
    // SAFETY: the IDT is static and every present gate points at a stub.
    unsafe { lidt(&pointer) };
}

/// Starts the guest from `frame` (a ring-3 context) and never returns: from
/// now on the hypervisor runs only when the guest enters it.
pub fn enter_guest(frame: &Frame) -> ! {
    assert!(frame.cs & 3 == 3 && frame.ss & 3 == 3, "the guest must start in ring 3");
    let top = super::boot::stack_top();
    let size = size_of::<Frame>() as u64;
    let slot = (top - size) as *mut Frame;
    // SAFETY: the frame is copied to the top of the hypervisor's own stack,
    // where every later entry from the guest will build its frame; nothing
    // below that is live once the guest runs, so abandoning the current
    // call chain is fine.
    unsafe {
        slot.write(frame.clone());
        hv_enter_guest(slot)
    }
}
