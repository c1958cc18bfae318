//! The FIFO event-channel ABI, the guest's half.
//!
//! Each port has a 32-bit *event word* in the guest's event-array pages:
//! PENDING, MASKED, LINKED and BUSY flags and, in the low 17 bits, the
//! next port in its queue. Each vCPU has a *control block* with a READY bit
//! and a HEAD port per priority (0 is the most urgent of 16). Xen appends
//! an event to its queue and sets READY; the guest takes events off the
//! head:
//!
//! * [`consume`] drains the ready queues, most urgent first, and hands each
//!   pending, unmasked port to the caller with its PENDING bit cleared.
//! * [`mask`] and [`clear_mask`] are the guest's own bits to flip; after
//!   unmasking a port that is still pending the guest must ask Xen
//!   (`EVTCHNOP_unmask`) to queue it again.
//!
//! Compared with the 2-level bitmaps, events keep their arrival order
//! within a priority and a port number is not bounded by a bitmap.

use core::sync::atomic::AtomicU32;
use core::sync::atomic::Ordering::SeqCst;

use hypercalls::abi::event_channel::{
    EvtchnPort, EVTCHN_FIFO_LINKED, EVTCHN_FIFO_LINK_BITS, EVTCHN_FIFO_MASKED, EVTCHN_FIFO_MAX_QUEUES,
    EVTCHN_FIFO_PENDING,
};

/// Event words in one event-array page.
pub const WORDS_PER_PAGE: usize = 4096 / 4;

const PENDING: u32 = 1 << EVTCHN_FIFO_PENDING;
const MASKED: u32 = 1 << EVTCHN_FIFO_MASKED;
const LINKED: u32 = 1 << EVTCHN_FIFO_LINKED;
const LINK_MASK: u32 = (1 << EVTCHN_FIFO_LINK_BITS) - 1;

/// One event-array page, as the guest shares it with Xen.
#[repr(C)]
pub struct EventArrayView {
    pub words: [AtomicU32; WORDS_PER_PAGE],
}

/// `struct evtchn_fifo_control_block`.
#[repr(C)]
pub struct ControlBlockView {
    pub ready: AtomicU32,
    pub _reserved: AtomicU32,
    pub head: [AtomicU32; EVTCHN_FIFO_MAX_QUEUES],
}

/// What the guest remembers of each queue between upcalls: the port to
/// take next, or 0 to read the queue's HEAD from the control block (Xen
/// writes HEAD only when it finds the queue empty).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueHeads([u32; EVTCHN_FIFO_MAX_QUEUES]);

impl QueueHeads {
    pub const fn new() -> Self {
        Self([0; EVTCHN_FIFO_MAX_QUEUES])
    }
}

/// A port beyond the event-array pages the guest gave Xen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortOutOfRange(pub EvtchnPort);

fn word(array: &EventArrayView, port: EvtchnPort) -> Result<&AtomicU32, PortOutOfRange> {
    array.words.get(port as usize).ok_or(PortOutOfRange(port))
}

/// The value a fresh event-array page starts with: every port masked, so
/// nothing is delivered before the guest attaches a handler and unmasks.
pub const fn initial_word() -> u32 {
    MASKED
}

pub fn mask(array: &EventArrayView, port: EvtchnPort) -> Result<(), PortOutOfRange> {
    word(array, port)?.fetch_or(MASKED, SeqCst);
    Ok(())
}

/// Clears `port`'s MASKED bit. True if it is pending: the caller must then
/// have Xen queue it (`EVTCHNOP_unmask`), since Xen only queues events it
/// raises while the port is unmasked.
pub fn clear_mask(array: &EventArrayView, port: EvtchnPort) -> Result<bool, PortOutOfRange> {
    let before = word(array, port)?.fetch_and(!MASKED, SeqCst);
    Ok(before & PENDING != 0)
}

pub fn is_masked(array: &EventArrayView, port: EvtchnPort) -> Result<bool, PortOutOfRange> {
    Ok(word(array, port)?.load(SeqCst) & MASKED != 0)
}

pub fn is_pending(array: &EventArrayView, port: EvtchnPort) -> Result<bool, PortOutOfRange> {
    Ok(word(array, port)?.load(SeqCst) & PENDING != 0)
}

/// Takes `port` off its queue: clears LINKED and the link, returning the
/// next port (0: `port` was the tail). Atomic against Xen linking a new
/// event behind `port` at the same moment.
fn unlink(word: &AtomicU32) -> u32 {
    let mut current = word.load(SeqCst);
    loop {
        let unlinked = current & !(LINKED | LINK_MASK);
        match word.compare_exchange(current, unlinked, SeqCst, SeqCst) {
            Ok(_) => return current & LINK_MASK,
            Err(seen) => current = seen,
        }
    }
}

