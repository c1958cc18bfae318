//! PVH on Xen: the place for the third platform (a later issue). Nothing
//! here is built yet; this note says what goes where, so a porter can see
//! the three platforms side by side.
//!
//! A PVH guest is an HVM container without emulated devices. The kernel is
//! entered at `XEN_ELFNOTE_PHYS32_ENTRY` like the native boot (the same
//! `pvh_start32` stub in `arch/boot.rs`), runs in ring 0 of its own VM and
//! owns its page tables, so:
//!
//! | operation            | PVH (this file, later)                                          |
//! |----------------------|-----------------------------------------------------------------|
//! | detect Xen           | CPUID leaf 0x4000_0000 signature `XenVMMXenVMM`                 |
//! | hypercall page       | `wrmsr` of its address to the MSR CPUID leaf base+2 names      |
//! | MMU, CR3, TLB        | as `native.rs` (hardware-assisted paging; no `mmu_update`)      |
//! | traps                | as `native.rs` (`lidt`, `iretq`)                                |
//! | interrupts on/off    | as `native.rs` (`sti`/`cli`)                                    |
//! | events               | an IDT vector set with `HVMOP_set_evtchn_upcall_vector` (or     |
//! |                      | `HVM_PARAM_CALLBACK_IRQ`); then `xen::events` as under PV       |
//! | shared_info          | placed with `XENMEM_add_to_physmap(XENMAPSPACE_shared_info)`    |
//! | time                 | pvclock from `vcpu_time_info`, as under PV (`xen::time`)        |
//! | console              | the console ring from `HVM_PARAM_CONSOLE_PFN`/`_EVTCHN`         |
//! |                      | (QEMU's Xen emulation has no `console_io`)                      |
//! | idle                 | `SCHEDOP_block`, as under PV                                    |
//! | shutdown             | `SCHEDOP_shutdown`, as under PV                                 |
//!
//! The boot code will choose it in `boot::pvh_main` when CPUID reports Xen,
//! and fall back to `native.rs` otherwise. Everything Xen-specific that is
//! not tied to ring 3 already lives in `platform::xen` so that PVH can reuse
//! it unchanged.
