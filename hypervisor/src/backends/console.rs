//! The console backend: copies what the guest writes to its console ring
//! onto the serial line (unprefixed, like Xen's dom0 console output), and
//! serial input into the ring's input half.
//!
//! The guest controls the ring's indices, so the ring code
//! (`drivers::console_ring`) checks them; a guest whose producer index
//! lies gets one warning and its output is left alone, never a crash.
//!
//! Serial input goes to the ring only once the guest has shown it uses the
//! ring (it notified the channel or wrote output there). Until then the
//! bytes stay in the UART for `CONSOLEIO_read`, so a guest that only uses
//! the hypervisor console still gets its input, and waiting input raises
//! `VIRQ_CONSOLE`, as Xen tells dom0 about serial input.

use drivers::console_ring::{self, ConsoleRingView, RingError};
use drivers::uart16550::COM1;
use drivers::PortIo as _;
use hypercalls::abi::xen::VIRQ_CONSOLE;
use hypervisor::services::ports::Port;
use spin::Mutex;

use crate::arch::{cpu, shared};
use crate::{console, events};

struct ConsoleBackend {
    ring: &'static ConsoleRingView,
    port: Port,
    guest_uses_ring: bool,
    output_error_reported: bool,
    input_error_reported: bool,
}

static BACKEND: Mutex<Option<ConsoleBackend>> = Mutex::new(None);

/// Bytes taken from the UART per pass, so serial input cannot starve the guest.
const INPUT_BATCH: usize = 64;

pub fn init(ring: u64, port: Port) {
    if !crate::backends::hold_guest_frame(ring, "console ring") {
        return;
    }
    *BACKEND.lock() = Some(ConsoleBackend {
        ring: shared::console_ring_view(ring),
        port,
        guest_uses_ring: false,
        output_error_reported: false,
        input_error_reported: false,
    });
}

fn report_once(reported: &mut bool, what: &str, error: RingError) {
    if !*reported {
        *reported = true;
        log::warn!("console backend: the guest's {what} ring is corrupt ({error}); leaving it alone");
    }
}

/// Drains output and feeds input; `notified` says the guest signalled.
pub fn service(notified: bool) {
    let mut guard = BACKEND.lock();
    let Some(backend) = guard.as_mut() else { return };
    backend.guest_uses_ring |= notified;
    let mut wake_guest = false;

    match console_ring::drain_output(backend.ring, console::write_guest) {
        Ok(0) => {}
        Ok(_) => {
            backend.guest_uses_ring = true;
            // Space was freed: a guest waiting for room may go on.
            wake_guest = true;
        }
        Err(error) => report_once(&mut backend.output_error_reported, "output", error),
    }

    if backend.guest_uses_ring {
        match backend.ring.input_ring().free_space() {
            Ok(room) => {
                let mut bytes = [0u8; INPUT_BATCH];
                let mut count = 0;
                while count < room.min(INPUT_BATCH) {
                    let Some(byte) = console::read_byte() else { break };
                    bytes[count] = byte;
                    count += 1;
                }
                if count > 0 {
                    match console_ring::feed_input(backend.ring, &bytes[..count]) {
                        Ok(_) => wake_guest = true,
                        Err(error) => report_once(&mut backend.input_error_reported, "input", error),
                    }
                }
            }
            Err(error) => report_once(&mut backend.input_error_reported, "input", error),
        }
    }

    let input_for_console_io = !backend.guest_uses_ring && serial_input_waiting();
    let port = backend.port;
    drop(guard);
    if wake_guest {
        events::notify_guest(port);
    }
    if input_for_console_io {
        events::raise_virq(VIRQ_CONSOLE);
    }
}

/// Whether the UART holds a received byte (its line status register's
/// "data ready" bit), without taking the byte.
fn serial_input_waiting() -> bool {
    const LINE_STATUS: u16 = 5;
    const DATA_READY: u8 = 1 << 0;
    cpu::PortIo.read8(COM1 + LINE_STATUS) & DATA_READY != 0
}
