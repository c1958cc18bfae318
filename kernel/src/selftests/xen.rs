//! Self-tests of what only exists on Xen: hypercalls, the PV MMU, event
//! channels, the timer and grant tables. Elsewhere they report `SKIP`.

use hypercalls::abi::errno::XEN_ENOSYS;
use hypercalls::abi::grant_table::{GTF_permit_access, GTF_readonly};
use hypercalls::abi::xen::DOMID_SELF;
use hypercalls::ops::{event_channel as evtchn_op, pv_cpu};
use hypercalls::XenError;
use kernel::ensure;
use kernel::layout::PAGE_SIZE;
use kernel::selftest::Outcome;
use x86_64::structures::paging::PageTableFlags as Flags;

use super::{Context, SCRATCH_VA};
use crate::arch::{memory, traps};
use crate::mm::{frames, paging};
use crate::platform::pv::exchange::ExchangeError;
use crate::platform::pv::scratch::ScratchError;
use crate::platform::xen::{self, events, grants, time};
use crate::platform::{self, pv::PV};

/// This file's part of the scratch range.
const BASE: u64 = SCRATCH_VA + (32 << 20);

const NOT_XEN: &str = "not running on Xen";
const NOT_PV: &str = "not a Xen PV guest";

fn on_xen() -> Result<&'static xen::Xen, Outcome> {
    platform::xen().ok_or(Outcome::Skip(NOT_XEN))
}

fn on_pv() -> Result<(), Outcome> {
    if platform::current().name() == "pv" {
        Ok(())
    } else {
        Err(Outcome::Skip(NOT_PV))
    }
}

macro_rules! require {
    ($check:expr) => {
        match $check {
            Ok(value) => value,
            Err(outcome) => return outcome,
        }
    };
}

fn noop(_: u32) {}

/// Polls (through hypercalls, whose return delivers events) until `done`.
fn wait_for(done: impl FnMut() -> bool) -> bool {
    poll(10_000, done)
}

/// As [`wait_for`], for conditions that should *not* come true: a short look.
fn stays_false(done: impl FnMut() -> bool) -> bool {
    !poll(100, done)
}

fn poll(rounds: u32, mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..rounds {
        if done() {
            return true;
        }
        let _ = hypercalls::ops::sched::sched_yield();
    }
    done()
}

pub fn version(_: &mut Context) -> Outcome {
    let xen = require!(on_xen());
    ensure!(xen.version.0 >= 3, "implausible Xen version {}.{}", xen.version.0, xen.version.1);
    // QEMU's Xen emulation (a PVH host) answers only XENVER_version and
    // XENVER_get_features; real Xen answers everything.
    let pvh = platform::current().name() == "pvh";
    let (wanted, what) = if pvh { ("hvm-3.0-x86_64", "64-bit HVM") } else { ("xen-3.0-x86_64", "64-bit PV") };
    let capabilities = xen.capabilities.as_str();
    ensure!(
        capabilities.contains(wanted) || (pvh && capabilities.is_empty()),
        "capabilities \"{capabilities}\" lack {what}"
    );
    let pagesize = hypercalls::ops::version::pagesize();
    ensure!(
        pagesize == Ok(4096) || (pvh && pagesize == Err(hypercalls::XenError::ENOSYS)),
        "XENVER_pagesize says {pagesize:?}, not 4 KiB"
    );
    Outcome::Pass
}

pub fn unknown_hypercall(_: &mut Context) -> Outcome {
    require!(on_xen());
    let result = xen::unassigned_hypercall(60);
    ensure!(result == Some(-i64::from(XEN_ENOSYS)), "hypercall 60 returned {result:?}, not -ENOSYS");
    Outcome::Pass
}

pub fn shared_info_time(_: &mut Context) -> Outcome {
    require!(on_xen());
    let Some(params) = time::clock_params() else {
        return Outcome::Fail("no consistent vcpu_time_info".into());
    };
    ensure!(params.mul != 0, "tsc_to_system_mul is zero");
    ensure!(params.system_time > 0, "system time is zero");
    let (first, second) = (time::system_time_ns(), time::system_time_ns());
    ensure!(second >= first && first >= params.system_time, "pvclock went backwards");
    Outcome::Pass
}

