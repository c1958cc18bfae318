//! The guest's page tables under the validator: the machine-wide frame
//! table (`hypervisor::mm`, pure and host-tested) over real machine memory.
//! Every change to a guest page table goes through here.

use alloc::vec::Vec;

use hypervisor::mm::HYPERVISOR_L4_SLOTS;
use hypervisor::mm::{
    FrameInfo, FrameMemory, FrameTable, Level, Mfn, MmError, Owner, SharedAccess, VcpuPageTables,
};
use spin::Mutex;

use crate::arch::memory::{self, PAGE_SIZE};

/// Page-table entries read and written in machine memory, through the direct map.
pub struct MachineMemory;

impl FrameMemory for MachineMemory {
    fn read_entry(&self, mfn: Mfn, index: usize) -> u64 {
        memory::read_u64(mfn.0 * PAGE_SIZE + 8 * index as u64)
    }

    fn write_entry(&mut self, mfn: Mfn, index: usize, value: u64) {
        memory::write_u64(mfn.0 * PAGE_SIZE + 8 * index as u64, value);
    }
}

pub struct MemoryState {
    pub frames: FrameTable<'static>,
    pub bases: VcpuPageTables,
}

/// Xen treats the first MiB as I/O memory, RAM or not: it holds the VGA
/// window, option ROMs and the BIOS.
const FIRST_MIB_FRAMES: u64 = 0x100;

static STATE: Mutex<Option<MemoryState>> = Mutex::new(None);

/// Runs `f` with the frame table, the vCPU's base tables and machine memory.
///
/// If `f` removed a mapping of a descriptor page in use, the vCPU's LDT
/// pages are let go afterwards, as Xen does (see `crate::ldt`).
pub fn with<R>(f: impl FnOnce(&mut MemoryState, &mut MachineMemory) -> R) -> R {
    let mut guard = STATE.lock();
    let state = guard.as_mut().expect("frame table not set up");
    let result = f(state, &mut MachineMemory);
    if state.frames.take_ldt_invalidation() && state.bases.release_ldt(&mut state.frames, &mut MachineMemory)
    {
        let (_, entries) = state.bases.ldt();
        drop(guard);
        crate::ldt::pages_released(entries);
    }
    result
}

/// Creates the frame table for machine frames below `max_mfn`: every frame
/// belongs to the hypervisor until it is given to the domain, except the
/// first MiB, which is I/O memory.
pub fn init(max_mfn: u64) {
    let frames: Vec<FrameInfo> = (0..max_mfn)
        .map(|mfn| FrameInfo::new(if mfn < FIRST_MIB_FRAMES { Owner::Io } else { Owner::Hypervisor }))
        .collect();
    let mut table = FrameTable::new(frames.leak());
    let mut template = [0u64; HYPERVISOR_L4_SLOTS.end - HYPERVISOR_L4_SLOTS.start];
    for (entry, slot) in template.iter_mut().zip(HYPERVISOR_L4_SLOTS) {
        // Slot 256 (the read-only M2P) carries USER so PV guests can read
        // it, as on Xen; its leaves are read-only. The others are
        // supervisor-only.
        *entry = memory::hypervisor_l4_entry(slot);
    }
    table.set_hypervisor_l4_entries(template);
    *STATE.lock() = Some(MemoryState { frames: table, bases: VcpuPageTables::new() });
}

/// Gives machine frames to the domain.
pub fn assign_to_domain(domain: u16, mfns: impl Iterator<Item = u64>) -> Result<(), MmError> {
    with(|state, _| {
        for mfn in mfns {
            state.frames.assign_owner(Mfn(mfn), Owner::Domain(domain))?;
        }
        Ok(())
    })
}

/// Lets the domain map a hypervisor frame (shared_info, grant frames).
pub fn share_with_domain(domain: u16, mfn: u64, access: SharedAccess) -> Result<(), MmError> {
    with(|state, _| state.frames.share_with_domain(Mfn(mfn), domain, access))
}

/// Types and validates the bootstrap page tables, pins the L4 and makes it
/// the vCPU's base, as Xen's builder does before the guest's first instruction.
pub fn adopt_initial_tables(domain: u16, tables: &[(Mfn, Level)]) -> Result<(), MmError> {
    with(|state, mem| {
        state.bases = VcpuPageTables::build_initial(&mut state.frames, mem, domain, tables)?;
        Ok(())
    })
}
