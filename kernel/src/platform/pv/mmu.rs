//! The PV MMU: guest-physical vs machine frames, and page-table writes
//! queued into batched hypercalls.
//!
//! A PV guest's page tables hold *machine* frame numbers (MFNs), while the
//! rest of the kernel thinks in contiguous guest-physical frames (PFNs).
//! Xen hands over the p2m list (PFN → MFN, `start_info.mfn_list`, our own
//! memory) and maps its M2P table (MFN → PFN) read-only into every PV guest.
//!
//! Page-table pages are read-only to a PV guest; it asks Xen to write them.
//! Each hypercall is a trap into Xen, so writes are queued: up to 512
//! `mmu_update` requests and 64 `mmuext_op` operations, flushed when full or
//! at [`Mmu::commit`]. A commit with both kinds pending issues them in one
//! `multicall`, PTE writes first. Reads check the queue first, so the page
//! walker sees its own queued writes.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use hypercalls::abi::xen::{__HYPERVISOR_mmu_update, __HYPERVISOR_mmuext_op};
use hypercalls::abi::xen::{
    MmuUpdate, MmuextOp, MulticallEntry, DOMID_SELF, MMUEXT_SET_LDT, MMU_NORMAL_PT_UPDATE,
};
use hypercalls::ops::pv_mm;
use hypercalls::XenError;
use kernel::batch::Batch;
use kernel::layout::PAGE_SIZE;

use crate::arch::memory;
use crate::mm::paging::ADDRESS_MASK;
use crate::platform;

/// `mmu_update` requests per hypercall (Linux and Mini-OS use similar sizes).
pub const UPDATE_BATCH: usize = 512;
/// `mmuext_op` operations per hypercall.
pub const EXT_BATCH: usize = 64;

/// The address a PTE shows for a frame that is not guest memory (the
/// shared-info page, a grant frame): no PFN names it.
pub const FOREIGN_FRAME: u64 = ADDRESS_MASK;

/// Hypercalls and requests issued, for the self-tests and the benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MmuStats {
    /// Traps into Xen for page-table work (a multicall counts once).
    pub hypercalls: u64,
    /// `mmu_update` requests sent.
    pub updates: u64,
    /// `mmuext_op` operations sent.
    pub ext_ops: u64,
    /// PTE stores Xen trapped and emulated (writable page tables).
    pub trapped_writes: u64,
}

pub struct Mmu {
    /// Guest-physical address of the p2m list, and its length.
    p2m: AtomicU64,
    nr_pages: AtomicU64,
    writable_page_tables: AtomicBool,
    updates: spin::Mutex<Batch<MmuUpdate, UPDATE_BATCH>>,
    ext: spin::Mutex<Batch<MmuextOp, EXT_BATCH>>,
    hypercalls: AtomicU64,
    sent_updates: AtomicU64,
    sent_ext: AtomicU64,
    trapped: AtomicU64,
}

/// A batch Xen refused: which hypercall, how far it got, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmuError {
    pub what: &'static str,
    pub error: XenError,
    pub done: u32,
}

impl core::fmt::Display for MmuError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} failed with {} after {} requests", self.what, self.error, self.done)
    }
}

impl Mmu {
    pub const fn new() -> Self {
        Self {
            p2m: AtomicU64::new(0),
            nr_pages: AtomicU64::new(0),
            writable_page_tables: AtomicBool::new(false),
            updates: spin::Mutex::new(Batch::new(MmuUpdate { ptr: 0, val: 0 })),
            ext: spin::Mutex::new(Batch::new(MmuextOp { cmd: 0, arg1: 0, arg2: 0 })),
            hypercalls: AtomicU64::new(0),
            sent_updates: AtomicU64::new(0),
            sent_ext: AtomicU64::new(0),
            trapped: AtomicU64::new(0),
        }
    }

    /// Uses the p2m list at guest-physical `p2m_phys` for `nr_pages` PFNs.
    pub fn set_p2m(&self, p2m_phys: u64, nr_pages: u64) {
        self.p2m.store(p2m_phys, Ordering::Relaxed);
        self.nr_pages.store(nr_pages, Ordering::Relaxed);
    }

