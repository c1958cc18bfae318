//! The control hypercalls a toolstack or hardware domain uses:
//! `platform_op`, `sysctl` and `domctl`. The guest here is neither, so
//! every command is refused, but in Xen's order: the argument is copied
//! in whole (`-EFAULT`), its interface version checked (`-EACCES`), the
//! target domain looked up for `domctl` (`-ESRCH`), and only then is the
//! caller found not privileged (`-EPERM`).

use hypercalls::abi::platform::{XenPlatformOp, XENPF_INTERFACE_VERSION};
use hypercalls::XenError;

use super::{Args, HypercallResult};
use crate::arch::guest_access;
use crate::domain::{BACKEND_DOMID, GUEST_DOMID};

/// `struct xen_sysctl` (tools-only `xen/sysctl.h`, Xen 4.17): command,
/// interface version, then a 128-byte union at offset 8.
const SYSCTL_SIZE: usize = 136;
const XEN_SYSCTL_INTERFACE_VERSION: u32 = 0x15;
/// `struct xen_domctl` (tools-only `xen/domctl.h`, Xen 4.17): command,
/// interface version, domain id and padding, then a 128-byte union at 16.
const DOMCTL_SIZE: usize = 144;
const DOMCTL_DOMAIN_OFFSET: usize = 8;
const XEN_DOMCTL_INTERFACE_VERSION: u32 = 0x15;

fn read_envelope<const N: usize>(address: u64) -> Result<[u8; N], XenError> {
    let mut raw = [0u8; N];
    guest_access::read(address, &mut raw).map_err(|_| XenError::EFAULT)?;
    Ok(raw)
}

fn interface_version(raw: &[u8]) -> u32 {
    u32::from_le_bytes([raw[4], raw[5], raw[6], raw[7]])
}

pub fn platform_op(Args([op, ..]): Args) -> HypercallResult {
    let request: XenPlatformOp = guest_access::read_struct(op).map_err(|_| XenError::EFAULT)?;
    if request.interface_version != XENPF_INTERFACE_VERSION {
        return Err(XenError::EACCES);
    }
    Err(XenError::EPERM)
}

pub fn sysctl(Args([op, ..]): Args) -> HypercallResult {
    let raw = read_envelope::<SYSCTL_SIZE>(op)?;
    if interface_version(&raw) != XEN_SYSCTL_INTERFACE_VERSION {
        return Err(XenError::EACCES);
    }
    Err(XenError::EPERM)
}

pub fn domctl(Args([op, ..]): Args) -> HypercallResult {
    let raw = read_envelope::<DOMCTL_SIZE>(op)?;
    if interface_version(&raw) != XEN_DOMCTL_INTERFACE_VERSION {
        return Err(XenError::EACCES);
    }
    // Domain ids are looked up literally: DOMID_SELF names no domain here.
    let domain = u16::from_le_bytes([raw[DOMCTL_DOMAIN_OFFSET], raw[DOMCTL_DOMAIN_OFFSET + 1]]);
    if domain != GUEST_DOMID && domain != BACKEND_DOMID {
        return Err(XenError::ESRCH);
    }
    Err(XenError::EPERM)
}
