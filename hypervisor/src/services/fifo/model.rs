//! A host model of the guest side of the FIFO ABI, for the tests: guest
//! frames as plain memory, and a consumer that walks queues as Linux's
//! `events_fifo.c` does (a private head per queue, the control block's
//! head only when that is empty, LINKED and LINK cleared as it goes).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap};

use super::word::{
    ControlBlock, GuestWords, WordAddress, LINKED, LINK_MASK, MASKED, PENDING, WORDS_PER_PAGE,
};
use super::{FifoState, QueueId, PRIORITIES};
use crate::services::ports::Port;

pub const CONTROL_FRAME: u64 = 0x100;
pub const CONTROL_OFFSET: u32 = 64;
pub const ARRAY_FRAME: u64 = 0x200;

/// What the guest does at the moment the hypervisor tries to link a tail.
#[derive(Clone, Copy, Debug)]
pub enum Interference {
    /// Consumes one event of this priority's queue.
    Consume(u8),
    /// Flips MASKED on the tail word.
    ToggleMask,
    /// Keeps flipping MASKED on every link attempt (a hostile guest).
    AlwaysToggleMask,
}

struct GuestSide {
    control: ControlBlock,
    array: Vec<u64>,
    /// The consumer's own head of each queue (0: take the control block's).
    local_heads: [Port; PRIORITIES],
}

/// Guest memory plus the guest's private consumer state.
pub struct Guest {
    frames: RefCell<HashMap<u64, Vec<u32>>>,
    side: RefCell<GuestSide>,
    pub interference: Cell<Option<Interference>>,
    pub compare_exchanges: Cell<u32>,
}

impl GuestWords for Guest {
    fn load(&self, at: WordAddress) -> u32 {
        self.frames.borrow().get(&at.frame).map_or(0, |words| words[at.offset as usize / 4])
    }

    fn store(&self, at: WordAddress, value: u32) {
        *self.slot(at) = value;
    }

    fn fetch_or(&self, at: WordAddress, bits: u32) -> u32 {
        let mut frames = self.frames.borrow_mut();
        let word = Self::word_in(&mut frames, at);
        let old = *word;
        *word |= bits;
        old
    }

    fn fetch_and(&self, at: WordAddress, bits: u32) -> u32 {
        let mut frames = self.frames.borrow_mut();
        let word = Self::word_in(&mut frames, at);
        let old = *word;
        *word &= bits;
        old
    }

    fn compare_exchange(&self, at: WordAddress, current: u32, new: u32) -> Result<u32, u32> {
        self.compare_exchanges.set(self.compare_exchanges.get() + 1);
        match self.interference.get() {
            Some(Interference::Consume(priority)) => {
                self.interference.set(None);
                self.consume(priority);
            }
            Some(Interference::ToggleMask) => {
                self.interference.set(None);
                *self.slot(at) ^= MASKED;
            }
            Some(Interference::AlwaysToggleMask) => *self.slot(at) ^= MASKED,
            None => {}
        }
        let word = &mut *self.slot(at);
        if *word == current {
            *word = new;
            Ok(current)
        } else {
            Err(*word)
        }
    }
}

impl Guest {
    /// A guest whose control block and first array page (every word
    /// MASKED, as Linux fills it) are registered with `fifo`.
    pub fn new(fifo: &mut FifoState) -> Self {
        let guest = Self::unregistered();
        fifo.init_control(0, CONTROL_FRAME, CONTROL_OFFSET).expect("first control block");
        guest.add_array_page(fifo, ARRAY_FRAME);
        guest
    }

    /// A guest with a zeroed control-block frame at [`CONTROL_FRAME`] that
    /// has told the hypervisor nothing yet.
    pub fn unregistered() -> Self {
        let control = ControlBlock { frame: CONTROL_FRAME, offset: CONTROL_OFFSET };
        Self {
            frames: RefCell::new(HashMap::from([(CONTROL_FRAME, vec![0; WORDS_PER_PAGE as usize])])),
            side: RefCell::new(GuestSide { control, array: Vec::new(), local_heads: [0; PRIORITIES] }),
            interference: Cell::new(None),
            compare_exchanges: Cell::new(0),
        }
    }

    /// Fills `frame` as the next event-array page (every word MASKED)
    /// without telling the hypervisor.
    pub fn provide_array_page(&self, frame: u64) {
        self.frames.borrow_mut().insert(frame, vec![MASKED; WORDS_PER_PAGE as usize]);
        self.side.borrow_mut().array.push(frame);
    }

    pub fn add_array_page(&self, fifo: &mut FifoState, frame: u64) {
        self.provide_array_page(frame);
        fifo.expand_array(frame).expect("array page");
    }

    fn word_in(frames: &mut HashMap<u64, Vec<u32>>, at: WordAddress) -> &mut u32 {
        assert_eq!(at.offset % 4, 0, "misaligned word {at:?}");
        &mut frames.get_mut(&at.frame).unwrap_or_else(|| panic!("no frame {:#x}", at.frame))
            [at.offset as usize / 4]
    }

