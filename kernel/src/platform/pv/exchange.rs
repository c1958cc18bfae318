//! Giving a page a different machine frame, the way a PV kernel makes
//! memory a device can reach (Linux's `xen_create_contiguous_region`, here
//! for one page): unmap it, trade the frame with `XENMEM_exchange` for one
//! below an address limit, record the new frame in the p2m, map it again.
//!
//! The page's contents do not survive: Xen hands out a fresh frame.

use hypercalls::abi::xen::UVMF_INVLPG;
use hypercalls::ops::{memory as memory_op, pv_mm};
use hypercalls::XenError;
use kernel::layout::PAGE_SIZE;

use super::Pv;
use crate::arch::memory;
use crate::mm::paging::AddressSpace;

const ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;

#[derive(Debug)]
pub enum ExchangeError {
    /// The page is not the guest's, or not mapped in the direct map.
    NotMovable,
    /// Xen refused; the page keeps its old frame.
    Xen(XenError),
}

impl Pv {
    /// Moves the page at guest-physical `phys` to a new machine frame below
    /// `2^address_bits`; returns the new frame number. The page must be the
    /// caller's alone and mapped only in the direct map (Xen refuses a frame
    /// that is mapped anywhere else); it reads as zeros afterwards.
    pub fn move_page_below(&self, phys: u64, address_bits: u32) -> Result<u64, ExchangeError> {
        let pfn = phys / PAGE_SIZE;
        let old_mfn = self.mmu.mfn(pfn).ok_or(ExchangeError::NotMovable)?;
        let virt = memory::phys_to_virt(phys & !(PAGE_SIZE - 1));
        let (_, _, entry) = AddressSpace::current().leaf(virt).map_err(|_| ExchangeError::NotMovable)?;
        let flags = entry & !ADDRESS_MASK;
        self.mmu.commit().map_err(|_| ExchangeError::NotMovable)?;
        // SAFETY: the page is the caller's alone, so nothing reads it
        // through the direct map while it is unmapped.
        unsafe { pv_mm::update_va_mapping(virt, 0, UVMF_INVLPG) }.map_err(ExchangeError::Xen)?;
        let mut output = [pfn];
        // SAFETY: the frame's only mapping is gone; the p2m is updated
        // below before anything uses the page again.
        let (_, result) = unsafe { memory_op::exchange(&[old_mfn], 0, &mut output, 0, address_bits) };
        let mfn = match result {
            Ok(()) => output[0],
            Err(error) => {
                self.remap(virt, old_mfn, flags);
                return Err(ExchangeError::Xen(error));
            }
        };
        self.mmu.set_mfn(pfn, mfn);
        self.remap(virt, mfn, flags);
        Ok(mfn)
    }

    fn remap(&self, virt: u64, mfn: u64, flags: u64) {
        // SAFETY: puts back the direct-map entry of the caller's page, now
        // naming the frame the p2m records for it.
        let remapped = unsafe { pv_mm::update_va_mapping(virt, (mfn * PAGE_SIZE) | flags, UVMF_INVLPG) };
        remapped.expect("Xen refused to map back a frame it just gave the guest");
    }
}
