//! The kernel's xenstore connection: the `drivers::xenstore` client over
//! the store ring, with the store event channel as its doorbell.
//!
//! The initial domain has no store ring at boot (xenstored runs in it), so
//! there [`with`] reports [`Unavailable`].

use core::sync::atomic::{AtomicU32, Ordering};

use drivers::xenstore::{Doorbell, WaitTimedOut, XenstoreClient, XenstoreRingView};
use hypercalls::abi::event_channel::EvtchnPort;

use super::{events, time};

/// How long one wait for the server may take before the request fails.
const REPLY_TIMEOUT_NS: u64 = 2_000_000_000;
/// The timer re-arm interval while waiting (a lost wake-up costs at most this).
const WAIT_SLICE_NS: u64 = 50_000_000;

pub struct StoreDoorbell {
    port: EvtchnPort,
}

impl Doorbell for StoreDoorbell {
    fn notify(&mut self) {
        let _ = events::send(self.port);
    }

    fn wait(&mut self) -> Result<(), WaitTimedOut> {
        let seen = events::count(self.port);
        let deadline = time::system_time_ns() + REPLY_TIMEOUT_NS;
        while events::count(self.port) == seen {
            let now = time::system_time_ns();
            if now >= deadline {
                return Err(WaitTimedOut);
            }
            time::sleep_until(deadline.min(now + WAIT_SLICE_NS));
        }
        Ok(())
    }
}

pub type Client = XenstoreClient<'static, StoreDoorbell>;

static CLIENT: spin::Mutex<Option<Client>> = spin::Mutex::new(None);
static PORT: AtomicU32 = AtomicU32::new(u32::MAX);

/// No xenstore connection (the initial domain, or before start-up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unavailable;

fn store_event(_port: EvtchnPort) {
    // The doorbell watches the port's event count; nothing else to do.
}

/// Connects to xenstore through `ring`, signalled on `port`.
pub fn connect(ring: &'static XenstoreRingView, port: EvtchnPort) -> Result<(), hypercalls::XenError> {
    events::attach(port, store_event)?;
    PORT.store(port, Ordering::SeqCst);
    *CLIENT.lock() = Some(XenstoreClient::new(ring, StoreDoorbell { port }));
    Ok(())
}

pub fn is_connected() -> bool {
    PORT.load(Ordering::SeqCst) != u32::MAX
}

/// Runs `f` on the connection. Requests sleep on the event channel, so
/// this must not be called with events masked.
pub fn with<R>(f: impl FnOnce(&mut Client) -> R) -> Result<R, Unavailable> {
    let mut client = CLIENT.lock();
    client.as_mut().map(f).ok_or(Unavailable)
}
