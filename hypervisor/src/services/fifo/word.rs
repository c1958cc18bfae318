//! The FIFO ABI's shared words: where they live in guest frames, what
//! their bits mean, and the one tricky write the hypervisor makes to them
//! (linking a new event behind the tail of a queue while the guest may be
//! consuming that tail at the same moment).

use hypercalls::abi::event_channel::{
    EvtchnFifoControlBlock, EVTCHN_FIFO_BUSY, EVTCHN_FIFO_LINKED, EVTCHN_FIFO_LINK_MASK, EVTCHN_FIFO_MASKED,
    EVTCHN_FIFO_PENDING,
};

use crate::services::ports::Port;

pub const PENDING: u32 = 1 << EVTCHN_FIFO_PENDING;
pub const MASKED: u32 = 1 << EVTCHN_FIFO_MASKED;
pub const LINKED: u32 = 1 << EVTCHN_FIFO_LINKED;
/// Set by the hypervisor on a tail word it is about to link, so the
/// guest's lock-free unmask waits instead of racing the link update.
pub const BUSY: u32 = 1 << EVTCHN_FIFO_BUSY;
pub const LINK_MASK: u32 = EVTCHN_FIFO_LINK_MASK;

pub const PAGE_SIZE: u32 = 4096;
/// Event words per event-array page (`event_word_t` is 32 bits).
pub const WORDS_PER_PAGE: u32 = PAGE_SIZE / 4;
pub const CONTROL_BLOCK_SIZE: u32 = core::mem::size_of::<EvtchnFifoControlBlock>() as u32;
const READY_OFFSET: u32 = core::mem::offset_of!(EvtchnFifoControlBlock, ready) as u32;
const HEAD_OFFSET: u32 = core::mem::offset_of!(EvtchnFifoControlBlock, head) as u32;

/// A 32-bit word in a guest frame: the frame number and the byte offset
/// (4-byte aligned, inside the page).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WordAddress {
    pub frame: u64,
    pub offset: u32,
}

impl WordAddress {
    /// Event word `index` of an event-array page.
    pub fn event(frame: u64, index: u32) -> Self {
        Self { frame, offset: (index % WORDS_PER_PAGE) * 4 }
    }
}

/// Where a vCPU's control block is: a frame and the block's byte offset
/// (8-byte aligned, and the whole block inside the page).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlBlock {
    pub frame: u64,
    pub offset: u32,
}

impl ControlBlock {
    pub fn ready(self) -> WordAddress {
        WordAddress { frame: self.frame, offset: self.offset + READY_OFFSET }
    }

    pub fn head(self, priority: u8) -> WordAddress {
        WordAddress { frame: self.frame, offset: self.offset + HEAD_OFFSET + 4 * u32::from(priority) }
    }
}

/// Atomic access to 32-bit words in guest frames the guest writes at the
/// same time. Every operation is sequentially consistent, like Xen's
/// locked bit operations on guest memory. Only addresses built by this
/// module are passed in, and only for frames the caller handed over.
pub trait GuestWords {
    fn load(&self, at: WordAddress) -> u32;
    fn store(&self, at: WordAddress, value: u32);
    /// Returns the previous value.
    fn fetch_or(&self, at: WordAddress, bits: u32) -> u32;
    /// Returns the previous value.
    fn fetch_and(&self, at: WordAddress, bits: u32) -> u32;
    /// `Ok(previous)` if the word held `current` and now holds `new`,
    /// else `Err(actual)`.
    fn compare_exchange(&self, at: WordAddress, current: u32, new: u32) -> Result<u32, u32>;
}

/// What one attempt to point a tail word at a new event found.
enum LinkAttempt {
    Linked,
    /// The guest consumed the tail: the queue is empty.
    TailUnlinked,
    /// The guest changed the word first; here is what it holds now.
    Raced(u32),
}

fn try_link(words: &dyn GuestWords, tail: WordAddress, seen: u32, port: Port) -> LinkAttempt {
    if seen & LINKED == 0 {
        return LinkAttempt::TailUnlinked;
    }
    let new = (seen & !(BUSY | LINK_MASK)) | (port & LINK_MASK);
    match words.compare_exchange(tail, seen, new) {
        Ok(_) => LinkAttempt::Linked,
        Err(actual) => LinkAttempt::Raced(actual),
    }
}

/// How many times the link is retried once the tail is BUSY: the guest
/// may then only flip MASKED or clear PENDING or LINKED, so a handful of
/// its changes can get in between, not an endless stream.
const BUSY_RETRIES: usize = 4;

/// Points the `tail` event's LINK field at `port` if `tail` is still on
/// its queue. True if linked; false if the tail had left the queue (then
/// `port` starts a new one and the caller writes the queue's head).
///
/// If the guest keeps changing the word past [`BUSY_RETRIES`], the link
/// is given up and reported as made, as Xen does: the event is lost
/// rather than risking a second head for one queue.
pub fn link_after(words: &dyn GuestWords, tail: WordAddress, port: Port) -> bool {
    match try_link(words, tail, words.load(tail), port) {
        LinkAttempt::Linked => return true,
        LinkAttempt::TailUnlinked => return false,
        LinkAttempt::Raced(_) => {}
    }
    words.fetch_or(tail, BUSY);
    let mut seen = words.load(tail);
    for _ in 0..BUSY_RETRIES {
        match try_link(words, tail, seen, port) {
            LinkAttempt::Linked => return true,
            LinkAttempt::TailUnlinked => {
                words.fetch_and(tail, !BUSY);
                return false;
            }
            LinkAttempt::Raced(actual) => seen = actual,
        }
    }
    words.fetch_and(tail, !BUSY);
    true
}
