//! The hypervisor's own entry: QEMU boots it as a PVH kernel. The 32-bit
//! code runs at physical addresses, maps the first GiB both at 0 and at
//! HV_VIRT_BASE, enters long mode and calls `crate::boot::hv_main`.
//! (The guest kernel's arch/boot.rs does the same for its own link
//! address; the hypervisor needs nothing else from the PVH protocol.)

use core::arch::global_asm;

use hypercalls::abi::elfnote::XEN_ELFNOTE_PHYS32_ENTRY;

use crate::layout::HV_VIRT_BASE;

/// Where the hypervisor image is linked.
const VIRT_BASE_L4_SLOT: u64 = (HV_VIRT_BASE >> 39) & 511;
const VIRT_BASE_L3_SLOT: u64 = (HV_VIRT_BASE >> 30) & 511;

pub const BOOT_STACK_SIZE: usize = 64 * 1024;

global_asm!(
    r#"
    .pushsection .note.Xen, "a", @note
    .balign 4
    .long 4
    .long 4
    .long {PHYS32_ENTRY}
    .asciz "Xen"
    .balign 4
    .long hv_pvh_start32 - {virt_base}
    .balign 4
    .popsection

    .pushsection .bss.boot, "aw", @nobits
    .balign 4096
    hv_boot_pml4:      .skip 4096
    hv_boot_pdpt_low:  .skip 4096
    hv_boot_pdpt_high: .skip 4096
    hv_boot_pd:        .skip 4096
    .global hv_stack_bottom, hv_stack_top
    hv_stack_bottom: .skip {stack_size}
    hv_stack_top:
    .popsection

    .pushsection .rodata.boot, "a", @progbits
    .balign 16
    hv_boot_gdt:
        .quad 0
        .quad 0x00af9a000000ffff
        .quad 0x00cf92000000ffff
    hv_boot_gdt_end:
    hv_boot_gdt_pointer:
        .word hv_boot_gdt_end - hv_boot_gdt - 1
        .long hv_boot_gdt - {virt_base}
    .popsection

    .pushsection .text.boot, "ax", @progbits
    .code32
    .global hv_pvh_start32
    hv_pvh_start32:
        cli
        cld
        mov %ebx, %ebp
        mov $(hv_stack_top - {virt_base}), %esp
        lgdt (hv_boot_gdt_pointer - {virt_base})

        mov $(hv_boot_pml4 - {virt_base}), %edi
        mov $(4 * 1024), %ecx
        xor %eax, %eax
        rep stosl

        mov $(hv_boot_pd - {virt_base}), %edi
        mov $0x83, %eax
        xor %ecx, %ecx
    1:  mov %eax, (%edi, %ecx, 8)
        add $0x200000, %eax
        inc %ecx
        cmp $512, %ecx
        jb 1b

        mov $(hv_boot_pd - {virt_base} + 3), %eax
        mov %eax, (hv_boot_pdpt_low - {virt_base})
        mov %eax, (hv_boot_pdpt_high - {virt_base} + {l3_slot} * 8)
        mov $(hv_boot_pdpt_low - {virt_base} + 3), %eax
        mov %eax, (hv_boot_pml4 - {virt_base})
        mov $(hv_boot_pdpt_high - {virt_base} + 3), %eax
        mov %eax, (hv_boot_pml4 - {virt_base} + {l4_slot} * 8)

        mov %cr4, %eax
        or $(1 << 5), %eax
        mov %eax, %cr4
        mov $(hv_boot_pml4 - {virt_base}), %eax
        mov %eax, %cr3

        mov $0x80000001, %eax
        cpuid
        mov $((1 << 8) | (1 << 0)), %esi    /* EFER.LME | EFER.SCE (syscall) */
        test $(1 << 20), %edx
        jz 2f
        or $(1 << 11), %esi
    2:  mov $0xc0000080, %ecx
        rdmsr
        or %esi, %eax
        wrmsr

        mov %cr0, %eax
        or $((1 << 31) | (1 << 16) | 1), %eax
        mov %eax, %cr0
        ljmp $0x08, $(hv_pvh_start64 - {virt_base})

    .code64
    hv_pvh_start64:
        mov $0x10, %eax
        mov %eax, %ds
        mov %eax, %es
        mov %eax, %ss
        xor %eax, %eax
        mov %eax, %fs
        mov %eax, %gs
        movabs $hv_stack_top, %rsp
        mov %ebp, %edi
        movabs ${main}, %rax
        call *%rax
        ud2
    .popsection
    "#,
    PHYS32_ENTRY = const XEN_ELFNOTE_PHYS32_ENTRY,
    virt_base = const HV_VIRT_BASE,
    stack_size = const BOOT_STACK_SIZE,
    l4_slot = const VIRT_BASE_L4_SLOT,
    l3_slot = const VIRT_BASE_L3_SLOT,
    main = sym hv_rust_entry,
    options(att_syntax)
);

extern "C" fn hv_rust_entry(start_info_paddr: u32) -> ! {
    crate::boot::hv_main(u64::from(start_info_paddr))
}

extern "C" {
    static hv_stack_top: u8;
    static __hv_start: u8;
    static __hv_rodata: u8;
    static __hv_data: u8;
    static __hv_end: u8;
}

/// The top of the hypervisor's one stack. It is also TSS.rsp0, so guest
/// exceptions and syscalls all start from here with an empty stack.
pub fn stack_top() -> u64 {
    core::ptr::addr_of!(hv_stack_top) as u64
}

/// The hypervisor image's sections (virtual addresses).
pub struct Image {
    pub start: u64,
    pub rodata: u64,
    pub data: u64,
    pub end: u64,
}

pub fn image() -> Image {
    Image {
        start: core::ptr::addr_of!(__hv_start) as u64,
        rodata: core::ptr::addr_of!(__hv_rodata) as u64,
        data: core::ptr::addr_of!(__hv_data) as u64,
        end: core::ptr::addr_of!(__hv_end) as u64,
    }
}
