//! `memory_op`: what a PV guest may ask about its memory and the machine's.

use hypercalls::abi::memory::*;
use hypercalls::abi::xen::{DOMID_SELF, MACH2PHYS_VIRT_END, MACH2PHYS_VIRT_START};
use hypercalls::XenError;

use super::exchange::exchange;
use super::reservation::{reservation, Operation};
use super::{Args, HypercallResult};
use crate::arch::{guest_access, memory};
use crate::domain::{self, build, GUEST_DOMID};

/// The command is in the low bits of `cmd`; the bits above carry a
/// continuation (for reservations, the extents already done).
const MEMOP_CMD_MASK: u64 = 0x3f;
pub const MEMOP_EXTENT_SHIFT: u32 = 6;
/// Machine frames per M2P extent: `XENMEM_machphys_mfn_list` names one
/// frame per 2 MiB of the table.
const M2P_EXTENT_FRAMES: u64 = 512;
/// E820 type 1: usable RAM.
const E820_RAM: u32 = 1;

pub fn memory_op(Args([command, argument, ..]): Args) -> HypercallResult {
    let start_extent = command >> MEMOP_EXTENT_SHIFT;
    match (command & MEMOP_CMD_MASK) as u32 {
        XENMEM_increase_reservation => reservation(Operation::Increase, start_extent, argument),
        XENMEM_decrease_reservation => reservation(Operation::Decrease, start_extent, argument),
        XENMEM_populate_physmap => reservation(Operation::Populate, start_extent, argument),
        XENMEM_exchange => exchange(argument),
        XENMEM_machphys_mfn_list => machphys_mfn_list(argument),
        // This one takes no continuation bits (Xen refuses them).
        XENMEM_maximum_ram_page if command >> 6 != 0 => Err(XenError::EINVAL),
        XENMEM_maximum_ram_page => Ok(memory::machine_frame_limit().saturating_sub(1)),
        XENMEM_current_reservation => {
            check_domain(argument)?;
            Ok(domain::with(|d| d.tot_pages))
        }
        XENMEM_maximum_reservation => {
            check_domain(argument)?;
            Ok(domain::with(|d| d.max_pages))
        }
        XENMEM_machphys_mapping => {
            let max_mfn = memory::machine_frame_limit().saturating_sub(1);
            let mut reply = [0u8; 24];
            reply[..8].copy_from_slice(&MACH2PHYS_VIRT_START.to_le_bytes());
            reply[8..16].copy_from_slice(&MACH2PHYS_VIRT_END.to_le_bytes());
            reply[16..].copy_from_slice(&max_mfn.to_le_bytes());
            guest_access::write(argument, &reply).map_err(|_| XenError::EFAULT)?;
            Ok(0)
        }
        XENMEM_memory_map => memory_map(argument),
        // Only the hardware domain may see the machine's map.
        XENMEM_machine_memory_map => Err(XenError::EPERM),
        _ => Err(XenError::ENOSYS),
    }
}

/// Reads the domain id a reservation query names: only the guest itself.
fn check_domain(argument: u64) -> Result<(), XenError> {
    let mut raw = [0u8; 2];
    guest_access::read(argument, &mut raw).map_err(|_| XenError::EFAULT)?;
    match u16::from_le_bytes(raw) {
        DOMID_SELF | GUEST_DOMID => Ok(()),
        _ => Err(XenError::ESRCH),
    }
}

/// The guest's pseudo-physical map: one RAM range from 0. The caller says
/// how many entries fit; the reply says how many were written.
fn memory_map(argument: u64) -> HypercallResult {
    let mut header = [0u8; 16];
    guest_access::read(argument, &mut header).map_err(|_| XenError::EFAULT)?;
    let capacity = u32::from_le_bytes(header[..4].try_into().unwrap_or_default());
    let buffer = u64::from_le_bytes(header[8..].try_into().unwrap_or_default());
    if capacity < 1 {
        return Err(XenError::EINVAL);
    }
    let bytes = domain::with(|d| d.nr_pages()) * memory::PAGE_SIZE;
    let mut entry = [0u8; 20];
    entry[8..16].copy_from_slice(&bytes.to_le_bytes());
    entry[16..].copy_from_slice(&E820_RAM.to_le_bytes());
    guest_access::write(buffer, &entry).map_err(|_| XenError::EFAULT)?;
    guest_access::write(argument, &1u32.to_le_bytes()).map_err(|_| XenError::EFAULT)?;
    Ok(0)
}

/// `XENMEM_machphys_mfn_list`: the machine frames holding the M2P table,
/// one per 2 MiB of it, up to `max_extents`; `nr_extents` says how many.
fn machphys_mfn_list(argument: u64) -> HypercallResult {
    let mut request: XenMachphysMfnList =
        guest_access::read_struct(argument).map_err(|_| XenError::EFAULT)?;
    let (first, frames) = build::m2p_frames();
    let extents = frames.div_ceil(M2P_EXTENT_FRAMES);
    let mut written = 0;
    while written != request.max_extents && u64::from(written) < extents {
        let mfn = first + u64::from(written) * M2P_EXTENT_FRAMES;
        let slot = request.extent_start + 8 * u64::from(written);
        guest_access::write(slot, &mfn.to_le_bytes()).map_err(|_| XenError::EFAULT)?;
        written += 1;
    }
    request.nr_extents = written;
    guest_access::write_struct(argument, &request).map_err(|_| XenError::EFAULT)?;
    Ok(0)
}
