//! PVH late start-up, once the kernel has its page tables and heap: the
//! event upcall, the timer, grant tables and, for a domU, the console ring
//! and xenstore found through HVM parameters.

use drivers::console_ring::ConsoleRingView;
use drivers::xenstore::XenstoreRingView;
use hypercalls::abi::hvm::{
    HVM_PARAM_CONSOLE_EVTCHN, HVM_PARAM_CONSOLE_PFN, HVM_PARAM_STORE_EVTCHN, HVM_PARAM_STORE_PFN,
};
use hypercalls::abi::memory::XENMAPSPACE_grant_table;
use hypercalls::ops::{hvm, memory as memory_op};
use hypercalls::XenError;
use kernel::layout::{DIRECT_MAP_BASE, PAGE_SIZE};
use kernel::pvh::UpcallRoute;

use super::start::{self, image_gfn};
use super::{upcall, Pvh};
use crate::arch::cpu;
use crate::mm::paging::{self, AddressSpace, MapError};
use crate::platform::xen;
use crate::println;

pub fn init(pvh: &Pvh) {
    let Some(start) = start::get() else {
        return;
    };
    xen::init(xen::Xen::query(start.initial_domain));
    upcall::quiet_other_interrupts(start.initial_domain);
    connect_upcall(start::upcall_route().unwrap_or(start.upcall_route));
    xen::choose_event_abi(kernel_guest_frame);
    if let Err(error) = xen::time::init() {
        println!("xen: binding VIRQ_TIMER failed: {error}");
    }
    if let Err(error) = xen::grants::init_placed(place_grant_frame) {
        println!("xen: grant table setup failed: {error:?}");
    }
    if !start.initial_domain {
        connect_rings(pvh);
    }
    if pvh.console.route() == super::console::Route::Early {
        println!("pvh: no Xen console (no console_io, no console ring): using COM1");
        pvh.console.use_uart();
    }
    // An event that was pending before the vector was known raised nothing.
    xen::events::handle_upcall();
    cpu::interrupts_enable();
}

/// The chosen route, else the other one: a Xen without
/// `HVMOP_set_evtchn_upcall_vector` (an old one) still has the callback.
fn connect_upcall(first: UpcallRoute) {
    let fallback = match first {
        UpcallRoute::LapicVector => UpcallRoute::CallbackVector,
        UpcallRoute::CallbackVector => UpcallRoute::LapicVector,
    };
    for route in [first, fallback] {
        if route == UpcallRoute::LapicVector && !super::lapic::has_x2apic() {
            continue;
        }
        match upcall::connect(route) {
            Ok(()) => {
                println!("pvh: events arrive on vector {:#x} by {}", upcall::UPCALL_VECTOR, route.name());
                return;
            }
            Err(error) => println!("pvh: {} refused: {error}", route.name()),
        }
    }
    println!("pvh: no event delivery: timers, xenstore and the console ring will not work");
}

/// Puts grant-table frame `index` where the kernel's grant table page at
/// `virt` is; Xen gives the RAM that was there back to the pool.
fn place_grant_frame(index: u64, virt: u64) -> Result<(), XenError> {
    // SAFETY: `virt` is a page of `xen::grants::TABLE`, reserved in the
    // image for the grant table and used for nothing else.
    unsafe { memory_op::add_to_physmap(XENMAPSPACE_grant_table, index, image_gfn(virt)) }
}

/// An HVM parameter that names something, or `None` (0 or an error means
/// the toolstack, or QEMU, set none).
fn param(index: u32) -> Option<u64> {
    hvm::get_param(index).ok().filter(|&value| value != 0)
}

/// Maps guest frame `gfn` in the direct map if it is not there yet: the
/// console and xenstore pages sit in a reserved hole (QEMU: 0xfeff8000),
/// outside the RAM the direct map covers.
fn map_special_page(gfn: u64) -> Result<u64, MapError> {
    let phys = gfn * PAGE_SIZE;
    let virt = DIRECT_MAP_BASE + phys;
    let space = AddressSpace::current();
    match space.translate(virt) {
        Some((frame, _)) if frame == phys => Ok(virt),
        Some((other, _)) => Err(MapError::AlreadyMapped { existing: other }),
        None => space.map(virt, phys, paging::data_flags()).map(|()| virt),
    }
}

/// The guest frame behind kernel address `virt` (an auto-translated guest
/// names its own frames).
fn kernel_guest_frame(virt: u64) -> Option<u64> {
    AddressSpace::current().translate(virt).map(|(phys, _)| phys / PAGE_SIZE)
}

fn connect_rings(pvh: &Pvh) {
    match (param(HVM_PARAM_CONSOLE_PFN), param(HVM_PARAM_CONSOLE_EVTCHN)) {
        (Some(gfn), Some(port)) => match map_special_page(gfn) {
            Ok(virt) => {
                // SAFETY: the page is the console ring Xen (or QEMU) set
                // aside for this domain, mapped just above; it is never RAM
                // the allocator hands out, and ConsoleRingView is all atomics.
                let view: &'static ConsoleRingView = unsafe { &*(virt as *const ConsoleRingView) };
                pvh.console.use_ring(view, port as u32);
            }
            Err(error) => println!("pvh: cannot map the console ring at frame {gfn:#x}: {error:?}"),
        },
        _ => println!("pvh: no HVM_PARAM_CONSOLE_PFN/EVTCHN"),
    }
    match (param(HVM_PARAM_STORE_PFN), param(HVM_PARAM_STORE_EVTCHN)) {
        (Some(gfn), Some(port)) => match map_special_page(gfn) {
            Ok(virt) => {
                // SAFETY: as above, for the xenstore ring.
                let view: &'static XenstoreRingView = unsafe { &*(virt as *const XenstoreRingView) };
                if let Err(error) = xen::store::connect(view, port as u32) {
                    println!("xen: xenstore event channel: {error}");
                }
            }
            Err(error) => println!("pvh: cannot map the xenstore ring at frame {gfn:#x}: {error:?}"),
        },
        _ => println!("pvh: no HVM_PARAM_STORE_PFN/EVTCHN"),
    }
}
