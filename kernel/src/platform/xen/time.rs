//! Time on Xen: pvclock, the wall clock and the one-shot timer.
//!
//! Xen keeps `vcpu_time_info` (in `vcpu_info`) and the wall clock (in
//! `shared_info`) up to date under version counters; the reads below retry
//! while Xen is mid-update. The scaling arithmetic is `kernel::time`.
//! The timer is `set_timer_op(deadline)`, which raises `VIRQ_TIMER` when
//! system time passes the deadline; the kernel binds that VIRQ to a port
//! whose handler counts ticks, and sleeps in the platform's `idle`
//! (`SCHEDOP_block` under PV, `sti; hlt` under PVH, where QEMU's emulation
//! has no `SCHEDOP_block`).

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use hypercalls::abi::event_channel::EvtchnPort;
use hypercalls::abi::xen::VIRQ_TIMER;
use hypercalls::ops::{pv_cpu, vcpu};
use hypercalls::XenError;
use kernel::time::{read_versioned, ClockParams, WallClock};

use super::events;
use crate::arch::cpu;

/// Torn reads tolerated before a read gives up (Xen's updates are short).
const MAX_READ_ATTEMPTS: u32 = 1000;

static TICKS: AtomicU64 = AtomicU64::new(0);
static TIMER_PORT: AtomicU32 = AtomicU32::new(u32::MAX);

/// The current pvclock parameters of vCPU 0.
pub fn clock_params() -> Option<ClockParams> {
    let time = &super::vcpu0()?.time;
    read_versioned(MAX_READ_ATTEMPTS, || {
        let before = time.version.load(Ordering::Acquire);
        let params = ClockParams {
            tsc_timestamp: time.tsc_timestamp.load(Ordering::Acquire),
            system_time: time.system_time.load(Ordering::Acquire),
            mul: time.tsc_to_system_mul.load(Ordering::Acquire),
            shift: time.tsc_shift.load(Ordering::Acquire),
        };
        core::sync::atomic::fence(Ordering::Acquire);
        (before, params, time.version.load(Ordering::Acquire))
    })
    .ok()
}

/// Nanoseconds since Xen booted, or 0 before `shared_info` is mapped.
pub fn system_time_ns() -> u64 {
    match clock_params() {
        Some(params) => params.system_time_at(cpu::rdtsc_serialized()),
        None => 0,
    }
}

/// The wall clock: Xen's time at system time 0, plus the system time now.
pub fn wallclock() -> Option<WallClock> {
    let shared = super::shared_info()?;
    let (sec, sec_hi, nsec) = read_versioned(MAX_READ_ATTEMPTS, || {
        let before = shared.wc_version.load(Ordering::Acquire);
        let fields = (
            shared.wc_sec.load(Ordering::Acquire),
            shared.wc_sec_hi.load(Ordering::Acquire),
            shared.wc_nsec.load(Ordering::Acquire),
        );
        core::sync::atomic::fence(Ordering::Acquire);
        (before, fields, shared.wc_version.load(Ordering::Acquire))
    })
    .ok()?;
    Some(WallClock::from_xen(sec, sec_hi, nsec, system_time_ns()))
}

fn timer_tick(_port: EvtchnPort) {
    TICKS.fetch_add(1, Ordering::SeqCst);
}

/// Binds `VIRQ_TIMER` and stops the periodic tick Xen gives PV vCPUs by
/// default, so the timer fires only when asked to.
pub fn init() -> Result<EvtchnPort, XenError> {
    // Older Xen may not know the call; a periodic tick only adds wake-ups.
    let _ = vcpu::stop_periodic_timer(0);
    let port = events::bind_virq(VIRQ_TIMER, timer_tick)?;
    TIMER_PORT.store(port, Ordering::SeqCst);
    Ok(port)
}

/// The timer's event-channel port, once bound.
pub fn timer_port() -> Option<EvtchnPort> {
    let port = TIMER_PORT.load(Ordering::SeqCst);
    (port != u32::MAX).then_some(port)
}

/// Timer events taken so far.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::SeqCst)
}

/// Arms the one-shot timer for system time `deadline_ns`.
pub fn set_timer(deadline_ns: u64) -> Result<(), XenError> {
    pv_cpu::set_timer_op(deadline_ns)
}

/// Blocks until system time reaches `deadline_ns` (or returns at once if
/// the timer is not bound: without it nothing would wake us).
pub fn sleep_until(deadline_ns: u64) {
    if timer_port().is_none() {
        return;
    }
    let platform = crate::platform::current();
    while system_time_ns() < deadline_ns {
        // Delivery goes off before the timer is armed, so its event cannot
        // be taken before the vCPU sleeps (a lost wake-up). `idle` enables
        // delivery atomically with sleeping (PV: SCHEDOP_block; PVH: sti;
        // hlt) and returns after the upcall; masked callers get their mask back.
        let were_enabled = platform.interrupts_save_disable();
        if set_timer(deadline_ns).is_err() {
            platform.interrupts_restore(were_enabled);
            return;
        }
        platform.idle();
        if !were_enabled {
            platform.interrupts_disable();
        }
    }
}
