//! The one narrow interface behind which native, PV and PVH differ, in the
//! spirit of Linux's `pv_ops`: every privileged operation the rest of the
//! kernel needs is a method here, chosen once at boot.
//!
//! | operation            | native (`native.rs`)         | Xen PV (`pv.rs`)                     |
//! |----------------------|------------------------------|--------------------------------------|
//! | console              | 16550 UART at 0x3f8          | console ring, `console_io` early     |
//! | interrupts on/off    | `sti` / `cli`                | `vcpu_info.evtchn_upcall_mask`       |
//! | trap table           | `lidt`                       | `set_trap_table`                     |
//! | write a PTE          | store + `invlpg`             | `mmu_update` (batched)               |
//! | switch address space | `mov cr3`                    | `mmuext_op(NEW_BASEPTR)`             |
//! | idle                 | `sti; hlt`                   | `sched_op(SCHEDOP_block)`            |
//! | shutdown             | isa-debug-exit               | `sched_op(SCHEDOP_shutdown)`         |
//!
//! PVH on Xen (`pvh.rs`, later) runs in ring 0 of an HVM container, so it
//! shares the native MMU and trap paths and uses Xen only for events,
//! time, console and shutdown.

use drivers::debug_exit::Verdict;

pub mod native;

/// The privileged operations, as the rest of the kernel sees them.
///
/// Page-table entries cross this interface in *guest-physical* terms (frame
/// numbers are PFNs); a platform whose page tables hold machine frames
/// (PV) translates in both directions.
pub trait Platform: Sync {
    /// A short name for banners and test output: `native`, `pv`, `pvh`.
    fn name(&self) -> &'static str;

    fn console_write(&self, text: &str);

    /// Ends the machine (or the domain) with a verdict for the test runner.
    fn shutdown(&self, verdict: Verdict) -> !;

    /// Waits until an interrupt or event arrives.
    fn idle(&self);

    /// Disables interrupt (or event) delivery and returns whether it was enabled.
    fn interrupts_save_disable(&self) -> bool;
    fn interrupts_restore(&self, were_enabled: bool);

    /// Installs the exception handlers.
    fn install_traps(&self);

    /// Reads entry `index` of the page table at guest-physical `table`.
    fn pte_read(&self, table: u64, index: usize) -> u64;
    /// Writes entry `index` of the page table at guest-physical `table`.
    /// The caller flushes the TLB afterwards where the old entry was present.
    fn pte_write(&self, table: u64, index: usize, entry: u64);
    /// Gets a freshly zeroed frame ready to be linked in as a page table of
    /// `level` (1..=4). Natively there is nothing to do.
    fn prepare_page_table(&self, table: u64, level: u8);
    fn flush_tlb_page(&self, address: u64);
    /// Makes `root` (a guest-physical L4) the current address space.
    fn load_root(&self, root: u64);
    /// The guest-physical address of the current L4.
    fn current_root(&self) -> u64;
}

static PLATFORM: spin::Once<&'static dyn Platform> = spin::Once::new();

/// Chooses the platform; the first choice sticks.
pub fn select(platform: &'static dyn Platform) -> &'static dyn Platform {
    *PLATFORM.call_once(|| platform)
}

/// The platform chosen at boot.
///
/// # Panics
/// Before [`select`]; the entry code selects a platform before anything else.
pub fn current() -> &'static dyn Platform {
    *PLATFORM.get().expect("platform used before it was selected")
}

/// Runs `f` with interrupts (or events) off, restoring the previous state.
pub fn without_interrupts<R>(f: impl FnOnce() -> R) -> R {
    let were_enabled = current().interrupts_save_disable();
    let result = f();
    current().interrupts_restore(were_enabled);
    result
}

/// The PV entry before the PV platform exists: say so on Xen's console and
/// stop the domain as crashed, so no runner mistakes this for success.
pub fn pv_unsupported() -> ! {
    use hypercalls::abi::sched::{SchedShutdown, SCHEDOP_shutdown, SHUTDOWN_crash};
    use hypercalls::abi::xen::{CONSOLEIO_write, __HYPERVISOR_console_io, __HYPERVISOR_sched_op};
    use hypercalls::transport::{hypercall2, hypercall3, set_hypercall_page};

    const MESSAGE: &[u8] = b"guest kernel: entered as a Xen PV guest, which this build does not support yet\n";
    // SAFETY: a PV loader fills the page named by XEN_ELFNOTE_HYPERCALL_PAGE
    // before entering the kernel, and the page is part of the kernel image.
    unsafe { set_hypercall_page(crate::arch::boot::hypercall_page_address() as usize) };
    let shutdown = SchedShutdown { reason: SHUTDOWN_crash };
    // SAFETY: both calls only read the buffers passed, which outlive them.
    unsafe {
        hypercall3(__HYPERVISOR_console_io, CONSOLEIO_write.into(), MESSAGE.len() as u64, MESSAGE.as_ptr() as u64);
        hypercall2(__HYPERVISOR_sched_op, SCHEDOP_shutdown.into(), &shutdown as *const _ as u64);
    }
    loop {
        core::hint::spin_loop();
    }
}
