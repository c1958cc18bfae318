//! The Xen PV platform: the kernel runs in ring 3 of a 64-bit PV domain.
//!
//! Why every privileged operation becomes a hypercall here: x86 enforces
//! privilege by rings. Xen owns ring 0. A 32-bit PV kernel ran in ring 1,
//! protected from its processes by segment limits, but x86_64 long mode
//! ignores segment limits, so a 64-bit PV kernel shares ring 3 with user
//! code (Xen keeps them apart by switching page tables). In ring 3, `cli`,
//! `hlt`, `lidt`, `mov %cr3` and port I/O fault, and the page tables are
//! mapped read-only so the kernel cannot grant itself Xen's memory.
//! Each method below is the replacement for the instruction `native.rs`
//! uses in the same place.

pub mod address_space;
pub mod exchange;
pub mod mmu;
pub mod raw_rings;
pub mod scratch;
pub mod start;

use core::sync::atomic::{AtomicU64, Ordering};

use drivers::debug_exit::Verdict;
use hypercalls::abi::callback::{
    CALLBACKF_mask_events, CALLBACKTYPE_event, CALLBACKTYPE_failsafe, CallbackRegister,
};
use hypercalls::abi::sched::{SHUTDOWN_crash, SHUTDOWN_poweroff};
use hypercalls::abi::xen::{MmuextOp, MMUEXT_INVLPG_LOCAL, MMUEXT_NEW_BASEPTR};
use hypercalls::ops::{pv_cpu, sched};
use kernel::memory_map::MemoryMap;
use kernel::time::WallClock;
use x86_64::structures::paging::PageTableFlags as Flags;

use super::{xen, Platform};
use crate::arch::{cpu, memory, pv_entry, traps};
use mmu::Mmu;

pub struct Pv {
    pub mmu: Mmu,
    /// Guest-physical address of the current L4.
    root: AtomicU64,
    /// Console output collected up to the end of a line, so that a line
    /// costs one `console_io` call rather than one per formatted piece.
    line: spin::Mutex<LineBuffer>,
}

struct LineBuffer {
    bytes: [u8; 256],
    len: usize,
}

impl LineBuffer {
    fn flush(&mut self) {
        if self.len > 0 {
            xen::console::write(&self.bytes[..self.len]);
            self.len = 0;
        }
    }
}

pub static PV: Pv = Pv {
    mmu: Mmu::new(),
    root: AtomicU64::new(0),
    line: spin::Mutex::new(LineBuffer { bytes: [0; 256], len: 0 }),
};

impl Pv {
    /// Records the L4 the kernel switched to without [`Platform::load_root`]
    /// (the boot-time switch, done together with pinning).
    fn set_root(&self, root: u64) {
        self.root.store(root, Ordering::SeqCst);
    }
}

fn commit_or_panic(mmu: &Mmu) {
    if let Err(error) = mmu.commit() {
        panic!("Xen refused a page-table update: {error}");
    }
}

/// Reads vCPU 0's virtual CR2, where Xen leaves the faulting address.
fn virtual_cr2() -> u64 {
    xen::vcpu0().map_or(0, |vcpu| vcpu.arch.cr2.load(Ordering::SeqCst))
}

