//! Time arithmetic shared by every platform: Xen's pvclock scaling, the
//! version-protected read of a structure the hypervisor updates under us,
//! the wall clock, and TSC calibration for the native platform.
//!
//! Xen publishes, per vCPU, a snapshot `(tsc_timestamp, system_time)` plus a
//! fixed-point factor `(tsc_to_system_mul, tsc_shift)`; nanoseconds since
//! boot are `system_time + scale(tsc - tsc_timestamp)`. The native platform
//! calibrates its TSC against the PIT and expresses the result in the same
//! form, so both read time with the same code.

/// The PIT's input clock, in Hz.
pub const PIT_HZ: u64 = 1_193_182;

/// Converts a TSC delta to nanoseconds: shift by `shift` (left if
/// positive), then multiply by `mul / 2^32`.
pub fn scale_delta(delta: u64, mul: u32, shift: i8) -> u64 {
    let shifted = if shift >= 0 { delta << shift } else { delta >> -i32::from(shift) };
    ((u128::from(shifted) * u128::from(mul)) >> 32) as u64
}

/// One consistent copy of `vcpu_time_info`'s clock fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClockParams {
    pub tsc_timestamp: u64,
    pub system_time: u64,
    pub mul: u32,
    pub shift: i8,
}

impl ClockParams {
    /// Nanoseconds since boot at TSC value `tsc`. A TSC read before the
    /// snapshot (another vCPU's, or a stale read) counts as the snapshot.
    pub fn system_time_at(&self, tsc: u64) -> u64 {
        self.system_time + scale_delta(tsc.saturating_sub(self.tsc_timestamp), self.mul, self.shift)
    }
}

/// Why a version-protected read gave up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TornRead {
    pub attempts: u32,
}

/// Reads a structure that the hypervisor updates with a version counter:
/// odd while an update is in progress, incremented again when it is done.
/// `read` returns (version before, the data, version after); a read is
/// accepted when both versions are equal and even. Gives up after
/// `max_attempts` torn reads (a writer that never finishes is a bug).
pub fn read_versioned<T>(max_attempts: u32, mut read: impl FnMut() -> (u32, T, u32)) -> Result<T, TornRead> {
    for _ in 0..max_attempts {
        let (before, data, after) = read();
        if before == after && before % 2 == 0 {
            return Ok(data);
        }
    }
    Err(TornRead { attempts: max_attempts })
}

/// A point in wall-clock time, as seconds and nanoseconds since 1970.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct WallClock {
    pub sec: u64,
    pub nsec: u32,
}

impl WallClock {
    /// Xen's `shared_info` wall clock (`wc_sec_hi:wc_sec`, `wc_nsec`) is the
    /// time at system time 0; add the current system time.
    pub fn from_xen(wc_sec: u32, wc_sec_hi: u32, wc_nsec: u32, system_time_ns: u64) -> Self {
        let base_ns = u128::from((u64::from(wc_sec_hi) << 32) | u64::from(wc_sec)) * 1_000_000_000
            + u128::from(wc_nsec);
        let now = base_ns + u128::from(system_time_ns);
        Self { sec: (now / 1_000_000_000) as u64, nsec: (now % 1_000_000_000) as u32 }
    }

    /// The UTC calendar date and time: (year, month, day, hour, minute, second).
    pub fn civil(&self) -> (i64, u32, u32, u32, u32, u32) {
        let days = (self.sec / 86_400) as i64;
        let rest = self.sec % 86_400;
        let (year, month, day) = civil_from_days(days);
        (year, month, day, (rest / 3600) as u32, (rest / 60 % 60) as u32, (rest % 60) as u32)
    }
}

