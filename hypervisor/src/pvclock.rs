//! Xen's PV clock arithmetic: how `vcpu_time_info` turns TSC ticks into
//! nanoseconds. The guest computes
//! `system_time + (((tsc - tsc_timestamp) << shift) * mul_frac) >> 32`
//! (a right shift when `shift` is negative); the hypervisor picks
//! `mul_frac` and `shift` for its TSC frequency.

/// `tsc_to_system_mul` and `tsc_shift` for a TSC running at `tsc_hz`.
/// Chosen so `mul_frac` is in `[2^31, 2^32)` for full precision, as Xen does.
pub fn scale_for(tsc_hz: u64) -> (u32, i8) {
    assert!(tsc_hz > 0);
    let nanoseconds: u64 = 1_000_000_000;
    let mut shift: i8 = 0;
    let mut ticks = tsc_hz;
    let mut target = nanoseconds;
    // Bring ticks into (target/2, target]... then target into [2^31, 2^32).
    while ticks > target * 2 {
        ticks >>= 1;
        shift -= 1;
    }
    while ticks <= target {
        ticks <<= 1;
        shift += 1;
    }
    // Now target < ticks <= 2 * target: mul = target / ticks in (0.5, 1).
    target <<= 32;
    let mul = (target / ticks) as u32;
    (mul, shift)
}

/// Nanoseconds for `delta` ticks, the way a guest computes them.
pub fn ticks_to_ns(delta: u64, mul_frac: u32, shift: i8) -> u64 {
    let scaled = if shift >= 0 { delta << shift } else { delta >> -shift };
    ((u128::from(scaled) * u128::from(mul_frac)) >> 32) as u64
}

/// The inverse, for programming timers: ticks until `ns` have passed
/// (rounded up, so a timer never fires early).
pub fn ns_to_ticks(ns: u64, tsc_hz: u64) -> u64 {
    ((u128::from(ns) * u128::from(tsc_hz)).div_ceil(1_000_000_000)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_second_of_ticks_is_one_second() {
        for hz in [1_000_000u64, 999_999_999, 1_000_000_000, 2_593_123_456, 3_000_000_000, 100_000_000_000] {
            let (mul, shift) = scale_for(hz);
            assert!(mul >= 1 << 31, "{hz}: mul {mul:#x} loses precision");
            let ns = ticks_to_ns(hz, mul, shift);
            assert!(ns.abs_diff(1_000_000_000) <= 2, "{hz} Hz: {ns} ns");
        }
    }

    #[test]
    fn timers_never_fire_early() {
        let hz = 2_593_123_457;
        let (mul, shift) = scale_for(hz);
        for ns in [1, 999, 1_000_000, 123_456_789_012] {
            assert!(ticks_to_ns(ns_to_ticks(ns, hz), mul, shift) + 1 >= ns);
        }
    }
}
