//! Self-tests of what only a PVH guest of Xen does: the hypercall page
//! installed through an MSR, `shared_info` and the grant table placed in
//! the guest's own physical address space, events as an IDT vector (with
//! the APIC's EOI), and the console and xenstore found through HVM
//! parameters. Elsewhere they report `SKIP`.

use hypercalls::abi::event_channel::EVTCHNSTAT_closed;
use hypercalls::abi::features::{XENFEAT_auto_translated_physmap, XENFEAT_hvm_callback_vector};
use hypercalls::abi::grant_table::{GTF_permit_access, GNTTAB_RESERVED_XENSTORE};
use hypercalls::abi::hvm::{
    HVM_PARAM_CONSOLE_EVTCHN, HVM_PARAM_CONSOLE_PFN, HVM_PARAM_STORE_EVTCHN, HVM_PARAM_STORE_PFN,
};
use hypercalls::abi::xen::{__HYPERVISOR_xen_version, DOMID_SELF};
use hypercalls::ops::{event_channel as evtchn_op, hvm};
use kernel::ensure;
use kernel::layout::PAGE_SIZE;
use kernel::pvh::UpcallRoute;
use kernel::selftest::Outcome;

use super::Context;
use crate::arch::{cpu, traps};
use crate::mm::paging;
use crate::platform::pvh::{lapic, start, upcall, ConsoleRoute, PVH};
use crate::platform::{self, xen};

const NOT_PVH: &str = "not a PVH guest of Xen";
const DOM0: &str = "the initial domain has no console or xenstore rings";

fn on_pvh() -> Result<&'static start::PvhStart, Outcome> {
    match start::get() {
        Some(start) if platform::current().name() == "pvh" => Ok(start),
        _ => Err(Outcome::Skip(NOT_PVH)),
    }
}

fn on_pvh_domu() -> Result<&'static start::PvhStart, Outcome> {
    let start = on_pvh()?;
    if start.initial_domain {
        return Err(Outcome::Skip(DOM0));
    }
    Ok(start)
}

macro_rules! require {
    ($check:expr) => {
        match $check {
            Ok(value) => value,
            Err(outcome) => return outcome,
        }
    };
}

/// Xen wrote the hypercall page when the kernel wrote the MSR: each
/// 32-byte stub is `mov $nr, %eax` then `vmcall` (Intel) or `vmmcall`
/// (AMD); the page started out as `int3` filler.
pub fn hypercall_page(_: &mut Context) -> Outcome {
    let start = require!(on_pvh());
    let page = crate::arch::boot::hypercall_page_address();
    let stub = page + 32 * u64::from(__HYPERVISOR_xen_version);
    let Some(code) = traps::probe_read(stub) else {
        return Outcome::Fail(alloc::format!("the hypercall page at {page:#x} is not readable"));
    };
    let bytes = code.to_le_bytes();
    let mov_eax = bytes[0] == 0xb8 && u32::from_le_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) == 17;
    let trap = matches!(bytes[5..8], [0x0f, 0x01, 0xc1] | [0x0f, 0x01, 0xd9]);
    ensure!(mov_eax && trap, "stub 17 reads {bytes:02x?}, not `mov $17, %eax; vmcall/vmmcall`");
    ensure!(start.leaves.hypercall_pages >= 1, "Xen's CPUID leaf names no hypercall page");
    ensure!(hypercalls::ops::version::version().is_ok(), "xen_version through the page failed");
    Outcome::Pass
}

/// An auto-translated guest with vector callbacks: what PVH is, in
/// `XENVER_get_features` terms.
pub fn features(_: &mut Context) -> Outcome {
    let start = require!(on_pvh());
    let has = |bit: u32| start.features & (1 << bit) != 0;
    ensure!(
        has(XENFEAT_auto_translated_physmap),
        "features {:#x} lack auto_translated_physmap",
        start.features
    );
    ensure!(has(XENFEAT_hvm_callback_vector), "features {:#x} lack hvm_callback_vector", start.features);
    // Auto-translated means the kernel's own tables are the ones in use.
    ensure!(cpu::read_cr3() == platform::current().current_root(), "CR3 is not the kernel's own L4");
    Outcome::Pass
}

/// `shared_info` sits at the guest frame the kernel chose (its image's
/// page), and that page now holds Xen's data rather than zeros.
pub fn shared_info_placement(_: &mut Context) -> Outcome {
    let start = require!(on_pvh());
    let virt = xen::shared_info_address();
    let mapped = paging::AddressSpace::current().translate(virt).map(|(frame, _)| frame);
    ensure!(
        mapped == Some(start.shared_info_gfn * PAGE_SIZE),
        "the kernel maps {mapped:x?} at its shared_info page, not frame {:#x}",
        start.shared_info_gfn
    );
    let Some(vcpu) = xen::vcpu0() else {
        return Outcome::Fail("shared_info is not marked live".into());
    };
    let version = vcpu.time.version.load(core::sync::atomic::Ordering::Acquire);
    let mul = vcpu.time.tsc_to_system_mul.load(core::sync::atomic::Ordering::Acquire);
    ensure!(version != 0 && mul != 0, "vcpu_info[0].time is still zero (version {version}, mul {mul})");
    Outcome::Pass
}

