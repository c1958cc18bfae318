//! Page-table updates: the native store + `invlpg` and its PV
//! replacements (`mmu_update` alone and batched, `update_va_mapping`, and
//! the store Xen traps and emulates with writable page tables).
//!
//! Every benchmark flips the same scratch mappings between two frames, so
//! each update really changes the frame a PTE maps (Xen takes the slow path
//! of dropping one page reference and taking another, as a real remapping
//! does); nothing reads the pages while they change.

use hypercalls::abi::xen::{VMASST_CMD_enable, VMASST_TYPE_writable_pagetables};
use hypercalls::ops::pv_cpu;
use kernel::layout::{PAGE_SIZE, SCRATCH_BASE};

use super::harness::Runner;
use crate::mm::{frames, paging};
use crate::platform::{self, pv::PV};

/// The benchmarks' part of the scratch range: one L1 table's worth (2 MiB,
/// aligned), so a 512-entry batch rewrites a whole table.
const BENCH_VA: u64 = SCRATCH_BASE + (64 << 20);
const PAGES: u64 = 512;

/// The two frames every benchmark page flips between, as guest-terms PTEs.
struct Scratch {
    frames: [u64; 2],
    entries: [u64; 2],
}

impl Scratch {
    fn map() -> Result<Self, &'static str> {
        let first = frames::allocate_zeroed().ok_or("out of frames")?;
        let Some(second) = frames::allocate_zeroed() else {
            frames::free(first);
            return Err("out of frames");
        };
        let flags = paging::data_flags();
        let space = paging::AddressSpace::current();
        let mapped = paging::batch(|| {
            (0..PAGES).try_for_each(|page| space.map(BENCH_VA + page * PAGE_SIZE, first, flags))
        });
        let scratch =
            Scratch { frames: [first, second], entries: [first | flags.bits(), second | flags.bits()] };
        if mapped.is_err() {
            scratch.unmap();
            return Err("cannot map the benchmark pages");
        }
        Ok(scratch)
    }

    fn unmap(self) {
        let space = paging::AddressSpace::current();
        paging::batch(|| {
            for page in 0..PAGES {
                let _ = space.unmap(BENCH_VA + page * PAGE_SIZE);
            }
        });
        self.frames.into_iter().for_each(frames::free);
    }
}

pub fn run(runner: &mut Runner) {
    let scratch = match Scratch::map() {
        Ok(scratch) => scratch,
        Err(reason) => {
            runner.fail("pte_write_invlpg", &reason);
            return;
        }
    };
    through_the_platform(runner, &scratch);
    if platform::current().name() == "pv" {
        pv_hypercalls(runner, &scratch);
        trapped_stores(runner, &scratch);
    }
    scratch.unmap();
}

/// Native: a store and `invlpg`. PV: `mmu_update` + `MMUEXT_INVLPG_LOCAL`
/// queued and committed as one `multicall`. The same three calls of the
/// platform interface either way.
fn through_the_platform(runner: &mut Runner, scratch: &Scratch) {
    let platform = platform::current();
    let Ok((table, index, _)) = paging::AddressSpace::current().leaf(BENCH_VA) else {
        runner.fail("pte_write_invlpg", &"the benchmark page is not mapped");
        return;
    };
    let mut next = 0;
    runner.measure("pte_write_invlpg", 1000, || {
        next ^= 1;
        platform.pte_write(table, 1, index, scratch.entries[next]);
        platform.flush_tlb_page(BENCH_VA);
        platform.pte_commit();
        Ok::<(), &str>(())
    });
}

/// The hypercalls alone, with their requests prepared beforehand.
fn pv_hypercalls(runner: &mut Runner, scratch: &Scratch) {
    let single = [0, 1].map(|which| PV.scratch_updates([(BENCH_VA, scratch.entries[which])]));
    let whole_table = [0, 1].map(|which| {
        PV.scratch_updates((0..PAGES).map(|page| (BENCH_VA + page * PAGE_SIZE, scratch.entries[which])))
    });
    match (single, whole_table) {
        ([Ok(single_a), Ok(single_b)], [Ok(table_a), Ok(table_b)]) => {
            let single = [single_a, single_b];
            let mut next = 0;
            runner.measure("mmu_update_single", 1000, || {
                next ^= 1;
                single[next].send().map_err(ScratchFailure)
            });
            let table = [table_a, table_b];
            runner.measure_batched("mmu_update_batch_per_pte", 10, PAGES as u32, || {
                next ^= 1;
                table[next].send().map_err(ScratchFailure)
            });
        }
        _ => runner.fail("mmu_update_single", &"cannot prepare the scratch requests"),
    }

    let mut next = 0;
    runner.measure("update_va_mapping", 1000, || {
        next ^= 1;
        PV.scratch_update_va_mapping(BENCH_VA, scratch.entries[next]).map_err(ScratchFailure)
    });
}

/// A plain store to the read-only L1, which Xen traps, validates and
/// emulates (`VMASST_TYPE_writable_pagetables`, what a 32-bit-era PV
/// kernel or a trap-and-emulate hypervisor relies on).
fn trapped_stores(runner: &mut Runner, scratch: &Scratch) {
    const NAME: &str = "trapped_pte_write";
    if let Err(error) = pv_cpu::vm_assist(VMASST_CMD_enable, VMASST_TYPE_writable_pagetables) {
        runner.fail(NAME, &error);
        return;
    }
    let stores = [0, 1].map(|which| PV.scratch_store(BENCH_VA, scratch.entries[which]));
    let [Ok(store_a), Ok(store_b)] = stores else {
        runner.fail(NAME, &"cannot prepare the scratch stores");
        return;
    };
    let stores = [store_a, store_b];
    let mut next = 0;
    runner.measure(NAME, 1000, || {
        next ^= 1;
        if stores[next].store() {
            Ok(())
        } else {
            Err("refused (writable page tables off?)")
        }
    });
}

/// `ScratchError` made printable for the failure line.
struct ScratchFailure(platform::pv::scratch::ScratchError);

impl core::fmt::Display for ScratchFailure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}
