//! Xen's error numbers as a Rust type.
//!
//! A hypercall returns a non-negative result or a negated errno. The guest
//! turns that into `Result` with [`XenError::from_return`]; the hypervisor
//! goes the other way with [`XenError::to_return`].

use crate::abi::errno::*;
use core::fmt;

macro_rules! xen_errors {
    ($($variant:ident => $value:ident,)*) => {
        /// An error a hypercall returned (or, in the hypervisor, will return).
        #[allow(clippy::upper_case_acronyms)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum XenError {
            $($variant,)*
            /// A negative return value this crate does not know (a newer
            /// Xen, or a hypervisor bug); holds the positive errno.
            Unknown(i32),
        }

        impl XenError {
            /// The positive errno value.
            pub const fn errno(self) -> i32 {
                match self {
                    $(XenError::$variant => $value,)*
                    XenError::Unknown(value) => value,
                }
            }

            /// The error for a positive errno value.
            pub const fn from_errno(errno: i32) -> XenError {
                match errno {
                    $($value => XenError::$variant,)*
                    other => XenError::Unknown(other),
                }
            }

            /// The C name, e.g. `"EPERM"`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(XenError::$variant => stringify!($variant),)*
                    XenError::Unknown(_) => "unknown Xen errno",
                }
            }
        }

        /// Every named error, in errno order (for tests and tables).
        pub const ALL_ERRORS: &[XenError] = &[$(XenError::$variant,)*];
    };
}

xen_errors! {
    EPERM => XEN_EPERM,
    ENOENT => XEN_ENOENT,
    ESRCH => XEN_ESRCH,
    EIO => XEN_EIO,
    ENXIO => XEN_ENXIO,
    E2BIG => XEN_E2BIG,
    ENOEXEC => XEN_ENOEXEC,
    EBADF => XEN_EBADF,
    ECHILD => XEN_ECHILD,
    EAGAIN => XEN_EAGAIN,
    ENOMEM => XEN_ENOMEM,
    EACCES => XEN_EACCES,
    EFAULT => XEN_EFAULT,
    EBUSY => XEN_EBUSY,
    EEXIST => XEN_EEXIST,
    EXDEV => XEN_EXDEV,
    ENODEV => XEN_ENODEV,
    ENOTDIR => XEN_ENOTDIR,
    EISDIR => XEN_EISDIR,
    EINVAL => XEN_EINVAL,
    ENFILE => XEN_ENFILE,
    EMFILE => XEN_EMFILE,
    ENOSPC => XEN_ENOSPC,
    EROFS => XEN_EROFS,
    EMLINK => XEN_EMLINK,
    EDOM => XEN_EDOM,
    ERANGE => XEN_ERANGE,
    EDEADLK => XEN_EDEADLK,
    ENAMETOOLONG => XEN_ENAMETOOLONG,
    ENOLCK => XEN_ENOLCK,
    ENOSYS => XEN_ENOSYS,
    ENOTEMPTY => XEN_ENOTEMPTY,
    ENODATA => XEN_ENODATA,
    ETIME => XEN_ETIME,
    EBADMSG => XEN_EBADMSG,
    EOVERFLOW => XEN_EOVERFLOW,
    EILSEQ => XEN_EILSEQ,
    ENOTSOCK => XEN_ENOTSOCK,
    EMSGSIZE => XEN_EMSGSIZE,
    EOPNOTSUPP => XEN_EOPNOTSUPP,
    EADDRINUSE => XEN_EADDRINUSE,
    EADDRNOTAVAIL => XEN_EADDRNOTAVAIL,
    ENOBUFS => XEN_ENOBUFS,
    EISCONN => XEN_EISCONN,
    ENOTCONN => XEN_ENOTCONN,
    ETIMEDOUT => XEN_ETIMEDOUT,
    ECONNREFUSED => XEN_ECONNREFUSED,
}

impl XenError {
    /// Xen's alias of [`XenError::EAGAIN`].
    pub const EWOULDBLOCK: XenError = XenError::EAGAIN;
    /// Xen's alias of [`XenError::EDEADLK`].
    pub const EDEADLOCK: XenError = XenError::EDEADLK;

    /// Splits a raw hypercall return value into a result: negative values
    /// are negated errnos, everything else is success.
    pub const fn from_return(ret: i64) -> Result<u64, XenError> {
        if ret >= 0 {
            Ok(ret as u64)
        } else if ret >= -(i32::MAX as i64) {
            Err(XenError::from_errno(-ret as i32))
        } else {
            Err(XenError::Unknown(i32::MAX))
        }
    }

    /// The raw hypercall return value for this error (the negated errno).
    pub const fn to_return(self) -> i64 {
        -(self.errno() as i64)
    }
}

impl fmt::Display for XenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XenError::Unknown(errno) => write!(f, "Xen errno {errno}"),
            known => f.write_str(known.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_error_round_trips_through_its_return_value() {
        for &error in ALL_ERRORS {
            assert!(error.to_return() < 0, "{error}");
            assert_eq!(XenError::from_return(error.to_return()), Err(error));
            assert_eq!(XenError::from_errno(error.errno()), error);
        }
    }

    #[test]
    fn non_negative_returns_are_success() {
        assert_eq!(XenError::from_return(0), Ok(0));
        assert_eq!(XenError::from_return(4096), Ok(4096));
    }

    #[test]
    fn names_and_numbers_match_xen() {
        assert_eq!(XenError::from_return(-1), Err(XenError::EPERM));
        assert_eq!(XenError::ENOSYS.to_return(), -38);
        assert_eq!(XenError::EINVAL.to_string(), "EINVAL");
        assert_eq!(XenError::EWOULDBLOCK, XenError::EAGAIN);
    }

    #[test]
    fn unknown_errnos_are_kept_not_lost() {
        assert_eq!(XenError::from_return(-4), Err(XenError::Unknown(4)));
        assert_eq!(XenError::Unknown(4).to_return(), -4);
        assert_eq!(XenError::from_return(i64::MIN), Err(XenError::Unknown(i32::MAX)));
        assert_eq!(XenError::Unknown(200).to_string(), "Xen errno 200");
    }
}
