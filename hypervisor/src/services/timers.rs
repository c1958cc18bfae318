//! A vCPU's virtual timers, both of which raise `VIRQ_TIMER`: the
//! single-shot timer (`set_timer_op`, `VCPUOP_set_singleshot_timer`) and
//! the periodic ticker (`VCPUOP_set_periodic_timer`), which Xen starts at
//! 100 Hz for every PV vCPU until the guest stops it.
//!
//! Times are Xen system time: nanoseconds since the hypervisor started.

use hypercalls::abi::vcpu::VCPU_SSHOTTMR_future;
use hypercalls::XenError;

pub const MILLISECOND: u64 = 1_000_000;
/// Xen gives PV vCPUs a 100 Hz periodic timer by default.
pub const DEFAULT_PERIOD: u64 = 10 * MILLISECOND;
/// Xen's `STIME_DELTA_MAX`: the longest period it accepts.
pub const MAX_PERIOD: u64 = u64::MAX >> 2;
/// `set_timer_op` treats timeouts more than 2^50 ns (about 13 days) ahead,
/// or with bit 63 set, as a guest's wrapped "no timer" value and fires in
/// 100 ms instead.
const HUGE_TIMEOUT_SHIFT: u32 = 50;
const HUGE_TIMEOUT_FALLBACK: u64 = 100 * MILLISECOND;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuTimers {
    singleshot: Option<u64>,
    /// 0: stopped.
    period: u64,
    last_periodic: u64,
}

impl Default for VcpuTimers {
    fn default() -> Self {
        Self::new()
    }
}

impl VcpuTimers {
    pub const fn new() -> Self {
        Self { singleshot: None, period: DEFAULT_PERIOD, last_periodic: 0 }
    }

    /// `set_timer_op(timeout)`: 0 stops the single-shot timer; a
    /// "negative" or absurdly distant timeout becomes 100 ms from now.
    pub fn set_timer_op(&mut self, timeout: u64, now: u64) {
        let offset = (timeout as i64).wrapping_sub(now as i64);
        self.singleshot = if timeout == 0 {
            None
        } else if (timeout as i64) < 0 || (offset > 0 && (offset >> HUGE_TIMEOUT_SHIFT) as u32 != 0) {
            Some(now + HUGE_TIMEOUT_FALLBACK)
        } else {
            Some(timeout)
        };
    }

    /// `VCPUOP_set_singleshot_timer`: with `VCPU_SSHOTTMR_future`, a
    /// deadline already past is refused with `ETIME`; otherwise a past
    /// deadline fires at once.
    pub fn set_singleshot(&mut self, deadline: u64, flags: u32, now: u64) -> Result<(), XenError> {
        if flags & VCPU_SSHOTTMR_future != 0 && deadline < now {
            return Err(XenError::ETIME);
        }
        // Xen's timers take signed times: a deadline with bit 63 set is in
        // the past.
        self.singleshot = Some(if (deadline as i64) < 0 { 0 } else { deadline });
        Ok(())
    }

    pub fn stop_singleshot(&mut self) {
        self.singleshot = None;
    }

    /// `VCPUOP_set_periodic_timer`: periods under 1 ms or over
    /// [`MAX_PERIOD`] are `EINVAL`. The next tick is due one new period
    /// after the last one (so possibly at once).
    pub fn set_periodic(&mut self, period: u64) -> Result<(), XenError> {
        if !(MILLISECOND..=MAX_PERIOD).contains(&period) {
            return Err(XenError::EINVAL);
        }
        self.period = period;
        Ok(())
    }

    pub fn stop_periodic(&mut self) {
        self.period = 0;
    }

    pub fn singleshot_deadline(&self) -> Option<u64> {
        self.singleshot
    }

    pub fn period(&self) -> Option<u64> {
        (self.period != 0).then_some(self.period)
    }

