use hypercalls::XenError;

use super::model::{Guest, Interference, ARRAY_FRAME, CONTROL_FRAME, CONTROL_OFFSET};
use super::word::{BUSY, LINKED, LINK_MASK, MASKED, PENDING, WORDS_PER_PAGE};
use super::*;

const DEFAULT: u8 = DEFAULT_PRIORITY;

fn fifo() -> Box<FifoState> {
    Box::new(FifoState::new())
}

fn ready_bit(priority: u8) -> u32 {
    1 << priority
}

#[test]
fn init_control_checks_vcpu_offset_and_duplicates_as_xen() {
    let mut fifo = fifo();
    assert!(!fifo.is_active());
    assert_eq!(fifo.init_control(1, 5, 0), Err(XenError::ENOENT));
    assert_eq!(fifo.init_control(0, 5, 4), Err(XenError::EINVAL), "not 8-byte aligned");
    // The block is 72 bytes: 4024 is the last offset that fits.
    assert_eq!(word::CONTROL_BLOCK_SIZE, 72);
    assert_eq!(fifo.init_control(0, 5, 4032), Err(XenError::EINVAL));
    assert!(!fifo.is_active(), "refused requests change nothing");
    assert_eq!(fifo.init_control(0, 5, 4024), Ok(true));
    assert!(fifo.is_active());
    assert_eq!(fifo.control_block(0), Some(ControlBlock { frame: 5, offset: 4024 }));
    assert_eq!(fifo.init_control(0, 6, 0), Err(XenError::EINVAL), "a vCPU has one control block");
    assert_eq!(fifo.frames().collect::<Vec<_>>(), vec![5]);
}

#[test]
fn expand_array_needs_fifo_and_stops_at_xens_limit() {
    let mut fifo = fifo();
    assert_eq!(fifo.expand_array(9), Err(XenError::EOPNOTSUPP));
    fifo.init_control(0, 5, 0).unwrap();
    assert_eq!(fifo.ports_with_words(), 0);
    assert_eq!(fifo.expand_array(9), Ok(0..WORDS_PER_PAGE));
    assert_eq!(fifo.expand_array(10), Ok(WORDS_PER_PAGE..2 * WORDS_PER_PAGE));
    assert_eq!(fifo.event_word(1025), Some(WordAddress { frame: 10, offset: 4 }));
    assert_eq!(fifo.event_word(2048), None);
    for frame in 11..(9 + MAX_ARRAY_PAGES as u64) {
        fifo.expand_array(frame).unwrap();
    }
    assert_eq!(MAX_ARRAY_PAGES, 128);
    assert_eq!(fifo.ports_with_words(), 1 << 17);
    assert_eq!(fifo.check_expand_array(), Err(XenError::ENOSPC));
    assert_eq!(fifo.expand_array(999), Err(XenError::ENOSPC));
    assert_eq!(fifo.frames().count(), 1 + MAX_ARRAY_PAGES);
}

#[test]
fn the_first_event_becomes_the_head_and_sets_ready() {
    let mut fifo = fifo();
    let guest = Guest::new(&mut fifo);
    guest.set_word(3, 0);
    let raised = fifo.set_pending(&guest, 3, 0);
    assert_eq!(raised, Raised { newly_pending: true, notify_vcpu: true });
    assert_eq!(guest.word(3), PENDING | LINKED);
    assert_eq!(guest.head(DEFAULT), 3);
    assert_eq!(guest.ready(), ready_bit(DEFAULT));
    assert_eq!(fifo.tail(QueueId { vcpu: 0, priority: DEFAULT }), Some(3));
    // Raising it again while queued changes nothing and notifies no one.
    assert_eq!(fifo.set_pending(&guest, 3, 0), Raised { newly_pending: false, notify_vcpu: false });
    assert_eq!(guest.queues()[usize::from(DEFAULT)], vec![3]);
}

#[test]
fn later_events_link_behind_the_tail_without_a_new_notification() {
    let mut fifo = fifo();
    let guest = Guest::new(&mut fifo);
    for port in [5, 2, 9] {
        guest.set_word(port, 0);
    }
    assert!(fifo.set_pending(&guest, 5, 0).notify_vcpu);
    assert_eq!(fifo.set_pending(&guest, 2, 0), Raised { newly_pending: true, notify_vcpu: false });
    assert!(!fifo.set_pending(&guest, 9, 0).notify_vcpu);
    assert_eq!(guest.word(5), PENDING | LINKED | 2);
    assert_eq!(guest.word(2), PENDING | LINKED | 9);
    assert_eq!(guest.word(9) & LINK_MASK, 0);
    assert_eq!(guest.queues()[usize::from(DEFAULT)], vec![5, 2, 9]);
    assert_eq!((guest.consume(DEFAULT), guest.consume(DEFAULT)), (Some((5, true)), Some((2, true))));
    assert_eq!(guest.consume(DEFAULT), Some((9, true)));
    assert_eq!(guest.ready(), 0, "the consumer clears READY at the last event");
    assert_eq!(guest.consume(DEFAULT), None);
}

