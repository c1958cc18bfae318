//! What the attacks work on: the guest's own page-table frames (found by
//! walking its tables), a scratch "victim" page whose PTE the mapping
//! attacks rewrite, frames of the hypervisor's own tables (found in the
//! hypervisor's L4 slots, which every guest L4 carries), and helpers to
//! turn scratch frames into (and back from) page tables.

use hypercalls::abi::event_channel::{EVTCHNOP_status, EVTCHNSTAT_interdomain};
use hypercalls::abi::xen::DOMID_SELF;
use kernel::layout::{PAGE_SIZE, SCRATCH_BASE};

use super::hc;
use crate::arch::memory;
use crate::mm::{frames, paging};
use crate::platform::{self, pv::PV, xen};

/// The hostile suite's part of the scratch range.
pub const BASE: u64 = SCRATCH_BASE + (256 << 20);
/// The victim page; the next page is never mapped.
pub const VICTIM: u64 = BASE;
/// A page whose end runs into unmapped space (for huge counts).
pub const EDGE: u64 = BASE + (2 << 20);

pub const PTE_PRESENT: u64 = 1;
pub const PTE_RW: u64 = 1 << 1;
pub const PTE_USER: u64 = 1 << 2;
pub const PTE_PWT: u64 = 1 << 3;
pub const PTE_PCD: u64 = 1 << 4;
pub const PTE_PSE: u64 = 1 << 7;
pub const PTE_GNTTAB: u64 = 1 << 62;
pub const ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;

/// One level of a walk: the table (guest-physical and machine frame), the
/// index used in it, and the raw (machine) entry found there.
#[derive(Clone, Copy, Debug, Default)]
pub struct Step {
    pub table: u64,
    pub mfn: u64,
    pub index: usize,
    pub entry: u64,
}

impl Step {
    /// Machine address of the entry, as `mmu_update` wants it.
    pub fn slot(&self) -> u64 {
        self.mfn * PAGE_SIZE + 8 * self.index as u64
    }

    /// Machine address of another entry of the same table.
    pub fn slot_at(&self, index: usize) -> u64 {
        self.mfn * PAGE_SIZE + 8 * index as u64
    }

    /// An index of this table whose entry is empty, other than `self.index`.
    pub fn free_index(&self) -> Option<usize> {
        (0..256)
            .rev()
            .find(|&index| index != self.index && memory::read_u64(self.table + 8 * index as u64) == 0)
    }
}

pub struct Env {
    /// Real Xen's dom0 (privileged: some answers differ from a domU's).
    pub privileged: bool,
    pub own_domid: u16,
    /// What `EVTCHNOP_status` called the guest (Xen gives its number).
    pub status_domid: u16,
    /// The walk to the victim page: [L4, L3, L2, L1].
    pub path: [Step; 4],
    /// Guest-physical frame mapped at [`VICTIM`].
    pub victim_frame: u64,
    /// Machine frames of the hypervisor's L3 tables behind L4 slots 256
    /// (read-only M2P), 261 (its image) and 262 (its direct map).
    pub hypervisor_tables: [u64; 3],
    /// The guest's highest and lowest machine frames.
    pub mfn_range: (u64, u64),
}

impl Env {
    pub fn l4(&self) -> Step {
        self.path[0]
    }
    pub fn l3(&self) -> Step {
        self.path[1]
    }
    pub fn l2(&self) -> Step {
        self.path[2]
    }
    pub fn l1(&self) -> Step {
        self.path[3]
    }

    /// The victim PTE's machine address and original value.
    pub fn victim(&self) -> (u64, u64) {
        (self.l1().slot(), self.l1().entry)
    }

    /// Puts the victim PTE back (after an attack the hypervisor may have accepted).
    pub fn restore_victim(&self) {
        let (slot, entry) = self.victim();
        if memory::read_u64(self.l1().table + 8 * self.l1().index as u64) != entry {
            hc::mmu_update(slot, entry);
        }
        hc::invlpg(VICTIM);
    }
}

/// Walks the current tables to `va`, reading raw machine entries.
pub fn walk(va: u64) -> Option<[Step; 4]> {
    let mut steps = [Step::default(); 4];
    let mut table = platform::current().current_root();
    for (depth, step) in steps.iter_mut().enumerate() {
        let index = ((va >> (39 - 9 * depth)) & 511) as usize;
        let entry = memory::read_u64(table + 8 * index as u64);
        let mfn = PV.mmu.mfn(table / PAGE_SIZE)?;
        *step = Step { table, mfn, index, entry };
        if entry & PTE_PRESENT == 0 {
            return None;
        }
        table = PV.mmu.pfn((entry & ADDRESS_MASK) / PAGE_SIZE)? * PAGE_SIZE;
    }
    Some(steps)
}

fn noop(_: u32) {}

/// Learns the guest's domain id from a loopback channel: Xen reports the
/// remote end of an interdomain channel by number.
pub(crate) fn own_domid() -> Option<u16> {
    let listening = xen::events::alloc_unbound(DOMID_SELF, noop).ok()?;
    let connected = xen::events::bind_interdomain(DOMID_SELF, listening, noop).ok();
    let mut status = [u64::from(DOMID_SELF) | u64::from(connected.unwrap_or(0)) << 32, 0, 0];
    let rc = hc::evtchn(EVTCHNOP_status, &mut status);
    if let Some(port) = connected {
        let _ = xen::events::close(port);
    }
    let _ = xen::events::close(listening);
    (rc == 0 && status[1] as u32 == EVTCHNSTAT_interdomain).then_some(status[2] as u16)
}

