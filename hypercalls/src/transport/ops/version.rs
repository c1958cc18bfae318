//! `xen_version`: which Xen this is and what it offers.

use crate::abi::version::*;
use crate::abi::xen::__HYPERVISOR_xen_version;
use crate::transport::{addr_of_mut, hypercall2};
use crate::XenError;

/// Issues `XENVER_<cmd>` with `out` as the buffer Xen fills.
fn query<T>(cmd: u32, out: &mut T) -> Result<u64, XenError> {
    // SAFETY: for the commands used in this module Xen writes exactly one
    // `T` (the type named for the command in version.h) to `out`, which is
    // mutably borrowed for the call.
    let ret = unsafe { hypercall2(__HYPERVISOR_xen_version, cmd as u64, addr_of_mut(out)) };
    XenError::from_return(ret)
}

/// The Xen version as `(major, minor)`.
pub fn version() -> Result<(u16, u16), XenError> {
    // SAFETY: XENVER_version takes no buffer; a null argument is ignored.
    let ret = unsafe { hypercall2(__HYPERVISOR_xen_version, XENVER_version as u64, 0) };
    let raw = XenError::from_return(ret)?;
    Ok(((raw >> 16) as u16, raw as u16))
}

/// The version suffix, e.g. `".0"` or `"-unstable"` (NUL-padded).
pub fn extraversion() -> Result<XenExtraversion, XenError> {
    let mut out = [0; XEN_EXTRAVERSION_LEN];
    query(XENVER_extraversion, &mut out).map(|_| out)
}

/// The guest ABIs Xen supports, e.g. `"xen-3.0-x86_64 hvm-3.0-x86_64"`.
pub fn capabilities() -> Result<XenCapabilitiesInfo, XenError> {
    let mut out = [0; XEN_CAPABILITIES_INFO_LEN];
    query(XENVER_capabilities, &mut out).map(|_| out)
}

/// The source changeset Xen was built from.
pub fn changeset() -> Result<XenChangesetInfo, XenError> {
    let mut out = [0; XEN_CHANGESET_INFO_LEN];
    query(XENVER_changeset, &mut out).map(|_| out)
}

/// Where the hypervisor's virtual-address hole starts.
pub fn platform_parameters() -> Result<XenPlatformParameters, XenError> {
    let mut out = XenPlatformParameters::default();
    query(XENVER_platform_parameters, &mut out).map(|_| out)
}

/// The 32 `XENFEAT_*` bits of feature submap `submap_idx` (0 is the only one).
pub fn get_features(submap_idx: u32) -> Result<u32, XenError> {
    let mut info = XenFeatureInfo { submap_idx, submap: 0 };
    query(XENVER_get_features, &mut info).map(|_| info.submap)
}

/// The page size Xen uses for the guest.
pub fn pagesize() -> Result<u64, XenError> {
    // SAFETY: XENVER_pagesize takes no buffer.
    let ret = unsafe { hypercall2(__HYPERVISOR_xen_version, XENVER_pagesize as u64, 0) };
    XenError::from_return(ret)
}

/// The bytes of a NUL-padded string Xen returned, without the padding.
pub fn until_nul(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::testing::{read_guest, with_responder, write_guest};

    #[test]
    fn version_splits_major_and_minor() {
        let (result, calls) = with_responder(|_| 0x0004_0011, version);
        assert_eq!(result, Ok((4, 17)));
        assert_eq!(calls[0].nr, __HYPERVISOR_xen_version);
        assert_eq!(calls[0].args[0], XENVER_version as u64);
    }

    #[test]
    fn get_features_sends_the_submap_and_returns_bits() {
        let (result, calls) = with_responder(
            |call| {
                let info: XenFeatureInfo = read_guest(call.args[1]);
                assert_eq!(info.submap_idx, 0);
                write_guest(call.args[1], XenFeatureInfo { submap_idx: 0, submap: 0b1001 });
                0
            },
            || get_features(0),
        );
        assert_eq!(result, Ok(0b1001));
        assert_eq!(calls[0].args[0], XENVER_get_features as u64);
    }

    #[test]
    fn capabilities_returns_the_string_xen_wrote() {
        let (result, _) = with_responder(
            |call| {
                write_guest(call.args[1], *b"xen-3.0-x86_64\0");
                0
            },
            capabilities,
        );
        assert_eq!(until_nul(&result.unwrap()), b"xen-3.0-x86_64");
    }

    #[test]
    fn errors_pass_through() {
        let (result, _) = with_responder(|_| XenError::EPERM.to_return(), platform_parameters);
        assert_eq!(result, Err(XenError::EPERM));
    }
}