    /// When the next timer fires, if any is running.
    pub fn next_deadline(&self) -> Option<u64> {
        let periodic = self.period().map(|period| self.last_periodic.saturating_add(period));
        match (self.singleshot, periodic) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs the timers due at `now`; true if `VIRQ_TIMER` must fire. A
    /// periodic tick that is late fires once and restarts its period from
    /// `now`, as Xen's does (no catch-up burst).
    pub fn expire(&mut self, now: u64) -> bool {
        let mut fired = false;
        if self.singleshot.is_some_and(|deadline| now >= deadline) {
            self.singleshot = None;
            fired = true;
        }
        if let Some(period) = self.period() {
            if now >= self.last_periodic.saturating_add(period) {
                self.last_periodic = now;
                fired = true;
            }
        }
        fired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 5_000 * MILLISECOND;

    fn quiet() -> VcpuTimers {
        let mut timers = VcpuTimers::new();
        timers.stop_periodic();
        timers
    }

    #[test]
    fn pv_vcpus_start_with_a_100_hz_ticker() {
        let mut timers = VcpuTimers::new();
        assert_eq!(timers.period(), Some(10 * MILLISECOND));
        assert_eq!(timers.next_deadline(), Some(DEFAULT_PERIOD));
        assert!(timers.expire(NOW), "long overdue: fires once");
        assert!(!timers.expire(NOW + 1), "and restarts from now");
        assert_eq!(timers.next_deadline(), Some(NOW + DEFAULT_PERIOD));
        assert!(timers.expire(NOW + DEFAULT_PERIOD));
    }

    #[test]
    fn singleshot_fires_once_at_its_deadline() {
        let mut timers = quiet();
        timers.set_singleshot(NOW + 1000, 0, NOW).unwrap();
        assert_eq!(timers.next_deadline(), Some(NOW + 1000));
        assert!(!timers.expire(NOW + 999));
        assert!(timers.expire(NOW + 1000));
        assert!(!timers.expire(NOW + 5000));
        assert_eq!(timers.next_deadline(), None);
    }

    #[test]
    fn singleshot_in_the_past_is_etime_only_when_asked() {
        let mut timers = quiet();
        assert_eq!(timers.set_singleshot(NOW - 1, VCPU_SSHOTTMR_future, NOW), Err(XenError::ETIME));
        assert_eq!(timers.next_deadline(), None, "a refused timer is not armed");
        assert_eq!(timers.set_singleshot(NOW, VCPU_SSHOTTMR_future, NOW), Ok(()), "now is not the past");
        assert_eq!(timers.set_singleshot(NOW - 1, 0, NOW), Ok(()));
        assert!(timers.expire(NOW));
        timers.set_singleshot(u64::MAX, 0, NOW).unwrap();
        assert!(timers.expire(NOW), "a negative system time is in the past");
    }

    #[test]
    fn stop_singleshot_disarms() {
        let mut timers = quiet();
        timers.set_singleshot(NOW + 10, 0, NOW).unwrap();
        timers.stop_singleshot();
        assert!(!timers.expire(NOW + 100));
    }

    #[test]
    fn set_timer_op_follows_xen_workarounds() {
        let mut timers = quiet();
        timers.set_timer_op(NOW + 7, NOW);
        assert_eq!(timers.singleshot_deadline(), Some(NOW + 7));
        timers.set_timer_op(0, NOW);
        assert_eq!(timers.singleshot_deadline(), None, "0 cancels");
        timers.set_timer_op(NOW + (1 << 50) + 1, NOW);
        assert_eq!(timers.singleshot_deadline(), Some(NOW + 100 * MILLISECOND), "absurdly far");
        timers.set_timer_op(1 << 63, NOW);
        assert_eq!(timers.singleshot_deadline(), Some(NOW + 100 * MILLISECOND), "negative");
        timers.set_timer_op(NOW - 5, NOW);
        assert_eq!(timers.singleshot_deadline(), Some(NOW - 5), "merely past: fires at once");
        assert!(timers.expire(NOW));
    }

    #[test]
    fn periodic_limits_and_stop() {
        let mut timers = quiet();
        assert_eq!(timers.set_periodic(MILLISECOND - 1), Err(XenError::EINVAL));
        assert_eq!(timers.set_periodic(MAX_PERIOD + 1), Err(XenError::EINVAL));
        assert_eq!(timers.period(), None);
        timers.set_periodic(2 * MILLISECOND).unwrap();
        assert!(timers.expire(NOW));
        assert_eq!(timers.next_deadline(), Some(NOW + 2 * MILLISECOND));
        timers.stop_periodic();
        assert_eq!(timers.next_deadline(), None);
        assert!(!timers.expire(NOW + 10 * MILLISECOND));
    }

    #[test]
    fn the_earlier_timer_decides_the_deadline() {
        let mut timers = VcpuTimers::new();
        timers.expire(NOW);
        timers.set_singleshot(NOW + 3, 0, NOW).unwrap();
        assert_eq!(timers.next_deadline(), Some(NOW + 3));
        timers.set_singleshot(NOW + 20 * MILLISECOND, 0, NOW).unwrap();
        assert_eq!(timers.next_deadline(), Some(NOW + DEFAULT_PERIOD));
    }
}