/// Sets up the environment; `None` unless this is a Xen PV guest.
pub fn prepare() -> Result<Env, &'static str> {
    if platform::current().name() != "pv" {
        return Err("the hostile-guest suite needs a Xen PV guest");
    }
    let facts = platform::xen().ok_or("Xen services are not up")?;
    let frame = frames::allocate_zeroed().ok_or("out of frames")?;
    memory::write_u64(frame, 0x5ca1_ab1e);
    paging::AddressSpace::current()
        .map(VICTIM, frame, paging::data_flags())
        .map_err(|_| "cannot map the victim page")?;
    let edge = frames::allocate_zeroed().ok_or("out of frames")?;
    paging::AddressSpace::current()
        .map(EDGE, edge, paging::data_flags())
        .map_err(|_| "cannot map the edge page")?;
    let path = walk(VICTIM).ok_or("cannot walk to the victim page")?;
    let root = path[0].table;
    let slot = |index: u64| (memory::read_u64(root + 8 * index) & ADDRESS_MASK) / PAGE_SIZE;
    let nr_pages = PV.mmu.nr_pages();
    let mfns = (0..nr_pages).filter_map(|pfn| PV.mmu.mfn(pfn));
    let mfn_range = mfns.fold((0, u64::MAX), |(high, low), mfn| (high.max(mfn), low.min(mfn)));
    let status_domid = own_domid().unwrap_or(DOMID_SELF);
    let own_domid = match status_domid {
        DOMID_SELF => u16::from(!facts.initial_domain),
        id => id,
    };
    Ok(Env {
        privileged: facts.initial_domain,
        own_domid,
        status_domid,
        path,
        victim_frame: frame,
        hypervisor_tables: [slot(256), slot(261), slot(262)],
        mfn_range,
    })
}

/// Copies `words` to the very end of the [`EDGE`] page, so that whatever
/// comes after them is unmapped, and returns their virtual address. A
/// hypervisor that reads past a count it should have cut off faults there
/// instead of reading the kernel's stack.
pub fn at_edge(words: &[u64]) -> u64 {
    let bytes = 8 * words.len() as u64;
    let va = EDGE + PAGE_SIZE - bytes;
    let phys = paging::AddressSpace::current().translate(EDGE).map_or(0, |(frame, _)| frame);
    for (index, &word) in words.iter().enumerate() {
        memory::write_u64(phys + PAGE_SIZE - bytes + 8 * index as u64, word);
    }
    va
}

/// Reads back word `index` of what [`at_edge`] placed (after the call).
pub fn edge_word(count: usize, index: usize) -> u64 {
    let phys = paging::AddressSpace::current().translate(EDGE).map_or(0, |(frame, _)| frame);
    memory::read_u64(phys + PAGE_SIZE - 8 * count as u64 + 8 * index as u64)
}

/// Makes the direct-map alias of `phys` writable or read-only with a raw
/// `mmu_update`, returning Xen's answer (the paging code would panic on a
/// refusal, and a refusal is what some attacks leave behind).
pub fn set_alias_writable(phys: u64, writable: bool) -> i64 {
    platform::current().pte_commit();
    let alias = memory::phys_to_virt(phys);
    let Ok((l1, index, _)) = paging::AddressSpace::current().leaf(alias) else {
        return -1;
    };
    let slot = l1 + 8 * index as u64;
    let raw = memory::read_u64(slot);
    let wanted = if writable { raw | PTE_RW } else { raw & !PTE_RW };
    let rc = hc::mmu_update(PV.mmu.machine_address(slot), wanted);
    hc::invlpg(alias);
    rc
}

/// A scratch frame to be used as a page table: zeroed, given `entries`
/// (raw machine values), and with no writable mapping left.
pub struct TableFrame {
    pub phys: u64,
    pub mfn: u64,
}

impl TableFrame {
    pub fn new(entries: &[(usize, u64)]) -> Option<Self> {
        Self::build(|_| entries.iter().copied())
    }

    /// As [`TableFrame::new`], with entries that may name the frame itself.
    pub fn build<I: IntoIterator<Item = (usize, u64)>>(entries: impl FnOnce(u64) -> I) -> Option<Self> {
        let phys = frames::allocate_zeroed()?;
        let mfn = PV.mmu.mfn(phys / PAGE_SIZE)?;
        for (index, value) in entries(mfn) {
            memory::write_u64(phys + 8 * index as u64, value);
        }
        if set_alias_writable(phys, false) != 0 {
            frames::free(phys);
            return None;
        }
        Some(Self { phys, mfn })
    }

    /// The machine address of entry `index`.
    pub fn slot(&self, index: usize) -> u64 {
        self.mfn * PAGE_SIZE + 8 * index as u64
    }

    pub fn read(&self, index: usize) -> u64 {
        memory::read_u64(self.phys + 8 * index as u64)
    }

    /// Gives the frame back if the hypervisor lets it be writable again
    /// (it will not while it is still a page table); otherwise leaks it.
    pub fn release(self) {
        if set_alias_writable(self.phys, true) == 0 {
            frames::free(self.phys);
        }
    }
}
