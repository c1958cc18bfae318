//! The wallclock in `shared_info` (`wc_sec`, `wc_nsec`, `wc_sec_hi`): the
//! UTC time at which Xen system time was 0, so a guest gets the date as
//! `wc + system_time`. The hypervisor reads the CMOS real-time clock once
//! at boot; this module decodes its registers.

use core::fmt;

/// The CMOS RTC registers, as read (BCD or binary, 12- or 24-hour, as
/// status register B says).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RtcRegisters {
    pub second: u8,
    pub minute: u8,
    pub hour: u8,
    pub day: u8,
    pub month: u8,
    pub year: u8,
    /// Register 0x32, where the PC CMOS keeps the century (QEMU does).
    pub century: u8,
    pub status_b: u8,
}

/// Status B: values are binary, not BCD.
pub const STATUS_B_BINARY: u8 = 1 << 2;
/// Status B: hours run 0-23 (otherwise 1-12 with bit 7 for PM).
pub const STATUS_B_24_HOUR: u8 = 1 << 1;
const HOUR_PM: u8 = 1 << 7;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime {
    pub year: u32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

/// A register value no working RTC produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadRtcValue(pub DateTime);

impl fmt::Display for BadRtcValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        write!(
            f,
            "the RTC reads an impossible date {:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            t.year, t.month, t.day, t.hour, t.minute, t.second
        )
    }
}

fn from_bcd(value: u8) -> u32 {
    u32::from(value >> 4) * 10 + u32::from(value & 0xf)
}

/// Decodes the registers into a UTC date and time.
pub fn decode(raw: &RtcRegisters) -> Result<DateTime, BadRtcValue> {
    let binary = raw.status_b & STATUS_B_BINARY != 0;
    let number = |value: u8| if binary { u32::from(value) } else { from_bcd(value) };
    let pm = raw.status_b & STATUS_B_24_HOUR == 0 && raw.hour & HOUR_PM != 0;
    let mut hour = number(raw.hour & !HOUR_PM);
    if raw.status_b & STATUS_B_24_HOUR == 0 {
        // 12-hour clock: 12 AM is 0, 12 PM is 12.
        hour = (hour % 12) + if pm { 12 } else { 0 };
    }
    let two_digit_year = number(raw.year);
    let century = number(raw.century);
    let year = if (19..=99).contains(&century) {
        century * 100 + two_digit_year
    } else if two_digit_year < 70 {
        2000 + two_digit_year
    } else {
        1900 + two_digit_year
    };
    let time = DateTime {
        year,
        month: number(raw.month),
        day: number(raw.day),
        hour,
        minute: number(raw.minute),
        second: number(raw.second),
    };
    let valid = (1..=12).contains(&time.month)
        && (1..=days_in_month(time.year, time.month)).contains(&time.day)
        && time.hour < 24
        && time.minute < 60
        && time.second < 60
        && time.year >= 1970;
    if valid {
        Ok(time)
    } else {
        Err(BadRtcValue(time))
    }
}

fn is_leap(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Seconds since 1970-01-01 00:00:00 UTC.
pub fn unix_seconds(time: &DateTime) -> u64 {
    let days_before_year: u64 = (1970..time.year).map(|year| if is_leap(year) { 366 } else { 365 }).sum();
    let days_before_month: u64 =
        (1..time.month).map(|month| u64::from(days_in_month(time.year, month))).sum();
    let days = days_before_year + days_before_month + u64::from(time.day - 1);
    days * 86_400 + u64::from(time.hour) * 3600 + u64::from(time.minute) * 60 + u64::from(time.second)
}

/// The wallclock fields for shared_info: the UTC time (seconds, then
/// nanoseconds) at system time 0, given the UTC time `unix_ns` observed at
/// system time `system_ns`.
pub fn boot_epoch(unix_ns: u64, system_ns: u64) -> (u64, u32) {
    let at_zero = unix_ns.saturating_sub(system_ns);
    (at_zero / 1_000_000_000, (at_zero % 1_000_000_000) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bcd(value: u8) -> u8 {
        ((value / 10) << 4) | (value % 10)
    }

    fn bcd_registers(year: u32, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> RtcRegisters {
        RtcRegisters {
            second: bcd(second),
            minute: bcd(minute),
            hour: bcd(hour),
            day: bcd(day),
            month: bcd(month),
            year: bcd((year % 100) as u8),
            century: bcd((year / 100) as u8),
            status_b: STATUS_B_24_HOUR,
        }
    }

    #[test]
    fn known_dates_convert_to_known_unix_times() {
        let cases = [
            ((1970, 1, 1, 0, 0, 0), 0),
            ((2000, 3, 1, 0, 0, 0), 951_868_800),
            ((2024, 2, 29, 12, 34, 56), 1_709_210_096),
            ((2026, 11, 24, 23, 59, 59), 1_795_564_799),
        ];
        for ((year, month, day, hour, minute, second), expected) in cases {
            let time = decode(&bcd_registers(year, month, day, hour, minute, second)).unwrap();
            assert_eq!(unix_seconds(&time), expected, "{time:?}");
        }
    }

    #[test]
    fn binary_mode_and_twelve_hour_clock() {
        let raw = RtcRegisters {
            second: 5,
            minute: 6,
            hour: 12 | HOUR_PM,
            day: 2,
            month: 1,
            year: 25,
            century: 20,
            status_b: STATUS_B_BINARY,
        };
        assert_eq!(decode(&raw).unwrap().hour, 12, "12 PM is noon");
        let midnight = RtcRegisters { hour: 12, ..raw };
        assert_eq!(decode(&midnight).unwrap().hour, 0, "12 AM is midnight");
        let evening = RtcRegisters { hour: 7 | HOUR_PM, ..raw };
        assert_eq!(decode(&evening).unwrap().hour, 19);
        assert_eq!(decode(&raw).unwrap().year, 2025);
    }

    #[test]
    fn a_missing_century_register_is_guessed() {
        let mut raw = bcd_registers(2031, 5, 5, 5, 5, 5);
        raw.century = 0;
        assert_eq!(decode(&raw).unwrap().year, 2031);
        raw.year = bcd(99);
        assert_eq!(decode(&raw).unwrap().year, 1999);
    }

    #[test]
    fn impossible_dates_are_refused() {
        assert!(decode(&bcd_registers(2023, 2, 29, 0, 0, 0)).is_err(), "not a leap year");
        assert!(decode(&bcd_registers(2024, 13, 1, 0, 0, 0)).is_err());
        assert!(decode(&bcd_registers(2024, 1, 1, 24, 0, 0)).is_err());
        assert!(decode(&RtcRegisters::default()).is_err(), "all zero: month 0");
    }

    #[test]
    fn the_epoch_is_now_minus_system_time() {
        assert_eq!(boot_epoch(1_700_000_000_250_000_000, 2_500_000_000), (1_699_999_997, 750_000_000));
        assert_eq!(boot_epoch(5, 10), (0, 0), "never before 1970");
    }
}
