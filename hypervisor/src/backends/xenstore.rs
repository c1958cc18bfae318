//! The xenstore backend: dom0's xenstored for the guest. The store itself
//! (`hypervisor::xenstore`, pure and host-tested) reads requests from the
//! guest's ring, answers them and queues watch events; this file holds it,
//! runs it when the guest notifies the xenstore channel (and on the
//! backends' tick), and notifies the guest back when anything moved.
//!
//! A guest that corrupts its ring gets the page's `error` field set by the
//! server and one warning here; the hypervisor goes on, and the guest may
//! reconnect (`XENSTORE_RECONNECT`).

use drivers::xenstore::XenstoreRingView;
use hypervisor::services::ports::Port;
use hypervisor::xenstore::Xenstore;
use spin::Mutex;

use super::Setup;
use crate::arch::memory::PAGE_SIZE;
use crate::arch::shared;
use crate::domain::GUEST_DOMID;
use crate::events;

/// The name the toolstack would have given the domain.
const DOMAIN_NAME: &str = "guest";

struct XenstoreBackend {
    store: Xenstore,
    ring: &'static XenstoreRingView,
    port: Port,
    failure_reported: bool,
}

static BACKEND: Mutex<Option<XenstoreBackend>> = Mutex::new(None);

pub fn init(setup: &Setup) {
    if !super::hold_guest_frame(setup.store_ring, "xenstore ring") {
        return;
    }
    let mut store = Xenstore::new(GUEST_DOMID, DOMAIN_NAME);
    let recorded = store
        .set_store(setup.store_ring / PAGE_SIZE, setup.store_guest_port)
        .and_then(|()| store.set_console(setup.console_ring / PAGE_SIZE, setup.console_guest_port));
    if let Err(error) = recorded {
        log::warn!("xenstore backend: cannot record the rings in the store: {}", error.errstring);
    }
    *BACKEND.lock() = Some(XenstoreBackend {
        store,
        ring: shared::xenstore_ring_view(setup.store_ring),
        port: setup.store_backend_port,
        failure_reported: false,
    });
}

/// Serves the ring: answers requests, delivers replies and watch events.
pub fn service() {
    let mut guard = BACKEND.lock();
    let Some(backend) = guard.as_mut() else { return };
    let notify = match backend.store.serve_ring(backend.ring) {
        Ok(summary) => {
            if summary.reconnected {
                backend.failure_reported = false;
            }
            summary.should_notify()
        }
        Err(error) => {
            let first = !backend.failure_reported;
            if first {
                backend.failure_reported = true;
                log::warn!(
                    "xenstore backend: connection to the guest broken ({error:?}); waiting for a reconnect"
                );
            }
            // Tell the guest once, so it sees the error field.
            first
        }
    };
    let port = backend.port;
    drop(guard);
    if notify {
        events::notify_guest(port);
    }
}