pub fn p2m_m2p(_: &mut Context) -> Outcome {
    require!(on_pv());
    let pages = PV.mmu.nr_pages();
    let kernel = (crate::arch::boot::kernel_image().start - kernel::layout::KERNEL_VIRT_BASE) / PAGE_SIZE;
    for pfn in [0, 1, kernel, pages / 2, pages - 1] {
        let Some(mfn) = PV.mmu.mfn(pfn) else {
            return Outcome::Fail(alloc::format!("no machine frame for PFN {pfn:#x}"));
        };
        ensure!(PV.mmu.pfn(mfn) == Some(pfn), "M2P[{mfn:#x}] does not lead back to PFN {pfn:#x}");
    }
    ensure!(PV.mmu.mfn(pages).is_none(), "the p2m answers beyond nr_pages");
    Outcome::Pass
}

/// Maps a fresh frame at `address` the ordinary way; returns it.
fn map_fresh(address: u64, marker: u64) -> Result<u64, Outcome> {
    let frame = frames::allocate_zeroed().ok_or(Outcome::Fail("out of frames".into()))?;
    memory::write_u64(frame, marker);
    paging::AddressSpace::current()
        .map(address, frame, paging::data_flags())
        .map_err(|error| Outcome::Fail(alloc::format!("map failed: {error:?}")))?;
    Ok(frame)
}

fn unmap_and_free(address: u64, frame: u64) {
    let _ = paging::AddressSpace::current().unmap(address);
    frames::free(frame);
}

pub fn update_va_mapping(_: &mut Context) -> Outcome {
    require!(on_pv());
    let address = BASE;
    let first = require!(map_fresh(address, 0x1111));
    let Some(second) = frames::allocate_zeroed() else {
        return Outcome::Fail("out of frames".into());
    };
    memory::write_u64(second, 0x2222);
    let entry = second | paging::data_flags().bits();
    let remapped = PV.scratch_update_va_mapping(address, entry);
    let seen = traps::probe_read(address);
    let cleared = PV.scratch_update_va_mapping(address, 0);
    let gone = traps::probe_read(address).is_none();
    let restored = PV.scratch_update_va_mapping(address, first | paging::data_flags().bits());
    unmap_and_free(address, first);
    frames::free(second);
    ensure!(remapped.is_ok() && seen == Some(0x2222), "remapping showed {seen:?} ({remapped:?})");
    ensure!(cleared.is_ok() && gone, "clearing the PTE left the page readable ({cleared:?})");
    ensure!(restored.is_ok(), "restoring failed: {restored:?}");
    Outcome::Pass
}

pub fn refuses_writable_page_table(_: &mut Context) -> Outcome {
    require!(on_pv());
    let address = BASE + PAGE_SIZE;
    let frame = require!(map_fresh(address, 0x3333));
    let root = platform::current().current_root();
    let read_only = (paging::data_flags() - Flags::WRITABLE).bits();
    let writable = PV.scratch_mmu_update(address, root | paging::data_flags().bits());
    let readable = PV.scratch_mmu_update(address, root | read_only);
    let root_visible = traps::probe_read(address).is_some();
    let restored = PV.scratch_mmu_update(address, frame | paging::data_flags().bits());
    unmap_and_free(address, frame);
    ensure!(
        matches!(writable, Err(ScratchError::Mmu(_))),
        "Xen let the guest map its own L4 writable ({writable:?})"
    );
    ensure!(readable.is_ok() && root_visible, "a read-only mapping of the L4 was refused ({readable:?})");
    ensure!(restored.is_ok(), "restoring the mapping failed: {restored:?}");
    Outcome::Pass
}

pub fn writable_page_tables(_: &mut Context) -> Outcome {
    require!(on_pv());
    if let Err(error) = pv_cpu::vm_assist(
        hypercalls::abi::xen::VMASST_CMD_enable,
        hypercalls::abi::xen::VMASST_TYPE_writable_pagetables,
    ) {
        return Outcome::Fail(alloc::format!("vm_assist(writable_pagetables): {error}"));
    }
    let address = BASE + 2 * PAGE_SIZE;
    let first = require!(map_fresh(address, 0x4444));
    let Some(second) = frames::allocate_zeroed() else {
        return Outcome::Fail("out of frames".into());
    };
    memory::write_u64(second, 0x5555);
    let trapped_before = PV.mmu.stats().trapped_writes;
    let stored = PV.scratch_trapped_store(address, second | paging::data_flags().bits());
    let seen = traps::probe_read(address);
    let trapped = PV.mmu.stats().trapped_writes - trapped_before;
    let refused =
        PV.scratch_trapped_store(address, platform::current().current_root() | paging::data_flags().bits());
    let _ = PV.scratch_mmu_update(address, first | paging::data_flags().bits());
    unmap_and_free(address, first);
    frames::free(second);
    ensure!(stored == Ok(true) && trapped == 1, "the direct PTE store was not emulated ({stored:?})");
    ensure!(seen == Some(0x5555), "after the emulated store the page shows {seen:?}");
    ensure!(refused == Ok(false), "a store mapping the L4 writable was not refused ({refused:?})");
    Outcome::Pass
}

