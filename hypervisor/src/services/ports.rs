//! Event-channel port tables with Xen's semantics.
//!
//! Two domains have ports: the guest, and the hypervisor's built-in
//! backends, which play domain 0 (they own the remote ends of the console
//! and xenstore channels, as xenconsoled and xenstored do under Xen). The
//! guest starts with the 2-level ABI: its pending and mask bits live in its
//! `shared_info` page and are changed through `drivers::evtchn`. It may
//! switch to the FIFO ABI ([`super::fifo`], the hypercalls in `fifo_abi`),
//! which keeps the same port table but raises events through event words
//! and queues in guest frames. The backends' pending bits are a private
//! bitmap the hypervisor drains ([`EventChannels::take_backend_pending`]).
//!
//! Facts kept from Xen:
//! * Port 0 is reserved; new ports take the lowest free number.
//! * A port is *valid* once its bucket of [`PORTS_PER_BUCKET`] exists; the
//!   table grows a bucket at a time up to [`NR_PORTS`]. Invalid ports give
//!   `EINVAL`; valid but closed ones report `EVTCHNSTAT_closed`.
//! * A guest may create and inspect ports only in its own domain (`EPERM`
//!   for domain 0, `ESRCH` for domains that do not exist), but may bind to
//!   an unbound port another domain offers it.
//! * Binding an interdomain channel marks the new local port pending, since
//!   notifications sent to the unbound remote end were dropped.
//! * Closing a port clears its pending bit; closing one end of an
//!   interdomain channel leaves the other end unbound to the closer.
//! * The port table holds [`NR_PORTS`] ports under either ABI (as if the
//!   toolstack had set `max_evtchn_port` to 4095); under FIFO a free port
//!   still on a queue is skipped when allocating.

use core::sync::atomic::Ordering;

use drivers::evtchn;
use drivers::shared_info::{SharedInfoView, VcpuInfoView};
use hypercalls::abi::event_channel::*;
use hypercalls::abi::xen::{DomId, DOMID_SELF, NR_VIRQS, VIRQ_DEBUG, VIRQ_TIMER, VIRQ_XENOPROF, VIRQ_XENPMU};
use hypercalls::XenError;

use super::fifo::{FifoState, GuestWords};

pub type Port = EvtchnPort;

/// Ports the 2-level ABI can name.
pub const NR_PORTS: Port = EVTCHN_2L_NR_CHANNELS as Port;
/// How many ports become valid at a time (Xen allocates `struct evtchn`s
/// in page-sized buckets of 64).
pub const PORTS_PER_BUCKET: Port = 64;
/// The guest has one vCPU.
pub const MAX_VCPUS: u32 = 1;
const BITMAP_WORDS: usize = NR_PORTS as usize / 64;
// One summary bit per bitmap word (`backend_pending_words`).
const _: () = assert!(BITMAP_WORDS <= 64);

/// The two domains that own ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Guest,
    Backend,
}

/// What a port is bound to (Xen's `ECS_*` states).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    Free,
    Reserved,
    /// Waiting for domain `remote` to bind to it.
    Unbound {
        remote: DomId,
    },
    Interdomain {
        remote: Side,
        remote_port: Port,
    },
    Virq(u32),
    Ipi,
}

impl Binding {
    /// Xen's `evtchn_usable`: only bound ports take pending/unmask updates.
    fn usable(self) -> bool {
        !matches!(self, Binding::Free | Binding::Reserved)
    }
}

#[derive(Clone, Copy, Debug)]
struct Channel {
    binding: Binding,
    vcpu: u32,
}

const FREE: Channel = Channel { binding: Binding::Free, vcpu: 0 };

/// One domain's ports.
struct PortTable {
    channels: [Channel; NR_PORTS as usize],
    /// Ports below this are valid (whole buckets).
    valid: Port,
    /// vCPU 0's VIRQ bindings (0: unbound), as Xen's `virq_to_evtchn`.
    virqs: [Port; NR_VIRQS as usize],
}

impl PortTable {
    const fn new() -> Self {
        let mut channels = [FREE; NR_PORTS as usize];
        channels[0].binding = Binding::Reserved;
        Self { channels, valid: PORTS_PER_BUCKET, virqs: [0; NR_VIRQS as usize] }
    }

    fn channel(&self, port: Port) -> Result<&Channel, XenError> {
        if port < self.valid {
            Ok(&self.channels[port as usize])
        } else {
            Err(XenError::EINVAL)
        }
    }

