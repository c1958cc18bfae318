//! The port table under the FIFO ABI: switching from 2-level events and
//! back, and every port operation once switched.

use super::tests::{connected, World};
use super::*;
use crate::services::fifo::model::{ARRAY_FRAME, CONTROL_FRAME, CONTROL_OFFSET};
use crate::services::fifo::word::{LINKED, MASKED, PENDING, WORDS_PER_PAGE};
use crate::services::fifo::{DEFAULT_PRIORITY, MAX_ARRAY_PAGES};

const DEFAULT: u8 = DEFAULT_PRIORITY;

impl World {
    /// `EVTCHNOP_init_control` and one `EVTCHNOP_expand_array`, as Linux
    /// issues them at boot (its array page starts all MASKED).
    fn switch_to_fifo(&mut self) {
        self.with(|c, e| c.init_control(0, CONTROL_FRAME, CONTROL_OFFSET, e)).unwrap();
        self.add_array_page(ARRAY_FRAME);
    }

    fn add_array_page(&mut self, frame: u64) {
        self.guest.provide_array_page(frame);
        self.with(|c, e| c.expand_array(frame, e)).unwrap();
    }

    fn upcall(&self) -> bool {
        self.shared.vcpu_info[0].evtchn_upcall_pending.load(Ordering::SeqCst) != 0
    }

    fn clear_upcall(&self) {
        self.shared.vcpu_info[0].evtchn_upcall_pending.store(0, Ordering::SeqCst);
    }
}

#[test]
fn init_control_and_expand_array_check_their_arguments() {
    let mut world = World::new();
    assert_eq!(world.channels.check_init_control(1, 0), Err(XenError::ENOENT));
    assert_eq!(world.channels.check_init_control(0, 12), Err(XenError::EINVAL));
    assert_eq!(world.channels.check_init_control(0, 4096 - 64), Err(XenError::EINVAL));
    assert_eq!(world.channels.check_init_control(0, 4096 - 72), Ok(()));
    assert_eq!(world.channels.check_expand_array(), Err(XenError::EOPNOTSUPP));
    assert_eq!(world.with(|c, e| c.expand_array(ARRAY_FRAME, e)), Err(XenError::EOPNOTSUPP));
    world.switch_to_fifo();
    assert!(world.channels.fifo().is_active());
    assert_eq!(world.channels.check_init_control(0, 0), Err(XenError::EINVAL), "one block per vCPU");
    for frame in 1..MAX_ARRAY_PAGES as u64 {
        world.add_array_page(ARRAY_FRAME + frame);
    }
    assert_eq!(world.channels.check_expand_array(), Err(XenError::ENOSPC));
}

#[test]
fn switching_carries_2_level_pending_ports_over() {
    let (mut world, guest_port, backend_port) = connected();
    world.with(|c, e| c.backend_send(backend_port, e)).unwrap();
    let quiet = world.bind_ipi(0).unwrap();
    world.clear_upcall();
    world.with(|c, e| c.init_control(0, CONTROL_FRAME, CONTROL_OFFSET, e)).unwrap();
    assert!(world.channels.fifo().is_deferred(guest_port));
    assert!(!world.channels.fifo().is_deferred(quiet));
    // The page arrives masked: the event waits for the unmask.
    world.add_array_page(ARRAY_FRAME);
    assert_eq!(world.guest.word(guest_port), PENDING | MASKED);
    assert_eq!(world.guest.word(quiet), MASKED);
    assert!(!world.upcall());
    let kicks = world.channels.wake_counters().kicks;
    world.with(|c, e| c.unmask(guest_port, e)).unwrap();
    assert_eq!(world.guest.word(guest_port), PENDING | LINKED);
    assert_eq!(world.guest.head(DEFAULT), guest_port);
    assert_eq!(world.guest.ready(), 1 << DEFAULT);
    assert!(world.upcall());
    assert_eq!(world.channels.wake_counters().kicks, kicks + 1);
}

