//! The errors xenstore reports, as entries of Xen's `xsd_errors` table.

use hypercalls::abi::errno::*;
use hypercalls::abi::io::xs_wire::XsdError;

const fn entry(errnum: i32, errstring: &'static str) -> XsdError {
    XsdError { errnum, errstring }
}

pub const EINVAL: XsdError = entry(XEN_EINVAL, "EINVAL");
pub const EACCES: XsdError = entry(XEN_EACCES, "EACCES");
pub const EEXIST: XsdError = entry(XEN_EEXIST, "EEXIST");
pub const ENOENT: XsdError = entry(XEN_ENOENT, "ENOENT");
pub const ENOSPC: XsdError = entry(XEN_ENOSPC, "ENOSPC");
pub const EAGAIN: XsdError = entry(XEN_EAGAIN, "EAGAIN");
pub const EBUSY: XsdError = entry(XEN_EBUSY, "EBUSY");
pub const E2BIG: XsdError = entry(XEN_E2BIG, "E2BIG");
pub const EPERM: XsdError = entry(XEN_EPERM, "EPERM");
pub const ENOSYS: XsdError = entry(XEN_ENOSYS, "ENOSYS");

#[cfg(test)]
mod tests {
    use super::*;
    use hypercalls::abi::io::xs_wire::XSD_ERRORS;

    #[test]
    fn every_error_is_in_xens_table() {
        for error in [EINVAL, EACCES, EEXIST, ENOENT, ENOSPC, EAGAIN, EBUSY, E2BIG, EPERM, ENOSYS] {
            assert!(XSD_ERRORS.contains(&error), "{error:?}");
        }
    }
}