/// Drains every ready queue, most urgent priority first, calling `handle`
/// for each event that is pending and not masked (its PENDING bit cleared
/// first, so an event raised during the handler is not lost). Events of
/// masked ports stay pending for a later unmask. Ports beyond `array` are
/// unlinked and dropped.
pub fn consume(
    control: &ControlBlockView,
    array: &EventArrayView,
    heads: &mut QueueHeads,
    mut handle: impl FnMut(EvtchnPort),
) {
    // READY is taken whole and worked on locally: Xen sets a bit again
    // whenever it writes a HEAD, and clearing bits in the shared word could
    // erase such a fresh one.
    let mut ready = 0;
    loop {
        if ready == 0 {
            ready = control.ready.swap(0, SeqCst);
            if ready == 0 {
                return;
            }
        }
        let priority = ready.trailing_zeros() as usize;
        let mut port = heads.0[priority];
        if port == 0 {
            port = control.head[priority].load(SeqCst);
        }
        let next = match word(array, port) {
            Ok(word) if port != 0 => unlink(word),
            // An empty or corrupt queue: nothing to take.
            _ => 0,
        };
        if next == 0 {
            // The tail: the queue is empty unless Xen links more, in which
            // case it sets READY again after writing HEAD.
            ready &= !(1 << priority);
        }
        heads.0[priority] = next;
        if port == 0 {
            continue;
        }
        if let Ok(word) = word(array, port) {
            let value = word.load(SeqCst);
            if value & PENDING != 0 && value & MASKED == 0 {
                word.fetch_and(!PENDING, SeqCst);
                handle(port);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn array() -> alloc::boxed::Box<EventArrayView> {
        alloc::boxed::Box::new(EventArrayView { words: [const { AtomicU32::new(0) }; WORDS_PER_PAGE] })
    }

    fn control() -> ControlBlockView {
        ControlBlockView {
            ready: AtomicU32::new(0),
            _reserved: AtomicU32::new(0),
            head: [const { AtomicU32::new(0) }; EVTCHN_FIFO_MAX_QUEUES],
        }
    }

    /// What Xen does to raise `port` at `priority` (queue tail in `tails`).
    fn raise(
        control: &ControlBlockView,
        array: &EventArrayView,
        tails: &mut [u32; 16],
        port: u32,
        priority: usize,
    ) {
        let word = &array.words[port as usize];
        let before = word.fetch_or(PENDING, SeqCst);
        if before & (MASKED | LINKED) != 0 {
            return;
        }
        word.fetch_or(LINKED, SeqCst);
        let tail = tails[priority];
        let linked_behind = tail != 0 && array.words[tail as usize].load(SeqCst) & LINKED != 0 && {
            array.words[tail as usize].fetch_or(port, SeqCst);
            true
        };
        if !linked_behind {
            control.head[priority].store(port, SeqCst);
        }
        tails[priority] = port;
        control.ready.fetch_or(1 << priority, SeqCst);
    }

    #[test]
    fn events_come_out_in_order_most_urgent_queue_first() {
        let (control, array, mut heads, mut tails) = (control(), array(), QueueHeads::default(), [0; 16]);
        for (port, priority) in [(5, 7), (9, 7), (3, 2), (12, 7)] {
            raise(&control, &array, &mut tails, port, priority);
        }
        let mut seen = Vec::new();
        consume(&control, &array, &mut heads, |port| seen.push(port));
        assert_eq!(seen, [3, 5, 9, 12]);
        assert_eq!(control.ready.load(SeqCst), 0);
        for port in [3, 5, 9, 12] {
            assert_eq!(array.words[port].load(SeqCst), 0, "port {port} left linked or pending");
        }
    }

    #[test]
    fn masked_events_stay_pending_and_come_back_after_unmask() {
        let (control, array, mut heads, mut tails) = (control(), array(), QueueHeads::default(), [0; 16]);
        mask(&array, 4).unwrap();
        raise(&control, &array, &mut tails, 4, 7);
        let mut seen = Vec::new();
        consume(&control, &array, &mut heads, |port| seen.push(port));
        assert!(seen.is_empty() && is_pending(&array, 4).unwrap() && is_masked(&array, 4).unwrap());
        // Unmasking reports the pending event; Xen (EVTCHNOP_unmask) queues it.
        assert!(clear_mask(&array, 4).unwrap());
        tails = [0; 16];
        array.words[4].fetch_and(!PENDING, SeqCst);
        raise(&control, &array, &mut tails, 4, 7);
        consume(&control, &array, &mut heads, |port| seen.push(port));
        assert_eq!(seen, [4]);
    }

    #[test]
    fn an_event_linked_while_the_guest_drains_is_not_lost() {
        let (control, array, mut heads, mut tails) = (control(), array(), QueueHeads::default(), [0; 16]);
        raise(&control, &array, &mut tails, 1, 7);
        raise(&control, &array, &mut tails, 2, 7);
        let mut seen = Vec::new();
        let mut raised = false;
        consume(&control, &array, &mut heads, |port| {
            seen.push(port);
            if !raised {
                raised = true;
                // Port 2 is still linked as the tail: Xen links 3 behind it.
                raise(&control, &array, &mut tails, 3, 7);
            }
        });
        assert_eq!(seen, [1, 2, 3]);
    }

    #[test]
    fn ports_beyond_the_array_are_refused() {
        let array = array();
        let beyond = WORDS_PER_PAGE as u32;
        assert_eq!(mask(&array, beyond), Err(PortOutOfRange(beyond)));
        assert_eq!(clear_mask(&array, beyond), Err(PortOutOfRange(beyond)));
        assert_eq!(initial_word(), MASKED);
    }

    #[test]
    fn a_corrupt_head_only_clears_ready() {
        let (control, array, mut heads) = (control(), array(), QueueHeads::default());
        control.ready.store(1 << 3, SeqCst);
        control.head[3].store(u32::MAX, SeqCst);
        let mut calls = 0;
        consume(&control, &array, &mut heads, |_| calls += 1);
        assert_eq!((calls, control.ready.load(SeqCst)), (0, 0));
    }
}
