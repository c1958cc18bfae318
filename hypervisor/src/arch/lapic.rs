//! The local APIC timer (xAPIC, through the direct map) and the PIT, which
//! only serves to measure how fast the TSC and the APIC timer run.

use drivers::PortIo as _;

use super::cpu::{self, PortIo};
use super::memory;

const APIC_BASE_MSR: u32 = 0x1b;
const REG_EOI: u64 = 0xb0;
const REG_SPURIOUS: u64 = 0xf0;
const REG_LVT_TIMER: u64 = 0x320;
const REG_INITIAL_COUNT: u64 = 0x380;
const REG_CURRENT_COUNT: u64 = 0x390;
const REG_DIVIDE: u64 = 0x3e0;
const LVT_MASKED: u32 = 1 << 16;
/// Divide the bus clock by 16.
const DIVIDE_BY_16: u32 = 0x3;

const PIT_HZ: u64 = 1_193_182;

fn base() -> u64 {
    cpu::read_msr(APIC_BASE_MSR) & 0x000f_ffff_ffff_f000
}

fn read(register: u64) -> u32 {
    let address = memory::machine_to_virt(base() + register);
    // SAFETY: the LAPIC's page is in the direct map, uncached (it lies
    // outside RAM); 32-bit aligned register reads have no side effects.
    unsafe { (address as *const u32).read_volatile() }
}

fn write(register: u64, value: u32) {
    let address = memory::machine_to_virt(base() + register);
    // SAFETY: as for `read`; these writes only program the timer.
    unsafe { (address as *mut u32).write_volatile(value) };
}

/// Enables the LAPIC with `spurious` as its spurious vector and the timer
/// (masked for now) on `timer_vector`.
pub fn init(spurious: u8, timer_vector: u8) {
    write(REG_SPURIOUS, 0x100 | u32::from(spurious));
    write(REG_DIVIDE, DIVIDE_BY_16);
    write(REG_LVT_TIMER, LVT_MASKED | u32::from(timer_vector));
}

/// Arms a one-shot timer interrupt after `ticks` APIC timer ticks.
pub fn arm_oneshot(timer_vector: u8, ticks: u32) {
    write(REG_LVT_TIMER, u32::from(timer_vector));
    write(REG_INITIAL_COUNT, ticks.max(1));
}

pub fn end_of_interrupt() {
    write(REG_EOI, 0);
}

/// Measures the TSC and APIC-timer frequencies (in Hz) against a 10 ms
/// run of PIT channel 2.
pub fn calibrate() -> (u64, u64) {
    const MILLISECONDS: u64 = 10;
    let count = (PIT_HZ * MILLISECONDS / 1000) as u16;
    let mut ports = PortIo;
    // Gate channel 2 on, speaker off; mode 0, lobyte/hibyte.
    let gate = ports.read8(0x61);
    ports.write8(0x61, (gate & !0x02) & !0x01);
    ports.write8(0x43, 0xb0);
    ports.write8(0x42, count as u8);
    ports.write8(0x42, (count >> 8) as u8);

    write(REG_INITIAL_COUNT, u32::MAX);
    let tsc_start = cpu::rdtsc();
    let apic_start = read(REG_CURRENT_COUNT);
    ports.write8(0x61, (gate & !0x02) | 0x01);
    // OUT2 (bit 5) rises when the count reaches zero.
    while ports.read8(0x61) & 0x20 == 0 {
        core::hint::spin_loop();
    }
    let tsc_end = cpu::rdtsc();
    let apic_end = read(REG_CURRENT_COUNT);
    write(REG_INITIAL_COUNT, 0);
    let scale = 1000 / MILLISECONDS;
    ((tsc_end - tsc_start) * scale, u64::from(apic_start - apic_end) * scale)
}

/// Remaps the legacy 8259 PICs away from the exception vectors (their
/// power-on base, 8, is #DF's) and masks every line: the hypervisor takes
/// interrupts from the local APIC only.
pub fn disable_legacy_pic() {
    let mut ports = PortIo;
    // ICW1..ICW4 for both controllers: vectors 0x20.., cascade on line 2.
    for (command, data, base, cascade) in [(0x20u16, 0x21u16, 0x20u8, 4u8), (0xa0, 0xa1, 0x28, 2)] {
        ports.write8(command, 0x11);
        ports.write8(data, base);
        ports.write8(data, cascade);
        ports.write8(data, 0x01);
        ports.write8(data, 0xff);
    }
}
