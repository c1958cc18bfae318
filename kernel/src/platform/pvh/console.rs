//! The PVH console, which has to be found before it can be used:
//!
//! - as the initial domain (real Xen's PVH dom0), `console_io`, which
//!   writes to Xen's own serial line, from the first line on;
//! - as a domU, the PV console ring named by `HVM_PARAM_CONSOLE_PFN` and
//!   `HVM_PARAM_CONSOLE_EVTCHN`. QEMU's Xen emulation has no `console_io`,
//!   and the ring can only be mapped once the kernel has its own page
//!   tables, so until then output waits in an [`EarlyLog`] and goes into
//!   the ring first thing;
//! - the 16550 UART as the last resort: a domU without a ring, or a kernel
//!   that stops before it found one.
//!
//! Output is collected up to the end of a line (as under PV), so a line
//! costs one hypercall or one ring notification.

use drivers::console_ring::ConsoleRingView;
use drivers::uart16550::{Uart16550, COM1};
use hypercalls::abi::event_channel::EvtchnPort;
use kernel::pvh::EarlyLog;

use crate::arch::cpu;
use crate::platform::{self, xen};

/// Enough for the banner, the memory map and a few warnings.
const EARLY_LOG_BYTES: usize = 16 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Nowhere yet: kept in the early log.
    Early,
    /// `console_io(CONSOLEIO_write)`.
    ConsoleIo,
    /// The PV console ring (`xen::console`).
    Ring,
    /// COM1.
    Uart,
}

struct State {
    route: Route,
    line: [u8; 256],
    len: usize,
    early: EarlyLog<EARLY_LOG_BYTES>,
    uart: Uart16550<cpu::PortIo>,
}

impl State {
    fn send(&mut self, bytes: &[u8]) {
        match self.route {
            Route::Early => self.early.push(bytes),
            Route::ConsoleIo | Route::Ring => xen::console::write(bytes),
            Route::Uart => bytes.iter().for_each(|&byte| self.uart.write_byte(byte)),
        }
    }

    fn flush_line(&mut self) {
        if self.len > 0 {
            let line = self.line;
            let len = self.len;
            self.len = 0;
            self.send(&line[..len]);
        }
    }

    /// Switches to `route` and sends it what the early log kept.
    fn switch(&mut self, route: Route) {
        self.flush_line();
        self.route = route;
        if route == Route::Uart {
            self.uart.init();
        }
        let mut early = core::mem::take(&mut self.early);
        let dropped = early.dropped();
        early.drain(|bytes| self.send(bytes));
        if dropped > 0 {
            let mut note = [0u8; 64];
            let text = format_dropped(&mut note, dropped);
            self.send(text);
        }
    }
}

/// "(N bytes of early output did not fit)\n" without the heap.
fn format_dropped(buffer: &mut [u8; 64], dropped: usize) -> &[u8] {
    use core::fmt::Write;
    struct Cursor<'a>(&'a mut [u8; 64], usize);
    impl Write for Cursor<'_> {
        fn write_str(&mut self, text: &str) -> core::fmt::Result {
            let end = (self.1 + text.len()).min(self.0.len());
            self.0[self.1..end].copy_from_slice(&text.as_bytes()[..end - self.1]);
            self.1 = end;
            Ok(())
        }
    }
    let mut cursor = Cursor(buffer, 0);
    let _ = writeln!(cursor, "({dropped} bytes of early output did not fit)");
    let len = cursor.1;
    &buffer[..len]
}

pub struct PvhConsole {
    state: spin::Mutex<State>,
}

impl PvhConsole {
    pub const fn new() -> Self {
        Self {
            state: spin::Mutex::new(State {
                route: Route::Early,
                line: [0; 256],
                len: 0,
                early: EarlyLog::new(),
                uart: Uart16550::new(COM1, cpu::PortIo),
            }),
        }
    }

    pub fn write(&self, text: &str) {
        platform::without_interrupts(|| {
            let mut state = self.state.lock();
            for &byte in text.as_bytes() {
                if state.len == state.line.len() {
                    state.flush_line();
                }
                let len = state.len;
                state.line[len] = byte;
                state.len += 1;
                if byte == b'\n' {
                    state.flush_line();
                }
            }
        });
    }

    pub fn route(&self) -> Route {
        self.state.lock().route
    }

    /// `console_io` works (the initial domain): use it from now on.
    pub fn use_console_io(&self) {
        platform::without_interrupts(|| self.state.lock().switch(Route::ConsoleIo));
    }

    /// Sends everything through the console ring from now on.
    pub fn use_ring(&self, view: &'static ConsoleRingView, port: EvtchnPort) {
        xen::console::attach_ring(view, port);
        platform::without_interrupts(|| self.state.lock().switch(Route::Ring));
    }

    /// No Xen console: COM1 it is.
    pub fn use_uart(&self) {
        platform::without_interrupts(|| self.state.lock().switch(Route::Uart));
    }

    /// Gets everything out before the domain ends, on the UART if no
    /// console was found. A panic while the lock was held must still end
    /// the domain, so a busy lock is skipped.
    pub fn flush_for_shutdown(&self) {
        if let Some(mut state) = self.state.try_lock() {
            if state.route == Route::Early {
                state.switch(Route::Uart);
            }
            state.flush_line();
            if state.route == Route::Ring {
                wait_for_ring_drain();
            }
        }
    }
}

/// Yields to the console backend until it has consumed the ring, within a
/// bound: the last lines (the verdict) must be out before the domain ends,
/// and under QEMU the isa-debug-exit write ends it at once.
fn wait_for_ring_drain() {
    const MAX_YIELDS: u32 = 100_000;
    for _ in 0..MAX_YIELDS {
        match xen::console::output_indices() {
            Some((produced, consumed)) if produced != consumed => {
                let _ = hypercalls::ops::sched::sched_yield();
            }
            _ => return,
        }
    }
}
