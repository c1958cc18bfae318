//! `event_channel_op` (`xen/event_channel.h`): the PV interrupt mechanism.
//!
//! A port is bound to a source (a virtual IRQ, another domain's port, an
//! IPI); when the source fires, Xen sets the port's bit in
//! `SharedInfo::evtchn_pending` and, unless masked, upcalls the vCPU.

use super::xen::{DomId, XenUlong};

xen_consts! {
    EVTCHN_COMMANDS;
    pub const EVTCHNOP_bind_interdomain: u32 = 0;
    pub const EVTCHNOP_bind_virq: u32 = 1;
    pub const EVTCHNOP_bind_pirq: u32 = 2;
    pub const EVTCHNOP_close: u32 = 3;
    pub const EVTCHNOP_send: u32 = 4;
    pub const EVTCHNOP_status: u32 = 5;
    pub const EVTCHNOP_alloc_unbound: u32 = 6;
    pub const EVTCHNOP_bind_ipi: u32 = 7;
    pub const EVTCHNOP_bind_vcpu: u32 = 8;
    pub const EVTCHNOP_unmask: u32 = 9;
    pub const EVTCHNOP_reset: u32 = 10;
    pub const EVTCHNOP_init_control: u32 = 11;
    pub const EVTCHNOP_expand_array: u32 = 12;
    pub const EVTCHNOP_set_priority: u32 = 13;
}

xen_consts! {
    EVTCHN_VALUES;
    /// `EvtchnBindPirq::flags`: the PIRQ may be shared.
    pub const BIND_PIRQ__WILL_SHARE: u32 = 1;
    /// `EvtchnStatus::status` values.
    pub const EVTCHNSTAT_closed: u32 = 0;
    pub const EVTCHNSTAT_unbound: u32 = 1;
    pub const EVTCHNSTAT_interdomain: u32 = 2;
    pub const EVTCHNSTAT_pirq: u32 = 3;
    pub const EVTCHNSTAT_virq: u32 = 4;
    pub const EVTCHNSTAT_ipi: u32 = 5;
    /// Ports of the 2-level ABI: bits in `XenUlong`-word bitmaps of
    /// `XenUlong`-bit selector (64 * 64 on x86_64).
    pub const EVTCHN_2L_NR_CHANNELS: usize =
        XenUlong::BITS as usize * core::mem::size_of::<XenUlong>() * 8;
    /// The FIFO ABI.
    pub const EVTCHN_FIFO_PRIORITY_MAX: u32 = 0;
    pub const EVTCHN_FIFO_PRIORITY_DEFAULT: u32 = 7;
    pub const EVTCHN_FIFO_PRIORITY_MIN: u32 = 15;
    pub const EVTCHN_FIFO_MAX_QUEUES: usize = EVTCHN_FIFO_PRIORITY_MIN as usize + 1;
    pub const EVTCHN_FIFO_PENDING: u32 = 31;
    pub const EVTCHN_FIFO_MASKED: u32 = 30;
    pub const EVTCHN_FIFO_LINKED: u32 = 29;
    pub const EVTCHN_FIFO_BUSY: u32 = 28;
    pub const EVTCHN_FIFO_LINK_BITS: u32 = 17;
    pub const EVTCHN_FIFO_LINK_MASK: u32 = (1 << EVTCHN_FIFO_LINK_BITS) - 1;
    pub const EVTCHN_FIFO_NR_CHANNELS: u32 = 1 << EVTCHN_FIFO_LINK_BITS;
}

xen_typedefs! {
    EVTCHN_TYPES;
    /// An event-channel port number.
    pub type EvtchnPort = u32 => "evtchn_port_t";
    /// One word of the FIFO event array.
    pub type EventWord = u32 => "event_word_t";
}

xen_sys_struct! {
    /// `EVTCHNOP_alloc_unbound`: IN dom (usually `DOMID_SELF`), remote_dom;
    /// OUT port.
    pub type EvtchnAllocUnbound = xen_sys::evtchn_alloc_unbound => "struct evtchn_alloc_unbound" {
        dom, remote_dom, port
    }
}

xen_sys_struct! {
    /// `EVTCHNOP_bind_interdomain`: IN remote_dom, remote_port; OUT local_port.
    pub type EvtchnBindInterdomain = xen_sys::evtchn_bind_interdomain
        => "struct evtchn_bind_interdomain" { remote_dom, remote_port, local_port }
}

xen_sys_struct! {
    /// `EVTCHNOP_bind_virq`: IN virq, vcpu; OUT port.
    pub type EvtchnBindVirq = xen_sys::evtchn_bind_virq => "struct evtchn_bind_virq" {
        virq, vcpu, port
    }
}

