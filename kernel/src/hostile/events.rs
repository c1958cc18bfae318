//! Event-channel attacks: ports out of range, ports that are free, vCPUs
//! and virtual IRQs that do not exist, other domains' channels.
//!
//! Xen's answers (common/event_channel.c): a port that is not valid is
//! `-EINVAL` (`_evtchn_from_port` failing: close 655, send 791, status
//! 1016, unmask 1135, bind_interdomain 423), an unknown domain `-ESRCH`
//! (333, 399, 1010), a vCPU that does not exist `-ENOENT` (486, 1081), a
//! virtual IRQ out of range or a global one on another vCPU `-EINVAL`
//! (474, 483), one already bound `-EEXIST` (491); another domain's
//! channels are refused by XSM to a domU, `-EPERM`.

use hypercalls::abi::errno::*;
use hypercalls::abi::event_channel::*;
use hypercalls::abi::sched::SCHEDOP_poll;
use hypercalls::abi::xen::*;
use kernel::hostile_plan::{Attack, Expect};
use kernel::selftest::Outcome;

use super::env::Env;
use super::{expect, hc};
use crate::platform::{self, xen::events};

pub const ATTACKS: &[Attack<Env>] = &[
    Attack { name: "evtchn-send-port-4096", xsa: None, run: send_4096 },
    Attack { name: "evtchn-send-port-0xffffffff", xsa: None, run: send_max },
    Attack { name: "evtchn-close-out-of-range", xsa: None, run: close_out_of_range },
    Attack { name: "evtchn-close-free-port", xsa: None, run: close_free_port },
    Attack { name: "evtchn-unmask-out-of-range", xsa: None, run: unmask_out_of_range },
    Attack { name: "evtchn-status-out-of-range", xsa: None, run: status_out_of_range },
    Attack { name: "evtchn-status-unknown-domain", xsa: None, run: status_unknown_domain },
    Attack { name: "evtchn-status-names-own-domain", xsa: None, run: status_names_domain },
    Attack { name: "evtchn-bind-vcpu-unknown-vcpu", xsa: None, run: bind_vcpu_unknown },
    Attack { name: "evtchn-bind-virq-out-of-range", xsa: None, run: bind_virq_out_of_range },
    Attack { name: "evtchn-bind-virq-unknown-vcpu", xsa: None, run: bind_virq_unknown_vcpu },
    Attack { name: "evtchn-bind-global-virq-on-vcpu1", xsa: None, run: bind_global_virq },
    Attack { name: "evtchn-bind-virq-twice", xsa: None, run: bind_virq_twice },
    Attack { name: "evtchn-bind-interdomain-out-of-range", xsa: None, run: interdomain_out_of_range },
    Attack { name: "evtchn-bind-interdomain-unknown-domain", xsa: None, run: interdomain_unknown },
    Attack { name: "evtchn-alloc-unbound-unknown-domain", xsa: None, run: alloc_unknown },
    Attack { name: "evtchn-alloc-unbound-in-dom0", xsa: None, run: alloc_in_dom0 },
    Attack { name: "evtchn-reset-unknown-domain", xsa: None, run: reset_unknown },
    Attack { name: "evtchn-reset-dom0", xsa: None, run: reset_dom0 },
    Attack { name: "evtchn-bind-pirq-out-of-range", xsa: None, run: bind_pirq_out_of_range },
    Attack { name: "evtchn-fifo-control-block-in-hypervisor-frame", xsa: None, run: fifo_foreign },
    Attack { name: "evtchn-unknown-command", xsa: None, run: unknown_command },
    Attack { name: "sched-poll-out-of-range-port", xsa: None, run: poll_out_of_range },
    Attack { name: "sched-poll-too-many-ports", xsa: None, run: poll_too_many },
];

const EINVAL: Expect = Expect::Errno(XEN_EINVAL);
const ESRCH: Expect = Expect::Errno(XEN_ESRCH);
const UNKNOWN_DOMAIN: u64 = 0x1234;

