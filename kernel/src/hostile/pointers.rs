//! Every hypercall that takes a pointer, given a null, a non-canonical, a
//! hypervisor and an unmapped one (`ptr-<kind>-<what>`). Xen copies with
//! `copy_from_guest`/`copy_to_guest`, which check `__addr_ok()` (below
//! 2^47 or at or above `HYPERVISOR_VIRT_END`, asm/x86_64/uaccess.h:46) and
//! fault softly: the usual answer is `-EFAULT`. The exceptions are Xen's
//! own: a null trap table clears the table (pv/callback.c:359), output
//! counts whose copy fails are ignored (mm.c:4352, 3973), reservation
//! operations report 0 extents done (common/memory.c:1408), areas Xen
//! writes later are only range-checked when registered
//! (`guest_handle_okay`, common/domain.c:1772), flush masks it cannot read
//! are `-EINVAL` (mm.c:3771), and `setup_table` puts a frame list it
//! cannot write in the status (`GNTST_bad_virt_addr`).

use core::fmt::Write;

use hypercalls::abi::callback::CALLBACKOP_register;
use hypercalls::abi::errno::*;
use hypercalls::abi::event_channel::EVTCHNOP_status;
use hypercalls::abi::grant_table::*;
use hypercalls::abi::memory::*;
use hypercalls::abi::physdev::PHYSDEVOP_set_iopl;
use hypercalls::abi::sched::{SCHEDOP_poll, SCHEDOP_shutdown};
use hypercalls::abi::vcpu::*;
use hypercalls::abi::version::{XENVER_extraversion, XENVER_get_features};
use hypercalls::abi::xen::*;
use kernel::hostile_plan::expect::{check, OK};
use kernel::hostile_plan::report::report;
use kernel::hostile_plan::{Expect, Summary};
use kernel::selftest::Outcome;

use super::env::{Env, VICTIM};
use super::hc::{self, Bad};
use crate::platform;

/// A raw return value and, for operations that report one, their status.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Answer {
    rc: i64,
    status: Option<i16>,
}

struct PointerAttack {
    what: &'static str,
    kinds: &'static [Bad],
    issue: fn(&Env, u64) -> Answer,
    expect: fn(Bad) -> (Expect, Option<i16>),
}

const ALL: &[Bad] = &Bad::ALL;
/// A null output pointer means "no output": nothing to attack.
const NOT_NULL: &[Bad] = &[Bad::NonCanonical, Bad::Hypervisor, Bad::Unmapped];

const EFAULT: Expect = Expect::Errno(XEN_EFAULT);

fn efault(_: Bad) -> (Expect, Option<i16>) {
    (EFAULT, None)
}

fn ok(_: Bad) -> (Expect, Option<i16>) {
    (OK, None)
}

fn einval(_: Bad) -> (Expect, Option<i16>) {
    (Expect::Errno(XEN_EINVAL), None)
}

/// Areas checked with `guest_handle_okay` only: null and unmapped pass.
fn range_checked(kind: Bad) -> (Expect, Option<i16>) {
    match kind {
        Bad::Null | Bad::Unmapped => (OK, None),
        Bad::NonCanonical | Bad::Hypervisor => (EFAULT, None),
    }
}

fn rc(rc: i64) -> Answer {
    Answer { rc, status: None }
}