impl Platform for Pv {
    fn name(&self) -> &'static str {
        "pv"
    }

    /// Native: the UART. PV: `console_io` or the console ring.
    fn console_write(&self, text: &str) {
        super::without_interrupts(|| {
            let mut line = self.line.lock();
            for &byte in text.as_bytes() {
                if line.len == line.bytes.len() {
                    line.flush();
                }
                let len = line.len;
                line.bytes[len] = byte;
                line.len += 1;
                if byte == b'\n' {
                    line.flush();
                }
            }
        });
    }

    /// Native: isa-debug-exit. PV: `SCHEDOP_shutdown`; Xen reports
    /// poweroff of dom0 as "Hardware Dom0 halted" and a crash as "crashed".
    fn shutdown(&self, verdict: Verdict) -> ! {
        // A panic while the line buffer was held must still shut down.
        if let Some(mut line) = self.line.try_lock() {
            line.flush();
        }
        let reason = match verdict {
            Verdict::Success => SHUTDOWN_poweroff,
            _ => SHUTDOWN_crash,
        };
        let _ = sched::shutdown(reason);
        // Xen acts on the shutdown asynchronously; give it the CPU.
        loop {
            let _ = sched::sched_yield();
        }
    }

    /// Native: `sti; hlt`. PV: `SCHEDOP_block`, which unmasks events and
    /// sleeps in one step, so an event cannot slip in between.
    fn idle(&self) {
        let _ = sched::block();
    }

    /// Native: RFLAGS.IF. PV: vCPU 0's `evtchn_upcall_mask` (clear = on).
    fn interrupts_enabled(&self) -> bool {
        xen::vcpu0().is_some_and(|vcpu| vcpu.evtchn_upcall_mask.load(Ordering::SeqCst) == 0)
    }

    /// Native: `sti`. PV: clear the mask, then deliver anything that became
    /// pending while masked: Xen only checks on its way back to the guest,
    /// so make it go back (any hypercall will do).
    fn interrupts_enable(&self) {
        let Some(vcpu) = xen::vcpu0() else {
            return;
        };
        vcpu.evtchn_upcall_mask.store(0, Ordering::SeqCst);
        if vcpu.evtchn_upcall_pending.load(Ordering::SeqCst) != 0 {
            let _ = hypercalls::ops::version::version();
        }
    }

    /// Native: `cli`. PV: set the mask.
    fn interrupts_disable(&self) {
        if let Some(vcpu) = xen::vcpu0() {
            vcpu.evtchn_upcall_mask.store(1, Ordering::SeqCst);
        }
    }

    /// Native: `lidt`. PV: `set_trap_table` with stubs that understand
    /// Xen's bounce frame, and `callback_op` for the event and failsafe
    /// callbacks.
    fn install_traps(&self) {
        pv_entry::set_fault_address_source(virtual_cr2);
        pv_entry::set_event_handler(xen::events::handle_upcall);
        let table = pv_entry::trap_table();
        // SAFETY: every entry points at a stub in `arch::pv_entry` that
        // handles Xen's 64-bit bounce frame and returns through `iret`.
        if let Err(error) = unsafe { pv_cpu::set_trap_table(&table) } {
            panic!("set_trap_table: {error}");
        }
        let (event, failsafe) = pv_entry::callback_addresses();
        for (kind, address) in [(CALLBACKTYPE_event, event), (CALLBACKTYPE_failsafe, failsafe)] {
            let callback = CallbackRegister { r#type: kind, flags: CALLBACKF_mask_events, address };
            // SAFETY: both addresses are the callback stubs in `arch::pv_entry`.
            if let Err(error) = unsafe { pv_cpu::callback_register(&callback) } {
                panic!("callback_op(register, type {kind}): {error}");
            }
        }
    }

    fn init_address_space(&self, memory: &MemoryMap) -> Result<(), &'static str> {
        address_space::build(self, memory)
    }

    /// Native: EFER.NXE (`rdmsr`). PV: CPUID, since Xen enables NX
    /// whenever the CPU has it.
    fn nx_enabled(&self) -> bool {
        cpu::nx_supported()
    }

    /// Native: a load. PV: a load too (tables are readable), but of a
    /// machine frame number, translated back through the M2P; writes still
    /// queued are seen first.
    fn pte_read(&self, table: u64, index: usize) -> u64 {
        let address = table + 8 * index as u64;
        let raw = match self.mmu.queued_value(self.mmu.machine_address(address)) {
            Some(queued) => queued,
            None => memory::read_u64(address),
        };
        self.mmu.to_guest_pte(raw)
    }

    /// Native: a store. PV: a queued `mmu_update`, or with writable page
    /// tables (`pt=writable`) a store to the read-only table that Xen traps,
    /// validates and emulates (L1 entries only; Xen emulates no others).
    fn pte_write(&self, table: u64, level: u8, index: usize, entry: u64) {
        let address = table + 8 * index as u64;
        let machine_entry = self.mmu.to_machine_pte(entry);
        if level == 1 && self.mmu.writable_page_tables() {
            // Links queued earlier must be live, or the table is not yet an
            // L1 in Xen's eyes and the store is refused.
            commit_or_panic(&self.mmu);
            // SAFETY: `address` is an entry of a page table the paging code
            // owns; Xen validates the store or refuses it as a page fault.
            if unsafe { traps::probe_write(memory::phys_to_virt(address), machine_entry) } {
                self.mmu.count_trapped_write();
                return;
            }
        }
        if let Err(error) = self.mmu.queue_update(self.mmu.machine_address(address), machine_entry) {
            panic!("Xen refused a page-table update: {error}");
        }
    }

    fn pte_commit(&self) {
        commit_or_panic(&self.mmu);
    }

    /// Native: nothing. PV: Xen only accepts a frame as a page table when
    /// no writable mapping of it exists, so its direct-map alias becomes
    /// read-only (queued before the write that links it).
    fn prepare_page_table(&self, table: u64, _level: u8) {
        let alias = memory::phys_to_virt(table);
        let space = crate::mm::paging::AddressSpace::current();
        if let Ok((l1, index, entry)) = space.leaf(alias) {
            self.pte_write(l1, 1, index, entry & !Flags::WRITABLE.bits());
            self.flush_tlb_page(alias);
        }
    }

    /// Native: nothing. PV: the direct-map alias becomes writable again,
    /// which Xen allows once no table links the frame any more.
    fn release_page_table(&self, table: u64) {
        let alias = memory::phys_to_virt(table);
        let space = crate::mm::paging::AddressSpace::current();
        if let Ok((l1, index, entry)) = space.leaf(alias) {
            self.pte_write(l1, 1, index, entry | Flags::WRITABLE.bits());
            self.flush_tlb_page(alias);
            commit_or_panic(&self.mmu);
        }
    }

    /// Native: `invlpg`. PV: `MMUEXT_INVLPG_LOCAL`, queued.
    fn flush_tlb_page(&self, address: u64) {
        if let Err(error) = self.mmu.queue_ext(MmuextOp::with_arg1(MMUEXT_INVLPG_LOCAL, address)) {
            panic!("Xen refused a TLB flush: {error}");
        }
    }

    /// Native: `mov %cr3`. PV: `MMUEXT_NEW_BASEPTR` with the machine frame.
    fn load_root(&self, root: u64) {
        let mfn = self.mmu.machine_address(root) / 4096;
        if let Err(error) = self.mmu.queue_ext(MmuextOp::with_arg1(MMUEXT_NEW_BASEPTR, mfn)) {
            panic!("Xen refused the new base pointer: {error}");
        }
        commit_or_panic(&self.mmu);
        self.root.store(root, Ordering::SeqCst);
    }

    fn current_root(&self) -> u64 {
        self.root.load(Ordering::SeqCst)
    }

    /// Native: the TSC scaled by the PIT calibration. PV: pvclock.
    fn monotonic_ns(&self) -> u64 {
        xen::time::system_time_ns()
    }

    fn wallclock(&self) -> Option<WallClock> {
        xen::time::wallclock()
    }

    /// Native: busy-wait. PV: `set_timer_op` + `SCHEDOP_block`.
    fn sleep_until(&self, deadline_ns: u64) {
        xen::time::sleep_until(deadline_ns);
    }

    fn init_services(&self) {
        start::init_services(self);
    }
}
