//! The FIFO event-channel ABI (Xen 4.17 semantics; the code is our own).
//!
//! Instead of two bitmaps, every port has a 32-bit *event word* in pages
//! the guest hands over (`EVTCHNOP_expand_array`): PENDING, MASKED,
//! LINKED, BUSY and a 17-bit LINK to the next event of its queue. Each
//! vCPU registers a *control block* (`EVTCHNOP_init_control`) with a READY
//! bit and a queue HEAD for each of the 16 priorities. Raising an event
//! sets PENDING and, if the port is not masked and not already queued,
//! appends it to its priority's queue: the hypervisor remembers each
//! queue's tail, links the old tail to it (or, if the guest emptied the
//! queue meanwhile, makes it the head) and sets the priority's READY bit.
//! The guest consumes queues from the head, clearing LINKED as it goes.
//!
//! Facts kept from Xen:
//! * The first control block switches the domain to FIFO with an empty
//!   event array; ports already bound keep their binding, get the default
//!   priority, and a 2-level pending bit is remembered and raised as soon
//!   as the array page holding the port's word arrives. Masking is the
//!   guest's: it fills new array pages (Linux sets MASKED everywhere).
//! * An event for a port without a word yet is remembered the same way;
//!   an event for a vCPU without a control block is dropped.
//! * Priorities apply to future events: a queued event stays where it is.
//! * An event that moves to another queue (new priority or vCPU) first
//!   stops being the tail of its old queue, so a later event there does
//!   not link behind it.
//! * Closing a port only clears PENDING: the guest unlinks it when it
//!   meets it. A closed port still LINKED is *busy* and not reused.
//! * `EVTCHNOP_reset` returns the domain to 2-level events, releasing
//!   every frame.
//!
//! One deliberate difference: Xen never forgets a remembered pending
//! state; here closing the port forgets it, so a port bound again later
//! does not get its predecessor's event.
#![forbid(unsafe_code)]

pub mod word;

#[cfg(test)]
pub(crate) mod model;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use core::ops::Range;

use hypercalls::abi::event_channel::{
    EVTCHN_FIFO_MAX_QUEUES, EVTCHN_FIFO_NR_CHANNELS, EVTCHN_FIFO_PRIORITY_DEFAULT,
};
use hypercalls::XenError;

use super::ports::{Port, MAX_VCPUS, NR_PORTS};
pub use word::{ControlBlock, GuestWords, WordAddress};
use word::{LINKED, MASKED, PENDING, WORDS_PER_PAGE};

pub const PRIORITIES: usize = EVTCHN_FIFO_MAX_QUEUES;
pub const DEFAULT_PRIORITY: u8 = EVTCHN_FIFO_PRIORITY_DEFAULT as u8;
/// Xen's `EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES`: enough words for every port
/// a 17-bit link can name, whatever the port table's own limit.
pub const MAX_ARRAY_PAGES: usize = (EVTCHN_FIFO_NR_CHANNELS / WORDS_PER_PAGE) as usize;
const DEFERRED_WORDS: usize = NR_PORTS as usize / 64;

/// A queue: a vCPU and one of its priorities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueId {
    pub vcpu: u32,
    pub priority: u8,
}

/// A [`QueueId`] in two bytes, as the per-port table keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PackedQueue {
    vcpu: u8,
    priority: u8,
}

const _: () = assert!(MAX_VCPUS <= 256);
const FIRST_QUEUE: PackedQueue = PackedQueue { vcpu: 0, priority: 0 };

impl From<QueueId> for PackedQueue {
    fn from(queue: QueueId) -> Self {
        Self { vcpu: queue.vcpu as u8, priority: queue.priority }
    }
}

#[derive(Clone, Copy)]
struct VcpuQueues {
    control: Option<ControlBlock>,
    /// The last port appended to each queue (0: none). Only a hint: the
    /// guest may have consumed it, which the LINKED bit tells.
    tails: [Port; PRIORITIES],
}

const NO_QUEUES: VcpuQueues = VcpuQueues { control: None, tails: [0; PRIORITIES] };

/// What raising an event did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Raised {
    /// PENDING went from 0 to 1 (pollers watch for this).
    pub newly_pending: bool,
    /// A READY bit went from 0 to 1: the vCPU must be told through its
    /// `evtchn_upcall_pending` (Xen's `vcpu_mark_events_pending`).
    pub notify_vcpu: bool,
}

const MAX_HELD_FRAMES: usize = MAX_VCPUS as usize + MAX_ARRAY_PAGES;

/// Frames a [`FifoState`] no longer holds.
#[derive(Debug, PartialEq, Eq)]
pub struct HeldFrames {
    frames: [u64; MAX_HELD_FRAMES],
    len: usize,
}

impl HeldFrames {
    pub fn as_slice(&self) -> &[u64] {
        &self.frames[..self.len]
    }
}