const ATTACKS: &[PointerAttack] = &[
    PointerAttack { what: "set-trap-table", kinds: ALL, issue: set_trap_table, expect: trap_table_expect },
    PointerAttack { what: "mmu-update-requests", kinds: ALL, issue: mmu_update_requests, expect: efault },
    PointerAttack { what: "mmu-update-success-count", kinds: NOT_NULL, issue: mmu_update_done, expect: ok },
    PointerAttack { what: "mmuext-ops", kinds: ALL, issue: mmuext_ops, expect: efault },
    PointerAttack { what: "mmuext-success-count", kinds: NOT_NULL, issue: mmuext_done, expect: ok },
    PointerAttack { what: "mmuext-flush-vcpu-mask", kinds: ALL, issue: mmuext_mask, expect: einval },
    PointerAttack { what: "uvm-flush-vcpu-mask", kinds: NOT_NULL, issue: uvm_mask, expect: efault },
    PointerAttack { what: "set-gdt-frame-list", kinds: ALL, issue: set_gdt, expect: efault },
    PointerAttack {
        what: "memory-current-reservation",
        kinds: ALL,
        issue: current_reservation,
        expect: efault,
    },
    PointerAttack { what: "memory-reservation", kinds: ALL, issue: reservation_argument, expect: ok },
    PointerAttack { what: "memory-extent-list", kinds: ALL, issue: extent_list, expect: ok },
    PointerAttack { what: "memory-exchange", kinds: ALL, issue: exchange, expect: efault },
    PointerAttack { what: "memory-map", kinds: ALL, issue: memory_map, expect: efault },
    PointerAttack { what: "multicall-list", kinds: ALL, issue: multicall_list, expect: efault },
    PointerAttack { what: "console-write", kinds: ALL, issue: console_write, expect: efault },
    PointerAttack { what: "grant-query-size", kinds: ALL, issue: grant_query_size, expect: efault },
    PointerAttack {
        what: "grant-setup-frame-list",
        kinds: ALL,
        issue: grant_frame_list,
        expect: frame_list_expect,
    },
    PointerAttack { what: "grant-copy", kinds: ALL, issue: grant_copy, expect: efault },
    PointerAttack { what: "sched-shutdown", kinds: ALL, issue: sched_shutdown, expect: efault },
    PointerAttack { what: "sched-poll", kinds: ALL, issue: sched_poll, expect: efault },
    PointerAttack { what: "sched-poll-port-list", kinds: ALL, issue: sched_poll_ports, expect: efault },
    PointerAttack { what: "callback-register", kinds: ALL, issue: callback_register, expect: efault },
    PointerAttack { what: "evtchn-status", kinds: ALL, issue: evtchn_status, expect: efault },
    PointerAttack { what: "evtchn-op-compat", kinds: ALL, issue: evtchn_compat, expect: efault },
    PointerAttack { what: "physdev-set-iopl", kinds: ALL, issue: set_iopl, expect: efault },
    PointerAttack { what: "vcpu-runstate-info", kinds: ALL, issue: runstate_info, expect: efault },
    PointerAttack { what: "vcpu-runstate-area", kinds: ALL, issue: runstate_area, expect: range_checked },
    PointerAttack { what: "vcpu-time-area", kinds: ALL, issue: time_area, expect: range_checked },
    PointerAttack { what: "vcpu-periodic-timer", kinds: ALL, issue: periodic_timer, expect: efault },
    PointerAttack { what: "vcpu-singleshot-timer", kinds: ALL, issue: singleshot_timer, expect: efault },
    PointerAttack { what: "xen-version-extraversion", kinds: ALL, issue: extraversion, expect: efault },
    PointerAttack { what: "xen-version-features", kinds: ALL, issue: get_features, expect: efault },
    PointerAttack { what: "nmi-op-register", kinds: ALL, issue: nmi_register, expect: efault },
    PointerAttack { what: "physdev-op-compat", kinds: ALL, issue: physdev_compat, expect: efault },
    PointerAttack { what: "platform-op", kinds: ALL, issue: platform_op, expect: efault },
    PointerAttack { what: "sysctl", kinds: ALL, issue: sysctl, expect: efault },
    PointerAttack { what: "domctl", kinds: ALL, issue: domctl, expect: efault },
];

/// Runs every pointer attack with every kind of pointer it applies to.
pub fn run(env: &mut Env, out: &mut dyn Write) -> Summary {
    let mut summary = Summary::default();
    for attack in ATTACKS {
        for &kind in attack.kinds {
            let answer = (attack.issue)(env, kind.address());
            let (expected, status) = (attack.expect)(kind);
            let outcome = judge(expected, status, answer);
            let name = alloc::format!("ptr-{}-{}", kind.name(), attack.what);
            report(&mut summary, &name, None, outcome, out);
        }
    }
    summary
}

fn judge(expected: Expect, status: Option<i16>, answer: Answer) -> Outcome {
    if let Err(reason) = check(expected, answer.rc) {
        return Outcome::Fail(reason);
    }
    match (status, answer.status) {
        (Some(wanted), Some(got)) if wanted != got => {
            Outcome::Fail(alloc::format!("expected status {wanted}, got {got}"))
        }
        _ => Outcome::Pass,
    }
}

fn trap_table_expect(kind: Bad) -> (Expect, Option<i16>) {
    match kind {
        Bad::Null => (OK, None),
        _ => (EFAULT, None),
    }
}

fn set_trap_table(_: &Env, pointer: u64) -> Answer {
    let answer = rc(hc::call(__HYPERVISOR_set_trap_table, [pointer, 0, 0, 0, 0]));
    super::cpu::restore_traps();
    answer
}

