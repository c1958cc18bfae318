//! The PV kernel's own address space, built from Xen's bootstrap tables.
//!
//! Native code builds page tables by storing into them and then loads CR3.
//! A PV guest may not store into a page table, and every frame it maps
//! writable must not be one, so the order matters:
//!
//! 1. Plan the whole tree (`kernel::table_plan`): the direct map of every
//!    guest frame at `DIRECT_MAP_BASE` (4 KiB pages; PV has no superpages)
//!    and the kernel image with per-section permissions. The plan says how
//!    many table frames there are, so they are allocated in one run before
//!    any entry is written, beyond the bootstrap region (unmapped, so no
//!    writable alias exists).
//! 2. Zero them with batched `MMUEXT_CLEAR_PAGE`.
//! 3. Write every entry with batched `mmu_update` (512 per hypercall). The
//!    tables are not yet page tables in Xen's eyes, so these are plain
//!    writes. Table frames (ours and the bootstrap ones) appear read-only
//!    in the direct map; the image page reserved for `shared_info` maps
//!    Xen's shared-info frame.
//! 4. In one `mmuext_op` batch: pin the new L4 (Xen validates the tree),
//!    switch to it (`NEW_BASEPTR`), drop the user base pointer, and unpin
//!    the bootstrap L4 (Xen then forgets those frames were page tables).
//! 5. Only now make the bootstrap table frames writable in the direct map
//!    and give them, the boot stack and the padding to the frame allocator.

use hypercalls::abi::xen::{
    MmuextOp, MMUEXT_CLEAR_PAGE, MMUEXT_NEW_BASEPTR, MMUEXT_NEW_USER_BASEPTR, MMUEXT_PIN_L4_TABLE,
    MMUEXT_UNPIN_TABLE,
};
use kernel::layout::{page_align_up, DIRECT_MAP_BASE, KERNEL_VIRT_BASE, PAGE_SIZE};
use kernel::memory_map::MemoryMap;
use kernel::table_plan::{Span, TablePlan, Target};
use x86_64::structures::paging::PageTableFlags as Flags;

use super::Pv;
use crate::arch::{boot, memory};
use crate::mm::{self, frames, paging};
use crate::platform::xen;
use crate::println;

/// Flags of entries that link to a lower table: the leaf decides.
const LINK: u64 = Flags::PRESENT.bits() | Flags::WRITABLE.bits() | Flags::USER_ACCESSIBLE.bits();

