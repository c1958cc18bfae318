//! The two ways into the kernel, and the Xen notes that tell loaders about them.
//!
//! * **PVH** (`XEN_ELFNOTE_PHYS32_ENTRY`): QEMU's `-kernel`, QEMU's Xen
//!   emulation and Xen itself jump to `pvh_start32` in 32-bit protected mode,
//!   paging off, `%ebx` = physical address of `hvm_start_info`. The code
//!   runs at its physical address, so every symbol is used as `sym - VIRT_BASE`.
//!   It builds boot page tables (the first GiB identity-mapped, and again at
//!   VIRT_BASE), enters long mode and calls [`pvh_rust_entry`].
//! * **PV** (`XEN_ELFNOTE_ENTRY`): Xen's domain builder (or ours) enters
//!   `pv_start` in 64-bit mode, in ring 3, paging on with its own page tables,
//!   `%rsi` = virtual address of `start_info`. Nothing privileged is possible
//!   here, so the stub only switches to the kernel's stack.

use core::arch::global_asm;

use hypercalls::abi::elfnote::*;
use kernel::layout::KERNEL_VIRT_BASE;

/// Xen's `SUPPORTED_FEATURES` bitmap: without XENFEAT_dom0 here, real Xen
/// refuses to boot the kernel as dom0.
const SUPPORTED_FEATURES: u32 = 1 << hypercalls::abi::features::XENFEAT_dom0;

global_asm!(
    r#"
    /* One ELF note in Xen's namespace: 4-byte aligned name and descriptor. */
    .macro xen_note type:req, payload:vararg
        .balign 4
        .long 4
        .long 2f - 1f
        .long \type
        .asciz "Xen"
        .balign 4
    1:  \payload
    2:  .balign 4
    .endm

    .pushsection .note.Xen, "a", @note
    xen_note {GUEST_OS}, .asciz "RustXenGuest"
    xen_note {GUEST_VERSION}, .asciz "0.1.0"
    xen_note {XEN_VERSION}, .asciz "xen-3.0"
    xen_note {LOADER}, .asciz "generic"
    xen_note {VIRT_BASE}, .quad {virt_base}
    xen_note {PADDR_OFFSET}, .quad 0
    xen_note {ENTRY}, .quad pv_start
    xen_note {HYPERCALL_PAGE}, .quad hypercall_page
    xen_note {FEATURES}, .asciz "writable_page_tables"
    xen_note {SUPPORTED_FEATURES}, .long {supported_features}
    xen_note {PHYS32_ENTRY}, .long pvh_start32 - {virt_base}
    .popsection

    /* The hypercall page: 128 stubs of 32 bytes, written by Xen at domain
       build time (PV) or by the hypervisor when we write the MSR that CPUID
       names (PVH). Until then, int3 makes a premature call fail loudly. */
    .pushsection .text.hypercall_page, "ax", @progbits
    .balign 4096
    .global hypercall_page
    hypercall_page:
    .fill 4096, 1, 0xcc
    .popsection

    .pushsection .bss.boot, "aw", @nobits
    .balign 4096
    boot_pml4:      .skip 4096
    boot_pdpt_low:  .skip 4096
    boot_pdpt_high: .skip 4096
    boot_pd:        .skip 4096
    .global boot_stack_bottom, boot_stack_top
    boot_stack_bottom: .skip {boot_stack_size}
    boot_stack_top:
    .popsection

    .pushsection .rodata.boot, "a", @progbits
    .balign 16
    boot_gdt:
        .quad 0
        .quad 0x00af9a000000ffff  /* 0x08: 64-bit ring-0 code */
        .quad 0x00cf92000000ffff  /* 0x10: ring-0 data */
    boot_gdt_end:
    boot_gdt_pointer:
        .word boot_gdt_end - boot_gdt - 1
        .long boot_gdt - {virt_base}
    .popsection

    .pushsection .text.boot, "ax", @progbits
    .code32
    .global pvh_start32
    pvh_start32:
        cli
        cld
        mov %ebx, %ebp                      /* hvm_start_info; cpuid clobbers %ebx */
        mov $(boot_stack_top - {virt_base}), %esp
        lgdt (boot_gdt_pointer - {virt_base})

        /* Zero the four boot tables (the loader zeroes .bss, but a stale
           table here would be fatal and the cost is 4096 stores). */
        mov $(boot_pml4 - {virt_base}), %edi
        mov $(4 * 1024), %ecx
        xor %eax, %eax
        rep stosl

        /* boot_pd: 512 2-MiB pages covering physical 0..1 GiB. */
        mov $(boot_pd - {virt_base}), %edi
        mov $0x83, %eax                     /* present | writable | 2 MiB */
        xor %ecx, %ecx
    1:  mov %eax, (%edi, %ecx, 8)
        add $0x200000, %eax
        inc %ecx
        cmp $512, %ecx
        jb 1b

        /* The same GiB at 0 (identity, for this code) and at VIRT_BASE. */
        mov $(boot_pd - {virt_base} + 3), %eax
        mov %eax, (boot_pdpt_low - {virt_base})
        mov %eax, (boot_pdpt_high - {virt_base} + 510 * 8)
        mov $(boot_pdpt_low - {virt_base} + 3), %eax
        mov %eax, (boot_pml4 - {virt_base})
        mov $(boot_pdpt_high - {virt_base} + 3), %eax
        mov %eax, (boot_pml4 - {virt_base} + 511 * 8)

        /* PAE, then the root table, then long mode (and NX if the CPU has it). */
        mov %cr4, %eax
        or $(1 << 5), %eax
        mov %eax, %cr4
        mov $(boot_pml4 - {virt_base}), %eax
        mov %eax, %cr3

        mov $0x80000001, %eax
        cpuid
        mov $(1 << 8), %esi                 /* EFER.LME */
        test $(1 << 20), %edx
        jz 2f
        or $(1 << 11), %esi                 /* EFER.NXE */
    2:  mov $0xc0000080, %ecx
        rdmsr
        or %esi, %eax
        wrmsr

        mov %cr0, %eax
        or $((1 << 31) | (1 << 16) | 1), %eax   /* PG | WP | PE */
        mov %eax, %cr0
        ljmp $0x08, $(pvh_start64 - {virt_base})

    .code64
    pvh_start64:
        mov $0x10, %eax
        mov %eax, %ds
        mov %eax, %es
        mov %eax, %ss
        xor %eax, %eax
        mov %eax, %fs
        mov %eax, %gs
        movabs $boot_stack_top, %rsp
        mov %ebp, %edi                      /* hvm_start_info, physical */
        movabs ${pvh_entry}, %rax
        call *%rax
        ud2

    /* PV: ring 3, paging on, %rsi = start_info. Xen also gave us a stack,
       but it lies in the bootstrap region, which the kernel reclaims. */
    .global pv_start
    pv_start:
        cld
        lea boot_stack_top(%rip), %rsp
        mov %rsi, %rdi
        call {pv_entry}
        ud2
    .popsection
    "#,
    GUEST_OS = const XEN_ELFNOTE_GUEST_OS,
    GUEST_VERSION = const XEN_ELFNOTE_GUEST_VERSION,
    XEN_VERSION = const XEN_ELFNOTE_XEN_VERSION,
    LOADER = const XEN_ELFNOTE_LOADER,
    VIRT_BASE = const XEN_ELFNOTE_VIRT_BASE,
    PADDR_OFFSET = const XEN_ELFNOTE_PADDR_OFFSET,
    ENTRY = const XEN_ELFNOTE_ENTRY,
    HYPERCALL_PAGE = const XEN_ELFNOTE_HYPERCALL_PAGE,
    FEATURES = const XEN_ELFNOTE_FEATURES,
    SUPPORTED_FEATURES = const XEN_ELFNOTE_SUPPORTED_FEATURES,
    PHYS32_ENTRY = const XEN_ELFNOTE_PHYS32_ENTRY,
    virt_base = const KERNEL_VIRT_BASE,
    supported_features = const SUPPORTED_FEATURES,
    boot_stack_size = const BOOT_STACK_SIZE,
    pvh_entry = sym pvh_rust_entry,
    pv_entry = sym pv_rust_entry,
    options(att_syntax)
);

