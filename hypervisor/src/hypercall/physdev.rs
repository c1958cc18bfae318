//! `physdev_op`: physical devices belong to the hardware domain. This
//! hypervisor gives its guest none, so the privileged operations are
//! refused with Xen's answer to an unprivileged domain.

use hypercalls::abi::physdev::*;
use hypercalls::XenError;

use super::{Args, HypercallResult};

pub fn physdev_op(Args([command, argument, ..]): Args) -> HypercallResult {
    match u32::try_from(command).map_err(|_| XenError::ENOSYS)? {
        PHYSDEVOP_eoi | PHYSDEVOP_irq_status_query => Err(XenError::EINVAL),
        // Every PV guest may set its virtual IOPL (Linux does at boot). It
        // grants no port: see emulate.rs for what it changes.
        PHYSDEVOP_set_iopl => {
            let mut raw = [0u8; 4];
            crate::arch::guest_access::read(argument, &mut raw).map_err(|_| XenError::EFAULT)?;
            let iopl = u32::from_le_bytes(raw);
            if iopl > 3 {
                return Err(XenError::EINVAL);
            }
            crate::domain::with(|d| d.vcpu.iopl = iopl as u8);
            Ok(0)
        }
        PHYSDEVOP_set_iobitmap
        | PHYSDEVOP_apic_read
        | PHYSDEVOP_apic_write
        | PHYSDEVOP_alloc_irq_vector
        | PHYSDEVOP_free_irq_vector
        | PHYSDEVOP_map_pirq
        | PHYSDEVOP_unmap_pirq
        | PHYSDEVOP_manage_pci_add
        | PHYSDEVOP_manage_pci_remove
        | PHYSDEVOP_manage_pci_add_ext
        | PHYSDEVOP_setup_gsi
        | PHYSDEVOP_get_free_pirq
        | PHYSDEVOP_pci_mmcfg_reserved
        | PHYSDEVOP_pci_device_add
        | PHYSDEVOP_pci_device_remove
        | PHYSDEVOP_restore_msi
        | PHYSDEVOP_restore_msi_ext
        | PHYSDEVOP_pirq_eoi_gmfn_v1 => Err(XenError::EPERM),
        _ => Err(XenError::ENOSYS),
    }
}

/// Size of the pre-3.2 `struct physdev_op`: the command, then the argument
/// union at offset 8 (its members hold 64-bit fields), 16 bytes long.
const PHYSDEV_OP_COMPAT_SIZE: usize = 24;
const PHYSDEV_OP_COMPAT_UNION: u64 = 8;

/// `physdev_op_compat(op)`: the whole old-style structure is read first,
/// then the command runs as `physdev_op` on the union inside it.
pub fn physdev_op_compat(Args([op, ..]): Args) -> HypercallResult {
    let mut raw = [0u8; PHYSDEV_OP_COMPAT_SIZE];
    crate::arch::guest_access::read(op, &mut raw).map_err(|_| XenError::EFAULT)?;
    let command = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
    physdev_op(Args([u64::from(command), op + PHYSDEV_OP_COMPAT_UNION, 0, 0, 0]))
}
