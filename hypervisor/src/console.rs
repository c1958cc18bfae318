//! The hypervisor's serial console. Its own lines carry an `(HV) ` prefix,
//! as Xen's carry `(XEN) `; the guest's console output is passed through
//! unprefixed, as Xen does for dom0, so the same test patterns match on
//! every platform.

use core::fmt::{self, Write};

use drivers::debug_exit::{self, Verdict};
use drivers::uart16550::{Uart16550, COM1};
use drivers::PortIo as _;

use crate::arch::cpu;

static UART: spin::Mutex<Uart16550<cpu::PortIo>> = spin::Mutex::new(Uart16550::new(COM1, cpu::PortIo));

pub fn init() {
    UART.lock().init();
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Info);
}

/// Raises the log level (`loglvl=debug` on the hypervisor's command line).
pub fn set_debug(debug: bool) {
    log::set_max_level(if debug { log::LevelFilter::Debug } else { log::LevelFilter::Info });
}

/// Writes the guest's console output as it is.
pub fn write_guest(bytes: &[u8]) {
    let mut uart = UART.lock();
    for &byte in bytes {
        if byte == b'\n' {
            uart.write_byte(b'\r');
        }
        uart.write_byte(byte);
    }
}

/// A byte of serial input, if any arrived (console_io read, console ring input).
pub fn read_byte() -> Option<u8> {
    UART.lock().try_read_byte()
}

struct Logger;

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let mut uart = UART.lock();
            let _ = match record.level() {
                log::Level::Info => writeln!(uart, "(HV) {}", record.args()),
                level => writeln!(uart, "(HV) {level}: {}", record.args()),
            };
        }
    }

    fn flush(&self) {}
}

static LOGGER: Logger = Logger;

/// Prints even if the UART lock is held (a fault inside the console).
pub fn emergency(args: fmt::Arguments<'_>) {
    // SAFETY-free escape hatch: a second UART handle on the same port is
    // fine because the machine is about to stop.
    let mut uart = Uart16550::new(COM1, cpu::PortIo);
    let _ = writeln!(uart, "(HV) {args}");
}

/// Ends the run with a verdict for the test runner (QEMU's isa-debug-exit).
pub fn exit(verdict: Verdict) -> ! {
    cpu::PortIo.write8(debug_exit::PORT, verdict.code());
    cpu::halt_forever()
}
