//! `xen_version`: which Xen this pretends to be, and its features.

use hypercalls::abi::features::*;
use hypercalls::abi::version::*;
use hypercalls::XenError;

use super::{Args, HypercallResult};
use crate::arch::guest_access;

/// The Xen version the hypervisor implements the interface of.
pub const XEN_MAJOR: u64 = 4;
pub const XEN_MINOR: u64 = 17;
const EXTRA_VERSION: &[u8] = b"-rust";
const CAPABILITIES: &[u8] = b"xen-3.0-x86_64";
const CHANGESET: &[u8] = b"rust-xen-hypervisor";

/// The feature bits a PV guest sees (XENVER_get_features, submap 0): what
/// Xen offers every PV domain. Linux refuses to boot as a PV guest without
/// mmu_pt_update_preserve_ad.
pub fn features() -> u32 {
    (1 << XENFEAT_mmu_pt_update_preserve_ad)
        | (1 << XENFEAT_highmem_assist)
        | (1 << XENFEAT_gnttab_map_avail_bits)
}

pub fn xen_version(Args([command, argument, ..]): Args) -> HypercallResult {
    if command > u64::from(u32::MAX) {
        return Err(XenError::ENOSYS);
    }
    match command as u32 {
        XENVER_version => Ok((XEN_MAJOR << 16) | XEN_MINOR),
        XENVER_extraversion => copy_string(argument, EXTRA_VERSION, 16),
        XENVER_capabilities => copy_string(argument, CAPABILITIES, 1024),
        XENVER_changeset => copy_string(argument, CHANGESET, 64),
        XENVER_platform_parameters => {
            // virt_start: where the hypervisor's range begins.
            guest_access::write(argument, &hypercalls::abi::xen::HYPERVISOR_VIRT_START.to_le_bytes())
                .map_err(|_| XenError::EFAULT)?;
            Ok(0)
        }
        XENVER_get_features => {
            let mut info = [0u8; 8];
            guest_access::read(argument, &mut info).map_err(|_| XenError::EFAULT)?;
            let submap = u32::from_le_bytes(info[0..4].try_into().unwrap_or_default());
            let bits = if submap == 0 { features() } else { 0 };
            guest_access::write(argument + 4, &bits.to_le_bytes()).map_err(|_| XenError::EFAULT)?;
            Ok(0)
        }
        XENVER_pagesize => Ok(4096),
        XENVER_guest_handle => copy_string(argument, &[0; 16], 16),
        _ => Err(XenError::ENOSYS),
    }
}

/// Copies `text` into a fixed-size guest buffer of `size` bytes, NUL-padded.
fn copy_string(buffer: u64, text: &[u8], size: usize) -> HypercallResult {
    let mut padded = [0u8; 1024];
    let len = text.len().min(size - 1);
    padded[..len].copy_from_slice(&text[..len]);
    guest_access::write(buffer, &padded[..size]).map_err(|_| XenError::EFAULT)?;
    Ok(0)
}
