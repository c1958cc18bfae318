//! `event_channel_op`: allocating, binding, signalling and closing ports.

use crate::abi::event_channel::*;
use crate::abi::xen::{__HYPERVISOR_event_channel_op, DomId, DOMID_SELF};
use crate::transport::{addr_of_mut, hypercall2};
use crate::XenError;

/// Issues `EVTCHNOP_<cmd>` on `arg`, which Xen reads and may update.
fn op<T>(cmd: u32, arg: &mut T) -> Result<(), XenError> {
    // SAFETY: every command used in this module takes exactly the
    // `evtchn_*` struct `T` named for it in event_channel.h; Xen reads and
    // writes only that struct, mutably borrowed for the call. Event-channel
    // operations do not touch other guest memory.
    super::unit(unsafe { hypercall2(__HYPERVISOR_event_channel_op, cmd as u64, addr_of_mut(arg)) })
}

/// Allocates a port that `remote_dom` may bind to; returns it.
pub fn alloc_unbound(remote_dom: DomId) -> Result<EvtchnPort, XenError> {
    let mut arg = EvtchnAllocUnbound { dom: DOMID_SELF, remote_dom, port: 0 };
    op(EVTCHNOP_alloc_unbound, &mut arg).map(|_| arg.port)
}

/// Binds a local port to `remote_port` of `remote_dom`; returns it.
pub fn bind_interdomain(remote_dom: DomId, remote_port: EvtchnPort) -> Result<EvtchnPort, XenError> {
    let mut arg = EvtchnBindInterdomain { remote_dom, remote_port, local_port: 0 };
    op(EVTCHNOP_bind_interdomain, &mut arg).map(|_| arg.local_port)
}

/// Binds virtual IRQ `virq` (`VIRQ_*`) on `vcpu` to a new port; returns it.
pub fn bind_virq(virq: u32, vcpu: u32) -> Result<EvtchnPort, XenError> {
    let mut arg = EvtchnBindVirq { virq, vcpu, port: 0 };
    op(EVTCHNOP_bind_virq, &mut arg).map(|_| arg.port)
}

/// Allocates a port for inter-processor interrupts to `vcpu`; returns it.
pub fn bind_ipi(vcpu: u32) -> Result<EvtchnPort, XenError> {
    let mut arg = EvtchnBindIpi { vcpu, port: 0 };
    op(EVTCHNOP_bind_ipi, &mut arg).map(|_| arg.port)
}

/// Signals the other end of `port`.
pub fn send(port: EvtchnPort) -> Result<(), XenError> {
    op(EVTCHNOP_send, &mut EvtchnSend { port })
}

/// Closes `port`.
pub fn close(port: EvtchnPort) -> Result<(), XenError> {
    op(EVTCHNOP_close, &mut EvtchnClose { port })
}

/// Unmasks `port`, re-raising the upcall if it is pending.
pub fn unmask(port: EvtchnPort) -> Result<(), XenError> {
    op(EVTCHNOP_unmask, &mut EvtchnUnmask { port })
}

/// Delivers `port` to `vcpu` from now on.
pub fn bind_vcpu(port: EvtchnPort, vcpu: u32) -> Result<(), XenError> {
    op(EVTCHNOP_bind_vcpu, &mut EvtchnBindVcpu { port, vcpu })
}

/// What `port` of `dom` is bound to.
pub fn status(dom: DomId, port: EvtchnPort) -> Result<EvtchnStatus, XenError> {
    let mut arg = EvtchnStatus { dom, port, ..EvtchnStatus::default() };
    op(EVTCHNOP_status, &mut arg).map(|_| arg)
}

/// `EVTCHNOP_init_control`: switches the domain to the FIFO ABI, with
/// vCPU `vcpu`'s control block at `offset` in guest frame `control_gfn` (a
/// PV guest's machine frame). Returns the number of link bits Xen uses.
///
/// # Safety
///
/// From now on Xen writes the control block at any time: the frame must be
/// set aside for it (read and written only atomically) for as long as the
/// domain uses the FIFO ABI.
pub unsafe fn init_control(control_gfn: u64, offset: u32, vcpu: u32) -> Result<u8, XenError> {
    let mut arg = EvtchnInitControl { control_gfn, offset, vcpu, ..EvtchnInitControl::default() };
    // SAFETY: `arg` is borrowed for the call; the control block's frame is
    // the caller's contract.
    let result = unsafe {
        hypercall2(__HYPERVISOR_event_channel_op, EVTCHNOP_init_control as u64, addr_of_mut(&mut arg))
    };
    super::unit(result).map(|()| arg.link_bits)
}

/// `EVTCHNOP_expand_array`: guest frame `array_gfn` becomes the next page of
/// event words (1024 ports a page).
///
/// # Safety
///
/// As for [`init_control`]: Xen writes the page's event words at any time.
pub unsafe fn expand_array(array_gfn: u64) -> Result<(), XenError> {
    let mut arg = EvtchnExpandArray { array_gfn };
    // SAFETY: `arg` is borrowed for the call; the page is the caller's contract.
    super::unit(unsafe {
        hypercall2(__HYPERVISOR_event_channel_op, EVTCHNOP_expand_array as u64, addr_of_mut(&mut arg))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::xen::VIRQ_TIMER;
    use crate::transport::testing::{read_guest, with_responder, write_guest};

    #[test]
    fn bind_virq_returns_the_port_xen_chose() {
        let (result, calls) = with_responder(
            |call| {
                let mut arg: EvtchnBindVirq = read_guest(call.args[1]);
                assert_eq!((arg.virq, arg.vcpu), (VIRQ_TIMER, 0));
                arg.port = 5;
                write_guest(call.args[1], arg);
                0
            },
            || bind_virq(VIRQ_TIMER, 0),
        );
        assert_eq!(result, Ok(5));
        assert_eq!(calls[0].nr, __HYPERVISOR_event_channel_op);
        assert_eq!(calls[0].args[0], EVTCHNOP_bind_virq as u64);
    }

    #[test]
    fn alloc_unbound_is_for_self() {
        let (result, _) = with_responder(
            |call| {
                let mut arg: EvtchnAllocUnbound = read_guest(call.args[1]);
                assert_eq!((arg.dom, arg.remote_dom), (DOMID_SELF, 0));
                arg.port = 9;
                write_guest(call.args[1], arg);
                0
            },
            || alloc_unbound(0),
        );
        assert_eq!(result, Ok(9));
    }

    #[test]
    fn send_names_the_port_and_reports_errors() {
        let (result, calls) = with_responder(
            |call| {
                let arg: EvtchnSend = read_guest(call.args[1]);
                assert_eq!(arg.port, 3);
                XenError::EINVAL.to_return()
            },
            || send(3),
        );
        assert_eq!(result, Err(XenError::EINVAL));
        assert_eq!(calls[0].args[0], EVTCHNOP_send as u64);
    }

    #[test]
    fn status_decodes_the_union() {
        let (result, _) = with_responder(
            |call| {
                let mut arg: EvtchnStatus = read_guest(call.args[1]);
                arg.status = EVTCHNSTAT_interdomain;
                arg.u = [1, 17];
                write_guest(call.args[1], arg);
                0
            },
            || status(DOMID_SELF, 4),
        );
        let status = result.unwrap();
        assert_eq!((status.port, status.status), (4, EVTCHNSTAT_interdomain));
        assert_eq!((status.remote_dom(), status.remote_port()), (1, 17));
    }
}