    fn channel_mut(&mut self, port: Port) -> Result<&mut Channel, XenError> {
        if port < self.valid {
            Ok(&mut self.channels[port as usize])
        } else {
            Err(XenError::EINVAL)
        }
    }

    /// The lowest free port that is not `busy`, growing the table by a
    /// bucket if needed. The port stays free until the caller binds it.
    fn find_free(&mut self, busy: impl Fn(Port) -> bool) -> Result<Port, XenError> {
        if let Some(port) =
            (0..self.valid).find(|&port| self.channels[port as usize].binding == Binding::Free && !busy(port))
        {
            return Ok(port);
        }
        if self.valid >= NR_PORTS {
            return Err(XenError::ENOSPC);
        }
        let port = self.valid;
        self.valid += PORTS_PER_BUCKET;
        Ok(port)
    }

    fn bind(&mut self, port: Port, binding: Binding, vcpu: u32) {
        self.channels[port as usize] = Channel { binding, vcpu };
    }
}

/// The guest's event memory: its `shared_info` page, the `vcpu_info` of
/// vCPU 0 (in `shared_info` or wherever `VCPUOP_register_vcpu_info` moved
/// it), and access to the frames the FIFO ABI uses.
#[derive(Clone, Copy)]
pub struct GuestEvents<'a> {
    pub shared: &'a SharedInfoView,
    pub vcpu: &'a VcpuInfoView,
    pub words: &'a dyn GuestWords,
}

impl GuestEvents<'_> {
    /// Xen's `local_events_need_delivery`: an upcall is pending and not masked.
    pub fn need_delivery(&self) -> bool {
        self.vcpu.evtchn_upcall_pending.load(Ordering::SeqCst) != 0
            && self.vcpu.evtchn_upcall_mask.load(Ordering::SeqCst) == 0
    }
}

/// Counters a blocked or polling vCPU watches to know it was woken
/// (Xen's `vcpu_kick` and `evtchn_check_pollers`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WakeCounters {
    /// Times the guest's `evtchn_upcall_pending` went from 0 to 1.
    pub kicks: u64,
    /// Times a guest port's pending bit went from 0 to 1 (masked or not).
    pub newly_pending: u64,
}

/// Xen's `virq_is_global`: global VIRQs are bound on vCPU 0 and may be
/// moved; per-vCPU ones (the timer above all) may not. x86 treats every
/// architecture VIRQ (`VIRQ_ARCH_*`) as global.
pub fn virq_is_global(virq: u32) -> bool {
    !matches!(virq, VIRQ_TIMER | VIRQ_DEBUG | VIRQ_XENOPROF | VIRQ_XENPMU)
}

/// A port's state as `EVTCHNOP_status` reports it: the status and, where
/// the status has one, the union's words (the rest is left as it was).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortStatus {
    pub status: u32,
    pub vcpu: u32,
    pub words: [Option<u32>; 2],
}

/// Every event channel of the guest and of the backend domain.
pub struct EventChannels {
    guest_domid: DomId,
    backend_domid: DomId,
    guest: PortTable,
    backend: PortTable,
    backend_pending: [u64; BITMAP_WORDS],
    /// Bit `i` is set iff `backend_pending[i]` is non-zero, so the check on
    /// every return to the guest costs one load instead of a scan.
    backend_pending_words: u64,
    wake: WakeCounters,
    /// The guest's FIFO state (inactive: 2-level events).
    fifo: FifoState,
}

impl EventChannels {
    pub const fn new(guest_domid: DomId, backend_domid: DomId) -> Self {
        Self {
            guest_domid,
            backend_domid,
            guest: PortTable::new(),
            backend: PortTable::new(),
            backend_pending: [0; BITMAP_WORDS],
            backend_pending_words: 0,
            wake: WakeCounters { kicks: 0, newly_pending: 0 },
            fifo: FifoState::new(),
        }
    }

    fn table(&self, side: Side) -> &PortTable {
        match side {
            Side::Guest => &self.guest,
            Side::Backend => &self.backend,
        }
    }

    fn table_mut(&mut self, side: Side) -> &mut PortTable {
        match side {
            Side::Guest => &mut self.guest,
            Side::Backend => &mut self.backend,
        }
    }

    fn domid(&self, side: Side) -> DomId {
        match side {
            Side::Guest => self.guest_domid,
            Side::Backend => self.backend_domid,
        }
    }

