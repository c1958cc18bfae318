//! The port table under either ABI: where raising, unmasking and polling a
//! guest port go, and the hypercalls that switch the guest between the
//! 2-level and FIFO ABIs (`EVTCHNOP_init_control`, `EVTCHNOP_expand_array`,
//! `EVTCHNOP_set_priority`, `EVTCHNOP_reset`).
//!
//! The frames behind a control block or an event-array page are held by
//! the caller (a writable type reference) before they are handed in here,
//! and released by the caller when [`EventChannels::reset`] gives them back.

use core::sync::atomic::Ordering;

use drivers::evtchn;
use drivers::shared_info::VcpuInfoView;
use hypercalls::abi::xen::DomId;
use hypercalls::XenError;

use super::{EventChannels, GuestEvents, Port, Side};
use crate::services::fifo::{FifoState, HeldFrames};

/// Xen's `vcpu_mark_events_pending`: true if `evtchn_upcall_pending` went
/// from 0 to 1, i.e. the vCPU must be kicked.
fn mark_events_pending(vcpu: &VcpuInfoView) -> bool {
    vcpu.evtchn_upcall_pending.swap(1, Ordering::SeqCst) == 0
}

impl EventChannels {
    /// The guest's FIFO state, for inspection.
    pub fn fifo(&self) -> &FifoState {
        &self.fifo
    }

    /// Raises bound guest port `port` (events for vCPU `vcpu`) under the
    /// current ABI. Returns (newly pending, vCPU needs a kick).
    pub(super) fn raise_guest_port(
        &mut self,
        port: Port,
        vcpu: u32,
        events: GuestEvents<'_>,
    ) -> (bool, bool) {
        if self.fifo.is_active() {
            let raised = self.fifo.set_pending(events.words, port, vcpu);
            (raised.newly_pending, raised.notify_vcpu && mark_events_pending(events.vcpu))
        } else {
            let was_pending = evtchn::is_pending(events.shared, port).unwrap_or(true);
            let kick = evtchn::set_pending(events.shared, events.vcpu, port).unwrap_or(false);
            (!was_pending, kick)
        }
    }

    /// Unmasks bound guest port `port`; true if the vCPU needs a kick.
    pub(super) fn unmask_guest_port(&mut self, port: Port, vcpu: u32, events: GuestEvents<'_>) -> bool {
        if self.fifo.is_active() {
            self.fifo.unmask(events.words, port, vcpu).notify_vcpu && mark_events_pending(events.vcpu)
        } else {
            evtchn::unmask(events.shared, events.vcpu, port) == Ok(true)
        }
    }

    pub(super) fn guest_port_is_pending(&self, port: Port, events: GuestEvents<'_>) -> bool {
        if self.fifo.is_active() {
            self.fifo.is_pending(events.words, port)
        } else {
            evtchn::is_pending(events.shared, port).unwrap_or(false)
        }
    }

    /// What `EVTCHNOP_init_control` checks before the frame is taken.
    pub fn check_init_control(&self, vcpu: u32, offset: u32) -> Result<(), XenError> {
        self.fifo.check_init_control(vcpu, offset)
    }

    /// `EVTCHNOP_init_control` once the caller holds `frame` writable. The
    /// first control block switches the guest to FIFO: every bound port
    /// keeps its binding and gets the default priority, and a port pending
    /// in the 2-level bitmap is raised again once its event word exists.
    pub fn init_control(
        &mut self,
        vcpu: u32,
        frame: u64,
        offset: u32,
        events: GuestEvents<'_>,
    ) -> Result<(), XenError> {
        if !self.fifo.init_control(vcpu, frame, offset)? {
            return Ok(());
        }
        for port in 1..self.guest.valid {
            if !self.guest.channels[port as usize].binding.usable() {
                continue;
            }
            self.fifo.init_port(port);
            if evtchn::is_pending(events.shared, port) == Ok(true) {
                self.fifo.defer(port);
            }
        }
        Ok(())
    }

    /// What `EVTCHNOP_expand_array` checks before the frame is taken.
    pub fn check_expand_array(&self) -> Result<(), XenError> {
        self.fifo.check_expand_array()
    }

    /// `EVTCHNOP_expand_array` once the caller holds `frame` writable:
    /// events that waited for these words are raised now.
    pub fn expand_array(&mut self, frame: u64, events: GuestEvents<'_>) -> Result<(), XenError> {
        let covered = self.fifo.expand_array(frame)?;
        for port in covered.start.max(1)..covered.end.min(self.guest.valid) {
            if self.fifo.take_deferred(port) {
                self.set_pending(Side::Guest, port, events);
            }
        }
        Ok(())
    }

    /// `EVTCHNOP_set_priority`: the 2-level ABI has none (`ENOSYS`), a
    /// closed port has none (`EACCES`), and there are 16 (`EINVAL` past).
    pub fn set_priority(&mut self, port: Port, priority: u32) -> Result<(), XenError> {
        let channel = *self.guest.channel(port)?;
        if !self.fifo.is_active() {
            return Err(XenError::ENOSYS);
        }
        if !channel.binding.usable() {
            return Err(XenError::EACCES);
        }
        self.fifo.set_priority(port, priority)
    }

    /// `EVTCHNOP_reset`: closes every port of the guest but port 0 and
    /// returns it to 2-level events. Returns the FIFO frames to release.
    pub fn reset(&mut self, dom: DomId, events: GuestEvents<'_>) -> Result<Option<HeldFrames>, XenError> {
        let side = self.lookup_any(dom)?;
        Self::guest_may_target(side)?;
        for port in 1..self.guest.valid {
            let _ = self.close_on(Side::Guest, port, events);
        }
        Ok(self.fifo.is_active().then(|| self.fifo.deactivate()))
    }
}
