//! PVH start of day on Xen: find Xen, make hypercalls work, place
//! `shared_info`, decide on the console. Everything here runs on the boot
//! page tables, before the kernel has a heap.

use hypercalls::abi::features::XENFEAT_dom0;
use hypercalls::abi::hvm::{HvmStartInfo, XEN_HVM_START_MAGIC_VALUE};
use hypercalls::abi::memory::{E820Entry, XENMAPSPACE_shared_info};
use hypercalls::abi::xen::SIF_INITDOMAIN;
use hypercalls::ops::{memory as memory_op, version};
use kernel::cmdline::Cmdline;
use kernel::layout::{KERNEL_VIRT_BASE, PAGE_SIZE};
use kernel::memory_map::{MemoryMap, Region, RegionKind};
use kernel::pvh::{DetectError, UpcallRoute, XenLeaves};
use x86_64::registers::model_specific::Msr;

use super::{lapic, PVH};
use crate::arch::{self, cpu, memory};
use crate::platform::xen;
use crate::println;

/// What the start of day found, kept for `init_services` and the tests.
pub struct PvhStart {
    pub leaves: XenLeaves,
    /// The `XENFEAT_*` bits of submap 0.
    pub features: u32,
    pub initial_domain: bool,
    /// The guest frame `shared_info` was placed at.
    pub shared_info_gfn: u64,
    /// How events should arrive, as far as the CPU goes (the command line
    /// may ask otherwise: [`upcall_route`]).
    pub upcall_route: UpcallRoute,
}

static START: spin::Once<PvhStart> = spin::Once::new();

pub fn get() -> Option<&'static PvhStart> {
    START.get()
}

/// Looks for Xen's CPUID leaves. `Ok(None)`: no Xen, the kernel runs native.
pub fn detect() -> Result<Option<XenLeaves>, DetectError> {
    kernel::pvh::find_xen(|leaf| {
        let result = cpu::cpuid(leaf, 0);
        [result.eax, result.ebx, result.ecx, result.edx]
    })
}

/// The guest frame of a page of the kernel image (PVH loads the image at
/// its link address minus `VIRT_BASE`).
pub fn image_gfn(virt: u64) -> u64 {
    (virt - KERNEL_VIRT_BASE) / PAGE_SIZE
}

/// PV: Xen fills the page the ELF note names before entry. PVH: write the
/// page's guest-physical address to the MSR Xen's CPUID leaf names; Xen
/// fills it with `mov $nr, %eax; vmcall` (or `vmmcall`) stubs at once.
fn install_hypercall_page(leaves: &XenLeaves) -> Result<(), &'static str> {
    let page = arch::boot::hypercall_page_address();
    let mut msr = Msr::new(leaves.hypercall_msr);
    // SAFETY: the MSR is the one Xen's CPUID leaf names for this purpose;
    // the page is the kernel's own, reserved for hypercall stubs, and stays
    // mapped (executable) for the kernel's lifetime.
    unsafe {
        msr.write(image_gfn(page) * PAGE_SIZE);
        hypercalls::transport::set_hypercall_page(page as usize);
    }
    version::version().map(|_| ()).map_err(|_| "xen_version through the new hypercall page failed")
}

/// PV: Xen maps `shared_info` and names its machine frame in `start_info`.
/// PVH: the guest picks a frame of its own (here the image's `shared_info`
/// page) and asks Xen to put `shared_info` there instead of the RAM.
fn place_shared_info() -> Result<u64, &'static str> {
    let gfn = image_gfn(xen::shared_info_address());
    // SAFETY: the frame is the image's SHARED_INFO page, which nothing but
    // `platform::xen` uses, and only as Xen's shared_info from now on.
    unsafe { memory_op::add_to_physmap(XENMAPSPACE_shared_info, 0, gfn) }
        .map_err(|_| "XENMEM_add_to_physmap(XENMAPSPACE_shared_info) failed")?;
    xen::shared_info_mapped();
    Ok(gfn)
}

/// The first PVH steps once Xen is found, on the boot page tables:
/// hypercalls, features, the initial-domain question, `shared_info`, and
/// `console_io` for the initial domain. `start_info` is the physical address
/// of `hvm_start_info`.
pub fn start(leaves: XenLeaves, start_info: u64) -> Result<(), &'static str> {
    install_hypercall_page(&leaves)?;
    let features = version::get_features(0).unwrap_or(0);
    let info: HvmStartInfo = memory::read_phys(start_info);
    let flags = if info.magic == XEN_HVM_START_MAGIC_VALUE { info.flags } else { 0 };
    let initial_domain = flags & SIF_INITDOMAIN != 0 || features & (1 << XENFEAT_dom0) != 0;
    if initial_domain {
        PVH.console.use_console_io();
    }
    let shared_info_gfn = place_shared_info()?;
    let upcall_route = UpcallRoute::default_for(lapic::has_x2apic());
    START.call_once(|| PvhStart { leaves, features, initial_domain, shared_info_gfn, upcall_route });
    println!(
        "pvh: Xen {}.{} at CPUID {:#x}, hypercall page via MSR {:#x}, shared_info at frame {:#x}",
        leaves.version.0, leaves.version.1, leaves.base, leaves.hypercall_msr, shared_info_gfn
    );
    Ok(())
}

/// `XENMEM_memory_map`: the map when `hvm_start_info` has none (version
/// 0, as Xen 4.17 builds a PVH dom0).
pub fn read_memory_map(map: &mut MemoryMap) -> Result<(), &'static str> {
    let mut entries = [E820Entry::default(); 64];
    let count = memory_op::memory_map(&mut entries).map_err(|_| "XENMEM_memory_map failed")?;
    if count == 0 {
        return Err("XENMEM_memory_map returned no entries");
    }
    for entry in &entries[..count] {
        let (start, len, kind) = (entry.addr, entry.size, entry.r#type);
        map.push(Region { start, len, kind: RegionKind::from_e820(kind) });
    }
    Ok(())
}

static REQUESTED_ROUTE: spin::Once<UpcallRoute> = spin::Once::new();

/// Takes the command line's `xen-upcall=lapic|callback`, if any.
pub fn apply_cmdline(cmdline: &Cmdline<'_>) {
    let Some(requested) = cmdline.value("xen-upcall") else {
        return;
    };
    match UpcallRoute::choose(Some(requested), lapic::has_x2apic()) {
        Ok(route) => {
            REQUESTED_ROUTE.call_once(|| route);
        }
        Err(problem) => println!("pvh: {problem}; using the default"),
    }
}

/// The route `init_services` tries first.
pub fn upcall_route() -> Option<UpcallRoute> {
    START.get().map(|start| REQUESTED_ROUTE.get().copied().unwrap_or(start.upcall_route))
}