    pub fn nr_pages(&self) -> u64 {
        self.nr_pages.load(Ordering::Relaxed)
    }

    /// Whether PTE stores go straight to the (read-only) tables for Xen to
    /// trap and emulate, instead of through `mmu_update`.
    pub fn set_writable_page_tables(&self, on: bool) {
        self.writable_page_tables.store(on, Ordering::Relaxed);
    }

    pub fn writable_page_tables(&self) -> bool {
        self.writable_page_tables.load(Ordering::Relaxed)
    }

    /// The machine frame behind `pfn`, if the domain has one there.
    pub fn mfn(&self, pfn: u64) -> Option<u64> {
        if pfn >= self.nr_pages() {
            return None;
        }
        let mfn = memory::read_u64(self.p2m.load(Ordering::Relaxed) + 8 * pfn);
        // Unpopulated entries are all ones (INVALID_P2M_ENTRY); bit 63 marks
        // identity/foreign entries in Linux's convention. Neither is ours.
        (mfn >> 52 == 0).then_some(mfn)
    }

    /// `MMUEXT_SET_LDT`: the LDT is `entries` descriptors at `address` (0
    /// entries: none). Its pages must be mapped read-only everywhere by the
    /// time the CPU uses them, or Xen gives a page fault at their address.
    pub fn set_ldt(&self, address: u64, entries: u32) -> Result<(), MmuError> {
        self.queue_ext(MmuextOp { cmd: MMUEXT_SET_LDT, arg1: address, arg2: entries.into() })?;
        self.commit()
    }

    /// Records that `mfn` now backs `pfn` (after Xen traded frames).
    pub fn set_mfn(&self, pfn: u64, mfn: u64) {
        assert!(pfn < self.nr_pages(), "PFN {pfn:#x} is beyond the p2m");
        memory::write_u64(self.p2m.load(Ordering::Relaxed) + 8 * pfn, mfn);
    }

    /// The PFN `mfn` backs, if it is one of ours.
    pub fn pfn(&self, mfn: u64) -> Option<u64> {
        // SAFETY: this platform only exists under Xen PV, and MFNs come from
        // page-table entries Xen validated (or from Xen itself).
        let pfn = unsafe { memory::read_m2p(mfn) }?;
        (pfn < self.nr_pages() && self.mfn(pfn) == Some(mfn)).then_some(pfn)
    }

    /// The machine address of guest-physical `phys`.
    ///
    /// # Panics
    /// If no machine frame backs it: the caller named memory it does not own.
    pub fn machine_address(&self, phys: u64) -> u64 {
        let frame = phys / PAGE_SIZE;
        match self.mfn(frame) {
            Some(mfn) => mfn * PAGE_SIZE + phys % PAGE_SIZE,
            None => panic!("no machine frame behind guest-physical {phys:#x}"),
        }
    }

    /// A PTE in guest terms (PFN) made machine terms (MFN).
    pub fn to_machine_pte(&self, entry: u64) -> u64 {
        if entry & 1 == 0 {
            return entry;
        }
        (entry & !ADDRESS_MASK) | self.machine_address(entry & ADDRESS_MASK)
    }

    /// A PTE in machine terms made guest terms.
    pub fn to_guest_pte(&self, entry: u64) -> u64 {
        if entry & 1 == 0 {
            return entry;
        }
        let frame = self.pfn((entry & ADDRESS_MASK) / PAGE_SIZE).map_or(FOREIGN_FRAME, |pfn| pfn * PAGE_SIZE);
        (entry & !ADDRESS_MASK) | frame
    }

    /// The value queued for the PTE at machine address `ptr`, if any.
    pub fn queued_value(&self, ptr: u64) -> Option<u64> {
        platform::without_interrupts(|| {
            self.updates.lock().find_last(|update| update.ptr & !7 == ptr).map(|update| update.val)
        })
    }

    /// Queues `val` for the PTE at machine address `ptr`.
    pub fn queue_update(&self, ptr: u64, val: u64) -> Result<(), MmuError> {
        let update = MmuUpdate { ptr: ptr | u64::from(MMU_NORMAL_PT_UPDATE), val };
        platform::without_interrupts(|| self.updates.lock().push(update, |batch| self.send_updates(batch)))
    }

