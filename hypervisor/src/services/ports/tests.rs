use super::*;
use crate::services::fifo::model::Guest;
use hypercalls::abi::xen::{VIRQ_CONSOLE, VIRQ_DOM_EXC};

const GUEST: DomId = 1;
const DOM0: DomId = 0;

pub(super) struct World {
    pub channels: Box<EventChannels>,
    pub shared: Box<SharedInfoView>,
    /// Guest frames for the FIFO ABI (unused under 2-level events).
    pub guest: Guest,
}

impl World {
    pub fn new() -> Self {
        Self {
            channels: Box::new(EventChannels::new(GUEST, DOM0)),
            shared: Box::new(SharedInfoView::new()),
            guest: Guest::unregistered(),
        }
    }

    pub fn events(&self) -> GuestEvents<'_> {
        GuestEvents { shared: &self.shared, vcpu: &self.shared.vcpu_info[0], words: &self.guest }
    }

    /// Runs `f` with the channels and the guest's event memory.
    pub fn with<R>(&mut self, f: impl FnOnce(&mut EventChannels, GuestEvents<'_>) -> R) -> R {
        let events =
            GuestEvents { shared: &self.shared, vcpu: &self.shared.vcpu_info[0], words: &self.guest };
        f(&mut self.channels, events)
    }

    pub fn alloc_unbound(&mut self, dom: DomId, remote: DomId) -> Result<Port, XenError> {
        self.with(|c, e| c.alloc_unbound(dom, remote, e))
    }

    pub fn bind_virq(&mut self, virq: u32, vcpu: u32) -> Result<Port, XenError> {
        self.with(|c, e| c.bind_virq(virq, vcpu, e))
    }

    pub fn bind_ipi(&mut self, vcpu: u32) -> Result<Port, XenError> {
        self.with(|c, e| c.bind_ipi(vcpu, e))
    }

    fn pending(&self, port: Port) -> bool {
        evtchn::is_pending(&self.shared, port).unwrap()
    }

    fn drain_guest(&self) -> Vec<Port> {
        let mut ports = Vec::new();
        evtchn::pending_ports(&self.shared, &self.shared.vcpu_info[0], |port| ports.push(port));
        ports
    }

    fn upcall_pending(&self) -> bool {
        self.shared.vcpu_info[0].evtchn_upcall_pending.load(Ordering::SeqCst) != 0
    }
}

pub(super) fn connected() -> (World, Port, Port) {
    let mut world = World::new();
    let (guest_port, backend_port) = world.with(|c, e| c.connect_backend(e)).unwrap();
    (world, guest_port, backend_port)
}

#[test]
fn port_zero_is_reserved_and_ports_start_at_one() {
    let mut world = World::new();
    assert_eq!(world.channels.binding(Side::Guest, 0), Some(Binding::Reserved));
    assert_eq!(world.alloc_unbound(DOMID_SELF, DOM0), Ok(1));
    assert_eq!(world.alloc_unbound(GUEST, DOMID_SELF), Ok(2));
    assert_eq!(world.channels.binding(Side::Guest, 2), Some(Binding::Unbound { remote: GUEST }));
    let status = world.channels.status(DOMID_SELF, 0).unwrap();
    assert_eq!(status.status, EVTCHNSTAT_closed);
    assert_eq!(world.with(|c, e| c.close(0, e)), Err(XenError::EINVAL));
    assert_eq!(world.with(|c, e| c.send(0, e)), Err(XenError::EINVAL));
}

#[test]
fn backend_channels_are_interdomain_both_ways_and_notify_the_backend() {
    let (mut world, guest_port, backend_port) = connected();
    assert_eq!((guest_port, backend_port), (1, 1));
    assert_eq!(
        world.channels.binding(Side::Guest, 1),
        Some(Binding::Interdomain { remote: Side::Backend, remote_port: 1 })
    );
    let status = world.channels.status(DOMID_SELF, 1).unwrap();
    assert_eq!((status.status, status.words), (EVTCHNSTAT_interdomain, [Some(0), Some(1)]));
    // Binding marked the backend's new port pending.
    assert_eq!(world.channels.take_backend_pending(), Some(1));
    assert_eq!(world.channels.take_backend_pending(), None);
    world.with(|c, e| c.send(guest_port, e)).unwrap();
    assert_eq!(world.channels.take_backend_pending(), Some(backend_port));
    world.with(|c, e| c.backend_send(backend_port, e)).unwrap();
    assert_eq!(world.drain_guest(), vec![guest_port]);
}

