//! The verdict channel between a guest (or the hypervisor) and the test
//! runner: QEMU's `isa-debug-exit` device.
//!
//! Writing `v` to the device's port makes QEMU exit with status `(v << 1) | 1`.
//! Status 0 and 1 are also what QEMU itself returns for ordinary exits, so the
//! verdicts use values whose statuses cannot be confused with those.

/// The I/O port that `cargo xtask run` wires the device to
/// (`-device isa-debug-exit,iobase=0xf4,iosize=0x04`).
pub const PORT: u16 = 0xf4;

/// What the guest (or, under the hypervisor, the domain) asks the runner to report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Verdict {
    /// Powered off normally: the run succeeded.
    Success = 0x10,
    /// A test failed, the kernel panicked, or the domain crashed.
    Failure = 0x11,
    /// The domain asked for a reboot, which the runner treats as a failure
    /// (there is nothing to reboot into).
    Reboot = 0x12,
    /// A fault in the hypervisor itself.
    HypervisorFault = 0x13,
}

impl Verdict {
    /// The value to write to [`PORT`].
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The process exit status QEMU reports for this verdict.
    pub const fn qemu_status(self) -> i32 {
        ((self as i32) << 1) | 1
    }

    /// Maps a QEMU exit status back to the verdict that produced it.
    pub fn from_qemu_status(status: i32) -> Option<Verdict> {
        [Verdict::Success, Verdict::Failure, Verdict::Reboot, Verdict::HypervisorFault]
            .into_iter()
            .find(|v| v.qemu_status() == status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_avoid_qemu_own_codes() {
        for v in [Verdict::Success, Verdict::Failure, Verdict::Reboot, Verdict::HypervisorFault] {
            assert_eq!(Verdict::from_qemu_status(v.qemu_status()), Some(v));
            assert!(v.qemu_status() > 1);
        }
        assert_eq!(Verdict::Success.qemu_status(), 33);
        assert_eq!(Verdict::from_qemu_status(1), None);
    }
}