    /// Queues an extended operation; a full queue commits everything first,
    /// so PTE writes queued earlier still go before it.
    pub fn queue_ext(&self, op: MmuextOp) -> Result<(), MmuError> {
        let full = platform::without_interrupts(|| self.ext.lock().len() == EXT_BATCH);
        if full {
            self.commit()?;
        }
        platform::without_interrupts(|| self.ext.lock().push(op, |ops| self.send_ext(ops)))
    }

    /// Sends everything queued: PTE writes, then extended operations.
    pub fn commit(&self) -> Result<(), MmuError> {
        platform::without_interrupts(|| {
            let mut updates = self.updates.lock();
            let mut ext = self.ext.lock();
            match (updates.is_empty(), ext.is_empty()) {
                (true, true) => Ok(()),
                (false, true) => updates.flush(|batch| self.send_updates(batch)),
                (true, false) => ext.flush(|ops| self.send_ext(ops)),
                (false, false) => updates.flush(|batch| ext.flush(|ops| self.send_both(batch, ops))),
            }
        })
    }

    fn send_updates(&self, batch: &[MmuUpdate]) -> Result<(), MmuError> {
        self.hypercalls.fetch_add(1, Ordering::Relaxed);
        self.sent_updates.fetch_add(batch.len() as u64, Ordering::Relaxed);
        // SAFETY: the requests come from the page-table code, which only
        // changes mappings the kernel no longer uses or is about to use.
        unsafe { pv_mm::mmu_update(batch, DOMID_SELF) }.map(drop).map_err(|e| MmuError {
            what: "mmu_update",
            error: e.error,
            done: e.done,
        })
    }

    fn send_ext(&self, ops: &[MmuextOp]) -> Result<(), MmuError> {
        self.hypercalls.fetch_add(1, Ordering::Relaxed);
        self.sent_ext.fetch_add(ops.len() as u64, Ordering::Relaxed);
        // SAFETY: as for `send_updates`; base-pointer switches are only
        // queued for tables that map the running kernel.
        unsafe { pv_mm::mmuext_op(ops, DOMID_SELF) }.map(drop).map_err(|e| MmuError {
            what: "mmuext_op",
            error: e.error,
            done: e.done,
        })
    }

    /// Both batches in one trap.
    fn send_both(&self, batch: &[MmuUpdate], ops: &[MmuextOp]) -> Result<(), MmuError> {
        self.hypercalls.fetch_add(1, Ordering::Relaxed);
        self.sent_updates.fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.sent_ext.fetch_add(ops.len() as u64, Ordering::Relaxed);
        let domid = u64::from(DOMID_SELF);
        let mut calls = [
            MulticallEntry {
                op: __HYPERVISOR_mmu_update.into(),
                result: 0,
                args: [batch.as_ptr() as u64, batch.len() as u64, 0, domid, 0, 0],
            },
            MulticallEntry {
                op: __HYPERVISOR_mmuext_op.into(),
                result: 0,
                args: [ops.as_ptr() as u64, ops.len() as u64, 0, domid, 0, 0],
            },
        ];
        // SAFETY: both entries point at the borrowed batches (the success
        // count pointer is NULL, which Xen allows); their effects are those
        // of `send_updates` and `send_ext`.
        unsafe { pv_mm::multicall(&mut calls) }.map_err(|error| MmuError {
            what: "multicall",
            error,
            done: 0,
        })?;
        for (call, what) in calls.iter().zip(["mmu_update (multicall)", "mmuext_op (multicall)"]) {
            XenError::from_return(call.result as i64).map_err(|error| MmuError { what, error, done: 0 })?;
        }
        Ok(())
    }

    /// Counts a PTE store Xen emulated.
    pub fn count_trapped_write(&self) {
        self.trapped.fetch_add(1, Ordering::Relaxed);
    }

    pub fn stats(&self) -> MmuStats {
        MmuStats {
            hypercalls: self.hypercalls.load(Ordering::Relaxed),
            updates: self.sent_updates.load(Ordering::Relaxed),
            ext_ops: self.sent_ext.load(Ordering::Relaxed),
            trapped_writes: self.trapped.load(Ordering::Relaxed),
        }
    }
}
