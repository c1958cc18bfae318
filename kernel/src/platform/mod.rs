//! The one narrow interface behind which native, PV and PVH differ, in the
//! spirit of Linux's `pv_ops`: every privileged operation the rest of the
//! kernel needs is a method of [`Platform`], chosen once at boot (by the
//! entry point that ran) and reached through [`current`].
//!
//! | operation            | native (`native.rs`)         | Xen PV (`pv/`)                                  |
//! |----------------------|------------------------------|-------------------------------------------------|
//! | console              | 16550 UART at 0x3f8          | `console_io` early and as dom0, console ring    |
//! | interrupts on/off    | `sti` / `cli`                | `vcpu_info.evtchn_upcall_mask`                  |
//! | trap table           | `lidt`                       | `set_trap_table` + `callback_op`                |
//! | return from a trap   | `iretq`                      | jump to the `iret` hypercall                    |
//! | fault address        | `mov %cr2`                   | `vcpu_info.arch.cr2`                            |
//! | write a PTE          | store + `invlpg`             | `mmu_update` (batched), or a trapped store      |
//! | switch address space | `mov cr3`                    | `mmuext_op(PIN_L4_TABLE, NEW_BASEPTR)`          |
//! | time                 | TSC calibrated by the PIT    | pvclock (`vcpu_time_info`), `shared_info` wallclock |
//! | timer                | (busy wait)                  | `set_timer_op` + `VIRQ_TIMER`                   |
//! | idle                 | `sti; hlt`                   | `sched_op(SCHEDOP_block)`                       |
//! | shutdown             | isa-debug-exit               | `sched_op(SCHEDOP_shutdown)`                    |
//!
//! PVH on Xen (`pvh/`) runs in ring 0 of an HVM container, so it shares
//! the native MMU and trap paths (its methods delegate to `native.rs`) and
//! uses Xen only for events (an IDT vector), time, console, xenstore, grants
//! and shutdown; its own table is in `pvh/mod.rs`. `docs/PORTING.md` walks
//! through each row for all three.

use drivers::debug_exit::Verdict;
use kernel::memory_map::MemoryMap;
use kernel::time::WallClock;

pub mod native;
pub mod pv;
pub mod pvh;
pub mod xen;

/// The privileged operations, as the rest of the kernel sees them.
///
/// Page-table entries cross this interface in *guest-physical* terms (frame
/// numbers are PFNs); a platform whose page tables hold machine frames
/// (PV) translates in both directions.
pub trait Platform: Sync {
    /// A short name for banners and test output: `native`, `pv`, `pvh`.
    fn name(&self) -> &'static str;

    // ----- console -----

    fn console_write(&self, text: &str);

    // ----- power -----

    /// Ends the machine (or the domain) with a verdict for the test runner.
    fn shutdown(&self, verdict: Verdict) -> !;

    /// Waits until an interrupt or event arrives, enabling delivery while
    /// waiting (`sti; hlt` is atomic; so is `SCHEDOP_block`).
    fn idle(&self);

    // ----- interrupt (event) delivery -----

    fn interrupts_enabled(&self) -> bool;
    fn interrupts_enable(&self);
    fn interrupts_disable(&self);

    /// Disables delivery and returns whether it was enabled.
    fn interrupts_save_disable(&self) -> bool {
        let were_enabled = self.interrupts_enabled();
        self.interrupts_disable();
        were_enabled
    }

    fn interrupts_restore(&self, were_enabled: bool) {
        if were_enabled {
            self.interrupts_enable();
        }
    }

    // ----- traps -----

    /// Installs the exception handlers (and, under Xen, the event callbacks).
    fn install_traps(&self);

    // ----- MMU -----

    /// Builds the kernel's own address space (the image with per-section
    /// permissions and the direct map of `memory`) and switches to it.
    fn init_address_space(&self, memory: &MemoryMap) -> Result<(), &'static str>;
    /// Whether leaf entries may carry the no-execute bit.
    fn nx_enabled(&self) -> bool;
    /// Reads entry `index` of the page table at guest-physical `table`.
    fn pte_read(&self, table: u64, index: usize) -> u64;
    /// Writes entry `index` of the level-`level` table at guest-physical
    /// `table`. The write may be queued: it takes effect by the next
    /// [`Self::pte_commit`], and reads in between already see it.
    fn pte_write(&self, table: u64, level: u8, index: usize, entry: u64);
    /// Makes every queued page-table write and TLB flush take effect.
    fn pte_commit(&self);
    /// Gets a freshly zeroed frame ready to be linked in as a page table of
    /// `level` (1..=4). Natively there is nothing to do.
    fn prepare_page_table(&self, table: u64, level: u8);
    /// Undoes [`Self::prepare_page_table`] for a table no longer linked
    /// anywhere, so its frame can go back to the allocator.
    fn release_page_table(&self, table: u64);
    /// Drops the TLB entry for `address` (may be queued until the commit).
    fn flush_tlb_page(&self, address: u64);
    /// Makes `root` (a guest-physical L4) the current address space.
    fn load_root(&self, root: u64);
    /// The guest-physical address of the current L4.
    fn current_root(&self) -> u64;

    // ----- time -----

    /// Nanoseconds since boot (or since the clock was calibrated).
    fn monotonic_ns(&self) -> u64;
    /// The wall-clock time, where the platform knows it.
    fn wallclock(&self) -> Option<WallClock>;
    /// Returns once [`Self::monotonic_ns`] has reached `deadline_ns`.
    fn sleep_until(&self, deadline_ns: u64);

    // ----- late start-up -----

    /// Starts what needs the heap: under Xen the event channels, the timer,
    /// the console ring, xenstore and grant tables.
    fn init_services(&self) {}
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

/// The Xen services (event channels, xenstore, grants, ...), when the
/// kernel runs on Xen, whichever way it booted.
pub fn xen() -> Option<&'static xen::Xen> {
    xen::get()
}

/// Runs `f` with interrupts (or events) off, restoring the previous state.
pub fn without_interrupts<R>(f: impl FnOnce() -> R) -> R {
    let Some(platform) = PLATFORM.get() else {
        return f();
    };
    let were_enabled = platform.interrupts_save_disable();
    let result = f();
    platform.interrupts_restore(were_enabled);
    result
}
