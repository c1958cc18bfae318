//! The hypervisor's own floor for the benchmarks: the cost of the bare
//! ring-3 -> ring-0 -> ring-3 round trip (SYSCALL + SYSRET) that every PV
//! hypercall pays before doing any work. Measured once, at boot, when the
//! hypervisor's command line says `bench`, in a throwaway address space.

use core::arch::global_asm;

use super::memory::{self, PAGE_SIZE, PTE_USER, PTE_WRITABLE};

/// Where the measuring code and its stack are mapped for ring 3.
const CODE_VA: u64 = 0x40_0000;
const STACK_VA: u64 = 0x40_2000;
/// The value in %eax that ends the measurement instead of looping.
const DONE: u64 = 0x600d_f100;

global_asm!(
    r#"
    .pushsection .text.floor, "ax", @progbits
    /* The ring-3 loop, copied to CODE_VA: %rbx iterations of a null SYSCALL
       between two serialised timestamps; the difference ends in %rax. */
    .global hv_floor_user_code, hv_floor_user_code_end
    hv_floor_user_code:
        lfence
        rdtsc
        lfence
        shl $32, %rdx
        or %rdx, %rax
        mov %rax, %r12
    1:  xor %eax, %eax
        syscall
        dec %rbx
        jnz 1b
        lfence
        rdtsc
        lfence
        shl $32, %rdx
        or %rdx, %rax
        sub %r12, %rax
        mov %rax, %r13
        mov ${done}, %eax
        syscall
        ud2
    hv_floor_user_code_end:

    /* LSTAR while measuring: return at once, or finish on DONE. */
    .global hv_floor_syscall
    hv_floor_syscall:
        cmp ${done}, %eax
        je 2f
        sysretq
    2:  mov hv_floor_saved_rsp(%rip), %rsp
        mov %r13, %rax
        pop %r15
        pop %r14
        pop %r13
        pop %r12
        pop %rbp
        pop %rbx
        ret

    /* hv_floor_run(iterations, user_rip, user_rsp) -> ticks */
    .global hv_floor_run
    hv_floor_run:
        push %rbx
        push %rbp
        push %r12
        push %r13
        push %r14
        push %r15
        mov %rsp, hv_floor_saved_rsp(%rip)
        mov %rdi, %rbx
        push ${user_ss}
        push %rdx
        push $0x2           /* RFLAGS: interrupts stay off */
        push ${user_cs}
        push %rsi
        iretq
    .popsection

    .pushsection .bss.floor, "aw", @nobits
    .balign 8
    hv_floor_saved_rsp: .skip 8
    .popsection
    "#,
    done = const DONE,
    user_ss = const super::descriptors::GUEST_SS,
    user_cs = const super::descriptors::GUEST_CS64,
    options(att_syntax)
);

extern "C" {
    static hv_floor_user_code: u8;
    static hv_floor_user_code_end: u8;
    fn hv_floor_syscall();
    fn hv_floor_run(iterations: u64, user_rip: u64, user_rsp: u64) -> u64;
}

/// TSC ticks for `iterations` SYSCALL/SYSRET round trips from ring 3.
pub fn measure(iterations: u64) -> u64 {
    let root = memory::allocate_frame().expect("no frame for the floor measurement");
    for slot in 256..512 {
        memory::write_u64(root + 8 * slot, memory::hypervisor_l4_entry(slot as usize));
    }
    let code = memory::allocate_frame().expect("no frame for the floor measurement");
    let stack = memory::allocate_frame().expect("no frame for the floor measurement");
    let start = core::ptr::addr_of!(hv_floor_user_code) as usize;
    let end = core::ptr::addr_of!(hv_floor_user_code_end) as usize;
    // SAFETY: the two symbols bracket the user loop's bytes in .text.
    let bytes = unsafe { core::slice::from_raw_parts(start as *const u8, end - start) };
    memory::write_bytes(code, bytes);
    memory::map_range(root, CODE_VA, code, PAGE_SIZE, PTE_USER);
    memory::map_range(root, STACK_VA, stack, PAGE_SIZE, PTE_USER | PTE_WRITABLE);

    let lstar = x86_64::registers::model_specific::LStar::read();
    let previous_root = super::cpu::read_cr3();
    // SAFETY: the new root maps the hypervisor (its upper half is the
    // hypervisor's own) and the two user pages; LSTAR points at the floor
    // entry until the measurement returns, with interrupts off throughout;
    // both are restored before anything else runs.
    let ticks = unsafe {
        super::cpu::write_cr3(root);
        x86_64::registers::model_specific::LStar::write(x86_64::VirtAddr::new(
            hv_floor_syscall as *const () as u64,
        ));
        let ticks = hv_floor_run(iterations, CODE_VA, STACK_VA + PAGE_SIZE);
        x86_64::registers::model_specific::LStar::write(lstar);
        super::cpu::write_cr3(previous_root);
        ticks
    };
    for frame in [code, stack, root] {
        memory::free_frame(frame);
    }
    ticks
}
