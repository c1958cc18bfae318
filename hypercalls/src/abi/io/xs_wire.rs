//! The xenstore wire protocol and ring page (`xen/io/xs_wire.h`).
//!
//! A message is an [`XsdSockmsg`] header followed by `len` payload bytes,
//! usually NUL-separated strings. Errors come back as an `XS_ERROR` message
//! whose payload is an errno *name* from [`XSD_ERRORS`].

use crate::abi::errno::*;
use crate::conformance::Check;

xen_consts! {
    MESSAGE_TYPES;
    /// `enum xsd_sockmsg_type`: the `type` field of [`XsdSockmsg`].
    pub const XS_CONTROL: u32 = 0;
    pub const XS_DEBUG: u32 = XS_CONTROL;
    pub const XS_DIRECTORY: u32 = 1;
    pub const XS_READ: u32 = 2;
    pub const XS_GET_PERMS: u32 = 3;
    pub const XS_WATCH: u32 = 4;
    pub const XS_UNWATCH: u32 = 5;
    pub const XS_TRANSACTION_START: u32 = 6;
    pub const XS_TRANSACTION_END: u32 = 7;
    pub const XS_INTRODUCE: u32 = 8;
    pub const XS_RELEASE: u32 = 9;
    pub const XS_GET_DOMAIN_PATH: u32 = 10;
    pub const XS_WRITE: u32 = 11;
    pub const XS_MKDIR: u32 = 12;
    pub const XS_RM: u32 = 13;
    pub const XS_SET_PERMS: u32 = 14;
    pub const XS_WATCH_EVENT: u32 = 15;
    pub const XS_ERROR: u32 = 16;
    pub const XS_IS_DOMAIN_INTRODUCED: u32 = 17;
    pub const XS_RESUME: u32 = 18;
    pub const XS_SET_TARGET: u32 = 19;
    /// 20 was `XS_RESTRICT`, since removed.
    pub const XS_RESET_WATCHES: u32 = XS_SET_TARGET + 2;
    pub const XS_DIRECTORY_PART: u32 = 22;
    /// Number of valid types.
    pub const XS_TYPE_COUNT: u32 = 23;
    /// Guaranteed never to be a valid type.
    pub const XS_INVALID: u32 = 0xffff;
    /// `enum xs_watch_type`: the fields of an `XS_WATCH_EVENT` payload.
    pub const XS_WATCH_PATH: u32 = 0;
    pub const XS_WATCH_TOKEN: u32 = 1;
}

xen_strs! {
    WRITE_MODES;
    /// Legacy `XS_WRITE` mode prefixes.
    pub const XS_WRITE_NONE: &str = "NONE";
    pub const XS_WRITE_CREATE: &str = "CREATE";
    pub const XS_WRITE_CREATE_EXCL: &str = "CREATE|EXCL";
}

xen_consts! {
    RING_PAGE;
    /// Bytes in each of the request and response rings.
    pub const XENSTORE_RING_SIZE: usize = 1024;
    /// Largest payload (`XsdSockmsg::len`) either side may send.
    pub const XENSTORE_PAYLOAD_MAX: usize = 4096;
    /// Longest absolute and relative paths accepted.
    pub const XENSTORE_ABS_PATH_MAX: usize = 3072;
    pub const XENSTORE_REL_PATH_MAX: usize = 2048;
    /// `server_features` bits.
    pub const XENSTORE_SERVER_FEATURE_RECONNECTION: u32 = 1;
    pub const XENSTORE_SERVER_FEATURE_ERROR: u32 = 2;
    /// `connection` values.
    pub const XENSTORE_CONNECTED: u32 = 0;
    pub const XENSTORE_RECONNECT: u32 = 1;
    /// `error` values.
    pub const XENSTORE_ERROR_NONE: u32 = 0;
    pub const XENSTORE_ERROR_COMM: u32 = 1;
    pub const XENSTORE_ERROR_RINGIDX: u32 = 2;
    pub const XENSTORE_ERROR_PROTO: u32 = 3;
}

xen_typedefs! {
    XENSTORE_TYPES;
    /// A free-running xenstore ring index.
    pub type XenstoreRingIdx = u32 => "XENSTORE_RING_IDX";
}

xen_struct! {
    /// The header of every xenstore message.
    #[derive(Default, PartialEq, Eq)]
    pub struct XsdSockmsg => "struct xsd_sockmsg" {
        /// `XS_*` message type.
        pub r#type: u32,
        /// Echoed in the reply so requests and replies can be matched.
        pub req_id: u32,
        /// Transaction id, 0 outside a transaction.
        pub tx_id: u32,
        /// Payload bytes following the header.
        pub len: u32,
    }
}