fn port_op(command: u32, port: u64) -> i64 {
    let mut argument = [port];
    hc::evtchn(command, &mut argument)
}

fn send_4096(_: &mut Env) -> Outcome {
    expect(EINVAL, port_op(EVTCHNOP_send, 4096))
}

fn send_max(_: &mut Env) -> Outcome {
    expect(EINVAL, port_op(EVTCHNOP_send, 0xffff_ffff))
}

fn close_out_of_range(_: &mut Env) -> Outcome {
    expect(EINVAL, port_op(EVTCHNOP_close, 4096))
}

fn noop(_: u32) {}

/// A port that was valid and is free again: `ECS_FREE`, `-EINVAL` (671).
fn close_free_port(_: &mut Env) -> Outcome {
    let Ok(port) = events::alloc_unbound(DOMID_SELF, noop) else {
        return Outcome::Fail("setup: alloc_unbound failed".into());
    };
    let first = events::close(port);
    let second = port_op(EVTCHNOP_close, port.into());
    if first.is_err() {
        return Outcome::Fail(alloc::format!("setup: the first close failed ({first:?})"));
    }
    expect(EINVAL, second)
}

fn unmask_out_of_range(_: &mut Env) -> Outcome {
    expect(EINVAL, port_op(EVTCHNOP_unmask, 4096))
}

fn status(domid: u64, port: u64) -> (i64, [u64; 3]) {
    let mut argument = [domid | port << 32, 0, 0];
    let rc = hc::evtchn(EVTCHNOP_status, &mut argument);
    (rc, argument)
}

fn status_out_of_range(_: &mut Env) -> Outcome {
    expect(EINVAL, status(DOMID_SELF.into(), 4096).0)
}

fn status_unknown_domain(_: &mut Env) -> Outcome {
    expect(ESRCH, status(UNKNOWN_DOMAIN, 1).0)
}

/// The remote end of a loopback channel is reported by the guest's own
/// number, never `DOMID_SELF` (`chn->u.interdomain.remote_dom->domain_id`).
fn status_names_domain(env: &mut Env) -> Outcome {
    if env.status_domid == DOMID_SELF {
        return Outcome::Fail(alloc::format!("expected domain {}, got DOMID_SELF", env.own_domid));
    }
    Outcome::Pass
}

fn bind_vcpu_unknown(_: &mut Env) -> Outcome {
    let Ok(port) = events::alloc_unbound(DOMID_SELF, noop) else {
        return Outcome::Fail("setup: alloc_unbound failed".into());
    };
    let mut argument = [u64::from(port) | 4096 << 32];
    let rc = hc::evtchn(EVTCHNOP_bind_vcpu, &mut argument);
    let _ = events::close(port);
    expect(Expect::Errno(XEN_ENOENT), rc)
}

fn bind_virq(virq: u32, vcpu: u64) -> i64 {
    let mut argument = [u64::from(virq) | vcpu << 32, 0];
    let rc = hc::evtchn(EVTCHNOP_bind_virq, &mut argument);
    if rc == 0 {
        port_op(EVTCHNOP_close, argument[1] & 0xffff_ffff);
    }
    rc
}

fn bind_virq_out_of_range(_: &mut Env) -> Outcome {
    expect(EINVAL, bind_virq(NR_VIRQS, 0))
}

fn bind_virq_unknown_vcpu(_: &mut Env) -> Outcome {
    expect(Expect::Errno(XEN_ENOENT), bind_virq(VIRQ_DEBUG, 4096))
}

fn bind_global_virq(_: &mut Env) -> Outcome {
    expect(EINVAL, bind_virq(VIRQ_DOM_EXC, 1))
}

/// The kernel bound `VIRQ_TIMER` at boot.
fn bind_virq_twice(_: &mut Env) -> Outcome {
    expect(Expect::Errno(XEN_EEXIST), bind_virq(VIRQ_TIMER, 0))
}