fn mmu_update_requests(_: &Env, pointer: u64) -> Answer {
    rc(hc::call(__HYPERVISOR_mmu_update, [pointer, 1, 0, DOMID_SELF.into(), 0]))
}

fn mmu_update_done(env: &Env, pointer: u64) -> Answer {
    let (slot, entry) = env.victim();
    let answer = rc(hc::mmu_update_raw(&[[slot, entry]], 1, pointer, DOMID_SELF.into()));
    env.restore_victim();
    answer
}

fn mmuext_ops(_: &Env, pointer: u64) -> Answer {
    rc(hc::call(__HYPERVISOR_mmuext_op, [pointer, 1, 0, DOMID_SELF.into(), 0]))
}

fn mmuext_done(_: &Env, pointer: u64) -> Answer {
    rc(hc::mmuext_raw(&[[MMUEXT_TLB_FLUSH_LOCAL.into(), 0, 0]], 1, pointer, DOMID_SELF.into()))
}

fn mmuext_mask(_: &Env, pointer: u64) -> Answer {
    rc(hc::mmuext(MMUEXT_TLB_FLUSH_MULTI, 0, pointer))
}

fn uvm_mask(env: &Env, pointer: u64) -> Answer {
    let (_, entry) = env.victim();
    let answer = rc(hc::update_va_mapping(VICTIM, entry, UVMF_TLB_FLUSH | pointer));
    env.restore_victim();
    answer
}

fn set_gdt(_: &Env, pointer: u64) -> Answer {
    rc(hc::call(__HYPERVISOR_set_gdt, [pointer, 512, 0, 0, 0]))
}

fn memory_op(command: u32, pointer: u64) -> Answer {
    rc(hc::call(__HYPERVISOR_memory_op, [command.into(), pointer, 0, 0, 0]))
}

fn current_reservation(_: &Env, pointer: u64) -> Answer {
    memory_op(XENMEM_current_reservation, pointer)
}

fn reservation_argument(_: &Env, pointer: u64) -> Answer {
    memory_op(XENMEM_decrease_reservation, pointer)
}

fn extent_list(_: &Env, pointer: u64) -> Answer {
    let mut request = XenMemoryReservation {
        extent_start: pointer,
        nr_extents: 1,
        extent_order: 0,
        mem_flags: 0,
        domid: DOMID_SELF,
    };
    memory_op(XENMEM_decrease_reservation, hc::addr_mut(&mut request))
}

fn exchange(_: &Env, pointer: u64) -> Answer {
    memory_op(XENMEM_exchange, pointer)
}

fn memory_map(_: &Env, pointer: u64) -> Answer {
    memory_op(XENMEM_memory_map, pointer)
}

fn multicall_list(_: &Env, pointer: u64) -> Answer {
    rc(hc::call(__HYPERVISOR_multicall, [pointer, 1, 0, 0, 0]))
}

fn console_write(_: &Env, pointer: u64) -> Answer {
    rc(hc::call(__HYPERVISOR_console_io, [CONSOLEIO_write.into(), 16, pointer, 0, 0]))
}

fn grant_query_size(_: &Env, pointer: u64) -> Answer {
    rc(hc::call(__HYPERVISOR_grant_table_op, [GNTTABOP_query_size.into(), pointer, 1, 0, 0]))
}

fn frame_list_expect(kind: Bad) -> (Expect, Option<i16>) {
    match kind {
        Bad::Null | Bad::Unmapped => (OK, Some(GNTST_bad_virt_addr)),
        Bad::NonCanonical | Bad::Hypervisor => (EFAULT, None),
    }
}

fn grant_frame_list(_: &Env, pointer: u64) -> Answer {
    let mut op = GnttabSetupTable { dom: DOMID_SELF, nr_frames: 1, status: 0, frame_list: pointer };
    let rc =
        hc::call(__HYPERVISOR_grant_table_op, [GNTTABOP_setup_table.into(), hc::addr_mut(&mut op), 1, 0, 0]);
    Answer { rc, status: Some(op.status) }
}

fn grant_copy(_: &Env, pointer: u64) -> Answer {
    rc(hc::call(__HYPERVISOR_grant_table_op, [GNTTABOP_copy.into(), pointer, 1, 0, 0]))
}

/// A shutdown request the hypervisor cannot read must not shut anything down.
fn sched_shutdown(_: &Env, pointer: u64) -> Answer {
    rc(hc::call(__HYPERVISOR_sched_op, [SCHEDOP_shutdown.into(), pointer, 0, 0, 0]))
}