#[test]
fn events_go_to_the_queues_not_the_bitmaps_once_switched() {
    let (mut world, guest_port, backend_port) = connected();
    world.switch_to_fifo();
    world.guest.unmask(&mut FifoState::new(), guest_port); // clears MASKED only: nothing is pending
    let before = world.channels.wake_counters();
    world.with(|c, e| c.backend_send(backend_port, e)).unwrap();
    assert_eq!(world.guest.word(guest_port), PENDING | LINKED);
    assert!(world.upcall());
    assert!(!evtchn::is_pending(&world.shared, guest_port).unwrap(), "2-level bitmap untouched");
    let after = world.channels.wake_counters();
    assert_eq!((after.kicks, after.newly_pending), (before.kicks + 1, before.newly_pending + 1));
    assert_eq!(world.channels.guest_port_pending(guest_port, world.events()), Ok(true));
    // A second event on a queued port neither requeues nor kicks.
    world.clear_upcall();
    world.with(|c, e| c.backend_send(backend_port, e)).unwrap();
    assert!(!world.upcall());
    assert_eq!(world.guest.consume(DEFAULT), Some((guest_port, true)));
    assert_eq!(world.channels.guest_port_pending(guest_port, world.events()), Ok(false));
}

#[test]
fn set_priority_follows_xen() {
    let mut world = World::new();
    let ipi = world.bind_ipi(0).unwrap();
    assert_eq!(world.channels.set_priority(ipi, 3), Err(XenError::ENOSYS), "2-level");
    world.switch_to_fifo();
    assert_eq!(world.channels.set_priority(NR_PORTS, 3), Err(XenError::EINVAL));
    assert_eq!(world.channels.set_priority(ipi + 1, 3), Err(XenError::EACCES), "closed port");
    assert_eq!(world.channels.set_priority(ipi, 16), Err(XenError::EINVAL));
    assert_eq!(world.channels.set_priority(ipi, 3), Ok(()));
    world.guest.unmask(&mut FifoState::new(), ipi);
    world.with(|c, e| c.send(ipi, e)).unwrap();
    assert_eq!(world.guest.ready(), 1 << 3);
    assert_eq!(world.guest.head(3), ipi);
    // Binding again resets the priority.
    world.guest.consume(3);
    world.with(|c, e| c.close(ipi, e)).unwrap();
    assert_eq!(world.bind_ipi(0), Ok(ipi));
    assert_eq!(world.channels.fifo().priority(ipi), Some(DEFAULT));
}

#[test]
fn a_closed_port_still_queued_is_not_reused_until_consumed() {
    let mut world = World::new();
    world.switch_to_fifo();
    let ipi = world.bind_ipi(0).unwrap();
    world.guest.unmask(&mut FifoState::new(), ipi);
    world.with(|c, e| c.send(ipi, e)).unwrap();
    world.with(|c, e| c.close(ipi, e)).unwrap();
    assert_eq!(world.guest.word(ipi), LINKED, "close cleared PENDING only");
    let next = world.bind_ipi(0).unwrap();
    assert_ne!(next, ipi, "busy ports are skipped");
    assert_eq!(world.guest.consume(DEFAULT), Some((ipi, false)));
    assert_eq!(world.bind_ipi(0), Ok(ipi));
}

#[test]
fn events_for_ports_past_the_array_wait_for_the_next_page() {
    let mut world = World::new();
    world.switch_to_fifo();
    let port = (1..=WORDS_PER_PAGE + 1).map(|_| world.bind_ipi(0).unwrap()).last().unwrap();
    assert_eq!(port, WORDS_PER_PAGE + 1);
    world.with(|c, e| c.send(port, e)).unwrap();
    assert!(world.channels.fifo().is_deferred(port));
    assert_eq!(world.channels.guest_port_pending(port, world.events()), Ok(false));
    world.add_array_page(ARRAY_FRAME + 1);
    assert_eq!(world.guest.word(port), PENDING | MASKED);
    assert!(!world.channels.fifo().is_deferred(port));
}

#[test]
fn reset_returns_to_2_level_events_and_hands_back_the_frames() {
    let (mut world, guest_port, _) = connected();
    world.switch_to_fifo();
    let held = world.with(|c, e| c.reset(DOMID_SELF, e)).unwrap().expect("FIFO frames");
    assert_eq!(held.as_slice(), &[CONTROL_FRAME, ARRAY_FRAME]);
    assert!(!world.channels.fifo().is_active());
    assert_eq!(world.channels.binding(Side::Guest, guest_port), Some(Binding::Free));
    let ipi = world.bind_ipi(0).unwrap();
    world.with(|c, e| c.send(ipi, e)).unwrap();
    assert!(evtchn::is_pending(&world.shared, ipi).unwrap(), "2-level again");
    assert_eq!(world.with(|c, e| c.reset(DOMID_SELF, e)), Ok(None), "nothing to release under 2-level");
    // And FIFO may be set up afresh.
    assert_eq!(world.channels.check_init_control(0, CONTROL_OFFSET), Ok(()));
}
