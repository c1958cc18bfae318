//! What only exists on Xen: the null hypercall, a multicall, an event
//! channel round trip, the one-shot timer, and (PV) CPUID emulated through
//! Xen's forced-emulation prefix.

use hypercalls::abi::xen::DOMID_SELF;
use hypercalls::ops::{sched, version};
use kernel::bench_stats::Unit;

use super::harness::Runner;
use crate::arch::cpu;
use crate::platform::xen::{events, time, NullMulticall};
use crate::platform::{self, Platform};

/// Entries in the timed multicall.
const MULTICALL_ENTRIES: usize = 32;
/// Polls (each a `sched_yield`) before an event counts as lost.
const MAX_POLLS: u32 = 1000;
/// How far ahead the wake-up latency's timer is set.
const WAKEUP_DELAY_NS: u64 = 100_000;
const WAKEUP_SAMPLES: usize = 20;

pub fn run(runner: &mut Runner) {
    runner.measure("null_hypercall", 1000, || version::version().map(drop));

    let mut multicall = NullMulticall::new(MULTICALL_ENTRIES);
    runner.measure_batched("multicall_per_entry", 100, MULTICALL_ENTRIES as u32, || multicall.issue());

    event_round_trip(runner);
    timer(runner);

    if platform::current().name() == "pv" {
        runner.measure("cpuid_emulated", 1000, || {
            core::hint::black_box(cpu::cpuid_pv(0, 0));
            Ok::<(), &str>(())
        });
    }
}

fn noop(_: u32) {}

/// Send on one end of a loopback pair; Xen marks the other end pending and
/// enters the event callback on its way back to the guest, whose handler
/// runs before `send` returns.
fn event_round_trip(runner: &mut Runner) {
    const NAME: &str = "evtchn_roundtrip";
    let listening = match events::alloc_unbound(DOMID_SELF, noop) {
        Ok(port) => port,
        Err(error) => return runner.fail(NAME, &error),
    };
    let connected = match events::bind_interdomain(DOMID_SELF, listening, noop) {
        Ok(port) => port,
        Err(error) => {
            let _ = events::close(listening);
            return runner.fail(NAME, &error);
        }
    };
    runner.measure(NAME, 200, || {
        let before = events::count(listening);
        events::send(connected).map_err(|error| alloc::format!("{error}"))?;
        if wait_until(|| events::count(listening) != before) {
            Ok(())
        } else {
            Err(alloc::string::String::from("the event never arrived"))
        }
    });
    let _ = events::close(connected);
    let _ = events::close(listening);
}

/// Polls `done`, yielding to the hypervisor (whose return delivers events)
/// between looks; false if it never came true.
fn wait_until(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..MAX_POLLS {
        if done() {
            return true;
        }
        let _ = sched::sched_yield();
    }
    done()
}

/// Arms the timer for `deadline_ns` with events masked, then idles (PV:
/// `SCHEDOP_block`, which unmasks and sleeps in one step; PVH: `sti; hlt`)
/// until the timer event has been handled.
fn block_until_tick(platform: &dyn Platform, deadline_ns: u64) -> Result<(), &'static str> {
    let before = time::ticks();
    platform.interrupts_disable();
    if time::set_timer(deadline_ns).is_err() {
        platform.interrupts_enable();
        return Err("set_timer_op refused");
    }
    let mut result = Err("the timer event never arrived");
    for _ in 0..MAX_POLLS {
        platform.idle();
        if time::ticks() != before {
            result = Ok(());
            break;
        }
    }
    platform.interrupts_enable();
    result
}

fn timer(runner: &mut Runner) {
    let platform = platform::current();
    if time::timer_port().is_none() {
        return runner.fail("timer_set_block", &"VIRQ_TIMER is not bound");
    }
    // A deadline already reached: the cost of arming, blocking and taking
    // the event, without sleeping.
    runner.measure("timer_set_block", 100, || block_until_tick(platform, time::system_time_ns()));

    let mut latencies = [0u64; WAKEUP_SAMPLES];
    for latency in latencies.iter_mut() {
        let deadline = time::system_time_ns() + WAKEUP_DELAY_NS;
        if let Err(reason) = block_until_tick(platform, deadline) {
            return runner.fail("timer_wakeup_latency", &reason);
        }
        *latency = time::system_time_ns().saturating_sub(deadline);
    }
    runner.samples("timer_wakeup_latency", &mut latencies, Unit::Nanoseconds);
}