fn sched_poll(_: &Env, pointer: u64) -> Answer {
    rc(hc::call(__HYPERVISOR_sched_op, [SCHEDOP_poll.into(), pointer, 0, 0, 0]))
}

/// Polls with events masked (so the list is read) and a timeout in the past.
fn sched_poll_ports(_: &Env, pointer: u64) -> Answer {
    let platform = platform::current();
    let were_enabled = platform.interrupts_save_disable();
    let request = [pointer, 1, 1];
    let answer = rc(hc::call(__HYPERVISOR_sched_op, [SCHEDOP_poll.into(), hc::addr(&request), 0, 0, 0]));
    platform.interrupts_restore(were_enabled);
    answer
}

fn callback_register(_: &Env, pointer: u64) -> Answer {
    let answer = rc(hc::call(__HYPERVISOR_callback_op, [CALLBACKOP_register.into(), pointer, 0, 0, 0]));
    super::cpu::restore_traps();
    answer
}

fn evtchn_status(_: &Env, pointer: u64) -> Answer {
    rc(hc::call(__HYPERVISOR_event_channel_op, [EVTCHNOP_status.into(), pointer, 0, 0, 0]))
}

fn evtchn_compat(_: &Env, pointer: u64) -> Answer {
    rc(hc::call(__HYPERVISOR_event_channel_op_compat, [pointer, 0, 0, 0, 0]))
}

fn set_iopl(_: &Env, pointer: u64) -> Answer {
    rc(hc::call(__HYPERVISOR_physdev_op, [PHYSDEVOP_set_iopl.into(), pointer, 0, 0, 0]))
}

fn vcpu_op(command: u32, pointer: u64) -> Answer {
    rc(hc::call(__HYPERVISOR_vcpu_op, [command.into(), 0, pointer, 0, 0]))
}

fn runstate_info(_: &Env, pointer: u64) -> Answer {
    vcpu_op(VCPUOP_get_runstate_info, pointer)
}

/// Registers an area at `pointer`, then none (0), which both accept.
fn area(command: u32, pointer: u64) -> Answer {
    let request = [pointer];
    let answer = vcpu_op(command, hc::addr(&request));
    let none = [0u64];
    vcpu_op(command, hc::addr(&none));
    answer
}

fn runstate_area(_: &Env, pointer: u64) -> Answer {
    area(VCPUOP_register_runstate_memory_area, pointer)
}

fn time_area(_: &Env, pointer: u64) -> Answer {
    area(VCPUOP_register_vcpu_time_memory_area, pointer)
}

fn periodic_timer(_: &Env, pointer: u64) -> Answer {
    vcpu_op(VCPUOP_set_periodic_timer, pointer)
}

fn singleshot_timer(_: &Env, pointer: u64) -> Answer {
    vcpu_op(VCPUOP_set_singleshot_timer, pointer)
}

fn xen_version(command: u32, pointer: u64) -> Answer {
    rc(hc::call(__HYPERVISOR_xen_version, [command.into(), pointer, 0, 0, 0]))
}

fn extraversion(_: &Env, pointer: u64) -> Answer {
    xen_version(XENVER_extraversion, pointer)
}

fn get_features(_: &Env, pointer: u64) -> Answer {
    xen_version(XENVER_get_features, pointer)
}

/// `XENNMI_register_callback` (public/nmi.h) reads its argument first
/// (pv/callback.c:449).
fn nmi_register(_: &Env, pointer: u64) -> Answer {
    rc(hc::call(__HYPERVISOR_nmi_op, [0, pointer, 0, 0, 0]))
}

/// The pre-3.2 form: `struct physdev_op` is read first (arch/x86/compat.c:22).
fn physdev_compat(_: &Env, pointer: u64) -> Answer {
    rc(hc::call(__HYPERVISOR_physdev_op_compat, [pointer, 0, 0, 0, 0]))
}

/// Control hypercalls copy their argument in before any permission check
/// (platform_hypercall.c:223, common/sysctl.c:39, common/domctl.c:330), so
/// any domain, privileged or not, gets `-EFAULT` for a bad one.
fn platform_op(_: &Env, pointer: u64) -> Answer {
    rc(hc::call(__HYPERVISOR_platform_op, [pointer, 0, 0, 0, 0]))
}

fn sysctl(_: &Env, pointer: u64) -> Answer {
    rc(hc::call(__HYPERVISOR_sysctl, [pointer, 0, 0, 0, 0]))
}

fn domctl(_: &Env, pointer: u64) -> Answer {
    rc(hc::call(__HYPERVISOR_domctl, [pointer, 0, 0, 0, 0]))
}