#[test]
fn a_masked_event_stays_pending_until_unmasked() {
    let mut fifo = fifo();
    let guest = Guest::new(&mut fifo);
    assert_eq!(fifo.set_pending(&guest, 4, 0), Raised { newly_pending: true, notify_vcpu: false });
    assert_eq!(guest.word(4), PENDING | MASKED);
    assert_eq!(guest.ready(), 0);
    assert!(fifo.is_pending(&guest, 4) && fifo.is_masked(&guest, 4) && !fifo.is_busy(&guest, 4));
    assert_eq!(fifo.unmask(&guest, 4, 0), Raised { newly_pending: false, notify_vcpu: true });
    assert_eq!(guest.word(4), PENDING | LINKED);
    assert_eq!(guest.head(DEFAULT), 4);
    // Unmasking an idle port only clears MASKED.
    assert_eq!(fifo.unmask(&guest, 6, 0), Raised::default());
    assert_eq!(guest.word(6), 0);
}

#[test]
fn a_masked_queued_event_is_skipped_then_requeued_on_unmask() {
    let mut fifo = fifo();
    let guest = Guest::new(&mut fifo);
    assert!(!guest.unmask(&mut fifo, 7), "nothing pending yet");
    fifo.set_pending(&guest, 7, 0);
    guest.mask(7);
    assert_eq!(guest.consume(DEFAULT), Some((7, false)), "masked: left pending");
    assert_eq!(guest.word(7), PENDING | MASKED);
    assert!(guest.unmask(&mut fifo, 7));
    assert_eq!(guest.consume(DEFAULT), Some((7, true)));
    assert_eq!(guest.word(7), 0);
}

#[test]
fn a_consumed_tail_makes_the_next_event_a_new_head() {
    let mut fifo = fifo();
    let guest = Guest::new(&mut fifo);
    for port in [1, 2] {
        guest.set_word(port, 0);
    }
    fifo.set_pending(&guest, 1, 0);
    assert_eq!(guest.consume(DEFAULT), Some((1, true)));
    // The hypervisor's tail is still port 1, but it is no longer LINKED.
    assert_eq!(fifo.tail(QueueId { vcpu: 0, priority: DEFAULT }), Some(1));
    assert!(fifo.set_pending(&guest, 2, 0).notify_vcpu);
    assert_eq!(guest.head(DEFAULT), 2);
    assert_eq!(guest.word(1), 0, "nothing is linked behind a consumed event");
    assert_eq!(guest.queues()[usize::from(DEFAULT)], vec![2]);
}

#[test]
fn the_same_port_raised_again_after_consumption_does_not_link_to_itself() {
    let mut fifo = fifo();
    let guest = Guest::new(&mut fifo);
    guest.set_word(8, 0);
    fifo.set_pending(&guest, 8, 0);
    guest.consume(DEFAULT);
    assert!(fifo.set_pending(&guest, 8, 0).notify_vcpu);
    assert_eq!(guest.word(8), PENDING | LINKED, "LINK stays 0");
    assert_eq!(guest.queues()[usize::from(DEFAULT)], vec![8]);
}

#[test]
fn priorities_pick_the_queue_for_future_events() {
    let mut fifo = fifo();
    let guest = Guest::new(&mut fifo);
    assert_eq!(fifo.set_priority(3, 16), Err(XenError::EINVAL));
    assert_eq!(fifo.priority(3), Some(DEFAULT));
    for port in [3, 4] {
        guest.set_word(port, 0);
    }
    fifo.set_priority(3, 0).unwrap();
    fifo.set_priority(4, 15).unwrap();
    fifo.set_pending(&guest, 4, 0);
    fifo.set_pending(&guest, 3, 0);
    assert_eq!(guest.ready(), ready_bit(0) | ready_bit(15));
    assert_eq!((guest.head(0), guest.head(15)), (3, 4));
    // A queued event stays on its queue when its priority changes.
    fifo.set_priority(4, 2).unwrap();
    assert!(!fifo.set_pending(&guest, 4, 0).notify_vcpu);
    assert_eq!(guest.queues()[15], vec![4]);
    guest.consume(15);
    fifo.set_pending(&guest, 4, 0);
    assert_eq!(guest.queues()[2], vec![4]);
    assert_eq!(fifo.tail(QueueId { vcpu: 0, priority: 15 }), None, "the old queue forgot its tail");
    fifo.init_port(4);
    assert_eq!(fifo.priority(4), Some(DEFAULT));
}

