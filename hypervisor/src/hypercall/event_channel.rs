//! `event_channel_op(cmd, arg)`: the 2-level and FIFO event-channel ABIs.
//! The rules are in `hypervisor::services::{ports, fifo}`; this file copies
//! arguments in and results out, as Xen's `do_event_channel_op` does (a
//! result is written back only when the operation succeeded), and takes
//! and drops the type references on the FIFO ABI's guest frames.

use core::mem::{offset_of, size_of};

use hypercalls::abi::event_channel::*;
use hypercalls::XenError;

use super::{Args, HypercallResult};
use crate::arch::guest_access;
use crate::events;

/// An argument structure as bytes, read from and written back to the guest.
struct Argument<const N: usize> {
    address: u64,
    bytes: [u8; N],
}

impl<const N: usize> Argument<N> {
    fn read(address: u64) -> Result<Self, XenError> {
        let mut bytes = [0u8; N];
        guest_access::read(address, &mut bytes).map_err(|_| XenError::EFAULT)?;
        Ok(Self { address, bytes })
    }

    fn u16_at(&self, offset: usize) -> u16 {
        u16::from_le_bytes([self.bytes[offset], self.bytes[offset + 1]])
    }

    fn u32_at(&self, offset: usize) -> u32 {
        u32::from_le_bytes(self.bytes[offset..offset + 4].try_into().unwrap_or_default())
    }