xen_struct! {
    /// The xenstore ring page shared between a guest and xenstored.
    pub struct XenstoreDomainInterface => "struct xenstore_domain_interface" {
        /// Guest-to-daemon requests.
        pub req: [u8; XENSTORE_RING_SIZE],
        /// Daemon-to-guest replies and watch events.
        pub rsp: [u8; XENSTORE_RING_SIZE],
        pub req_cons: XenstoreRingIdx,
        pub req_prod: XenstoreRingIdx,
        pub rsp_cons: XenstoreRingIdx,
        pub rsp_prod: XenstoreRingIdx,
        /// `XENSTORE_SERVER_FEATURE_*` bits.
        pub server_features: u32,
        /// `XENSTORE_CONNECTED` or `XENSTORE_RECONNECT`.
        pub connection: u32,
        /// `XENSTORE_ERROR_*`.
        pub error: u32,
    }
}

impl Default for XenstoreDomainInterface {
    fn default() -> Self {
        Self {
            req: [0; XENSTORE_RING_SIZE],
            rsp: [0; XENSTORE_RING_SIZE],
            req_cons: 0,
            req_prod: 0,
            rsp_cons: 0,
            rsp_prod: 0,
            server_features: 0,
            connection: XENSTORE_CONNECTED,
            error: XENSTORE_ERROR_NONE,
        }
    }
}

/// One entry of [`XSD_ERRORS`]. A Rust view of C's `struct xsd_errors`
/// (which holds a `const char *`), so it has no C layout of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XsdError {
    /// The errno value (Linux numbering, which Xen's errno shares).
    pub errnum: i32,
    /// The name sent on the wire, e.g. `"ENOENT"`.
    pub errstring: &'static str,
}

/// Declares the error table in wire order and checks every entry (number
/// and name) and the table length against C's `xsd_errors[]`.
macro_rules! xsd_error_table {
    ($($index:literal => $name:ident = $errnum:expr;)*) => {
        /// The errors xenstored may report, in the order of C's `xsd_errors`.
        pub const XSD_ERRORS: &[XsdError] = &[
            $(XsdError { errnum: $errnum, errstring: stringify!($name) },)*
        ];

        const XSD_ERROR_CHECKS: &[Check] = &[
            $(
                Check::Const {
                    name: "XSD_ERRORS",
                    c_expr: concat!("xsd_errors[", $index, "].errnum"),
                    value: $errnum as i128,
                },
                Check::Str {
                    name: "XSD_ERRORS",
                    c_expr: concat!("xsd_errors[", $index, "].errstring"),
                    value: stringify!($name),
                },
            )*
            Check::Const {
                name: "XSD_ERRORS",
                c_expr: "sizeof(xsd_errors) / sizeof(xsd_errors[0])",
                value: [$($index),*].len() as i128,
            },
        ];
    };
}

xsd_error_table! {
    0 => EINVAL = XEN_EINVAL;
    1 => EACCES = XEN_EACCES;
    2 => EEXIST = XEN_EEXIST;
    3 => EISDIR = XEN_EISDIR;
    4 => ENOENT = XEN_ENOENT;
    5 => ENOMEM = XEN_ENOMEM;
    6 => ENOSPC = XEN_ENOSPC;
    7 => EIO = XEN_EIO;
    8 => ENOTEMPTY = XEN_ENOTEMPTY;
    9 => ENOSYS = XEN_ENOSYS;
    10 => EROFS = XEN_EROFS;
    11 => EBUSY = XEN_EBUSY;
    12 => EAGAIN = XEN_EAGAIN;
    13 => EISCONN = XEN_EISCONN;
    14 => E2BIG = XEN_E2BIG;
    15 => EPERM = XEN_EPERM;
}

/// The wire name of an errno value, if xenstore defines one.
pub fn xsd_error_name(errnum: i32) -> Option<&'static str> {
    XSD_ERRORS.iter().find(|e| e.errnum == errnum).map(|e| e.errstring)
}

/// The errno value for a wire error name, if xenstore defines it.
pub fn xsd_error_number(name: &str) -> Option<i32> {
    XSD_ERRORS.iter().find(|e| e.errstring == name).map(|e| e.errnum)
}

module_checks! {
    consts: [MESSAGE_TYPES, WRITE_MODES, RING_PAGE, XENSTORE_TYPES, XSD_ERROR_CHECKS],
    types: [XsdSockmsg, XenstoreDomainInterface],
}
