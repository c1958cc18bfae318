//! Time: the TSC is the clock, the APIC timer is the alarm. Guests read
//! time through pvclock (`vcpu_time_info`), which this keeps current.

use core::sync::atomic::{AtomicU64, Ordering};

use hypervisor::pvclock;

use crate::arch::{cpu, entry, lapic};

static TSC_HZ: AtomicU64 = AtomicU64::new(0);
static APIC_HZ: AtomicU64 = AtomicU64::new(0);
static TSC_AT_BOOT: AtomicU64 = AtomicU64::new(0);
/// The earliest pending alarm, in system time (ns); u64::MAX: none.
static NEXT_ALARM: AtomicU64 = AtomicU64::new(u64::MAX);

pub fn init() {
    lapic::disable_legacy_pic();
    lapic::init(entry::SPURIOUS_VECTOR, entry::TIMER_VECTOR);
    let (tsc_hz, apic_hz) = lapic::calibrate();
    TSC_HZ.store(tsc_hz, Ordering::Relaxed);
    APIC_HZ.store(apic_hz.max(1), Ordering::Relaxed);
    TSC_AT_BOOT.store(cpu::rdtsc(), Ordering::Relaxed);
    log::info!("time: TSC {} MHz, APIC timer {} MHz", tsc_hz / 1_000_000, apic_hz / 1_000_000);
}

pub fn tsc_hz() -> u64 {
    TSC_HZ.load(Ordering::Relaxed)
}

pub fn tsc_at_boot() -> u64 {
    TSC_AT_BOOT.load(Ordering::Relaxed)
}

/// Nanoseconds since the hypervisor started ("system time" in Xen terms).
pub fn now_ns() -> u64 {
    let (mul, shift) = pvclock::scale_for(tsc_hz());
    pvclock::ticks_to_ns(cpu::rdtsc().saturating_sub(tsc_at_boot()), mul, shift)
}

/// Arranges a timer interrupt at system time `deadline` (or soon, if past).
pub fn set_alarm(deadline: u64) {
    NEXT_ALARM.store(deadline, Ordering::Relaxed);
    let delay = deadline.saturating_sub(now_ns());
    let ticks = pvclock::ns_to_ticks(delay, APIC_HZ.load(Ordering::Relaxed));
    lapic::arm_oneshot(entry::TIMER_VECTOR, ticks.min(u64::from(u32::MAX)) as u32);
}

pub fn cancel_alarm() {
    NEXT_ALARM.store(u64::MAX, Ordering::Relaxed);
    lapic::disarm();
}

/// The APIC timer fired: acknowledge it and let the guest's timers run.
pub fn timer_interrupt() {
    lapic::end_of_interrupt();
    NEXT_ALARM.store(u64::MAX, Ordering::Relaxed);
}