/// A loopback pair: a port allocated for ourselves and one bound to it.
fn loopback() -> Result<(u32, u32), Outcome> {
    let fail = |what: &str, error| Outcome::Fail(alloc::format!("{what}: {error}"));
    let listening = events::alloc_unbound(DOMID_SELF, noop).map_err(|e| fail("alloc_unbound", e))?;
    let connected =
        events::bind_interdomain(DOMID_SELF, listening, noop).map_err(|e| fail("bind_interdomain", e))?;
    Ok((listening, connected))
}

fn close_pair((a, b): (u32, u32)) {
    let _ = events::close(b);
    let _ = events::close(a);
}

pub fn evtchn_loopback(_: &mut Context) -> Outcome {
    require!(on_xen());
    let (a, b) = require!(loopback());
    // Binding may leave the new port with one event of its own (Xen marks
    // it pending); with FIFO's initially masked ports it arrives at
    // attach, so count from here on.
    let (before_a, before_b) = (events::count(a), events::count(b));
    let upcalls = events::upcalls();
    let sent = events::send(b);
    let arrived = wait_for(|| events::count(a) == before_a + 1);
    let back = events::send(a);
    let returned = wait_for(|| events::count(b) == before_b + 1);
    let status = evtchn_op::status(DOMID_SELF, b);
    close_pair((a, b));
    ensure!(sent.is_ok() && arrived, "an event sent on port {b} did not arrive on {a} ({sent:?})");
    ensure!(back.is_ok() && returned, "the reply on port {a} did not arrive on {b}");
    ensure!(events::upcalls() >= upcalls + 2, "two events arrived without two upcalls");
    ensure!(
        status
            .is_ok_and(|s| s.status == hypercalls::abi::event_channel::EVTCHNSTAT_interdomain
                && s.remote_port() == a),
        "port {b} is not reported as bound to {a}"
    );
    Outcome::Pass
}

pub fn evtchn_mask_unmask(_: &mut Context) -> Outcome {
    require!(on_xen());
    let (a, b) = require!(loopback());
    let masked = events::mask(a);
    let _ = events::send(b);
    let held = stays_false(|| events::count(a) > 0) && events::is_pending(a) && events::is_masked(a);
    let unmasked = events::unmask(a);
    let delivered = wait_for(|| events::count(a) == 1);
    let cleared = !events::is_pending(a);
    close_pair((a, b));
    ensure!(masked.is_ok() && held, "a masked port's event was delivered or not left pending");
    ensure!(unmasked.is_ok() && delivered, "unmasking did not deliver the held event");
    ensure!(cleared, "the pending bit survived delivery");
    Outcome::Pass
}

pub fn delivery_after_unmask(_: &mut Context) -> Outcome {
    require!(on_xen());
    let platform = platform::current();
    let (a, b) = require!(loopback());
    let was_enabled = platform.interrupts_save_disable();
    let _ = events::send(b);
    let _ = hypercalls::ops::sched::sched_yield();
    let held = events::count(a) == 0;
    platform.interrupts_enable();
    // No waiting: re-enabling must deliver what arrived while masked.
    let delivered = events::count(a) == 1;
    platform.interrupts_restore(was_enabled);
    close_pair((a, b));
    ensure!(held, "an event was delivered while events were masked");
    ensure!(delivered, "enabling events did not deliver the event that was pending");
    Outcome::Pass
}

pub fn evtchn_close(_: &mut Context) -> Outcome {
    require!(on_xen());
    let (a, b) = require!(loopback());
    let closed = events::close(b);
    let send_after = events::send(b);
    let status = evtchn_op::status(DOMID_SELF, a);
    let _ = events::close(a);
    ensure!(closed.is_ok(), "close failed: {closed:?}");
    ensure!(send_after.is_err(), "sending on a closed port succeeded");
    ensure!(
        status.is_ok_and(|s| s.status == hypercalls::abi::event_channel::EVTCHNSTAT_unbound),
        "the surviving end is not unbound again ({status:?})"
    );
    Outcome::Pass
}