    /// Xen's `rcu_lock_domain_by_any_id` from the guest: `DOMID_SELF` or an
    /// existing domain id.
    fn lookup_any(&self, dom: DomId) -> Result<Side, XenError> {
        if dom == DOMID_SELF {
            return Ok(Side::Guest);
        }
        self.lookup_id(dom)
    }

    /// Xen's `rcu_lock_domain_by_id`: existing domains only.
    fn lookup_id(&self, dom: DomId) -> Result<Side, XenError> {
        if dom == self.guest_domid {
            Ok(Side::Guest)
        } else if dom == self.backend_domid {
            Ok(Side::Backend)
        } else {
            Err(XenError::ESRCH)
        }
    }

    /// The `XSM_TARGET` check for a request from the unprivileged guest.
    fn guest_may_target(side: Side) -> Result<(), XenError> {
        match side {
            Side::Guest => Ok(()),
            Side::Backend => Err(XenError::EPERM),
        }
    }

    pub fn wake_counters(&self) -> WakeCounters {
        self.wake
    }

    /// What `port` of `side` is bound to, if the port is valid.
    pub fn binding(&self, side: Side, port: Port) -> Option<Binding> {
        self.table(side).channel(port).ok().map(|channel| channel.binding)
    }

    /// Marks `port` of `side` pending, as Xen's `evtchn_port_set_pending`.
    fn set_pending(&mut self, side: Side, port: Port, events: GuestEvents<'_>) {
        let Ok(&channel) = self.table(side).channel(port) else { return };
        if !channel.binding.usable() {
            return;
        }
        match side {
            Side::Guest => {
                let (newly_pending, kick) = self.raise_guest_port(port, channel.vcpu, events);
                if newly_pending {
                    self.wake.newly_pending += 1;
                }
                if kick {
                    self.wake.kicks += 1;
                }
            }
            Side::Backend => {
                self.backend_pending[port as usize / 64] |= 1 << (port % 64);
                self.backend_pending_words |= 1 << (port / 64);
            }
        }
    }

    fn clear_pending(&mut self, side: Side, port: Port, events: GuestEvents<'_>) {
        match side {
            Side::Guest if self.fifo.is_active() => self.fifo.clear_pending(events.words, port),
            Side::Guest => {
                let _ = evtchn::clear_pending(events.shared, port);
            }
            Side::Backend => {
                let word = port as usize / 64;
                self.backend_pending[word] &= !(1 << (port % 64));
                if self.backend_pending[word] == 0 {
                    self.backend_pending_words &= !(1 << word);
                }
            }
        }
    }

    /// The lowest backend port with an event waiting, cleared as it is taken.
    /// Whether any backend port has an event waiting.
    pub const fn has_backend_pending(&self) -> bool {
        self.backend_pending_words != 0
    }

    pub fn take_backend_pending(&mut self) -> Option<Port> {
        if self.backend_pending_words == 0 {
            return None;
        }
        let index = self.backend_pending_words.trailing_zeros() as usize;
        let word = &mut self.backend_pending[index];
        let bit = word.trailing_zeros();
        *word &= !(1 << bit);
        if *word == 0 {
            self.backend_pending_words &= !(1 << index);
        }
        Some(index as Port * 64 + bit)
    }

    /// The lowest port of `side` free for a new binding.
    fn find_free(&mut self, side: Side, events: GuestEvents<'_>) -> Result<Port, XenError> {
        match side {
            Side::Guest if self.fifo.is_active() => {
                let fifo = &self.fifo;
                self.guest.find_free(|port| fifo.is_busy(events.words, port))
            }
            _ => self.table_mut(side).find_free(|_| false),
        }
    }

    /// Binds a new port (Xen's `evtchn_port_init` follows every binding).
    fn bind_new(&mut self, side: Side, port: Port, binding: Binding, vcpu: u32) {
        self.table_mut(side).bind(port, binding, vcpu);
        if side == Side::Guest {
            self.fifo.init_port(port);
        }
    }

    fn alloc_unbound_in(
        &mut self,
        side: Side,
        remote: DomId,
        events: GuestEvents<'_>,
    ) -> Result<Port, XenError> {
        let port = self.find_free(side, events)?;
        self.bind_new(side, port, Binding::Unbound { remote }, 0);
        Ok(port)
    }