fn bind_interdomain(domid: u64, port: u64) -> i64 {
    let mut argument = [domid | port << 32, 0];
    let rc = hc::evtchn(EVTCHNOP_bind_interdomain, &mut argument);
    if rc == 0 {
        port_op(EVTCHNOP_close, argument[1] & 0xffff_ffff);
    }
    rc
}

fn interdomain_out_of_range(_: &mut Env) -> Outcome {
    expect(EINVAL, bind_interdomain(DOMID_SELF.into(), 4096))
}

fn interdomain_unknown(_: &mut Env) -> Outcome {
    expect(ESRCH, bind_interdomain(UNKNOWN_DOMAIN, 1))
}

fn alloc_unbound(domid: u64) -> i64 {
    let mut argument = [domid | u64::from(DOMID_SELF) << 16];
    let rc = hc::evtchn(EVTCHNOP_alloc_unbound, &mut argument);
    if rc == 0 {
        // The port was allocated in `domid`; closing it there is not ours to do.
        crate::println!("hostile: note: a port was allocated in domain {domid}");
    }
    rc
}

fn alloc_unknown(_: &mut Env) -> Outcome {
    expect(ESRCH, alloc_unbound(UNKNOWN_DOMAIN))
}

/// A port in another domain: `xsm_evtchn_unbound` refuses a domU, `-EPERM`.
fn alloc_in_dom0(env: &mut Env) -> Outcome {
    if env.privileged {
        return Outcome::Skip("as dom0, domain 0 is the guest itself");
    }
    expect(Expect::Errno(XEN_EPERM), alloc_unbound(0))
}

fn reset(domid: u64) -> i64 {
    let mut argument = [domid];
    hc::evtchn(EVTCHNOP_reset, &mut argument)
}

fn reset_unknown(_: &mut Env) -> Outcome {
    expect(ESRCH, reset(UNKNOWN_DOMAIN))
}

/// Resetting another domain's channels is for its controller (`xsm_evtchn_reset`).
fn reset_dom0(env: &mut Env) -> Outcome {
    if env.privileged {
        return Outcome::Skip("as dom0, this would reset the guest's own channels");
    }
    expect(Expect::Errno(XEN_EPERM), reset(0))
}

/// `pirq >= d->nr_pirqs`: `-EINVAL` (event_channel.c, `evtchn_bind_pirq`).
fn bind_pirq_out_of_range(_: &mut Env) -> Outcome {
    let mut argument = [0x7fff_ffff, 0];
    expect(EINVAL, hc::evtchn(EVTCHNOP_bind_pirq, &mut argument))
}

/// A FIFO control block must be a guest page (`map_guest_page` fails for
/// a hypervisor frame: `-EINVAL`); the guest stays on 2-level events.
fn fifo_foreign(env: &mut Env) -> Outcome {
    let mut argument = [env.hypervisor_tables[1], 0, 0];
    expect(EINVAL, hc::evtchn(EVTCHNOP_init_control, &mut argument))
}

fn unknown_command(_: &mut Env) -> Outcome {
    let mut argument = [0u64; 4];
    expect(Expect::Errno(XEN_ENOSYS), hc::evtchn(99, &mut argument))
}

/// Polls with events masked, so the port list is read (common/sched/core.c:1482).
fn poll(ports: &[u32], count: u64) -> i64 {
    let platform = platform::current();
    let were_enabled = platform.interrupts_save_disable();
    let request = [hc::addr(ports), count, 1];
    let rc = hc::call(__HYPERVISOR_sched_op, [SCHEDOP_poll.into(), hc::addr(&request), 0, 0, 0]);
    platform.interrupts_restore(were_enabled);
    rc
}

fn poll_out_of_range(_: &mut Env) -> Outcome {
    expect(EINVAL, poll(&[4096], 1))
}

/// More than 128 ports: `-EINVAL` (common/sched/core.c:1445).
fn poll_too_many(_: &mut Env) -> Outcome {
    expect(EINVAL, poll(&[1; 4], 129))
}