    fn slot(&self, at: WordAddress) -> std::cell::RefMut<'_, u32> {
        std::cell::RefMut::map(self.frames.borrow_mut(), |frames| Self::word_in(frames, at))
    }

    fn event(&self, port: Port) -> WordAddress {
        let frame = self.side.borrow().array[(port / WORDS_PER_PAGE) as usize];
        WordAddress::event(frame, port)
    }

    pub fn word(&self, port: Port) -> u32 {
        self.load(self.event(port))
    }

    pub fn set_word(&self, port: Port, value: u32) {
        self.store(self.event(port), value);
    }

    pub fn ready(&self) -> u32 {
        self.load(self.side.borrow().control.ready())
    }

    pub fn head(&self, priority: u8) -> Port {
        self.load(self.side.borrow().control.head(priority))
    }

    pub fn mask(&self, port: Port) {
        self.fetch_or(self.event(port), MASKED);
    }

    /// Linux's unmask: clear MASKED; if the event is pending, ask the
    /// hypervisor to queue it (`EVTCHNOP_unmask`). True if it asked.
    pub fn unmask(&self, fifo: &mut FifoState, port: Port) -> bool {
        self.fetch_and(self.event(port), !MASKED);
        let pending = self.word(port) & PENDING != 0;
        if pending {
            fifo.unmask(self, port, 0);
        }
        pending
    }

    /// Takes the head event of a queue: `Some((port, handled))`, where a
    /// pending unmasked event is handled (its PENDING cleared).
    pub fn consume(&self, priority: u8) -> Option<(Port, bool)> {
        let bit = 1 << priority;
        let mut head = self.side.borrow().local_heads[usize::from(priority)];
        if head == 0 {
            if self.ready() & bit == 0 {
                return None;
            }
            head = self.head(priority);
        }
        let event = self.event(head);
        let old = self.fetch_and(event, !(LINKED | LINK_MASK));
        let next = old & LINK_MASK;
        if next == 0 {
            self.fetch_and(self.side.borrow().control.ready(), !bit);
        }
        let handled = old & PENDING != 0 && old & MASKED == 0;
        if handled {
            self.fetch_and(event, !PENDING);
        }
        self.side.borrow_mut().local_heads[usize::from(priority)] = next;
        Some((head, handled))
    }

    /// The ports of each queue, in order, as the consumer would find them.
    /// Panics on a cycle.
    pub fn queues(&self) -> Vec<Vec<Port>> {
        (0..PRIORITIES as u8)
            .map(|priority| {
                let mut port = self.side.borrow().local_heads[usize::from(priority)];
                if port == 0 && self.ready() & (1 << priority) != 0 {
                    port = self.head(priority);
                }
                let mut seen = BTreeSet::new();
                let mut chain = Vec::new();
                while port != 0 && self.word(port) & LINKED != 0 {
                    assert!(seen.insert(port), "queue {priority} loops back to port {port}: {chain:?}");
                    chain.push(port);
                    port = self.word(port) & LINK_MASK;
                }
                chain
            })
            .collect()
    }

    /// The protocol's invariants, for `ports` (the ports in play):
    /// every LINKED port is on exactly one queue; every pending unmasked
    /// port is LINKED; a READY bit is set exactly when its queue is not
    /// empty; and the hypervisor's tail of a non-empty queue is its last
    /// port (so the next event is linked at the end).
    pub fn check_invariants(
        &self,
        fifo: &FifoState,
        ports: impl Iterator<Item = Port>,
    ) -> Result<(), String> {
        let queues = self.queues();
        let mut on_queue = HashMap::new();
        for (priority, chain) in queues.iter().enumerate() {
            for &port in chain {
                if let Some(other) = on_queue.insert(port, priority) {
                    return Err(format!("port {port} is on queues {other} and {priority}: {queues:?}"));
                }
            }
            let ready = self.ready() & (1 << priority) != 0;
            if ready == chain.is_empty() {
                return Err(format!("READY bit {priority} is {ready} for queue {chain:?}"));
            }
            if let Some(&last) = chain.last() {
                let tail = fifo.tail(QueueId { vcpu: 0, priority: priority as u8 });
                if tail != Some(last) {
                    return Err(format!("queue {priority} ends at {last} but the tail is {tail:?}"));
                }
            }
        }
        for port in ports {
            let word = self.word(port);
            if word & LINKED != 0 && !on_queue.contains_key(&port) {
                return Err(format!("port {port} is LINKED ({word:#x}) but on no queue: {queues:?}"));
            }
            if word & PENDING != 0 && word & MASKED == 0 && word & LINKED == 0 {
                return Err(format!("port {port} is pending and unmasked but not queued ({word:#x})"));
            }
        }
        Ok(())
    }
}