#[test]
fn a_guest_may_rebind_to_a_backend_port_it_closed() {
    let (mut world, guest_port, backend_port) = connected();
    world.with(|c, e| c.close(guest_port, e)).unwrap();
    assert_eq!(world.channels.binding(Side::Backend, backend_port), Some(Binding::Unbound { remote: GUEST }));
    // The backend's notifications are dropped meanwhile.
    assert_eq!(world.with(|c, e| c.backend_send(backend_port, e)), Ok(()));
    assert!(world.drain_guest().is_empty());
    let port = world.with(|c, e| c.bind_interdomain(DOM0, backend_port, e)).unwrap();
    assert_eq!(port, guest_port, "the lowest free port is reused");
    assert!(world.pending(port), "a fresh interdomain port starts pending");
}

#[test]
fn loopback_channels_deliver_both_ways() {
    let mut world = World::new();
    let offered = world.alloc_unbound(DOMID_SELF, DOMID_SELF).unwrap();
    let bound = world.with(|c, e| c.bind_interdomain(DOMID_SELF, offered, e)).unwrap();
    assert_ne!(offered, bound);
    assert_eq!(world.drain_guest(), vec![bound]);
    world.with(|c, e| c.send(bound, e)).unwrap();
    assert_eq!(world.drain_guest(), vec![offered]);
    world.with(|c, e| c.send(offered, e)).unwrap();
    assert_eq!(world.drain_guest(), vec![bound]);
    world.with(|c, e| c.close(offered, e)).unwrap();
    assert_eq!(world.channels.status(GUEST, bound).unwrap().status, EVTCHNSTAT_unbound);
}

#[test]
fn bind_interdomain_checks_domain_port_and_state() {
    let (mut world, _, backend_port) = connected();
    assert_eq!(world.with(|c, e| c.bind_interdomain(7, 1, e)), Err(XenError::ESRCH));
    assert_eq!(world.with(|c, e| c.bind_interdomain(DOM0, 4000, e)), Err(XenError::EINVAL));
    // Already connected: not unbound.
    assert_eq!(world.with(|c, e| c.bind_interdomain(DOM0, backend_port, e)), Err(XenError::EINVAL));
    // Unbound, but offered to someone else.
    let port = world.alloc_unbound(DOMID_SELF, 5).unwrap();
    assert_eq!(world.with(|c, e| c.bind_interdomain(DOMID_SELF, port, e)), Err(XenError::EINVAL));
    // A free port.
    assert_eq!(world.with(|c, e| c.bind_interdomain(DOMID_SELF, 9, e)), Err(XenError::EINVAL));
}

#[test]
fn the_guest_may_not_act_on_domain_zero_or_unknown_domains() {
    let mut world = World::new();
    assert_eq!(world.alloc_unbound(DOM0, GUEST), Err(XenError::EPERM));
    assert_eq!(world.alloc_unbound(3, GUEST), Err(XenError::ESRCH));
    assert_eq!(world.channels.status(DOM0, 1), Err(XenError::EPERM));
    assert_eq!(world.channels.status(42, 1), Err(XenError::ESRCH));
    assert_eq!(world.channels.status(DOM0, 9999), Err(XenError::EINVAL), "port checked before permission");
    assert_eq!(world.with(|c, e| c.reset(DOM0, e)), Err(XenError::EPERM));
    assert_eq!(world.with(|c, e| c.reset(9, e)), Err(XenError::ESRCH));
}

