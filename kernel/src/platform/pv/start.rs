//! PV start of day: what Xen's domain builder hands over, and bringing up
//! the Xen services once the kernel has its own address space and heap.

use hypercalls::abi::memory::E820Entry;
use hypercalls::abi::xen::{StartInfo, SIF_INITDOMAIN, SIF_MOD_START_PFN, UVMF_INVLPG};
use hypercalls::abi::xen::{VMASST_CMD_enable, VMASST_TYPE_writable_pagetables};
use hypercalls::ops::pv_cpu;
use hypercalls::XenError;
use kernel::cmdline::Cmdline;
use kernel::layout::{KERNEL_VIRT_BASE, PAGE_SIZE};
use kernel::memory_map::{Region, RegionKind};
use kernel::pv_layout::{BootstrapRegion, StartOfDay};

use super::Pv;
use crate::arch::{self, memory};
use crate::boot::BootInfo;
use crate::platform::xen;
use crate::println;

/// The ABI this kernel speaks: 64-bit PV (Xen writes "xen-3.0-x86_64").
const MAGIC_PREFIX: &[u8] = b"xen-3.0-x86_64";

/// What the kernel keeps from `start_info` (its page is reclaimed later).
pub struct PvStart {
    pub flags: u32,
    pub nr_pages: u64,
    /// Machine address of the shared-info page.
    pub shared_info: u64,
    /// Machine frame and event channel of the xenstore ring (domU).
    pub store: (u64, u32),
    /// Machine frame and event channel of the console ring (domU).
    pub console: (u64, u32),
    pub region: BootstrapRegion,
}

impl PvStart {
    pub fn initial_domain(&self) -> bool {
        self.flags & SIF_INITDOMAIN != 0
    }
}

static START: spin::Once<PvStart> = spin::Once::new();

pub fn start_info() -> Option<&'static PvStart> {
    START.get()
}

/// The PV entry's first steps, on Xen's bootstrap page tables: makes
/// hypercalls work, checks and copies `start_info`, finds the p2m list and
/// the memory map. `start_info_address` is the virtual address Xen passed.
pub fn read_start_info(pv: &Pv, start_info_address: u64) -> Result<BootInfo, &'static str> {
    // SAFETY: a PV domain builder fills the page XEN_ELFNOTE_HYPERCALL_PAGE
    // names before entry; it is part of the kernel image and stays mapped.
    unsafe { hypercalls::transport::set_hypercall_page(arch::boot::hypercall_page_address() as usize) };
    // SAFETY: Xen passes the address of a mapped start_info page in %rsi,
    // and StartInfo is a plain integer structure.
    let info: StartInfo = unsafe { memory::read_virt(start_info_address) };
    if !info.magic_bytes().starts_with(MAGIC_PREFIX) {
        return Err("start_info has the wrong magic; this entry point is for 64-bit Xen PV");
    }
    let module_is_pfn = info.flags & SIF_MOD_START_PFN != 0;
    let layout = StartOfDay {
        virt_base: KERNEL_VIRT_BASE,
        nr_pages: info.nr_pages,
        pt_base: info.pt_base,
        nr_pt_frames: info.nr_pt_frames,
        mfn_list: info.mfn_list,
        module: (info.mod_len > 0 && !module_is_pfn).then_some((info.mod_start, info.mod_len)),
        start_info: start_info_address,
    };
    let region = layout.region().map_err(|error| {
        println!("boot: start_info layout: {error:?}");
        "start_info does not describe Xen's start-of-day layout"
    })?;
    // SAFETY: Xen maps the whole bootstrap region 1:1 at VIRT_BASE (the
    // start-of-day contract that `region()` just checked).
    unsafe { memory::use_phys_window(KERNEL_VIRT_BASE, region.end * PAGE_SIZE) };
    pv.mmu.set_p2m(region.p2m.start * PAGE_SIZE, info.nr_pages);

    // The p2m and the M2P must agree about the bootstrap tables, or the
    // layout is not what we think.
    let l4 = region.page_tables.start;
    if pv.mmu.mfn(l4).and_then(|mfn| pv.mmu.pfn(mfn)) != Some(l4) {
        return Err("the p2m list and the M2P table disagree about the bootstrap page tables");
    }

    let mut boot = BootInfo::new("PV");
    boot.set_cmdline(core::str::from_utf8(info.cmd_line_bytes()).unwrap_or(""));
    read_memory_map(&mut boot, info.nr_pages);
    // The bootstrap region stays reserved until the kernel has its own
    // tables; then its tables, stack and padding are freed.
    boot.mark_in_use(0, region.end * PAGE_SIZE);
    if info.mod_len > 0 {
        let start =
            if module_is_pfn { info.mod_start * PAGE_SIZE } else { info.mod_start - KERNEL_VIRT_BASE };
        boot.mark_in_use(start, info.mod_len);
    }

    let writable = Cmdline::parse(boot.cmdline()).value("pt") == Some("writable");
    if writable {
        pv_cpu::vm_assist(VMASST_CMD_enable, VMASST_TYPE_writable_pagetables)
            .map_err(|_| "Xen refused writable page tables (pt=writable)")?;
    }
    pv.mmu.set_writable_page_tables(writable);

    START.call_once(|| PvStart {
        flags: info.flags,
        nr_pages: info.nr_pages,
        shared_info: info.shared_info,
        store: (info.store_mfn, info.store_evtchn),
        console: (info.console.mfn, info.console.evtchn),
        region,
    });
    Ok(boot)
}

