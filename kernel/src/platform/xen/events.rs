//! Event channels: binding ports to handlers and dispatching upcalls.
//!
//! Xen signals the guest by setting a port's bit in `shared_info`'s
//! 2-level bitmaps and, unless the vCPU masked events, entering the
//! registered event callback (PV) or vector (PVH). [`handle_upcall`] scans
//! `evtchn_pending_sel`, then `evtchn_pending & ~evtchn_mask` word by word
//! (the scan itself is `drivers::evtchn::pending_ports`) and calls the
//! handler registered for each port. Nothing is lost: a port's pending bit
//! is cleared before its handler runs, the scan repeats until the selector
//! stays empty, and whoever re-enables delivery re-checks
//! `evtchn_upcall_pending` (see the PV platform's `interrupts_enable`).
//!
//! With `evtchn=fifo` on the command line the kernel asks for the FIFO ABI
//! instead ([`use_fifo`]), as Linux does by default: Xen then queues events
//! in event words on a page of the kernel's own, and [`handle_upcall`]
//! takes them off the ready queues (`drivers::evtchn_fifo`). Masking and
//! pending state live in those words; everything else is the same.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use drivers::evtchn_fifo::{self, ControlBlockView, EventArrayView, QueueHeads, WORDS_PER_PAGE};
use hypercalls::abi::event_channel::EVTCHN_FIFO_MAX_QUEUES;

use hypercalls::abi::event_channel::EvtchnPort;
use hypercalls::abi::xen::DomId;
use hypercalls::ops::event_channel as evtchn_op;
use hypercalls::XenError;

use crate::platform;

/// What runs when a port fires. Handlers run with events masked, on the
/// interrupted stack: they must be short and must not print or block.
pub type Handler = fn(EvtchnPort);

/// Ports the kernel can attach handlers to (Xen hands out low numbers).
pub const MAX_PORTS: usize = 1024;

static HANDLERS: spin::Mutex<[Option<Handler>; MAX_PORTS]> = spin::Mutex::new([None; MAX_PORTS]);
/// Events delivered per port, for tests and statistics.
static COUNTS: [AtomicU64; MAX_PORTS] = [const { AtomicU64::new(0) }; MAX_PORTS];
static UPCALLS: AtomicU64 = AtomicU64::new(0);

/// vCPU 0's FIFO control block, on a page of its own.
#[repr(C, align(4096))]
struct ControlBlockPage(ControlBlockView);

/// The FIFO event words for ports 0..1024 (one page covers [`MAX_PORTS`]).
#[repr(C, align(4096))]
struct EventArrayPage(EventArrayView);

static FIFO_CONTROL: ControlBlockPage = ControlBlockPage(ControlBlockView {
    ready: AtomicU32::new(0),
    _reserved: AtomicU32::new(0),
    head: [const { AtomicU32::new(0) }; EVTCHN_FIFO_MAX_QUEUES],
});
static FIFO_ARRAY: EventArrayPage = EventArrayPage(EventArrayView {
    words: [const { AtomicU32::new(evtchn_fifo::initial_word()) }; WORDS_PER_PAGE],
});
static FIFO_ON: AtomicBool = AtomicBool::new(false);
static FIFO_HEADS: spin::Mutex<QueueHeads> = spin::Mutex::new(QueueHeads::new());
const _: () = assert!(WORDS_PER_PAGE >= MAX_PORTS);

/// Which event-channel ABI is in use.
pub fn abi_name() -> &'static str {
    if fifo_on() {
        "fifo"
    } else {
        "2-level"
    }
}

fn fifo_on() -> bool {
    FIFO_ON.load(Ordering::Acquire)
}

/// Switches to the FIFO ABI before any port is bound. `frame_of` names a
/// page of the kernel image as Xen knows it (PV: its machine frame; PVH:
/// its guest frame). On failure (a hypervisor without FIFO events answers
/// `EOPNOTSUPP` or `ENOSYS`) nothing changed and the 2-level ABI stays.
pub fn use_fifo(frame_of: fn(u64) -> Option<u64>) -> Result<(), XenError> {
    let control = frame_of(core::ptr::from_ref(&FIFO_CONTROL) as u64).ok_or(XenError::EFAULT)?;
    let array = frame_of(core::ptr::from_ref(&FIFO_ARRAY) as u64).ok_or(XenError::EFAULT)?;
    // SAFETY: both pages are statics set aside for Xen's FIFO words and
    // only ever accessed through atomics, for the kernel's lifetime.
    unsafe { evtchn_op::init_control(control, 0, 0) }?;
    // SAFETY: as above.
    unsafe { evtchn_op::expand_array(array) }?;
    FIFO_ON.store(true, Ordering::Release);
    Ok(())
}

fn slot(port: EvtchnPort) -> Result<usize, XenError> {
    let index = port as usize;
    if index < MAX_PORTS {
        Ok(index)
    } else {
        Err(XenError::ENOSPC)
    }
}