    fn set_u32(&mut self, offset: usize, value: u32) {
        self.bytes[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
    }

    fn write_back(&self) -> Result<(), XenError> {
        guest_access::write(self.address, &self.bytes).map_err(|_| XenError::EFAULT)
    }
}

macro_rules! argument {
    ($type:ty, $address:expr) => {
        Argument::<{ size_of::<$type>() }>::read($address)?
    };
}

pub fn event_channel_op(Args([command, argument, ..]): Args) -> HypercallResult {
    // Xen's `int cmd`: the upper half of the register is ignored.
    match command as u32 {
        EVTCHNOP_alloc_unbound => {
            let mut op = argument!(EvtchnAllocUnbound, argument);
            let dom = op.u16_at(offset_of!(EvtchnAllocUnbound, dom));
            let remote = op.u16_at(offset_of!(EvtchnAllocUnbound, remote_dom));
            let port = events::with(|state, guest| state.channels.alloc_unbound(dom, remote, guest))?;
            op.set_u32(offset_of!(EvtchnAllocUnbound, port), port);
            op.write_back()?;
        }
        EVTCHNOP_bind_interdomain => {
            let mut op = argument!(EvtchnBindInterdomain, argument);
            let remote_dom = op.u16_at(offset_of!(EvtchnBindInterdomain, remote_dom));
            let remote_port = op.u32_at(offset_of!(EvtchnBindInterdomain, remote_port));
            let port =
                events::with(|state, guest| state.channels.bind_interdomain(remote_dom, remote_port, guest))?;
            op.set_u32(offset_of!(EvtchnBindInterdomain, local_port), port);
            op.write_back()?;
        }
        EVTCHNOP_bind_virq => {
            let mut op = argument!(EvtchnBindVirq, argument);
            let virq = op.u32_at(offset_of!(EvtchnBindVirq, virq));
            let vcpu = op.u32_at(offset_of!(EvtchnBindVirq, vcpu));
            let port = events::with(|state, guest| state.channels.bind_virq(virq, vcpu, guest))?;
            op.set_u32(offset_of!(EvtchnBindVirq, port), port);
            op.write_back()?;
        }
        EVTCHNOP_bind_ipi => {
            let mut op = argument!(EvtchnBindIpi, argument);
            let vcpu = op.u32_at(offset_of!(EvtchnBindIpi, vcpu));
            let port = events::with(|state, guest| state.channels.bind_ipi(vcpu, guest))?;
            op.set_u32(offset_of!(EvtchnBindIpi, port), port);
            op.write_back()?;
        }
        EVTCHNOP_bind_pirq => {
            let op = argument!(EvtchnBindPirq, argument);
            return bind_pirq(op.u32_at(offset_of!(EvtchnBindPirq, pirq)));
        }
        EVTCHNOP_close => {
            let op = argument!(EvtchnClose, argument);
            let port = op.u32_at(offset_of!(EvtchnClose, port));
            events::with(|state, guest| state.channels.close(port, guest))?;
        }
        EVTCHNOP_send => {
            let op = argument!(EvtchnSend, argument);
            let port = op.u32_at(offset_of!(EvtchnSend, port));
            events::with(|state, guest| state.channels.send(port, guest))?;
        }
        EVTCHNOP_status => {
            let mut status: EvtchnStatus =
                guest_access::read_struct(argument).map_err(|_| XenError::EFAULT)?;
            let found = events::with(|state, _| state.channels.status(status.dom, status.port))?;
            status.status = found.status;
            status.vcpu = found.vcpu;
            for (word, value) in status.u.iter_mut().zip(found.words) {
                if let Some(value) = value {
                    *word = value;
                }
            }
            guest_access::write_struct(argument, &status).map_err(|_| XenError::EFAULT)?;
        }
        EVTCHNOP_bind_vcpu => {
            let op = argument!(EvtchnBindVcpu, argument);
            let port = op.u32_at(offset_of!(EvtchnBindVcpu, port));
            let vcpu = op.u32_at(offset_of!(EvtchnBindVcpu, vcpu));
            events::with(|state, _| state.channels.bind_vcpu(port, vcpu))?;
        }
        EVTCHNOP_unmask => {
            let op = argument!(EvtchnUnmask, argument);
            let port = op.u32_at(offset_of!(EvtchnUnmask, port));
            events::with(|state, guest| state.channels.unmask(port, guest))?;
        }
        EVTCHNOP_reset => {
            let reset: EvtchnReset = guest_access::read_struct(argument).map_err(|_| XenError::EFAULT)?;
            let released = events::with(|state, guest| state.channels.reset(reset.dom, guest))?;
            if let Some(frames) = released {
                for &frame in frames.as_slice() {
                    events::release_guest_frame(frame);
                }
                log::info!("events: guest reset its event channels, back to the 2-level ABI");
            }
        }
        EVTCHNOP_set_priority => {
            let op: EvtchnSetPriority = guest_access::read_struct(argument).map_err(|_| XenError::EFAULT)?;
            events::with(|state, _| state.channels.set_priority(op.port, op.priority))?;
        }
        EVTCHNOP_init_control => {
            let mut op: EvtchnInitControl =
                guest_access::read_struct(argument).map_err(|_| XenError::EFAULT)?;
            init_control(&op)?;
            op.link_bits = EVTCHN_FIFO_LINK_BITS as u8;
            guest_access::write_struct(argument, &op).map_err(|_| XenError::EFAULT)?;
        }
        EVTCHNOP_expand_array => {
            let op: EvtchnExpandArray = guest_access::read_struct(argument).map_err(|_| XenError::EFAULT)?;
            expand_array(op.array_gfn)?;
        }
        _ => return Err(XenError::ENOSYS),
    }
    Ok(0)
}

/// Takes a writable type reference on a guest frame the FIFO ABI will
/// use (Xen's `map_guest_page`): anything but the guest's own ordinary
/// memory is `EINVAL`. A PV guest names frames by machine frame number.
fn hold_fifo_frame(gfn: u64) -> Result<(), XenError> {
    events::hold_guest_frame(gfn).map_err(|_| XenError::EINVAL)
}

/// `EVTCHNOP_init_control`, in Xen's order: an unknown vCPU is `ENOENT`;
/// a block that crosses the page, is misaligned or is the vCPU's second,
/// and a frame that is not the guest's writable memory, are `EINVAL`. The
/// checks and the switch are separate steps so that the event lock is
/// never held while the frame table's lock is taken.
fn init_control(op: &EvtchnInitControl) -> Result<(), XenError> {
    events::with(|state, _| state.channels.check_init_control(op.vcpu, op.offset))?;
    hold_fifo_frame(op.control_gfn)?;
    let switched = events::with(|state, guest| {
        let was_fifo = state.channels.fifo().is_active();
        state.channels.init_control(op.vcpu, op.control_gfn, op.offset, guest).map(|()| !was_fifo)
    });
    match switched {
        Ok(true) => log::info!("events: guest switched to the FIFO ABI (vCPU {} control block)", op.vcpu),
        Ok(false) => {}
        Err(_) => events::release_guest_frame(op.control_gfn),
    }
    switched.map(|_| ())
}

/// `EVTCHNOP_expand_array`: without FIFO `EOPNOTSUPP`, with a full array
/// `ENOSPC`, with a frame that is not the guest's writable memory `EINVAL`.
fn expand_array(gfn: u64) -> Result<(), XenError> {
    events::with(|state, _| state.channels.check_expand_array())?;
    hold_fifo_frame(gfn)?;
    let added = events::with(|state, guest| state.channels.expand_array(gfn, guest));
    if added.is_err() {
        events::release_guest_frame(gfn);
    }
    added
}

/// Physical IRQs a domU could name (QEMU's 24 GSIs plus Xen's 32 extra
/// for a domU); the guest has access to none of them.
const DOMU_PIRQS: u32 = 24 + 32;

/// `EVTCHNOP_bind_pirq`: out of range is `EINVAL`, anything else `EPERM`
/// (no physical IRQ is delegated to the guest).
fn bind_pirq(pirq: u32) -> HypercallResult {
    if pirq < DOMU_PIRQS {
        Err(XenError::EPERM)
    } else {
        Err(XenError::EINVAL)
    }
}

/// The pre-3.2 `event_channel_op_compat(op)`: `struct evtchn_op` is the
/// command followed by the argument union (at offset 4: no member of the
/// union needs 8-byte alignment). Later commands are not offered this way.
pub fn event_channel_op_compat(Args([op, ..]): Args) -> HypercallResult {
    let mut command = [0u8; 4];
    guest_access::read(op, &mut command).map_err(|_| XenError::EFAULT)?;
    let command = u32::from_le_bytes(command);
    match command {
        EVTCHNOP_alloc_unbound
        | EVTCHNOP_bind_interdomain
        | EVTCHNOP_bind_virq
        | EVTCHNOP_bind_pirq
        | EVTCHNOP_close
        | EVTCHNOP_send
        | EVTCHNOP_status
        | EVTCHNOP_bind_ipi
        | EVTCHNOP_bind_vcpu
        | EVTCHNOP_unmask => event_channel_op(Args([u64::from(command), op + 4, 0, 0, 0])),
        _ => Err(XenError::ENOSYS),
    }
}