pub fn build(pv: &Pv, _memory: &MemoryMap) -> Result<(), &'static str> {
    let start = super::start::start_info().ok_or("PV start_info was not read")?;
    let mmu = &pv.mmu;
    let region = &start.region;
    let image = boot::kernel_image();
    let spans = [
        Span { start: DIRECT_MAP_BASE, pages: start.nr_pages },
        Span { start: image.start, pages: (page_align_up(image.end) - image.start) / PAGE_SIZE },
    ];
    let plan = TablePlan::new(&spans).map_err(|error| {
        println!("boot: page-table plan: {error:?}");
        "the kernel's address space cannot be planned"
    })?;
    let count = plan.table_count();
    let first =
        frames::with(|f| f.allocate_contiguous(count, 1)).ok_or("no frames left for the page tables")?;
    if first < region.end {
        return Err("page-table frames would overlap the bootstrap region");
    }
    let tables = first..first + count;
    let mfn = |pfn: u64| mmu.mfn(pfn).ok_or("a page-table frame has no machine frame");

    let fail = |error: super::mmu::MmuError| {
        println!("boot: {error}");
        "Xen refused the kernel's page tables"
    };
    for pfn in tables.clone() {
        mmu.queue_ext(MmuextOp::with_arg1(MMUEXT_CLEAR_PAGE, mfn(pfn)?)).map_err(fail)?;
    }
    mmu.commit().map_err(fail)?;

    let data = paging::data_flags().bits();
    let read_only = data & !Flags::WRITABLE.bits();
    let sections = mm::kernel_sections();
    let shared_info_page = xen::shared_info_address();
    let is_table = |pfn: u64| tables.contains(&pfn) || region.page_tables.contains(&pfn);
    let leaf = |address: u64| -> Option<u64> {
        if address >= DIRECT_MAP_BASE && address < DIRECT_MAP_BASE + start.nr_pages * PAGE_SIZE {
            let pfn = (address - DIRECT_MAP_BASE) / PAGE_SIZE;
            let flags = if is_table(pfn) { read_only } else { data };
            return Some((mmu.mfn(pfn)? * PAGE_SIZE) | flags);
        }
        if address == shared_info_page {
            return Some(start.shared_info & !(PAGE_SIZE - 1) | data);
        }
        let (_, _, flags) = sections.iter().find(|(from, to, _)| (*from..*to).contains(&address))?;
        Some((mmu.mfn((address - KERNEL_VIRT_BASE) / PAGE_SIZE)? * PAGE_SIZE) | flags.bits())
    };

    let mut problem = None;
    plan.for_each_entry(|entry| {
        if problem.is_some() {
            return;
        }
        let value = match entry.target {
            Target::Table(child) => mmu.mfn(first + child).map(|m| (m * PAGE_SIZE) | LINK),
            Target::Page(address) => leaf(address),
        };
        let Some(value) = value else {
            return; // A hole in the p2m: leave the page unmapped.
        };
        let Some(table) = mmu.mfn(first + entry.table) else {
            problem = Some("a page-table frame has no machine frame");
            return;
        };
        if let Err(error) = mmu.queue_update(table * PAGE_SIZE + 8 * u64::from(entry.index), value) {
            problem = Some(fail(error));
        }
    });
    if let Some(problem) = problem {
        return Err(problem);
    }
    mmu.commit().map_err(fail)?;

    let new_l4 = mfn(first)?;
    let old_l4 = mfn(region.page_tables.start)?;
    for op in [
        MmuextOp::with_arg1(MMUEXT_PIN_L4_TABLE, new_l4),
        MmuextOp::with_arg1(MMUEXT_NEW_BASEPTR, new_l4),
        MmuextOp::with_arg1(MMUEXT_NEW_USER_BASEPTR, 0),
        MmuextOp::with_arg1(MMUEXT_UNPIN_TABLE, old_l4),
    ] {
        mmu.queue_ext(op).map_err(fail)?;
    }
    mmu.commit().map_err(fail)?;
    // SAFETY: the tables just loaded map every PFN with a machine frame at
    // DIRECT_MAP_BASE + PFN (built above from the same p2m).
    unsafe { memory::use_phys_window(DIRECT_MAP_BASE, start.nr_pages * PAGE_SIZE) };
    pv.set_root(first * PAGE_SIZE);
    xen::shared_info_mapped();

    release_bootstrap(pv, &plan, first)?;
    Ok(())
}

/// Step 5: the bootstrap tables are plain frames again; map them writable
/// and free them with Xen's boot stack and the region's padding.
fn release_bootstrap(pv: &Pv, plan: &TablePlan, first: u64) -> Result<(), &'static str> {
    let start = super::start::start_info().ok_or("PV start_info was not read")?;
    let mmu = &pv.mmu;
    let region = &start.region;
    let data = paging::data_flags().bits();
    for pfn in region.page_tables.clone() {
        let address = DIRECT_MAP_BASE + pfn * PAGE_SIZE;
        let table = plan.table_for(1, address).ok_or("the direct map misses a bootstrap table")?;
        let l1 = mmu.mfn(first + table).ok_or("a page-table frame has no machine frame")?;
        let frame = mmu.mfn(pfn).ok_or("a bootstrap table has no machine frame")?;
        let slot = l1 * PAGE_SIZE + 8 * ((address / PAGE_SIZE) % 512);
        mmu.queue_update(slot, (frame * PAGE_SIZE) | data).map_err(|_| "cannot queue a PTE write")?;
    }
    if let Err(error) = mmu.commit() {
        println!("boot: making the bootstrap tables writable: {error}");
        return Err("Xen still treats the bootstrap tables as page tables");
    }
    for pfn in region.page_tables.clone().chain([region.stack]).chain(region.padding()) {
        frames::free(pfn * PAGE_SIZE);
    }
    Ok(())
}