pub fn timer_ticks(_: &mut Context) -> Outcome {
    require!(on_xen());
    let Some(port) = time::timer_port() else {
        return Outcome::Fail("VIRQ_TIMER is not bound".into());
    };
    let before = time::ticks();
    let start = time::system_time_ns();
    // Each deadline counts from the previous wake-up, so each sleep needs a
    // timer event of its own even where a wake-up comes late (nested TCG).
    for _ in 0..3 {
        time::sleep_until(time::system_time_ns() + 5_000_000);
    }
    let ticks = time::ticks() - before;
    ensure!(ticks >= 3, "{ticks} timer events for three 5 ms sleeps");
    ensure!(events::count(port) >= ticks, "the timer port's count lags the tick counter");
    ensure!(time::system_time_ns() >= start + 15_000_000, "the sleeps ended early");
    Outcome::Pass
}

pub fn idle_block(_: &mut Context) -> Outcome {
    require!(on_xen());
    let platform = platform::current();
    let before = time::ticks();
    // Delivery off from the check to the sleep: a tick taken in between
    // would leave `idle` waiting for one that never comes (PVH's `sti; hlt`;
    // PV's SCHEDOP_block re-checks, but the rule is the same).
    let were_enabled = platform.interrupts_save_disable();
    if let Err(error) = time::set_timer(time::system_time_ns() + 2_000_000) {
        platform.interrupts_restore(were_enabled);
        return Outcome::Fail(alloc::format!("set_timer_op: {error}"));
    }
    let mut blocks = 0;
    while time::ticks() == before && blocks < 1000 {
        platform.idle();
        platform.interrupts_disable();
        blocks += 1;
    }
    platform.interrupts_restore(were_enabled);
    ensure!(time::ticks() > before, "idle (SCHEDOP_block, or sti; hlt) never woke up for the timer");
    Outcome::Pass
}

pub fn grant_table(_: &mut Context) -> Outcome {
    require!(on_xen());
    ensure!(grants::capacity() >= 512, "only {} grant entries mapped", grants::capacity());
    let Some(frame) = frames::allocate_zeroed() else {
        return Outcome::Fail("out of frames".into());
    };
    // A grant names the frame as the grantee's hypervisor knows it: the
    // machine frame under PV, the guest frame in an auto-translated (PVH) guest.
    let granted_frame = if platform::current().name() == "pv" {
        PV.mmu.mfn(frame / PAGE_SIZE)
    } else {
        Some(frame / PAGE_SIZE)
    };
    let Some(mfn) = granted_frame else {
        return Outcome::Fail("no machine frame".into());
    };
    let granted = grants::grant_access(0, mfn, true);
    let entry = granted.ok().and_then(grants::entry);
    let live = granted.is_ok_and(grants::is_granted);
    let ended = granted.map(grants::end_access);
    let twice = granted.map(grants::end_access);
    let after = granted.is_ok_and(grants::is_granted);
    frames::free(frame);
    let Ok(gref) = granted else {
        return Outcome::Fail(alloc::format!("grant_access: {granted:?}"));
    };
    ensure!(gref >= 8, "a reserved reference {gref} was handed out");
    ensure!(entry == Some((GTF_permit_access | GTF_readonly, 0, mfn as u32)), "the entry reads {entry:?}");
    ensure!(live && !after, "is_granted did not follow grant and end");
    ensure!(ended == Ok(Ok(())), "end_access failed: {ended:?}");
    ensure!(matches!(twice, Ok(Err(_))), "ending a grant twice was accepted");
    let size = hypercalls::ops::grant_table::query_size();
    ensure!(
        size.is_ok_and(|size| size.nr_frames as usize * 512 >= grants::capacity()),
        "GNTTABOP_query_size disagrees: {size:?}"
    );
    Outcome::Pass
}