pub const BOOT_STACK_SIZE: usize = 64 * 1024;

extern "C" {
    static hypercall_page: u8;
    static boot_stack_bottom: u8;
}

/// The virtual address of the kernel's hypercall page.
pub fn hypercall_page_address() -> u64 {
    core::ptr::addr_of!(hypercall_page) as u64
}

/// The lowest address of the boot stack, for guard checks and reporting.
pub fn boot_stack_bottom_address() -> u64 {
    core::ptr::addr_of!(boot_stack_bottom) as u64
}

extern "C" fn pvh_rust_entry(start_info_paddr: u32) -> ! {
    crate::boot::pvh_main(u64::from(start_info_paddr))
}

extern "C" fn pv_rust_entry(start_info_vaddr: u64) -> ! {
    crate::boot::pv_main(start_info_vaddr)
}

extern "C" {
    static __kernel_start: u8;
    static __rodata_start: u8;
    static __data_start: u8;
    static __kernel_end: u8;
}

/// The kernel image's sections, as virtual addresses from the linker script.
pub struct KernelImage {
    /// Text (read + execute) runs from here to `rodata`.
    pub start: u64,
    /// Read-only data (and the notes, fixup table) up to `data`.
    pub rodata: u64,
    /// Writable data and .bss, up to `end`.
    pub data: u64,
    pub end: u64,
}

pub fn kernel_image() -> KernelImage {
    KernelImage {
        start: core::ptr::addr_of!(__kernel_start) as u64,
        rodata: core::ptr::addr_of!(__rodata_start) as u64,
        data: core::ptr::addr_of!(__data_start) as u64,
        end: core::ptr::addr_of!(__kernel_end) as u64,
    }
}