/// Attaches `handler` to `port` and unmasks it.
pub fn attach(port: EvtchnPort, handler: Handler) -> Result<(), XenError> {
    let index = slot(port)?;
    platform::without_interrupts(|| HANDLERS.lock()[index] = Some(handler));
    COUNTS[index].store(0, Ordering::SeqCst);
    unmask(port)
}

/// Binds virtual IRQ `virq` of vCPU 0 to a new port with `handler`.
pub fn bind_virq(virq: u32, handler: Handler) -> Result<EvtchnPort, XenError> {
    let port = evtchn_op::bind_virq(virq, 0)?;
    attach_or_close(port, handler)
}

/// A new port that `remote` may bind to, with `handler` for its events.
pub fn alloc_unbound(remote: DomId, handler: Handler) -> Result<EvtchnPort, XenError> {
    let port = evtchn_op::alloc_unbound(remote)?;
    attach_or_close(port, handler)
}

/// Connects a new local port to `remote_port` of `remote`.
pub fn bind_interdomain(
    remote: DomId,
    remote_port: EvtchnPort,
    handler: Handler,
) -> Result<EvtchnPort, XenError> {
    let port = evtchn_op::bind_interdomain(remote, remote_port)?;
    attach_or_close(port, handler)
}

fn attach_or_close(port: EvtchnPort, handler: Handler) -> Result<EvtchnPort, XenError> {
    if let Err(error) = attach(port, handler) {
        let _ = evtchn_op::close(port);
        return Err(error);
    }
    Ok(port)
}

/// Signals the other end of `port`.
pub fn send(port: EvtchnPort) -> Result<(), XenError> {
    evtchn_op::send(port)
}

/// Stops upcalls for `port`; its events stay pending.
pub fn mask(port: EvtchnPort) -> Result<(), XenError> {
    if fifo_on() {
        return evtchn_fifo::mask(&FIFO_ARRAY.0, port).map_err(|_| XenError::EINVAL);
    }
    let shared = super::shared_info().ok_or(XenError::ENODEV)?;
    drivers::evtchn::mask(shared, port).map_err(|_| XenError::EINVAL)
}

/// Re-enables upcalls for `port`. The hypercall (rather than clearing the
/// bit ourselves) makes Xen re-raise an event that arrived while masked.
pub fn unmask(port: EvtchnPort) -> Result<(), XenError> {
    if fifo_on() {
        // The mask bit is the guest's own; Xen only re-queues a pending event.
        let pending = evtchn_fifo::clear_mask(&FIFO_ARRAY.0, port).map_err(|_| XenError::EINVAL)?;
        return if pending { evtchn_op::unmask(port) } else { Ok(()) };
    }
    evtchn_op::unmask(port)
}

/// Whether `port` is masked.
pub fn is_masked(port: EvtchnPort) -> bool {
    if fifo_on() {
        return evtchn_fifo::is_masked(&FIFO_ARRAY.0, port).unwrap_or(false);
    }
    super::shared_info().is_some_and(|shared| drivers::evtchn::is_masked(shared, port).unwrap_or(false))
}

/// Whether `port` has an event waiting (for example while masked).
pub fn is_pending(port: EvtchnPort) -> bool {
    if fifo_on() {
        return evtchn_fifo::is_pending(&FIFO_ARRAY.0, port).unwrap_or(false);
    }
    super::shared_info().is_some_and(|shared| drivers::evtchn::is_pending(shared, port).unwrap_or(false))
}

/// Detaches and closes `port`.
pub fn close(port: EvtchnPort) -> Result<(), XenError> {
    if let Ok(index) = slot(port) {
        platform::without_interrupts(|| HANDLERS.lock()[index] = None);
    }
    evtchn_op::close(port)
}

/// Events handled on `port` since it was attached.
pub fn count(port: EvtchnPort) -> u64 {
    slot(port).map_or(0, |index| COUNTS[index].load(Ordering::SeqCst))
}

/// Upcalls taken so far.
pub fn upcalls() -> u64 {
    UPCALLS.load(Ordering::SeqCst)
}

/// The event callback's body: dispatches every pending, unmasked port.
pub fn handle_upcall() {
    UPCALLS.fetch_add(1, Ordering::SeqCst);
    let (Some(shared), Some(vcpu)) = (super::shared_info(), super::vcpu0()) else {
        return;
    };
    if fifo_on() {
        // Xen raises evtchn_upcall_pending for FIFO events too; the guest clears it.
        vcpu.evtchn_upcall_pending.store(0, Ordering::SeqCst);
        let mut heads = FIFO_HEADS.lock();
        evtchn_fifo::consume(&FIFO_CONTROL.0, &FIFO_ARRAY.0, &mut heads, dispatch);
        return;
    }
    drivers::evtchn::pending_ports(shared, vcpu, dispatch);
}

fn dispatch(port: EvtchnPort) {
    let Ok(index) = slot(port) else {
        return;
    };
    COUNTS[index].fetch_add(1, Ordering::SeqCst);
    // Copy the handler out so it runs without the table locked. The lock
    // is only taken elsewhere with events masked, so it is free here.
    let handler = HANDLERS.lock()[index];
    if let Some(handler) = handler {
        handler(port);
    }
}
