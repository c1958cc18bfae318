//! Time: the TSC is the clock, the APIC timer is the alarm. Guests read
//! time through pvclock (`vcpu_time_info`) and the wallclock in
//! `shared_info`, which this module fills in.
//!
//! System time is nanoseconds since the hypervisor calibrated the TSC. The
//! pvclock parameters published to the guest describe exactly the same
//! function of the TSC, so guest and hypervisor agree on "now" (to the
//! rounding of one nanosecond), which timer deadlines rely on.

use core::sync::atomic::{AtomicBool, AtomicI8, AtomicU32, AtomicU64, Ordering};

use drivers::shared_info::{SharedInfoView, VcpuTimeInfoView};
use drivers::PortIo as _;
use hypercalls::abi::xen::VcpuTimeInfo;
use hypervisor::pvclock;
use hypervisor::services::wallclock::{self, RtcRegisters};

use crate::arch::{cpu, entry, lapic};

static APIC_HZ: AtomicU64 = AtomicU64::new(0);
static TSC_AT_BOOT: AtomicU64 = AtomicU64::new(0);
static TSC_MUL: AtomicU32 = AtomicU32::new(0);
static TSC_SHIFT: AtomicI8 = AtomicI8::new(0);
/// Set by the APIC timer interrupt, taken by whoever runs the timers.
static ALARM_FIRED: AtomicBool = AtomicBool::new(false);
/// UTC at system time 0, from the CMOS clock.
static WALLCLOCK_SEC: AtomicU64 = AtomicU64::new(0);
static WALLCLOCK_NSEC: AtomicU32 = AtomicU32::new(0);

pub fn init() {
    lapic::disable_legacy_pic();
    lapic::init(entry::SPURIOUS_VECTOR, entry::TIMER_VECTOR);
    let (tsc_hz, apic_hz) = lapic::calibrate();
    let (mul, shift) = pvclock::scale_for(tsc_hz.max(1));
    APIC_HZ.store(apic_hz.max(1), Ordering::Relaxed);
    TSC_MUL.store(mul, Ordering::Relaxed);
    TSC_SHIFT.store(shift, Ordering::Relaxed);
    TSC_AT_BOOT.store(cpu::rdtsc(), Ordering::Relaxed);
    log::info!("time: TSC {} MHz, APIC timer {} MHz", tsc_hz / 1_000_000, apic_hz / 1_000_000);
    init_wallclock();
}

pub fn tsc_at_boot() -> u64 {
    TSC_AT_BOOT.load(Ordering::Relaxed)
}

fn system_time_at(tsc: u64) -> u64 {
    let delta = tsc.saturating_sub(tsc_at_boot());
    pvclock::ticks_to_ns(delta, TSC_MUL.load(Ordering::Relaxed), TSC_SHIFT.load(Ordering::Relaxed))
}

/// Nanoseconds since the hypervisor started ("system time" in Xen terms).
pub fn now_ns() -> u64 {
    system_time_at(cpu::rdtsc())
}

/// The pvclock record for now: a (TSC, system time) pair and the scale.
pub fn time_info() -> VcpuTimeInfo {
    let tsc = cpu::rdtsc();
    VcpuTimeInfo {
        version: 0,
        pad0: 0,
        tsc_timestamp: tsc,
        system_time: system_time_at(tsc),
        tsc_to_system_mul: TSC_MUL.load(Ordering::Relaxed),
        tsc_shift: TSC_SHIFT.load(Ordering::Relaxed),
        flags: 0,
        pad1: [0; 2],
    }
}

/// Xen's version protocol: odd while an update is in progress. Whatever
/// the guest left in `version`, the result is odd (begin) or even (end).
pub fn version_update_begin(version: u32) -> u32 {
    version.wrapping_add(1) | 1
}

pub fn version_update_end(version: u32) -> u32 {
    version.wrapping_add(1) & !1
}