/// The FIFO state of the guest domain.
pub struct FifoState {
    active: bool,
    vcpus: [VcpuQueues; MAX_VCPUS as usize],
    /// Event-array frames, in port order.
    array: [u64; MAX_ARRAY_PAGES],
    array_pages: usize,
    priority: [u8; NR_PORTS as usize],
    /// The queue each port was last appended to (Xen's `fifo_lastq`).
    last_queue: [PackedQueue; NR_PORTS as usize],
    /// Ports that became pending while they had no event word.
    deferred: [u64; DEFERRED_WORDS],
}

impl Default for FifoState {
    fn default() -> Self {
        Self::new()
    }
}

impl FifoState {
    pub const fn new() -> Self {
        Self {
            active: false,
            vcpus: [NO_QUEUES; MAX_VCPUS as usize],
            array: [0; MAX_ARRAY_PAGES],
            array_pages: 0,
            priority: [DEFAULT_PRIORITY; NR_PORTS as usize],
            last_queue: [FIRST_QUEUE; NR_PORTS as usize],
            deferred: [0; DEFERRED_WORDS],
        }
    }

    /// Whether the domain has switched to the FIFO ABI.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Ports that have an event word.
    pub fn ports_with_words(&self) -> u32 {
        self.array_pages as u32 * WORDS_PER_PAGE
    }

