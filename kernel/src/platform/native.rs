//! The native platform: the kernel owns the (virtual) machine, as it does
//! when QEMU boots it through the PVH entry without Xen.

use drivers::debug_exit::{self, Verdict};
use drivers::uart16550::{Uart16550, COM1};
use drivers::PortIo as _;

use super::Platform;
use crate::arch::{cpu, descriptors, memory, traps};

pub struct Native {
    uart: spin::Mutex<Uart16550<cpu::PortIo>>,
}

pub static NATIVE: Native = Native { uart: spin::Mutex::new(Uart16550::new(COM1, cpu::PortIo)) };

impl Native {
    pub fn init_console(&self) {
        self.uart.lock().init();
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

    fn interrupts_save_disable(&self) -> bool {
        let were_enabled = cpu::interrupts_enabled();
        cpu::interrupts_disable();
        were_enabled
    }

    fn interrupts_restore(&self, were_enabled: bool) {
        if were_enabled {
            cpu::interrupts_enable();
        }
    }

    fn install_traps(&self) {
        let code_selector = descriptors::install();
        traps::install_exception_handlers(code_selector);
    }

    fn pte_read(&self, table: u64, index: usize) -> u64 {
        memory::read_u64(table + 8 * index as u64)
    }

    fn pte_write(&self, table: u64, index: usize, entry: u64) {
        memory::write_u64(table + 8 * index as u64, entry);
    }

    fn prepare_page_table(&self, _table: u64, _level: u8) {}

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
}