fn noop(_: u32) {}

/// Events arrive as interrupts on the upcall vector; with the per-vCPU
/// (LAPIC) route the handler's EOI lets the next one in.
pub fn upcall_vector(_: &mut Context) -> Outcome {
    require!(on_pvh());
    let Some(route) = upcall::route() else {
        return Outcome::Fail("no upcall route is connected".into());
    };
    let pair = xen::events::alloc_unbound(DOMID_SELF, noop)
        .and_then(|a| xen::events::bind_interdomain(DOMID_SELF, a, noop).map(|b| (a, b)));
    let Ok((a, b)) = pair else {
        return Outcome::Fail(alloc::format!("no loopback channel: {pair:?}"));
    };
    let mut arrivals = [false; 2];
    let taken_before = upcall::interrupts_taken();
    for (round, arrived) in arrivals.iter_mut().enumerate() {
        let _ = xen::events::send(b);
        for _ in 0..10_000 {
            if xen::events::count(a) > round as u64 {
                break;
            }
            let _ = hypercalls::ops::sched::sched_yield();
        }
        *arrived = xen::events::count(a) > round as u64;
    }
    let taken = upcall::interrupts_taken() - taken_before;
    let _ = xen::events::close(b);
    let _ = xen::events::close(a);
    ensure!(arrivals == [true, true], "of two events sent, these arrived: {arrivals:?}");
    ensure!(taken >= 2, "two events came with {taken} upcall interrupts");
    if route == UpcallRoute::LapicVector {
        ensure!(lapic::is_enabled(), "the local APIC is not in x2APIC mode and enabled");
        ensure!(!lapic::in_service(upcall::UPCALL_VECTOR), "the upcall vector is still in service (no EOI)");
    }
    Outcome::Pass
}

/// A domU finds its console and xenstore through HVM parameters: frames
/// outside its RAM and live event channels.
pub fn hvm_params(context: &mut Context) -> Outcome {
    require!(on_pvh_domu());
    let map = &context.boot.memory;
    for (what, pfn, evtchn) in [
        ("console", HVM_PARAM_CONSOLE_PFN, HVM_PARAM_CONSOLE_EVTCHN),
        ("xenstore", HVM_PARAM_STORE_PFN, HVM_PARAM_STORE_EVTCHN),
    ] {
        let (Ok(gfn), Ok(port)) = (hvm::get_param(pfn), hvm::get_param(evtchn)) else {
            return Outcome::Fail(alloc::format!("no HVM parameters for the {what} ring"));
        };
        let phys = gfn * PAGE_SIZE;
        ensure!(gfn != 0 && port != 0, "the {what} ring is frame {gfn:#x}, port {port}");
        ensure!(
            !map.ram().any(|region| region.start <= phys && phys < region.end()),
            "the {what} ring (frame {gfn:#x}) lies in RAM the allocator owns"
        );
        let status = evtchn_op::status(DOMID_SELF, port as u32);
        ensure!(
            status.is_ok_and(|s| s.status != EVTCHNSTAT_closed),
            "the {what} port {port} is not open: {status:?}"
        );
    }
    Outcome::Pass
}

/// The grant table the kernel sees is Xen's: the toolstack (or QEMU)
/// pre-fills the xenstore ring's reserved entry, and it shows through the
/// frames placed with `XENMAPSPACE_grant_table`.
pub fn grant_frames_placed(_: &mut Context) -> Outcome {
    require!(on_pvh_domu());
    let Ok(store_gfn) = hvm::get_param(HVM_PARAM_STORE_PFN) else {
        return Outcome::Fail("no HVM_PARAM_STORE_PFN".into());
    };
    let entry = xen::grants::entry(GNTTAB_RESERVED_XENSTORE);
    let Some((flags, _domid, frame)) = entry else {
        return Outcome::Fail("the grant table is not mapped".into());
    };
    ensure!(flags & GTF_permit_access != 0, "the xenstore grant is not active (flags {flags:#x})");
    ensure!(u64::from(frame) == store_gfn, "the xenstore grant names frame {frame:#x}, not {store_gfn:#x}");
    Outcome::Pass
}

/// The console goes where it should: `console_io` as dom0, the ring as a domU.
pub fn console(_: &mut Context) -> Outcome {
    let start = require!(on_pvh());
    let route = PVH.console_route();
    if start.initial_domain {
        ensure!(route == ConsoleRoute::ConsoleIo, "dom0's console goes to {route:?}, not console_io");
        ensure!(hypercalls::ops::console::write(b"").is_ok(), "console_io refused an empty write");
    } else {
        ensure!(route == ConsoleRoute::Ring, "a domU's console goes to {route:?}, not its ring");
        ensure!(xen::console::output_indices().is_some(), "no console ring is attached");
    }
    Outcome::Pass
}