    /// Every frame the state holds (control blocks and array pages).
    pub fn frames(&self) -> impl Iterator<Item = u64> + '_ {
        let controls = self.vcpus.iter().filter_map(|vcpu| vcpu.control.map(|block| block.frame));
        controls.chain(self.array[..self.array_pages].iter().copied())
    }

    pub fn control_block(&self, vcpu: u32) -> Option<ControlBlock> {
        self.vcpus.get(vcpu as usize).and_then(|queues| queues.control)
    }

    pub fn priority(&self, port: Port) -> Option<u8> {
        self.priority.get(port as usize).copied()
    }

    /// The port the hypervisor would link the next event of `queue` behind.
    pub fn tail(&self, queue: QueueId) -> Option<Port> {
        let tail = *self.vcpus.get(queue.vcpu as usize)?.tails.get(usize::from(queue.priority))?;
        (tail != 0).then_some(tail)
    }

    /// The checks `EVTCHNOP_init_control` makes before it touches the
    /// frame: an unknown vCPU is `ENOENT`; a block that crosses the page,
    /// is not 8-byte aligned, or is the vCPU's second one is `EINVAL`.
    pub fn check_init_control(&self, vcpu: u32, offset: u32) -> Result<(), XenError> {
        let queues = self.vcpus.get(vcpu as usize).ok_or(XenError::ENOENT)?;
        if offset > word::PAGE_SIZE - word::CONTROL_BLOCK_SIZE || !offset.is_multiple_of(8) {
            return Err(XenError::EINVAL);
        }
        if queues.control.is_some() {
            return Err(XenError::EINVAL);
        }
        Ok(())
    }

    /// Registers `vcpu`'s control block in `frame` (which the caller holds
    /// writable). True if this switched the domain to FIFO: the caller
    /// then carries over the 2-level pending bits ([`Self::defer`]).
    pub fn init_control(&mut self, vcpu: u32, frame: u64, offset: u32) -> Result<bool, XenError> {
        self.check_init_control(vcpu, offset)?;
        let switching = !self.active;
        self.active = true;
        self.vcpus[vcpu as usize].control = Some(ControlBlock { frame, offset });
        Ok(switching)
    }

    /// The checks `EVTCHNOP_expand_array` makes before it touches the
    /// frame: not in FIFO mode is `EOPNOTSUPP`, a full array `ENOSPC`.
    pub fn check_expand_array(&self) -> Result<(), XenError> {
        if !self.active {
            return Err(XenError::EOPNOTSUPP);
        }
        if self.array_pages >= MAX_ARRAY_PAGES {
            return Err(XenError::ENOSPC);
        }
        Ok(())
    }

    /// Appends `frame` (held writable by the caller) to the event array.
    /// Returns the ports that now have words: the caller re-raises the
    /// deferred ones among them ([`Self::take_deferred`]).
    pub fn expand_array(&mut self, frame: u64) -> Result<Range<Port>, XenError> {
        self.check_expand_array()?;
        let first = self.ports_with_words();
        self.array[self.array_pages] = frame;
        self.array_pages += 1;
        Ok(first..self.ports_with_words())
    }

    /// Back to 2-level events (`EVTCHNOP_reset`). Returns the frames the
    /// state held, for the caller to release.
    pub fn deactivate(&mut self) -> HeldFrames {
        let mut held = HeldFrames { frames: [0; MAX_HELD_FRAMES], len: 0 };
        for frame in self.frames() {
            held.frames[held.len] = frame;
            held.len += 1;
        }
        self.active = false;
        self.vcpus = [NO_QUEUES; MAX_VCPUS as usize];
        self.array_pages = 0;
        self.priority.fill(DEFAULT_PRIORITY);
        self.last_queue.fill(FIRST_QUEUE);
        self.deferred.fill(0);
        held
    }

    /// `port` is bound anew (Xen's `evtchn_fifo_init`): default priority.
    pub fn init_port(&mut self, port: Port) {
        if let Some(priority) = self.priority.get_mut(port as usize) {
            *priority = DEFAULT_PRIORITY;
        }
    }

    /// `EVTCHNOP_set_priority` on a bound port: from the next event on.
    pub fn set_priority(&mut self, port: Port, priority: u32) -> Result<(), XenError> {
        if priority as usize >= PRIORITIES {
            return Err(XenError::EINVAL);
        }
        let slot = self.priority.get_mut(port as usize).ok_or(XenError::EINVAL)?;
        *slot = priority as u8;
        Ok(())
    }

    /// Remembers that `port` is pending until its event word exists.
    pub fn defer(&mut self, port: Port) {
        if port < NR_PORTS {
            self.deferred[port as usize / 64] |= 1 << (port % 64);
        }
    }

    /// Forgets and reports a remembered pending state.
    pub fn take_deferred(&mut self, port: Port) -> bool {
        if port >= NR_PORTS {
            return false;
        }
        let bit = 1 << (port % 64);
        let word = &mut self.deferred[port as usize / 64];
        let was = *word & bit != 0;
        *word &= !bit;
        was
    }

    pub fn is_deferred(&self, port: Port) -> bool {
        port < NR_PORTS && self.deferred[port as usize / 64] & (1 << (port % 64)) != 0
    }

    /// Where `port`'s event word is, if its array page exists.
    pub fn event_word(&self, port: Port) -> Option<WordAddress> {
        if port >= self.ports_with_words() {
            return None;
        }
        let frame = self.array[(port / WORDS_PER_PAGE) as usize];
        Some(WordAddress::event(frame, port))
    }

    /// Raises `port`, whose events go to `vcpu`.
    pub fn set_pending(&mut self, words: &dyn GuestWords, port: Port, vcpu: u32) -> Raised {
        let Some(event) = self.event_word(port) else {
            self.defer(port);
            return Raised::default();
        };
        let (Some(priority), Some(control)) = (self.priority(port), self.control_block(vcpu)) else {
            // No control block: the guest cannot have unmasked anything
            // on this vCPU yet, so the event is dropped.
            return Raised::default();
        };
        let newly_pending = words.fetch_or(event, PENDING) & PENDING == 0;
        let queue = QueueId { vcpu, priority };
        let mut linked = true;
        if words.load(event) & MASKED == 0 && words.fetch_or(event, LINKED) & LINKED == 0 {
            linked = self.append(words, port, queue, control);
        }
        let ready_bit = 1 << priority;
        let notify_vcpu = !linked && words.fetch_or(control.ready(), ready_bit) & ready_bit == 0;
        Raised { newly_pending, notify_vcpu }
    }

    /// Puts `port` (just marked LINKED) at the tail of `queue`. True if it
    /// went behind an event still queued, false if it is the new head.
    fn append(&mut self, words: &dyn GuestWords, port: Port, queue: QueueId, control: ControlBlock) -> bool {
        let old = self.last_queue[port as usize];
        // Whether the old queue was this one or not, `port` being its tail
        // means the guest has consumed it: that queue is now empty.
        let old_tail = &mut self.vcpus[old.vcpu as usize].tails[usize::from(old.priority)];
        if *old_tail == port {
            *old_tail = 0;
        }
        self.last_queue[port as usize] = queue.into();
        let tail = self.vcpus[queue.vcpu as usize].tails[usize::from(queue.priority)];
        let linked = tail != 0 && self.event_word(tail).is_some_and(|at| word::link_after(words, at, port));
        if !linked {
            words.store(control.head(queue.priority), port);
        }
        self.vcpus[queue.vcpu as usize].tails[usize::from(queue.priority)] = port;
        linked
    }

    /// Clears PENDING (closing a port); the guest unlinks it when it meets
    /// it. Also forgets a deferred event.
    pub fn clear_pending(&mut self, words: &dyn GuestWords, port: Port) {
        self.take_deferred(port);
        if let Some(event) = self.event_word(port) {
            words.fetch_and(event, !PENDING);
        }
    }

    /// `EVTCHNOP_unmask`: clears MASKED and queues the event if pending.
    pub fn unmask(&mut self, words: &dyn GuestWords, port: Port, vcpu: u32) -> Raised {
        let Some(event) = self.event_word(port) else { return Raised::default() };
        words.fetch_and(event, !MASKED);
        if words.load(event) & PENDING != 0 {
            self.set_pending(words, port, vcpu)
        } else {
            Raised::default()
        }
    }

    pub fn is_pending(&self, words: &dyn GuestWords, port: Port) -> bool {
        self.event_word(port).is_some_and(|event| words.load(event) & PENDING != 0)
    }

    /// A port without a word counts as masked, as in Xen.
    pub fn is_masked(&self, words: &dyn GuestWords, port: Port) -> bool {
        self.event_word(port).is_none_or(|event| words.load(event) & MASKED != 0)
    }

    /// Still on a queue, so not to be reused for a new binding yet.
    pub fn is_busy(&self, words: &dyn GuestWords, port: Port) -> bool {
        self.event_word(port).is_some_and(|event| words.load(event) & LINKED != 0)
    }
}
