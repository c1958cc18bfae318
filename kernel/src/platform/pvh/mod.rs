//! PVH on Xen: the third platform. The kernel is entered at
//! `XEN_ELFNOTE_PHYS32_ENTRY` exactly as in a native boot (the same
//! `pvh_start32` stub in `arch/boot.rs`), runs in ring 0 of its own hardware
//! VM and owns its page tables; `boot::pvh_main` chooses this platform when
//! CPUID shows Xen, and `native.rs` otherwise.
//!
//! | operation            | PVH                                                             |
//! |----------------------|-----------------------------------------------------------------|
//! | detect Xen           | CPUID 0x4000_0000 (then + 0x100 ...) says `XenVMMXenVMM` (`start.rs`) |
//! | hypercall page       | `wrmsr` of its address to the MSR leaf base + 2 names          |
//! | MMU, CR3, TLB        | as native: hardware-assisted paging, no `mmu_update`           |
//! | traps                | as native (`lidt`, `iretq`), plus the upcall vector's gate     |
//! | interrupts on/off    | as native (`sti`/`cli`)                                        |
//! | events               | an IDT vector from `HVMOP_set_evtchn_upcall_vector` (LAPIC,    |
//! |                      | EOI) or `HVM_PARAM_CALLBACK_IRQ`; then `xen::events` as PV     |
//! | shared_info          | placed with `XENMEM_add_to_physmap(XENMAPSPACE_shared_info)`   |
//! | grant table          | placed with `XENMEM_add_to_physmap(XENMAPSPACE_grant_table)`   |
//! | time, timer          | pvclock and `set_timer_op` + `VIRQ_TIMER`, as PV (`xen::time`) |
//! | console              | dom0: `console_io`; domU: the ring from `HVM_PARAM_CONSOLE_*`  |
//! | xenstore             | the ring from `HVM_PARAM_STORE_PFN`/`_EVTCHN`                  |
//! | idle                 | `sti; hlt` (QEMU's emulation has no `SCHEDOP_block`)           |
//! | shutdown             | `SCHEDOP_shutdown` (after isa-debug-exit where QEMU has one)   |
//!
//! Everything Xen-specific but not tied to ring 3 lives in `platform::xen`,
//! shared with PV; what differs is only how each page gets to the guest.

mod console;
pub mod lapic;
mod services;
pub mod start;
pub mod upcall;

use drivers::debug_exit::{self, Verdict};
use drivers::PortIo as _;
use hypercalls::abi::sched::{SHUTDOWN_crash, SHUTDOWN_poweroff};
use hypercalls::ops::sched;
use kernel::memory_map::MemoryMap;
use kernel::time::WallClock;

use super::native::NATIVE;
use super::{xen, Platform};
use crate::arch::{cpu, descriptors, traps};

pub use console::Route as ConsoleRoute;

pub struct Pvh {
    console: console::PvhConsole,
}

pub static PVH: Pvh = Pvh { console: console::PvhConsole::new() };

impl Pvh {
    /// Where console output goes now.
    pub fn console_route(&self) -> ConsoleRoute {
        self.console.route()
    }

    fn initial_domain(&self) -> bool {
        start::get().is_some_and(|start| start.initial_domain)
    }
}

impl Platform for Pvh {
    fn name(&self) -> &'static str {
        "pvh"
    }

    /// Native: the UART. PVH: `console_io` (dom0) or the console ring.
    fn console_write(&self, text: &str) {
        self.console.write(text);
    }

    /// Native: isa-debug-exit. PVH: `SCHEDOP_shutdown`, which QEMU's Xen
    /// emulation turns into a plain exit (status 0) and real Xen into
    /// "Hardware Dom0 halted/crashed"; a domU first reports the verdict on
    /// isa-debug-exit, which the test machines under QEMU have.
    fn shutdown(&self, verdict: Verdict) -> ! {
        self.console.flush_for_shutdown();
        if !self.initial_domain() {
            cpu::PortIo.write8(debug_exit::PORT, verdict.code());
        }
        let reason = match verdict {
            Verdict::Success => SHUTDOWN_poweroff,
            _ => SHUTDOWN_crash,
        };
        let _ = sched::shutdown(reason);
        // Xen acts on the shutdown asynchronously. (Not `cli; hlt`: Xen
        // takes a halt with interrupts off as a poweroff, a false success.)
        loop {
            let _ = sched::sched_yield();
        }
    }

    /// Native and PVH: `sti; hlt`; the upcall is an interrupt like any other.
    fn idle(&self) {
        cpu::enable_interrupts_and_halt();
    }

    fn interrupts_enabled(&self) -> bool {
        cpu::interrupts_enabled()
    }

    fn interrupts_enable(&self) {
        cpu::interrupts_enable();
    }

    fn interrupts_disable(&self) {
        cpu::interrupts_disable();
    }

    /// As native, plus the gates for Xen's upcall and the APIC's spurious vector.
    fn install_traps(&self) {
        let code_selector = descriptors::install();
        traps::install_exception_handlers(code_selector);
        upcall::install_gates(code_selector);
    }

    // The MMU is the native one: with hardware-assisted paging the guest's
    // own page tables translate guest-virtual to guest-physical, and Xen's
    // nested tables (which the guest never sees) do the rest.

    fn init_address_space(&self, memory: &MemoryMap) -> Result<(), &'static str> {
        NATIVE.init_address_space(memory)
    }

    fn nx_enabled(&self) -> bool {
        NATIVE.nx_enabled()
    }

    fn pte_read(&self, table: u64, index: usize) -> u64 {
        NATIVE.pte_read(table, index)
    }

    fn pte_write(&self, table: u64, level: u8, index: usize, entry: u64) {
        NATIVE.pte_write(table, level, index, entry);
    }

    fn pte_commit(&self) {
        NATIVE.pte_commit();
    }

    fn prepare_page_table(&self, table: u64, level: u8) {
        NATIVE.prepare_page_table(table, level);
    }

    fn release_page_table(&self, table: u64) {
        NATIVE.release_page_table(table);
    }

    fn flush_tlb_page(&self, address: u64) {
        NATIVE.flush_tlb_page(address);
    }

    fn load_root(&self, root: u64) {
        NATIVE.load_root(root);
    }

    fn current_root(&self) -> u64 {
        NATIVE.current_root()
    }

    /// Native: the TSC scaled by the PIT calibration. PVH: pvclock, as PV.
    fn monotonic_ns(&self) -> u64 {
        xen::time::system_time_ns()
    }

    fn wallclock(&self) -> Option<WallClock> {
        xen::time::wallclock()
    }

    /// Native: busy-wait. PVH: `set_timer_op` + `sti; hlt`.
    fn sleep_until(&self, deadline_ns: u64) {
        xen::time::sleep_until(deadline_ns);
    }

    fn init_services(&self) {
        services::init(self);
    }
}