impl core::fmt::Display for WallClock {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let (year, month, day, hour, minute, second) = self.civil();
        write!(f, "{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02} UTC")
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// well-known era arithmetic).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The pvclock factor for a counter running at `hz`: the `(mul, shift)`
/// with `scale_delta(hz ticks) ≈ 1 s` and `mul` as large as possible for
/// precision. `None` for a frequency of zero.
pub fn params_for_hz(hz: u64) -> Option<(u32, i8)> {
    if hz == 0 {
        return None;
    }
    // Find shift so that 1e9 * 2^32 / (hz << shift) fits in 32 bits with
    // the top bit set (or as close as the shift range allows).
    let mut shift: i8 = 0;
    let mut scaled = u128::from(hz);
    let target = 1_000_000_000u128 << 32;
    while target / scaled >= 1 << 32 && shift < 31 {
        scaled <<= 1;
        shift += 1;
    }
    while target / scaled < 1 << 31 && shift > -31 {
        scaled >>= 1;
        shift -= 1;
        if scaled == 0 {
            return None;
        }
    }
    let mul = target / scaled;
    u32::try_from(mul).ok().map(|mul| (mul, shift))
}

/// The TSC frequency from a calibration: `tsc_ticks` counted while the PIT
/// counted `pit_ticks`.
pub fn tsc_hz(tsc_ticks: u64, pit_ticks: u64) -> Option<u64> {
    (pit_ticks != 0).then(|| (u128::from(tsc_ticks) * u128::from(PIT_HZ) / u128::from(pit_ticks)) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_follows_xen_formula() {
        // mul = 2^31 halves; shift 1 doubles first: identity.
        assert_eq!(scale_delta(1000, 1 << 31, 1), 1000);
        assert_eq!(scale_delta(1000, 1 << 31, 0), 500);
        assert_eq!(scale_delta(1000, 1 << 31, -1), 250);
        let (mul, shift) = params_for_hz(3_000_000_000).unwrap();
        let one_second = scale_delta(3_000_000_000, mul, shift);
        assert!(one_second.abs_diff(1_000_000_000) < 10, "{one_second}");
    }

    #[test]
    fn large_deltas_do_not_overflow() {
        let (mul, shift) = params_for_hz(1_000_000_000).unwrap();
        let hour = 3600 * 1_000_000_000u64;
        assert!(scale_delta(hour, mul, shift).abs_diff(hour) < hour / 1_000_000);
    }

    #[test]
    fn params_cover_slow_and_fast_counters() {
        for hz in [PIT_HZ, 10_000_000, 2_500_000_000, 5_000_000_000] {
            let (mul, shift) = params_for_hz(hz).unwrap();
            assert!(mul >= 1 << 31, "{hz} Hz: mul {mul:#x} loses precision");
            let ns = scale_delta(hz, mul, shift);
            assert!(ns.abs_diff(1_000_000_000) < 1_000, "{hz} Hz gives {ns} ns per second");
        }
        assert_eq!(params_for_hz(0), None);
    }

    #[test]
    fn system_time_adds_the_scaled_delta() {
        let params = ClockParams { tsc_timestamp: 1000, system_time: 5_000, mul: 1 << 31, shift: 1 };
        assert_eq!(params.system_time_at(1500), 5_500);
        assert_eq!(params.system_time_at(900), 5_000, "an earlier TSC never goes backwards");
    }

    #[test]
    fn versioned_read_retries_torn_and_odd_versions() {
        let reads = [(3, 'a', 3), (4, 'b', 6), (6, 'c', 6)];
        let mut next = reads.iter();
        assert_eq!(read_versioned(5, || *next.next().unwrap()), Ok('c'));
        assert_eq!(read_versioned(3, || (1, (), 1)), Err(TornRead { attempts: 3 }));
    }

    #[test]
    fn wall_clock_and_calendar() {
        let clock = WallClock::from_xen(1_700_000_000, 0, 900_000_000, 200_000_000);
        assert_eq!(clock, WallClock { sec: 1_700_000_001, nsec: 100_000_000 });
        assert_eq!(clock.civil(), (2023, 11, 14, 22, 13, 21));
        assert_eq!(alloc::format!("{}", WallClock { sec: 0, nsec: 0 }), "1970-01-01 00:00:00 UTC");
        assert_eq!(WallClock { sec: 951_782_400, nsec: 0 }.civil().1, 2, "2000-02-29 is in February");
        let past_2106 = WallClock::from_xen(0, 1, 0, 0);
        assert_eq!(past_2106.sec, 1 << 32);
    }

    #[test]
    fn tsc_calibration() {
        assert_eq!(tsc_hz(200_000_000, PIT_HZ), Some(200_000_000));
        assert_eq!(tsc_hz(1_000_000, PIT_HZ / 2), Some(2_000_000));
        assert_eq!(tsc_hz(5, 0), None);
    }
}
