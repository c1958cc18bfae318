//! The guest's LDT, kept the way Xen keeps it. `MMUEXT_SET_LDT` only
//! records where the LDT lies and how long it is; its pages are taken one
//! at a time, as descriptor pages, when the CPU first needs them. The CPU
//! uses the hypervisor's own copy of the LDT, in which a page not yet taken
//! reads as empty descriptors: loading a selector from it raises #GP, and
//! the hypervisor then takes the page from the guest's page tables and
//! retries. If the guest has nothing usable mapped there, it gets the page
//! fault Xen would give it, at the LDT's linear address.
//!
//! When the guest removes a mapping of a descriptor page in use, every LDT
//! page is let go (`domain::memory` asks for it), so that the guest may
//! map an old LDT page writable again without first changing its LDT.

use hypercalls::XenError;
use hypervisor::mm::Mfn;

use crate::arch::memory::{self, PAGE_SIZE, PTE_PRESENT};
use crate::arch::{descriptors, guest_access};
use crate::domain::{self, memory as domain_memory, GUEST_DOMID};

const DESCRIPTORS_PER_PAGE: usize = 512;
const ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;

/// `MMUEXT_SET_LDT(linear_addr, nr_ents)`.
pub fn set_ldt(base: u64, entries: u32) -> Result<(), XenError> {
    let entries = entries as usize;
    if entries != 0 && !guest_access::is_guest_range(base, 1) {
        return Err(XenError::EINVAL);
    }
    let changed = domain_memory::with(|state, mem| {
        let before = state.bases.ldt();
        state.bases.set_ldt(&mut state.frames, mem, base, entries)?;
        Ok(state.bases.ldt() != before)
    })
    .map_err(|error: hypervisor::mm::MmError| XenError::from_errno(error.xen_errno()))?;
    if changed {
        descriptors::load_guest_ldt(entries);
        // Taking the pages now saves a fault each; a page that cannot be
        // taken yet is tried again when the guest uses it.
        for page in 0..entries.div_ceil(DESCRIPTORS_PER_PAGE) {
            take_page(page);
        }
    }
    Ok(())
}

/// Takes page `page` of the LDT from the guest's kernel page tables and
/// copies its descriptors into the live LDT; false if it is not usable.
fn take_page(page: usize) -> bool {
    let (base, entries) = domain_memory::with(|state, _| state.bases.ldt());
    if page >= entries.div_ceil(DESCRIPTORS_PER_PAGE) {
        return false;
    }
    let address = base + (page * DESCRIPTORS_PER_PAGE * 8) as u64;
    let root = domain::with(|d| d.vcpu.kernel_root);
    let Some((table, index)) = crate::hypercall::l1_slot(root, address) else { return false };
    let entry = memory::read_u64(table.0 * PAGE_SIZE + 8 * index as u64);
    if entry & PTE_PRESENT == 0 {
        return false;
    }
    let mfn = Mfn((entry & ADDRESS_MASK) / PAGE_SIZE);
    let taken = domain_memory::with(|state, mem| {
        state.bases.map_ldt_frame(&mut state.frames, mem, GUEST_DOMID, page, mfn)
    });
    if taken.is_err() {
        return false;
    }
    let first = page * DESCRIPTORS_PER_PAGE;
    let count = (entries - first).min(DESCRIPTORS_PER_PAGE);
    let mut descriptors = [0u64; DESCRIPTORS_PER_PAGE];
    for (index, descriptor) in descriptors[..count].iter_mut().enumerate() {
        *descriptor = memory::read_u64(mfn.0 * PAGE_SIZE + 8 * index as u64);
    }
    descriptors::set_guest_ldt_descriptors(first, &descriptors[..count]);
    true
}

/// What a #GP naming LDT selector `selector_index` means.
pub enum LdtFault {
    /// Not an LDT page the hypervisor could still take: a real #GP.
    NotOurs,
    /// The page is now in the LDT: retry the instruction.
    Taken,
    /// Nothing usable is mapped there: a page fault at this address.
    PageFault(u64),
}

/// Handles a #GP whose error code names LDT entry `index`.
pub fn fault(index: usize) -> LdtFault {
    let page = index / DESCRIPTORS_PER_PAGE;
    let (base, entries, held) = domain_memory::with(|state, _| {
        let (base, entries) = state.bases.ldt();
        (base, entries, state.bases.ldt_frames().any(|(taken, _)| taken == page))
    });
    if index >= entries || held {
        return LdtFault::NotOurs;
    }
    if take_page(page) {
        LdtFault::Taken
    } else {
        LdtFault::PageFault(base + (page * DESCRIPTORS_PER_PAGE * 8) as u64)
    }
}

/// `update_descriptor` changed entry `index` of frame `mfn`: if that frame
/// is an LDT page in use, the live LDT follows.
pub fn descriptor_updated(mfn: Mfn, index: usize, descriptor: u64) {
    let position = domain_memory::with(|state, _| {
        let (_, entries) = state.bases.ldt();
        let page = state.bases.ldt_frames().find(|&(_, frame)| frame == mfn).map(|(page, _)| page)?;
        let entry = page * DESCRIPTORS_PER_PAGE + index;
        (entry < entries).then_some(entry)
    });
    if let Some(entry) = position {
        descriptors::set_guest_ldt_descriptors(entry, &[descriptor]);
    }
}

/// Empties the live LDT after `domain::memory` let its pages go.
pub fn pages_released(entries: usize) {
    descriptors::clear_guest_ldt_descriptors(0, entries);
}
