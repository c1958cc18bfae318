//! The reason a domain shuts down with (Xen's `d->shutdown_code`): a byte,
//! and the first one recorded wins, whether by `SCHEDOP_shutdown_code` (which
//! records a reason for a shutdown that happens later, e.g. a kexec'ing
//! kernel announcing a crash) or by `SCHEDOP_shutdown` itself.

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShutdownCode(Option<u8>);

impl ShutdownCode {
    pub const fn new() -> Self {
        Self(None)
    }

    /// `SCHEDOP_shutdown_code`: keeps `reason` unless a code is already set.
    pub fn record(&mut self, reason: u32) {
        self.0.get_or_insert(reason as u8);
    }

    /// `SCHEDOP_shutdown` (and `domain_shutdown`): the reason the domain
    /// really stops with, the recorded code if there is one.
    pub fn shutdown(&mut self, reason: u32) -> u8 {
        *self.0.get_or_insert(reason as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hypercalls::abi::sched::{SHUTDOWN_crash, SHUTDOWN_poweroff, SHUTDOWN_reboot};

    #[test]
    fn a_plain_shutdown_uses_its_reason() {
        assert_eq!(ShutdownCode::new().shutdown(SHUTDOWN_reboot), SHUTDOWN_reboot as u8);
    }

    #[test]
    fn a_recorded_code_wins_and_only_the_first_counts() {
        let mut code = ShutdownCode::new();
        code.record(SHUTDOWN_crash);
        code.record(SHUTDOWN_reboot);
        assert_eq!(code.shutdown(SHUTDOWN_poweroff), SHUTDOWN_crash as u8);
        assert_eq!(code.shutdown(SHUTDOWN_poweroff), SHUTDOWN_crash as u8);
    }

    #[test]
    fn reasons_are_bytes_as_in_xen() {
        assert_eq!(ShutdownCode::new().shutdown(0x1_00 + SHUTDOWN_poweroff), SHUTDOWN_poweroff as u8);
        let mut code = ShutdownCode::new();
        assert_eq!(code.shutdown(255), 255);
    }
}