xen_sys_struct! {
    /// `EVTCHNOP_bind_pirq`: IN pirq, flags; OUT port.
    pub type EvtchnBindPirq = xen_sys::evtchn_bind_pirq => "struct evtchn_bind_pirq" {
        pirq, flags, port
    }
}

xen_sys_struct! {
    /// `EVTCHNOP_bind_ipi`: IN vcpu; OUT port.
    pub type EvtchnBindIpi = xen_sys::evtchn_bind_ipi => "struct evtchn_bind_ipi" { vcpu, port }
}

xen_sys_struct! {
    /// `EVTCHNOP_close`.
    pub type EvtchnClose = xen_sys::evtchn_close => "struct evtchn_close" { port }
}

xen_sys_struct! {
    /// `EVTCHNOP_send`: notify the other end of `port`.
    pub type EvtchnSend = xen_sys::evtchn_send => "struct evtchn_send" { port }
}

xen_sys_struct! {
    /// `EVTCHNOP_bind_vcpu`: deliver `port` to `vcpu` from now on.
    pub type EvtchnBindVcpu = xen_sys::evtchn_bind_vcpu => "struct evtchn_bind_vcpu" { port, vcpu }
}

xen_sys_struct! {
    /// `EVTCHNOP_unmask`: unmask `port`, re-raising it if pending.
    pub type EvtchnUnmask = xen_sys::evtchn_unmask => "struct evtchn_unmask" { port }
}

xen_struct! {
    /// `EVTCHNOP_reset`: close all of a domain's ports.
    #[derive(Default, PartialEq, Eq)]
    pub struct EvtchnReset => "struct evtchn_reset" {
        pub dom: DomId,
    }
}

xen_struct! {
    /// `EVTCHNOP_status`: IN dom, port; OUT status (`EVTCHNSTAT_*`), vcpu
    /// and the union `u`, whose meaning depends on status (see accessors).
    #[derive(Default, PartialEq, Eq)]
    pub struct EvtchnStatus => "struct evtchn_status" {
        pub dom: DomId,
        pub port: EvtchnPort,
        pub status: u32,
        pub vcpu: u32,
        pub u: [u32; 2],
    }
}

impl EvtchnStatus {
    /// `u.unbound.dom` / `u.interdomain.dom`: the remote domain.
    pub fn remote_dom(&self) -> DomId {
        self.u[0] as DomId
    }

    /// `u.interdomain.port`: the remote port.
    pub fn remote_port(&self) -> EvtchnPort {
        self.u[1]
    }

    /// `u.virq` (`EVTCHNSTAT_virq`) or `u.pirq` (`EVTCHNSTAT_pirq`).
    pub fn irq(&self) -> u32 {
        self.u[0]
    }
}

xen_struct! {
    /// `EVTCHNOP_init_control`: switch to the FIFO ABI on one vCPU.
    #[derive(Default, PartialEq, Eq)]
    pub struct EvtchnInitControl => "struct evtchn_init_control" {
        pub control_gfn: u64,
        pub offset: u32,
        pub vcpu: u32,
        pub link_bits: u8,
        pub _pad: [u8; 7],
    }
}

xen_struct! {
    /// `EVTCHNOP_expand_array`: add a page to the FIFO event array.
    #[derive(Default, PartialEq, Eq)]
    pub struct EvtchnExpandArray => "struct evtchn_expand_array" {
        pub array_gfn: u64,
    }
}

xen_struct! {
    /// `EVTCHNOP_set_priority` (FIFO ABI).
    #[derive(Default, PartialEq, Eq)]
    pub struct EvtchnSetPriority => "struct evtchn_set_priority" {
        pub port: EvtchnPort,
        pub priority: u32,
    }
}

xen_struct! {
    /// The per-vCPU FIFO control block.
    #[derive(Default, PartialEq, Eq)]
    pub struct EvtchnFifoControlBlock => "struct evtchn_fifo_control_block" {
        pub ready: u32,
        pub _rsvd: u32,
        pub head: [u32; EVTCHN_FIFO_MAX_QUEUES],
    }
}

module_checks! {
    consts: [EVTCHN_COMMANDS, EVTCHN_VALUES, EVTCHN_TYPES],
    types: [
        EvtchnAllocUnbound,
        EvtchnBindInterdomain,
        EvtchnBindVirq,
        EvtchnBindPirq,
        EvtchnBindIpi,
        EvtchnClose,
        EvtchnSend,
        EvtchnBindVcpu,
        EvtchnUnmask,
        EvtchnReset,
        EvtchnStatus,
        EvtchnInitControl,
        EvtchnExpandArray,
        EvtchnSetPriority,
        EvtchnFifoControlBlock,
    ],
}
