//! Raw access to a domU's console and xenstore rings, for the hostile-guest
//! suite, which writes malformed messages and lying indices into them to
//! attack the backends behind them. The kernel's own drivers keep using
//! the rings through `xen::console` and `xen::store`; this is a second
//! view of the same shared page (all atomics), not a second owner.

use drivers::console_ring::ConsoleRingView;
use drivers::xenstore::XenstoreRingView;
use hypercalls::abi::event_channel::EvtchnPort;
use kernel::layout::PAGE_SIZE;

use super::PV;
use crate::arch::memory;

/// A ring page and the event channel that signals its backend.
pub struct RawRing<T: 'static> {
    pub view: &'static T,
    pub port: EvtchnPort,
}

fn guest_frame(mfn: u64) -> Option<u64> {
    PV.mmu.pfn(mfn).map(|pfn| pfn * PAGE_SIZE)
}

/// The console ring, if the domain has one (a domU does, dom0 does not).
pub fn console() -> Option<RawRing<ConsoleRingView>> {
    let start = super::start::start_info().filter(|start| !start.initial_domain())?;
    let (mfn, port) = start.console;
    let phys = guest_frame(mfn)?;
    // SAFETY: the domain builder reserved this frame for the console ring
    // for the domain's lifetime (the kernel never allocates it), and the
    // view is all atomics, shared with the console driver and the backend.
    let view = unsafe { memory::phys_view(phys) };
    Some(RawRing { view, port })
}

/// The xenstore ring, if the domain has one.
pub fn xenstore() -> Option<RawRing<XenstoreRingView>> {
    let start = super::start::start_info().filter(|start| !start.initial_domain())?;
    let (mfn, port) = start.store;
    let phys = guest_frame(mfn)?;
    // SAFETY: as for the console ring: reserved for the store ring for
    // the domain's lifetime, and an all-atomic view.
    let view = unsafe { memory::phys_view(phys) };
    Some(RawRing { view, port })
}