    fn bind_interdomain_from(
        &mut self,
        local: Side,
        remote: Side,
        remote_port: Port,
        events: GuestEvents<'_>,
    ) -> Result<Port, XenError> {
        let local_port = self.find_free(local, events)?;
        let local_domid = self.domid(local);
        let target = self.table(remote).channel(remote_port)?;
        if target.binding != (Binding::Unbound { remote: local_domid }) {
            return Err(XenError::EINVAL);
        }
        let remote_vcpu = target.vcpu;
        self.bind_new(local, local_port, Binding::Interdomain { remote, remote_port }, 0);
        self.table_mut(remote).bind(
            remote_port,
            Binding::Interdomain { remote: local, remote_port: local_port },
            remote_vcpu,
        );
        self.set_pending(local, local_port, events);
        Ok(local_port)
    }

    /// Sets up a channel between a fresh guest port and a fresh backend port,
    /// as the toolstack and a backend do for the console and xenstore
    /// (`alloc_unbound` in the guest for domain 0, then `bind_interdomain`
    /// from domain 0). Returns (guest port, backend port).
    pub fn connect_backend(&mut self, events: GuestEvents<'_>) -> Result<(Port, Port), XenError> {
        let guest_port = self.alloc_unbound_in(Side::Guest, self.backend_domid, events)?;
        let backend_port = self.bind_interdomain_from(Side::Backend, Side::Guest, guest_port, events)?;
        Ok((guest_port, backend_port))
    }

    /// `EVTCHNOP_alloc_unbound` from the guest.
    pub fn alloc_unbound(
        &mut self,
        dom: DomId,
        remote_dom: DomId,
        events: GuestEvents<'_>,
    ) -> Result<Port, XenError> {
        let side = self.lookup_any(dom)?;
        // Xen finds the port before the permission check, so a full table
        // reports ENOSPC first.
        self.find_free(side, events)?;
        Self::guest_may_target(side)?;
        let remote = if remote_dom == DOMID_SELF { self.guest_domid } else { remote_dom };
        self.alloc_unbound_in(side, remote, events)
    }

    /// `EVTCHNOP_bind_interdomain` from the guest (to a backend or, for a
    /// loopback channel, to itself).
    pub fn bind_interdomain(
        &mut self,
        remote_dom: DomId,
        remote_port: Port,
        events: GuestEvents<'_>,
    ) -> Result<Port, XenError> {
        let remote_dom = if remote_dom == DOMID_SELF { self.guest_domid } else { remote_dom };
        let remote = self.lookup_id(remote_dom)?;
        self.bind_interdomain_from(Side::Guest, remote, remote_port, events)
    }

    /// `EVTCHNOP_bind_virq`.
    pub fn bind_virq(&mut self, virq: u32, vcpu: u32, events: GuestEvents<'_>) -> Result<Port, XenError> {
        if virq >= NR_VIRQS {
            return Err(XenError::EINVAL);
        }
        if virq_is_global(virq) && vcpu != 0 {
            return Err(XenError::EINVAL);
        }
        if vcpu >= MAX_VCPUS {
            return Err(XenError::ENOENT);
        }
        if self.guest.virqs[virq as usize] != 0 {
            return Err(XenError::EEXIST);
        }
        let port = self.find_free(Side::Guest, events)?;
        self.bind_new(Side::Guest, port, Binding::Virq(virq), vcpu);
        self.guest.virqs[virq as usize] = port;
        Ok(port)
    }

    /// `EVTCHNOP_bind_ipi`.
    pub fn bind_ipi(&mut self, vcpu: u32, events: GuestEvents<'_>) -> Result<Port, XenError> {
        if vcpu >= MAX_VCPUS {
            return Err(XenError::ENOENT);
        }
        let port = self.find_free(Side::Guest, events)?;
        self.bind_new(Side::Guest, port, Binding::Ipi, vcpu);
        Ok(port)
    }

    /// `EVTCHNOP_close` from the guest.
    pub fn close(&mut self, port: Port, events: GuestEvents<'_>) -> Result<(), XenError> {
        self.close_on(Side::Guest, port, events)
    }

    fn close_on(&mut self, side: Side, port: Port, events: GuestEvents<'_>) -> Result<(), XenError> {
        let channel = *self.table(side).channel(port)?;
        match channel.binding {
            Binding::Free | Binding::Reserved => return Err(XenError::EINVAL),
            Binding::Unbound { .. } | Binding::Ipi => {}
            Binding::Virq(virq) => {
                let table = self.table_mut(side);
                if table.virqs[virq as usize] == port {
                    table.virqs[virq as usize] = 0;
                }
            }
            Binding::Interdomain { remote, remote_port } => {
                let closer = self.domid(side);
                if let Ok(other) = self.table_mut(remote).channel_mut(remote_port) {
                    other.binding = Binding::Unbound { remote: closer };
                }
            }
        }
        self.clear_pending(side, port, events);
        self.table_mut(side).bind(port, Binding::Free, 0);
        Ok(())
    }

