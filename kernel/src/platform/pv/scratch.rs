//! Raw PV page-table operations for the self-tests and the demo, confined
//! to the scratch range (`kernel::layout::SCRATCH_BASE`), which nothing
//! else maps: changing a mapping there cannot pull memory out from under
//! other code, which is what makes these safe to expose.
//!
//! Each takes an entry in guest terms (a PFN-based PTE) and goes a
//! different way to Xen: `mmu_update` with the error returned instead of a
//! panic, `update_va_mapping`, or a store that Xen traps and emulates.

use alloc::vec::Vec;

use hypercalls::abi::xen::UVMF_INVLPG;
use hypercalls::abi::xen::{MmuUpdate, DOMID_SELF, MMU_NORMAL_PT_UPDATE};
use hypercalls::ops::pv_mm;
use hypercalls::XenError;
use kernel::layout::{SCRATCH_BASE, SCRATCH_SIZE};

use super::mmu::MmuError;
use super::Pv;
use crate::arch::{memory, traps};
use crate::mm::paging::{AddressSpace, MapError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScratchError {
    /// The address is outside the scratch range.
    OutOfRange,
    /// No L1 table covers the address yet (map something there first).
    NoTable(MapError),
    Mmu(MmuError),
    Xen(XenError),
}

fn check(address: u64) -> Result<(), ScratchError> {
    if (SCRATCH_BASE..SCRATCH_BASE + SCRATCH_SIZE).contains(&address) && address.is_multiple_of(4096) {
        Ok(())
    } else {
        Err(ScratchError::OutOfRange)
    }
}

/// The L1 table and index of a present scratch mapping.
fn slot(address: u64) -> Result<(u64, usize), ScratchError> {
    check(address)?;
    let (table, index, _) = AddressSpace::current().leaf(address).map_err(ScratchError::NoTable)?;
    Ok((table, index))
}

impl Pv {
    /// Rewrites the (present) scratch mapping at `address` with one
    /// `mmu_update`, returning Xen's verdict instead of panicking.
    pub fn scratch_mmu_update(&self, address: u64, entry: u64) -> Result<(), ScratchError> {
        let (table, index) = slot(address)?;
        let machine_entry = self.mmu.to_machine_pte(entry);
        let pte = self.mmu.machine_address(table + 8 * index as u64);
        self.mmu.commit().map_err(ScratchError::Mmu)?;
        self.mmu.queue_update(pte, machine_entry).map_err(ScratchError::Mmu)?;
        self.mmu.commit().map_err(ScratchError::Mmu)?;
        crate::platform::Platform::flush_tlb_page(self, address);
        self.mmu.commit().map_err(ScratchError::Mmu)
    }

    /// Sets the PTE of scratch page `address` with `update_va_mapping`,
    /// which finds the entry by virtual address (its L1 must exist).
    pub fn scratch_update_va_mapping(&self, address: u64, entry: u64) -> Result<(), ScratchError> {
        check(address)?;
        let machine_entry = self.mmu.to_machine_pte(entry);
        // SAFETY: nothing outside the scratch range changes, and nothing
        // but the caller uses the scratch range.
        unsafe { pv_mm::update_va_mapping(address, machine_entry, UVMF_INVLPG) }.map_err(ScratchError::Xen)
    }

    /// Stores the (present) scratch PTE directly into its read-only table;
    /// true if Xen trapped and emulated the store (writable page tables),
    /// false if it refused it as a page fault.
    pub fn scratch_trapped_store(&self, address: u64, entry: u64) -> Result<bool, ScratchError> {
        let (table, index) = slot(address)?;
        self.mmu.commit().map_err(ScratchError::Mmu)?;
        let machine_entry = self.mmu.to_machine_pte(entry);
        let pte = memory::phys_to_virt(table + 8 * index as u64);
        // SAFETY: the word is a PTE of the scratch range; Xen validates the
        // store (or refuses it with a page fault, which is recovered).
        let stored = unsafe { traps::probe_write(pte, machine_entry) };
        if stored {
            self.mmu.count_trapped_write();
        }
        crate::platform::Platform::flush_tlb_page(self, address);
        self.mmu.commit().map_err(ScratchError::Mmu)?;
        Ok(stored)
    }
}

/// `mmu_update` requests for scratch PTEs, checked and translated to
/// machine terms ahead of time, so a benchmark can time the hypercall alone.
/// Only [`Pv::scratch_updates`] makes them, so every request targets a PTE
/// of the scratch range (whose page tables are never freed).
pub struct ScratchUpdates {
    requests: Vec<MmuUpdate>,
}

impl Pv {
    /// Prepares one request per `(address, entry)`: the (present) scratch
    /// mapping at `address` becomes guest-terms `entry`.
    pub fn scratch_updates(
        &self,
        mappings: impl IntoIterator<Item = (u64, u64)>,
    ) -> Result<ScratchUpdates, ScratchError> {
        let mut requests = Vec::new();
        for (address, entry) in mappings {
            let (table, index) = slot(address)?;
            let ptr = self.mmu.machine_address(table + 8 * index as u64);
            let val = self.mmu.to_machine_pte(entry);
            requests.push(MmuUpdate { ptr: ptr | u64::from(MMU_NORMAL_PT_UPDATE), val });
        }
        Ok(ScratchUpdates { requests })
    }
}

impl ScratchUpdates {
    /// Sends every request in one `mmu_update` hypercall (no queue, no
    /// TLB flush: nothing reads the scratch pages while they change).
    pub fn send(&self) -> Result<(), ScratchError> {
        // SAFETY: every request rewrites a scratch-range PTE (checked when
        // prepared), which nothing but the caller uses; Xen validates each.
        unsafe { pv_mm::mmu_update(&self.requests, DOMID_SELF) }
            .map(drop)
            .map_err(|e| ScratchError::Mmu(MmuError { what: "mmu_update", error: e.error, done: e.done }))
    }
}

/// A store of a prepared value straight into a scratch PTE (read-only to
/// the guest), for timing Xen's writable-page-table emulation alone.
pub struct ScratchStore {
    /// The PTE's address in the direct map.
    pte: u64,
    /// The new entry, in machine terms.
    value: u64,
}

impl Pv {
    /// Prepares a trapped store that makes the (present) scratch mapping at
    /// `address` guest-terms `entry`.
    pub fn scratch_store(&self, address: u64, entry: u64) -> Result<ScratchStore, ScratchError> {
        let (table, index) = slot(address)?;
        self.mmu.commit().map_err(ScratchError::Mmu)?;
        Ok(ScratchStore {
            pte: memory::phys_to_virt(table + 8 * index as u64),
            value: self.mmu.to_machine_pte(entry),
        })
    }
}

impl ScratchStore {
    /// Stores the entry; true if Xen trapped and emulated the store, false
    /// if it refused it (writable page tables off, or an invalid entry).
    pub fn store(&self) -> bool {
        // SAFETY: the word is a scratch-range PTE (checked when prepared;
        // those tables are never freed); Xen validates the store or refuses
        // it with a page fault, which the fixup table recovers.
        unsafe { traps::probe_write(self.pte, self.value) }
    }
}
