//! The Xen console: `console_io` (the hypervisor's own log) early and for
//! the initial domain, the PV console ring once a domU has mapped it.
//!
//! The ring page and its event channel come from the domain builder
//! (`start_info.console` under PV, HVM params under PVH). The guest produces
//! into the ring's `out` half and notifies the backend through the channel.

use hypercalls::abi::event_channel::EvtchnPort;
use hypercalls::ops::console as console_io;

use drivers::console_ring::{self, ConsoleRingView};

struct Ring {
    view: &'static ConsoleRingView,
    port: EvtchnPort,
}

static RING: spin::Once<Ring> = spin::Once::new();

/// How long a full ring is waited on before output is dropped: a backend
/// that never drains it must not hang the kernel.
const FULL_RING_YIELDS: u32 = 10_000;

/// Sends console output through `view` and `port` from now on.
pub fn attach_ring(view: &'static ConsoleRingView, port: EvtchnPort) {
    RING.call_once(|| Ring { view, port });
}

/// Writes `bytes` to the ring if there is one, else through `console_io`.
pub fn write(bytes: &[u8]) {
    match RING.get() {
        Some(ring) => write_ring(ring, bytes),
        None => {
            let _ = console_io::write(bytes);
        }
    }
}

fn write_ring(ring: &Ring, mut bytes: &[u8]) {
    let mut yields = 0;
    while !bytes.is_empty() {
        let written = console_ring::write(ring.view, bytes);
        bytes = &bytes[written..];
        if written > 0 {
            let _ = hypercalls::ops::event_channel::send(ring.port);
            continue;
        }
        yields += 1;
        if yields > FULL_RING_YIELDS {
            return;
        }
        let _ = hypercalls::ops::sched::sched_yield();
    }
}

/// The output ring's producer and consumer indices, if there is a ring.
pub fn output_indices() -> Option<(u32, u32)> {
    use core::sync::atomic::Ordering;
    let ring = RING.get()?;
    Some((ring.view.out_prod.load(Ordering::Acquire), ring.view.out_cons.load(Ordering::Acquire)))
}
