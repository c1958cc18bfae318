//! What an attack expects the hypervisor to answer, and how a mismatch is
//! worded: `expected -EFAULT, got 0`.

use alloc::format;
use alloc::string::String;

use hypercalls::XenError;

/// The answer Xen gives, as a raw hypercall return value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Exactly this non-negative value.
    Value(i64),
    /// `-errno` (Xen's errno numbers, positive here: `XEN_EFAULT` is 14).
    Errno(i32),
}

/// Success with 0, the most common expectation.
pub const OK: Expect = Expect::Value(0);

impl Expect {
    pub fn matches(self, got: i64) -> bool {
        match self {
            Expect::Value(value) => got == value,
            Expect::Errno(errno) => got == -i64::from(errno),
        }
    }

    /// The expected value as a raw return value.
    pub fn raw(self) -> i64 {
        match self {
            Expect::Value(value) => value,
            Expect::Errno(errno) => -i64::from(errno),
        }
    }
}

/// A raw return value in words: `0`, `5`, `-EFAULT`, `-errno 4095`.
pub fn describe(raw: i64) -> String {
    if (-4095..0).contains(&raw) {
        match XenError::from_errno(-raw as i32) {
            XenError::Unknown(errno) => format!("-errno {errno}"),
            known => format!("-{}", known.name()),
        }
    } else if (0..=4096).contains(&raw) {
        format!("{raw}")
    } else {
        format!("{raw:#x}")
    }
}

/// `Ok` if `got` is what `expected` says, otherwise the reason for a `FAIL` line.
pub fn check(expected: Expect, got: i64) -> Result<(), String> {
    if expected.matches(got) {
        Ok(())
    } else {
        Err(format!("expected {}, got {}", describe(expected.raw()), describe(got)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hypercalls::abi::errno::{XEN_EBUSY, XEN_EFAULT};

    #[test]
    fn matches_values_and_errnos() {
        assert!(OK.matches(0));
        assert!(!OK.matches(-14));
        assert!(Expect::Errno(XEN_EFAULT).matches(-14));
        assert!(!Expect::Errno(XEN_EFAULT).matches(14));
        assert!(Expect::Value(3).matches(3));
    }

    #[test]
    fn describes_in_xen_terms() {
        assert_eq!(describe(0), "0");
        assert_eq!(describe(-14), "-EFAULT");
        assert_eq!(describe(-4000), "-errno 4000");
        assert_eq!(describe(i64::MIN), "0x8000000000000000");
        assert_eq!(describe(0xffff_8000), "0xffff8000");
    }

    #[test]
    fn mismatch_reads_expected_then_got() {
        assert_eq!(check(Expect::Errno(XEN_EBUSY), 0), Err("expected -EBUSY, got 0".into()));
        assert_eq!(check(Expect::Errno(XEN_EBUSY), -16), Ok(()));
    }
}
