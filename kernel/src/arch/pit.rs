//! The legacy PIT (8254), used once at boot by the native platform to learn
//! how fast the TSC runs.

use drivers::PortIo as _;

use super::cpu::{rdtsc_serialized, PortIo};

const CHANNEL2_DATA: u16 = 0x42;
const COMMAND: u16 = 0x43;
/// Port B of the keyboard controller: bit 0 gates PIT channel 2, bit 1
/// enables the speaker, bit 5 reads channel 2's output.
const PORT_B: u16 = 0x61;

/// Counts TSC ticks while PIT channel 2 counts down `pit_ticks` (at most
/// 65535) in mode 0 with the speaker off. Returns the TSC ticks, or `None`
/// if the PIT output never rose (no PIT), after a generous bound.
pub fn measure_tsc(pit_ticks: u16) -> Option<u64> {
    let mut io = PortIo;
    let gate = io.read8(PORT_B);
    io.write8(PORT_B, (gate & !0x02) | 0x01);
    // Channel 2, low then high byte, mode 0 (interrupt on terminal count), binary.
    io.write8(COMMAND, 0b1011_0000);
    io.write8(CHANNEL2_DATA, pit_ticks as u8);
    io.write8(CHANNEL2_DATA, (pit_ticks >> 8) as u8);
    let start = rdtsc_serialized();
    let mut polls = 0u64;
    while io.read8(PORT_B) & 0x20 == 0 {
        polls += 1;
        if polls > 50_000_000 {
            io.write8(PORT_B, gate);
            return None;
        }
    }
    let end = rdtsc_serialized();
    io.write8(PORT_B, gate);
    Some(end - start)
}
