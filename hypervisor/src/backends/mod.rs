//! The built-in backends: the hypervisor plays domain 0 for its guest's
//! console and xenstore, as xenconsoled and xenstored (or QEMU's Xen
//! emulation) do. Each backend owns the dom0 end of an interdomain event
//! channel; the guest's `EVTCHNOP_send` on its end marks the backend port
//! pending, and [`crate::events::run_backends`] calls [`notify`] for it.

pub mod console;
pub mod xenstore;

use core::sync::atomic::{AtomicU32, Ordering};

use hypervisor::services::ports::Port;

use crate::arch::memory::PAGE_SIZE;

/// The backend-domain ports of the two channels (0: not connected).
static CONSOLE_PORT: AtomicU32 = AtomicU32::new(0);
static XENSTORE_PORT: AtomicU32 = AtomicU32::new(0);

/// What the backends are connected to: the guest's ring pages (machine
/// addresses) and both ends of each event channel (0: not connected).
#[derive(Clone, Copy, Debug)]
pub struct Setup {
    pub console_ring: u64,
    pub console_guest_port: Port,
    pub console_backend_port: Port,
    pub store_ring: u64,
    pub store_guest_port: Port,
    pub store_backend_port: Port,
}

pub fn init(setup: &Setup) {
    CONSOLE_PORT.store(setup.console_backend_port, Ordering::Relaxed);
    XENSTORE_PORT.store(setup.store_backend_port, Ordering::Relaxed);
    if setup.console_backend_port != 0 {
        console::init(setup.console_ring, setup.console_backend_port);
    }
    if setup.store_backend_port != 0 {
        xenstore::init(setup);
    }
}

/// The guest sent an event to backend port `port`.
pub fn notify(port: Port) {
    if port == 0 {
        return;
    }
    if port == CONSOLE_PORT.load(Ordering::Relaxed) {
        console::service(true);
    } else if port == XENSTORE_PORT.load(Ordering::Relaxed) {
        xenstore::service();
    }
}

/// The periodic fallback: drain console output the guest did not signal,
/// pass on serial input, and deliver xenstore output still queued.
pub fn tick() {
    console::service(false);
    xenstore::service();
}

/// Holds the guest frame at `machine` for a backend's lifetime; false
/// (and an error in the log) if it is not the guest's ordinary memory.
pub fn hold_guest_frame(machine: u64, what: &str) -> bool {
    match crate::events::hold_guest_frame(machine / PAGE_SIZE) {
        Ok(()) => true,
        Err(error) => {
            log::error!(
                "backends: cannot hold the guest's {what} at {machine:#x}: {error:?}; that backend stays off"
            );
            false
        }
    }
}