#[test]
fn a_guest_consuming_the_tail_during_the_link_makes_a_new_head() {
    let mut fifo = fifo();
    let guest = Guest::new(&mut fifo);
    for port in [1, 2] {
        guest.set_word(port, 0);
    }
    fifo.set_pending(&guest, 1, 0);
    guest.interference.set(Some(Interference::Consume(DEFAULT)));
    let raised = fifo.set_pending(&guest, 2, 0);
    assert!(raised.notify_vcpu, "port 2 became the head of an empty queue");
    assert_eq!(guest.word(1) & (BUSY | LINKED), 0, "BUSY was dropped again");
    assert_eq!(guest.head(DEFAULT), 2);
    assert_eq!(guest.queues()[usize::from(DEFAULT)], vec![2]);
    guest.check_invariants(&fifo, 1..8).unwrap();
}

#[test]
fn a_guest_masking_the_tail_during_the_link_is_retried_under_busy() {
    let mut fifo = fifo();
    let guest = Guest::new(&mut fifo);
    for port in [1, 2] {
        guest.set_word(port, 0);
    }
    fifo.set_pending(&guest, 1, 0);
    guest.interference.set(Some(Interference::ToggleMask));
    assert!(!fifo.set_pending(&guest, 2, 0).notify_vcpu);
    assert_eq!(guest.compare_exchanges.get(), 2);
    assert_eq!(guest.word(1), PENDING | MASKED | LINKED | 2, "linked, and BUSY cleared by the link");
    guest.check_invariants(&fifo, 1..8).unwrap();
}

#[test]
fn a_guest_that_never_stops_changing_the_tail_loses_the_event_not_the_queue() {
    let mut fifo = fifo();
    let guest = Guest::new(&mut fifo);
    for port in [1, 2] {
        guest.set_word(port, 0);
    }
    fifo.set_pending(&guest, 1, 0);
    guest.interference.set(Some(Interference::AlwaysToggleMask));
    let raised = fifo.set_pending(&guest, 2, 0);
    guest.interference.set(None);
    assert_eq!(guest.compare_exchanges.get(), 5, "one try, then four under BUSY");
    assert!(!raised.notify_vcpu);
    assert_eq!(guest.word(1) & (BUSY | LINK_MASK), 0);
    assert_eq!(guest.head(DEFAULT), 1, "no second head was written");
}

#[test]
fn events_without_a_word_wait_for_their_array_page() {
    let mut fifo = fifo();
    let guest = Guest::new(&mut fifo);
    let port = WORDS_PER_PAGE + 5;
    assert_eq!(fifo.set_pending(&guest, port, 0), Raised::default());
    assert!(fifo.is_deferred(port));
    assert!(!fifo.is_pending(&guest, port) && fifo.is_masked(&guest, port));
    guest.add_array_page(&mut fifo, ARRAY_FRAME + 1);
    assert!(fifo.take_deferred(port));
    assert!(!fifo.take_deferred(port), "taken once");
    // Closing forgets a deferred event.
    fifo.defer(9);
    fifo.clear_pending(&guest, 9);
    assert!(!fifo.is_deferred(9));
}

#[test]
fn events_for_a_vcpu_without_a_control_block_are_dropped() {
    let mut fifo = fifo();
    let guest = Guest::new(&mut fifo);
    guest.set_word(3, 0);
    assert_eq!(fifo.set_pending(&guest, 3, 1), Raised::default());
    assert_eq!(guest.word(3), 0);
}

#[test]
fn closing_clears_pending_but_leaves_the_port_queued_and_busy() {
    let mut fifo = fifo();
    let guest = Guest::new(&mut fifo);
    guest.set_word(3, 0);
    fifo.set_pending(&guest, 3, 0);
    fifo.clear_pending(&guest, 3);
    assert_eq!(guest.word(3), LINKED);
    assert!(fifo.is_busy(&guest, 3));
    assert_eq!(guest.consume(DEFAULT), Some((3, false)), "the guest skips it");
    assert!(!fifo.is_busy(&guest, 3));
}

#[test]
fn deactivating_returns_every_frame_and_forgets_everything() {
    let mut fifo = fifo();
    let guest = Guest::new(&mut fifo);
    fifo.set_priority(3, 1).unwrap();
    fifo.defer(2000);
    let held = fifo.deactivate();
    assert_eq!(held.as_slice(), &[CONTROL_FRAME, ARRAY_FRAME]);
    assert!(!fifo.is_active());
    assert_eq!(fifo.frames().count(), 0);
    assert_eq!(fifo.priority(3), Some(DEFAULT));
    assert!(!fifo.is_deferred(2000));
    assert_eq!(fifo.event_word(1), None);
    assert_eq!(fifo.expand_array(1), Err(XenError::EOPNOTSUPP));
    // And it may be switched on again.
    assert_eq!(fifo.init_control(0, CONTROL_FRAME, CONTROL_OFFSET), Ok(true));
    drop(guest);
}