/// `XENMEM_memory_map` where Xen has one for us; otherwise (Xen's PV dom0)
/// all `nr_pages` frames are RAM from 0. Only frames the p2m covers are
/// usable, so RAM is clipped to `nr_pages`.
fn read_memory_map(boot: &mut BootInfo, nr_pages: u64) {
    let limit = nr_pages * PAGE_SIZE;
    let mut entries = [E820Entry::default(); 32];
    match hypercalls::ops::memory::memory_map(&mut entries) {
        Ok(count) if count > 0 => {
            for entry in &entries[..count] {
                let (start, size, kind) = (entry.addr, entry.size, entry.r#type);
                let kind = RegionKind::from_e820(kind);
                let len = if kind == RegionKind::Ram { size.min(limit.saturating_sub(start)) } else { size };
                boot.memory.push(Region { start, len, kind });
            }
        }
        _ => boot.memory.push(Region { start: 0, len: limit, kind: RegionKind::Ram }),
    }
}

/// Maps machine frame `mfn` at `virt` (a page of the kernel image set
/// aside for it), replacing what was there.
fn map_machine_frame(virt: u64, mfn: u64) -> Result<(), XenError> {
    use x86_64::structures::paging::PageTableFlags as Flags;
    let mut flags = Flags::PRESENT | Flags::WRITABLE;
    if crate::arch::cpu::nx_supported() {
        flags |= Flags::NO_EXECUTE;
    }
    // SAFETY: callers pass pages reserved in the image for shared frames
    // (grant-table frames): nothing else uses those addresses.
    unsafe { hypercalls::ops::pv_mm::update_va_mapping(virt, (mfn * PAGE_SIZE) | flags.bits(), UVMF_INVLPG) }
}

/// Brings up events, the timer, grants and, for a domU, the console ring
/// and xenstore. Runs once the heap exists.
pub fn init_services(pv: &Pv) {
    let Some(start) = START.get() else {
        return;
    };
    let facts = xen::init(xen::Xen::query(start.initial_domain()));
    log::debug!("Xen {}.{}{}", facts.version.0, facts.version.1, facts.extra_version);
    xen::choose_event_abi(kernel_machine_frame);
    if let Err(error) = xen::time::init() {
        println!("xen: binding VIRQ_TIMER failed: {error}");
    }
    if let Err(error) = xen::grants::init(map_machine_frame) {
        println!("xen: grant table setup failed: {error:?}");
    }
    if !start.initial_domain() {
        connect_rings(pv, start);
    }
    use crate::platform::Platform as _;
    pv.interrupts_enable();
}

/// The machine frame behind kernel address `virt` (Xen PV names frames so).
fn kernel_machine_frame(virt: u64) -> Option<u64> {
    let (phys, _) = crate::mm::paging::AddressSpace::current().translate(virt)?;
    super::PV.mmu.mfn(phys / PAGE_SIZE)
}

fn connect_rings(pv: &Pv, start: &PvStart) {
    let (console_mfn, console_port) = start.console;
    if let Some(pfn) = pv.mmu.pfn(console_mfn) {
        // SAFETY: the builder gave this frame to the console ring; the
        // kernel never allocates it (it lies in the bootstrap region, which
        // stays reserved except for its padding, tables and stack).
        let view = unsafe { memory::phys_view(pfn * PAGE_SIZE) };
        xen::console::attach_ring(view, console_port);
    }
    let (store_mfn, store_port) = start.store;
    if let Some(pfn) = pv.mmu.pfn(store_mfn) {
        // SAFETY: as above, for the xenstore ring.
        let view = unsafe { memory::phys_view(pfn * PAGE_SIZE) };
        if let Err(error) = xen::store::connect(view, store_port) {
            println!("xen: xenstore event channel: {error}");
        }
    }
}
