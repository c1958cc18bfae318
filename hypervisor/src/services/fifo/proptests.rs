//! Random interleavings of the hypervisor's and the guest's actions keep
//! the queues sound (see [`Guest::check_invariants`]).

use proptest::prelude::*;

use super::model::{Guest, Interference};
use super::word::PENDING;
use super::*;

const PORTS: Port = 12;
const USED_PRIORITIES: u8 = 4;

#[derive(Clone, Debug)]
enum Step {
    Raise(Port),
    GuestMask(Port),
    GuestUnmask(Port),
    HypercallUnmask(Port),
    Consume(u8),
    SetPriority(Port, u8),
    Close(Port),
    /// A raise during which the guest acts on the tail word.
    RaiseWithInterference(Port, Interference),
}

fn port() -> impl Strategy<Value = Port> {
    1..=PORTS
}

fn priority() -> impl Strategy<Value = u8> {
    0..USED_PRIORITIES
}

fn step() -> impl Strategy<Value = Step> {
    let interference =
        prop_oneof![priority().prop_map(Interference::Consume), Just(Interference::ToggleMask)];
    prop_oneof![
        4 => port().prop_map(Step::Raise),
        1 => port().prop_map(Step::GuestMask),
        2 => port().prop_map(Step::GuestUnmask),
        1 => port().prop_map(Step::HypercallUnmask),
        3 => priority().prop_map(Step::Consume),
        1 => (port(), priority()).prop_map(|(port, priority)| Step::SetPriority(port, priority)),
        1 => port().prop_map(Step::Close),
        1 => (port(), interference).prop_map(|(port, how)| Step::RaiseWithInterference(port, how)),
    ]
}

fn apply(fifo: &mut FifoState, guest: &Guest, step: &Step) {
    match *step {
        Step::Raise(port) => {
            fifo.set_pending(guest, port, 0);
        }
        Step::GuestMask(port) => guest.mask(port),
        Step::GuestUnmask(port) => {
            guest.unmask(fifo, port);
        }
        Step::HypercallUnmask(port) => {
            fifo.unmask(guest, port, 0);
        }
        Step::Consume(priority) => {
            guest.consume(priority);
        }
        Step::SetPriority(port, priority) => fifo.set_priority(port, u32::from(priority)).unwrap(),
        Step::Close(port) => fifo.clear_pending(guest, port),
        Step::RaiseWithInterference(port, how) => {
            guest.interference.set(Some(how));
            fifo.set_pending(guest, port, 0);
            guest.interference.set(None);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn queues_stay_sound_under_any_interleaving(steps in proptest::collection::vec(step(), 1..120)) {
        let mut fifo = Box::new(FifoState::new());
        let guest = Guest::new(&mut fifo);
        for (index, step) in steps.iter().enumerate() {
            apply(&mut fifo, &guest, step);
            if let Err(broken) = guest.check_invariants(&fifo, 1..=PORTS) {
                return Err(TestCaseError::fail(format!("after step {index} {step:?}: {broken}")));
            }
        }
        // Draining every queue handles each pending unmasked event once.
        let mut handled = Vec::new();
        for priority in 0..PRIORITIES as u8 {
            while let Some((port, was_handled)) = guest.consume(priority) {
                if was_handled {
                    handled.push(port);
                }
            }
        }
        let mut unique = handled.clone();
        unique.sort_unstable();
        unique.dedup();
        prop_assert_eq!(unique.len(), handled.len(), "a port was handled twice: {:?}", handled);
        for port in 1..=PORTS {
            let word = guest.word(port);
            prop_assert!(word & PENDING == 0 || fifo.is_masked(&guest, port),
                "port {} still pending and unmasked after draining ({:#x})", port, word);
        }
        prop_assert_eq!(guest.ready(), 0);
    }

    #[test]
    fn every_raised_unmasked_event_is_delivered_exactly_once(
        raises in proptest::collection::vec((port(), priority()), 1..60),
    ) {
        let mut fifo = Box::new(FifoState::new());
        let guest = Guest::new(&mut fifo);
        for port in 1..=PORTS {
            guest.unmask(&mut fifo, port);
        }
        let mut expected = std::collections::BTreeSet::new();
        for &(port, priority) in &raises {
            fifo.set_priority(port, u32::from(priority)).unwrap();
            fifo.set_pending(&guest, port, 0);
            expected.insert(port);
        }
        let mut delivered = Vec::new();
        // Highest priority first, as Linux consumes.
        for priority in 0..USED_PRIORITIES {
            while let Some((port, handled)) = guest.consume(priority) {
                prop_assert!(handled);
                delivered.push(port);
            }
        }
        let set: std::collections::BTreeSet<_> = delivered.iter().copied().collect();
        prop_assert_eq!(set.len(), delivered.len());
        prop_assert_eq!(set, expected);
    }
}