/// `XENMEM_exchange` as a PV kernel uses it to get memory a 32-bit device
/// can reach: a page mapped anywhere but the direct map is refused and
/// keeps its frame; an unshared one gets a new frame below 4 GiB, recorded
/// in both the p2m and Xen's M2P, and the domain's size does not change.
pub fn memory_exchange(_: &mut Context) -> Outcome {
    require!(on_pv());
    const ADDRESS_BITS: u32 = 32;
    let address = BASE + (1 << 20);
    let Some(frame) = frames::allocate_zeroed() else {
        return Outcome::Fail("out of frames".into());
    };
    let pfn = frame / PAGE_SIZE;
    let old_mfn = PV.mmu.mfn(pfn);
    let pages_before = hypercalls::ops::memory::current_reservation(DOMID_SELF);
    memory::write_u64(frame, 0x5eed);
    let aliased = paging::AddressSpace::current().map(address, frame, paging::data_flags());
    let refused = PV.move_page_below(frame, ADDRESS_BITS);
    let _ = paging::AddressSpace::current().unmap(address);
    let kept = (PV.mmu.mfn(pfn), memory::read_u64(frame));
    let moved = PV.move_page_below(frame, ADDRESS_BITS);
    let contents = memory::read_u64(frame);
    memory::write_u64(frame, 0xd1a);
    let written = memory::read_u64(frame);
    let pages_after = hypercalls::ops::memory::current_reservation(DOMID_SELF);
    frames::free(frame);
    ensure!(aliased.is_ok(), "could not map the page twice: {aliased:?}");
    ensure!(
        matches!(refused, Err(ExchangeError::Xen(XenError::EINVAL))),
        "a page mapped twice was not refused with -EINVAL: {refused:?}"
    );
    ensure!(kept == (old_mfn, 0x5eed), "the refused page changed: {kept:x?}");
    let new_mfn = match moved {
        Ok(mfn) => mfn,
        Err(error) => return Outcome::Fail(alloc::format!("the exchange failed: {error:?}")),
    };
    ensure!(Some(new_mfn) != old_mfn, "the page kept machine frame {new_mfn:#x}");
    ensure!(new_mfn < 1 << (ADDRESS_BITS - 12), "frame {new_mfn:#x} is above 4 GiB");
    ensure!(PV.mmu.pfn(new_mfn) == Some(pfn), "the M2P does not lead {new_mfn:#x} back to PFN {pfn:#x}");
    ensure!(contents == 0 && written == 0xd1a, "the new frame reads {contents:#x}, then {written:#x}");
    ensure!(pages_before == pages_after, "the domain's size changed: {pages_before:?} -> {pages_after:?}");
    Outcome::Pass
}

/// `MMUEXT_SET_LDT`: a read-only page holding a ring-3 data segment
/// becomes the LDT, and its selector loads; an empty descriptor and one
/// beyond the LDT's length do not. Without the LDT, the selector fails too.
pub fn ldt(_: &mut Context) -> Outcome {
    require!(on_pv());
    /// Flat 32-bit data, DPL 3: what a user program's LDT would hold.
    const USER_DATA: u64 = 0x00cf_f300_0000_ffff;
    const SELECTOR: u16 = 1 << 3 | 1 << 2 | 3;
    let address = BASE + (3 << 20);
    let Some(frame) = frames::allocate_zeroed() else {
        return Outcome::Fail("out of frames".into());
    };
    memory::write_u64(frame + 8, USER_DATA);
    let space = paging::AddressSpace::current();
    let read_only = paging::data_flags() - Flags::WRITABLE;
    let alias = memory::phys_to_virt(frame);
    let protected = space.protect(alias, read_only).and_then(|()| space.map(address, frame, read_only));
    let before = traps::load_es(SELECTOR);
    let set = PV.mmu.set_ldt(address, 2);
    let loaded = traps::load_es(SELECTOR);
    let empty = traps::load_es(SELECTOR - 8);
    let beyond = traps::load_es(SELECTOR + 8);
    traps::load_es(0);
    let cleared = PV.mmu.set_ldt(0, 0);
    let after = traps::load_es(SELECTOR);
    traps::load_es(0);
    let _ = space.unmap(address);
    let _ = space.protect(alias, paging::data_flags());
    frames::free(frame);
    ensure!(protected.is_ok(), "could not map the LDT page read-only: {protected:?}");
    ensure!(set.is_ok() && cleared.is_ok(), "MMUEXT_SET_LDT failed: {set:?}, {cleared:?}");
    ensure!(!before && !after, "the selector loaded with no LDT ({before}, {after})");
    ensure!(loaded, "the LDT's data segment did not load");
    ensure!(!empty && !beyond, "an empty or out-of-range LDT entry loaded ({empty}, {beyond})");
    Outcome::Pass
}

/// With `evtchn=fifo` a PV guest runs on the FIFO ABI (Xen 4.17 and the
/// bundled hypervisor offer it), and the event tests around this one then
/// exercise it; without, the 2-level ABI.
pub fn evtchn_abi(_: &mut Context) -> Outcome {
    require!(on_xen());
    let cmdline = crate::boot::boot_info().map_or("", |boot| boot.cmdline());
    let wanted = if kernel::cmdline::Cmdline::parse(cmdline).value("evtchn") == Some("fifo") {
        "fifo"
    } else {
        "2-level"
    };
    let using = events::abi_name();
    if using != wanted && platform::current().name() != "pv" {
        return Outcome::Skip("this host's Xen offers no FIFO event channels");
    }
    ensure!(using == wanted, "asked for the {wanted} event-channel ABI, running on {using}");
    Outcome::Pass
}
