//! Xen's error numbers (`xen/errno.h`), returned negated by hypercalls.
//!
//! The values are the guest-visible ones: `EINTR` (4) and `ERESTART` (85)
//! are internal to Xen and never returned to a guest, so they are absent.
//! [`crate::errno::XenError`] wraps these as an enum.

xen_consts! {
    ERRNO_VALUES;
    pub const XEN_EPERM: i32 = 1;
    pub const XEN_ENOENT: i32 = 2;
    pub const XEN_ESRCH: i32 = 3;
    pub const XEN_EIO: i32 = 5;
    pub const XEN_ENXIO: i32 = 6;
    pub const XEN_E2BIG: i32 = 7;
    pub const XEN_ENOEXEC: i32 = 8;
    pub const XEN_EBADF: i32 = 9;
    pub const XEN_ECHILD: i32 = 10;
    pub const XEN_EAGAIN: i32 = 11;
    pub const XEN_EWOULDBLOCK: i32 = 11;
    pub const XEN_ENOMEM: i32 = 12;
    pub const XEN_EACCES: i32 = 13;
    pub const XEN_EFAULT: i32 = 14;
    pub const XEN_EBUSY: i32 = 16;
    pub const XEN_EEXIST: i32 = 17;
    pub const XEN_EXDEV: i32 = 18;
    pub const XEN_ENODEV: i32 = 19;
    pub const XEN_ENOTDIR: i32 = 20;
    pub const XEN_EISDIR: i32 = 21;
    pub const XEN_EINVAL: i32 = 22;
    pub const XEN_ENFILE: i32 = 23;
    pub const XEN_EMFILE: i32 = 24;
    pub const XEN_ENOSPC: i32 = 28;
    pub const XEN_EROFS: i32 = 30;
    pub const XEN_EMLINK: i32 = 31;
    pub const XEN_EDOM: i32 = 33;
    pub const XEN_ERANGE: i32 = 34;
    pub const XEN_EDEADLK: i32 = 35;
    pub const XEN_EDEADLOCK: i32 = 35;
    pub const XEN_ENAMETOOLONG: i32 = 36;
    pub const XEN_ENOLCK: i32 = 37;
    pub const XEN_ENOSYS: i32 = 38;
    pub const XEN_ENOTEMPTY: i32 = 39;
    pub const XEN_ENODATA: i32 = 61;
    pub const XEN_ETIME: i32 = 62;
    pub const XEN_EBADMSG: i32 = 74;
    pub const XEN_EOVERFLOW: i32 = 75;
    pub const XEN_EILSEQ: i32 = 84;
    pub const XEN_ENOTSOCK: i32 = 88;
    pub const XEN_EMSGSIZE: i32 = 90;
    pub const XEN_EOPNOTSUPP: i32 = 95;
    pub const XEN_EADDRINUSE: i32 = 98;
    pub const XEN_EADDRNOTAVAIL: i32 = 99;
    pub const XEN_ENOBUFS: i32 = 105;
    pub const XEN_EISCONN: i32 = 106;
    pub const XEN_ENOTCONN: i32 = 107;
    pub const XEN_ETIMEDOUT: i32 = 110;
    pub const XEN_ECONNREFUSED: i32 = 111;
}

module_checks! { consts: [ERRNO_VALUES], types: [] }