#[test]
fn virq_binding_follows_xen() {
    let mut world = World::new();
    assert_eq!(world.bind_virq(NR_VIRQS, 0), Err(XenError::EINVAL));
    assert_eq!(world.bind_virq(u32::MAX, 0), Err(XenError::EINVAL));
    assert_eq!(world.bind_virq(VIRQ_CONSOLE, 1), Err(XenError::EINVAL), "global VIRQs live on vCPU 0");
    assert_eq!(world.bind_virq(VIRQ_TIMER, 1), Err(XenError::ENOENT), "no vCPU 1");
    let timer = world.bind_virq(VIRQ_TIMER, 0).unwrap();
    assert_eq!(world.bind_virq(VIRQ_TIMER, 0), Err(XenError::EEXIST));
    let status = world.channels.status(DOMID_SELF, timer).unwrap();
    assert_eq!((status.status, status.vcpu, status.words[0]), (EVTCHNSTAT_virq, 0, Some(VIRQ_TIMER)));
    world.with(|c, e| c.raise_virq(VIRQ_TIMER, e));
    assert_eq!(world.drain_guest(), vec![timer]);
    // Unbound VIRQs fire into the void.
    world.with(|c, e| c.raise_virq(VIRQ_DOM_EXC, e));
    assert!(!world.upcall_pending());
    // VIRQ ports cannot be sent on; closing frees the VIRQ for rebinding.
    assert_eq!(world.with(|c, e| c.send(timer, e)), Err(XenError::EINVAL));
    world.with(|c, e| c.close(timer, e)).unwrap();
    assert_eq!(world.bind_virq(VIRQ_TIMER, 0), Ok(timer));
}

#[test]
fn ipis_notify_their_own_port() {
    let mut world = World::new();
    assert_eq!(world.bind_ipi(1), Err(XenError::ENOENT));
    let ipi = world.bind_ipi(0).unwrap();
    assert_eq!(world.channels.status(DOMID_SELF, ipi).unwrap().status, EVTCHNSTAT_ipi);
    world.with(|c, e| c.send(ipi, e)).unwrap();
    assert_eq!(world.drain_guest(), vec![ipi]);
}

#[test]
fn sending_on_an_unbound_port_is_silently_dropped() {
    let mut world = World::new();
    let port = world.alloc_unbound(DOMID_SELF, DOM0).unwrap();
    assert_eq!(world.with(|c, e| c.send(port, e)), Ok(()));
    assert!(!world.pending(port));
    assert_eq!(world.channels.take_backend_pending(), None);
}

#[test]
fn closing_clears_pending_and_rejects_closed_ports() {
    let mut world = World::new();
    let ipi = world.bind_ipi(0).unwrap();
    world.with(|c, e| c.send(ipi, e)).unwrap();
    assert!(world.pending(ipi));
    world.with(|c, e| c.close(ipi, e)).unwrap();
    assert!(!world.pending(ipi));
    assert_eq!(world.with(|c, e| c.close(ipi, e)), Err(XenError::EINVAL));
    assert_eq!(world.with(|c, e| c.close(NR_PORTS, e)), Err(XenError::EINVAL));
}

#[test]
fn ports_become_valid_a_bucket_at_a_time() {
    let mut world = World::new();
    assert_eq!(world.channels.status(DOMID_SELF, PORTS_PER_BUCKET - 1).unwrap().status, EVTCHNSTAT_closed);
    assert_eq!(world.channels.status(DOMID_SELF, PORTS_PER_BUCKET), Err(XenError::EINVAL));
    for expected in 1..=PORTS_PER_BUCKET {
        assert_eq!(world.bind_ipi(0), Ok(expected));
    }
    assert_eq!(world.channels.status(DOMID_SELF, PORTS_PER_BUCKET).unwrap().status, EVTCHNSTAT_ipi);
    assert_eq!(
        world.channels.status(DOMID_SELF, 2 * PORTS_PER_BUCKET - 1).unwrap().status,
        EVTCHNSTAT_closed
    );
    assert_eq!(world.with(|c, e| c.unmask(2 * PORTS_PER_BUCKET, e)), Err(XenError::EINVAL));
}

#[test]
fn the_table_fills_up_with_enospc() {
    let mut world = World::new();
    for expected in 1..NR_PORTS {
        assert_eq!(world.bind_ipi(0), Ok(expected));
    }
    assert_eq!(world.bind_ipi(0), Err(XenError::ENOSPC));
    assert_eq!(world.alloc_unbound(DOM0, GUEST), Err(XenError::EPERM), "dom0's table is not full");
    assert_eq!(world.alloc_unbound(DOMID_SELF, DOM0), Err(XenError::ENOSPC));
    // Reset frees everything but port 0.
    world.with(|c, e| c.reset(DOMID_SELF, e)).unwrap();
    assert_eq!(world.bind_ipi(0), Ok(1));
}

