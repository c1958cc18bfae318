//! The native platform: the kernel owns the (virtual) machine, as it does
//! when QEMU boots it through the PVH entry without Xen. Every operation is
//! the privileged instruction itself; `pv/mod.rs` has the hypercall that
//! replaces each one, method for method.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};

use drivers::debug_exit::{self, Verdict};
use drivers::uart16550::{Uart16550, COM1};
use drivers::PortIo as _;
use kernel::memory_map::MemoryMap;
use kernel::time::{self, ClockParams, WallClock};

use super::Platform;
use crate::arch::{cpu, descriptors, memory, pit, traps};

pub struct Native {
    uart: spin::Mutex<Uart16550<cpu::PortIo>>,
    /// The TSC calibration: ns = scale(tsc - base) (`kernel::time` form).
    tsc_base: AtomicU64,
    tsc_mul: AtomicU32,
    tsc_shift: AtomicU8,
    calibrated: AtomicBool,
}

pub static NATIVE: Native = Native {
    uart: spin::Mutex::new(Uart16550::new(COM1, cpu::PortIo)),
    tsc_base: AtomicU64::new(0),
    tsc_mul: AtomicU32::new(0),
    tsc_shift: AtomicU8::new(0),
    calibrated: AtomicBool::new(false),
};

/// PIT ticks for the calibration: 50 ms.
const CALIBRATION_PIT_TICKS: u16 = (time::PIT_HZ / 20) as u16;

impl Native {
    pub fn init_console(&self) {
        self.uart.lock().init();
    }

    /// Measures the TSC against the PIT. Without a PIT (or with a TSC that
    /// did not move) time stays at zero and `monotonic_ns` says so.
    pub fn calibrate_clock(&self) {
        let Some(tsc_ticks) = pit::measure_tsc(CALIBRATION_PIT_TICKS) else {
            log::warn!("time: the PIT did not count; no calibrated clock");
            return;
        };
        let hz = time::tsc_hz(tsc_ticks, CALIBRATION_PIT_TICKS.into()).unwrap_or(0);
        let Some((mul, shift)) = time::params_for_hz(hz) else {
            log::warn!("time: the TSC did not advance during calibration");
            return;
        };
        self.tsc_base.store(cpu::rdtsc_serialized(), Ordering::Relaxed);
        self.tsc_mul.store(mul, Ordering::Relaxed);
        self.tsc_shift.store(shift as u8, Ordering::Relaxed);
        self.calibrated.store(true, Ordering::Release);
        crate::println!("time: the TSC runs at {} MHz (calibrated against the PIT)", hz / 1_000_000);
    }

    fn params(&self) -> ClockParams {
        ClockParams {
            tsc_timestamp: self.tsc_base.load(Ordering::Relaxed),
            system_time: 0,
            mul: self.tsc_mul.load(Ordering::Relaxed),
            shift: self.tsc_shift.load(Ordering::Relaxed) as i8,
        }
    }
}

impl Platform for Native {
    fn name(&self) -> &'static str {
        "native"
    }

    fn console_write(&self, text: &str) {
        self.uart.lock().write_str(text);
    }

    fn shutdown(&self, verdict: Verdict) -> ! {
        cpu::PortIo.write8(debug_exit::PORT, verdict.code());
        // Without the device QEMU keeps running: stop here, quietly.
        loop {
            cpu::interrupts_disable();
            cpu::halt();
        }
    }

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

    fn install_traps(&self) {
        let code_selector = descriptors::install();
        traps::install_exception_handlers(code_selector);
    }

    fn init_address_space(&self, memory: &MemoryMap) -> Result<(), &'static str> {
        crate::mm::build_native_address_space(memory)
    }

    fn nx_enabled(&self) -> bool {
        cpu::nx_enabled()
    }

    fn pte_read(&self, table: u64, index: usize) -> u64 {
        memory::read_u64(table + 8 * index as u64)
    }

    fn pte_write(&self, table: u64, _level: u8, index: usize, entry: u64) {
        memory::write_u64(table + 8 * index as u64, entry);
    }

    fn pte_commit(&self) {}

    fn prepare_page_table(&self, _table: u64, _level: u8) {}

    fn release_page_table(&self, _table: u64) {}

    fn flush_tlb_page(&self, address: u64) {
        cpu::invlpg(address);
    }

    fn load_root(&self, root: u64) {
        // SAFETY: the paging code only switches to tables it built to map
        // the kernel image, its stacks and the direct map.
        unsafe { cpu::write_cr3(root) };
    }

    fn current_root(&self) -> u64 {
        cpu::read_cr3()
    }

    fn monotonic_ns(&self) -> u64 {
        if !self.calibrated.load(Ordering::Acquire) {
            return 0;
        }
        self.params().system_time_at(cpu::rdtsc_serialized())
    }

    fn wallclock(&self) -> Option<WallClock> {
        None
    }

    fn sleep_until(&self, deadline_ns: u64) {
        // No timer interrupt natively yet: watch the calibrated TSC.
        if !self.calibrated.load(Ordering::Acquire) {
            return;
        }
        while self.monotonic_ns() < deadline_ns {
            core::hint::spin_loop();
        }
    }

    fn init_services(&self) {
        self.calibrate_clock();
    }
}