    /// `EVTCHNOP_send` from the guest.
    pub fn send(&mut self, port: Port, events: GuestEvents<'_>) -> Result<(), XenError> {
        self.send_from(Side::Guest, port, events)
    }

    /// A backend notifies the guest through its end of a channel. A channel
    /// the guest has closed drops the notification, as Xen does.
    pub fn backend_send(&mut self, port: Port, events: GuestEvents<'_>) -> Result<(), XenError> {
        self.send_from(Side::Backend, port, events)
    }

    fn send_from(&mut self, side: Side, port: Port, events: GuestEvents<'_>) -> Result<(), XenError> {
        match self.table(side).channel(port)?.binding {
            Binding::Interdomain { remote, remote_port } => self.set_pending(remote, remote_port, events),
            Binding::Ipi => self.set_pending(side, port, events),
            Binding::Unbound { .. } => {}
            Binding::Free | Binding::Reserved | Binding::Virq(_) => return Err(XenError::EINVAL),
        }
        Ok(())
    }

    /// Fires a VIRQ the guest may have bound (a no-op if it has not).
    pub fn raise_virq(&mut self, virq: u32, events: GuestEvents<'_>) {
        if let Some(&port) = self.guest.virqs.get(virq as usize) {
            if port != 0 {
                self.set_pending(Side::Guest, port, events);
            }
        }
    }

    /// `EVTCHNOP_status`.
    pub fn status(&self, dom: DomId, port: Port) -> Result<PortStatus, XenError> {
        let side = self.lookup_any(dom)?;
        let channel = self.table(side).channel(port)?;
        Self::guest_may_target(side)?;
        let (status, words) = match channel.binding {
            Binding::Free | Binding::Reserved => (EVTCHNSTAT_closed, [None, None]),
            Binding::Unbound { remote } => (EVTCHNSTAT_unbound, [Some(u32::from(remote)), None]),
            Binding::Interdomain { remote, remote_port } => {
                (EVTCHNSTAT_interdomain, [Some(u32::from(self.domid(remote))), Some(remote_port)])
            }
            Binding::Virq(virq) => (EVTCHNSTAT_virq, [Some(virq), None]),
            Binding::Ipi => (EVTCHNSTAT_ipi, [None, None]),
        };
        Ok(PortStatus { status, vcpu: channel.vcpu, words })
    }

    /// `EVTCHNOP_bind_vcpu`.
    pub fn bind_vcpu(&mut self, port: Port, vcpu: u32) -> Result<(), XenError> {
        if vcpu >= MAX_VCPUS {
            return Err(XenError::ENOENT);
        }
        let channel = self.guest.channel_mut(port)?;
        match channel.binding {
            Binding::Virq(virq) if virq_is_global(virq) => channel.vcpu = vcpu,
            Binding::Unbound { .. } | Binding::Interdomain { .. } => channel.vcpu = vcpu,
            _ => return Err(XenError::EINVAL),
        }
        Ok(())
    }

    /// `EVTCHNOP_unmask`: a closed port is accepted and left alone.
    pub fn unmask(&mut self, port: Port, events: GuestEvents<'_>) -> Result<(), XenError> {
        let channel = *self.guest.channel(port)?;
        if channel.binding.usable() && self.unmask_guest_port(port, channel.vcpu, events) {
            self.wake.kicks += 1;
        }
        Ok(())
    }

    /// Whether a guest port is pending, for `SCHEDOP_poll`: ports past the
    /// ABI's range are invalid; unbound or not-yet-valid ones never are.
    pub fn guest_port_pending(&self, port: Port, events: GuestEvents<'_>) -> Result<bool, XenError> {
        if port >= NR_PORTS {
            return Err(XenError::EINVAL);
        }
        let usable = self.guest.channel(port).is_ok_and(|channel| channel.binding.usable());
        Ok(usable && self.guest_port_is_pending(port, events))
    }
}

mod fifo_abi;
#[cfg(test)]
mod fifo_tests;
#[cfg(test)]
mod tests;