#[test]
fn bind_vcpu_moves_only_what_xen_lets_move() {
    let (mut world, guest_port, _) = connected();
    assert_eq!(world.channels.bind_vcpu(guest_port, 0), Ok(()));
    assert_eq!(world.channels.bind_vcpu(guest_port, 1), Err(XenError::ENOENT));
    let timer = world.bind_virq(VIRQ_TIMER, 0).unwrap();
    assert_eq!(world.channels.bind_vcpu(timer, 0), Err(XenError::EINVAL), "per-vCPU VIRQ");
    let console = world.bind_virq(VIRQ_CONSOLE, 0).unwrap();
    assert_eq!(world.channels.bind_vcpu(console, 0), Ok(()));
    let ipi = world.bind_ipi(0).unwrap();
    assert_eq!(world.channels.bind_vcpu(ipi, 0), Err(XenError::EINVAL));
    assert_eq!(world.channels.bind_vcpu(30, 0), Err(XenError::EINVAL), "free port");
    assert_eq!(world.channels.bind_vcpu(NR_PORTS, 0), Err(XenError::EINVAL));
}

#[test]
fn unmask_re_raises_a_masked_pending_port_and_counts_the_kick() {
    let (mut world, guest_port, backend_port) = connected();
    evtchn::mask(&world.shared, guest_port).unwrap();
    let before = world.channels.wake_counters();
    world.with(|c, e| c.backend_send(backend_port, e)).unwrap();
    let after_send = world.channels.wake_counters();
    assert!(!world.upcall_pending(), "masked: no upcall");
    assert_eq!(after_send.kicks, before.kicks);
    assert_eq!(after_send.newly_pending, before.newly_pending + 1, "pollers still see it");
    world.with(|c, e| c.unmask(guest_port, e)).unwrap();
    assert!(world.upcall_pending());
    assert_eq!(world.channels.wake_counters().kicks, before.kicks + 1);
    // Unmasking a closed port is accepted and does nothing.
    assert_eq!(world.with(|c, e| c.unmask(40, e)), Ok(()));
}

#[test]
fn need_delivery_respects_the_upcall_mask() {
    let mut world = World::new();
    let ipi = world.bind_ipi(0).unwrap();
    world.with(|c, e| c.send(ipi, e)).unwrap();
    assert!(world.events().need_delivery());
    world.shared.vcpu_info[0].evtchn_upcall_mask.store(1, Ordering::SeqCst);
    assert!(!world.events().need_delivery());
}

#[test]
fn poll_sees_pending_ports_and_rejects_out_of_range_ones() {
    let mut world = World::new();
    let ipi = world.bind_ipi(0).unwrap();
    assert_eq!(world.channels.guest_port_pending(ipi, world.events()), Ok(false));
    world.with(|c, e| c.send(ipi, e)).unwrap();
    assert_eq!(world.channels.guest_port_pending(ipi, world.events()), Ok(true));
    assert_eq!(world.channels.guest_port_pending(500, world.events()), Ok(false));
    assert_eq!(world.channels.guest_port_pending(NR_PORTS, world.events()), Err(XenError::EINVAL));
}

#[test]
fn set_priority_is_not_a_2_level_feature() {
    let mut world = World::new();
    assert_eq!(world.channels.set_priority(1, 0), Err(XenError::ENOSYS));
    assert_eq!(world.channels.set_priority(NR_PORTS, 0), Err(XenError::EINVAL));
}

#[test]
fn global_and_per_vcpu_virqs_match_xen() {
    assert!(!virq_is_global(VIRQ_TIMER));
    assert!(!virq_is_global(VIRQ_DEBUG));
    assert!(virq_is_global(VIRQ_CONSOLE));
    assert!(virq_is_global(VIRQ_DOM_EXC));
    assert!(virq_is_global(hypercalls::abi::xen::VIRQ_ARCH_0));
}