/// Publishes `info` into a `vcpu_time_info` the guest reads.
pub fn publish_time_info(view: &VcpuTimeInfoView, info: &VcpuTimeInfo) {
    let version = version_update_begin(view.version.load(Ordering::Relaxed));
    view.version.store(version, Ordering::SeqCst);
    view.tsc_timestamp.store(info.tsc_timestamp, Ordering::Relaxed);
    view.system_time.store(info.system_time, Ordering::Relaxed);
    view.tsc_to_system_mul.store(info.tsc_to_system_mul, Ordering::Relaxed);
    view.tsc_shift.store(info.tsc_shift, Ordering::Relaxed);
    view.flags.store(info.flags, Ordering::Relaxed);
    view.version.store(version_update_end(version), Ordering::SeqCst);
}

/// Writes the wallclock (UTC at system time 0) into `shared_info`.
pub fn publish_wallclock(shared: &SharedInfoView) {
    let seconds = WALLCLOCK_SEC.load(Ordering::Relaxed);
    let version = version_update_begin(shared.wc_version.load(Ordering::Relaxed));
    shared.wc_version.store(version, Ordering::SeqCst);
    shared.wc_sec.store(seconds as u32, Ordering::Relaxed);
    shared.wc_sec_hi.store((seconds >> 32) as u32, Ordering::Relaxed);
    shared.wc_nsec.store(WALLCLOCK_NSEC.load(Ordering::Relaxed), Ordering::Relaxed);
    shared.wc_version.store(version_update_end(version), Ordering::SeqCst);
}

const CMOS_INDEX: u16 = 0x70;
const CMOS_DATA: u16 = 0x71;
const CMOS_STATUS_A_UPDATING: u8 = 1 << 7;

fn read_cmos(register: u8) -> u8 {
    let mut ports = cpu::PortIo;
    ports.write8(CMOS_INDEX, register);
    ports.read8(CMOS_DATA)
}

fn read_rtc_once() -> RtcRegisters {
    // Wait (boundedly) until the RTC is not in its once-a-second update.
    for _ in 0..100_000 {
        if read_cmos(0x0a) & CMOS_STATUS_A_UPDATING == 0 {
            break;
        }
        core::hint::spin_loop();
    }
    RtcRegisters {
        second: read_cmos(0x00),
        minute: read_cmos(0x02),
        hour: read_cmos(0x04),
        day: read_cmos(0x07),
        month: read_cmos(0x08),
        year: read_cmos(0x09),
        century: read_cmos(0x32),
        status_b: read_cmos(0x0b),
    }
}

/// Reads the CMOS clock (twice, until two reads agree, so an update in
/// between cannot tear it) and records UTC at system time 0.
fn init_wallclock() {
    let mut registers = read_rtc_once();
    for _ in 0..5 {
        let again = read_rtc_once();
        if again == registers {
            break;
        }
        registers = again;
    }
    let now = now_ns();
    match wallclock::decode(&registers) {
        Ok(date) => {
            let unix_ns = wallclock::unix_seconds(&date).saturating_mul(1_000_000_000);
            let (seconds, nanoseconds) = wallclock::boot_epoch(unix_ns, now);
            WALLCLOCK_SEC.store(seconds, Ordering::Relaxed);
            WALLCLOCK_NSEC.store(nanoseconds, Ordering::Relaxed);
            log::info!(
                "time: wallclock {:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
                date.year,
                date.month,
                date.day,
                date.hour,
                date.minute,
                date.second
            );
        }
        Err(problem) => log::warn!("time: {problem}; the guest's wallclock starts at 1970"),
    }
}

/// Arranges a timer interrupt at system time `deadline` (or soon, if past).
pub fn set_alarm(deadline: u64) {
    let delay = deadline.saturating_sub(now_ns());
    let ticks = pvclock::ns_to_ticks(delay, APIC_HZ.load(Ordering::Relaxed));
    lapic::arm_oneshot(entry::TIMER_VECTOR, ticks.min(u64::from(u32::MAX)) as u32);
}

/// The APIC timer fired: acknowledge it; the timers run on the way back
/// to the guest (or in the blocked vCPU's wait loop).
pub fn timer_interrupt() {
    lapic::end_of_interrupt();
    ALARM_FIRED.store(true, Ordering::Relaxed);
}

/// Whether the alarm fired since the last call.
pub fn take_alarm_fired() -> bool {
    ALARM_FIRED.swap(false, Ordering::Relaxed)
}
