//! The demo a plain boot runs (no `selftest` on the command line): after
//! the banner and memory map, a short tour of the privileged operations
//! as this platform does them, then power off.

use drivers::debug_exit::Verdict;
use drivers::xenstore::Transaction;
use hypercalls::abi::xen::DOMID_SELF;
use kernel::layout::{PAGE_SIZE, SCRATCH_BASE};

use crate::arch::{memory, traps};
use crate::mm::{frames, paging};
use crate::platform::{self, pv::PV, xen};
use crate::println;

/// The tour's part of the scratch range (the self-tests use the start).
const TOUR_VA: u64 = SCRATCH_BASE + (512 << 20);
const TOUR_PAGES: u64 = 16;

pub fn run() -> Verdict {
    println!("tour: platform `{}`", platform::current().name());
    let steps = [map_and_unmap(), ping_self(), timer_ticks(), xenstore_name()];
    if steps.iter().all(|ok| *ok) {
        println!("tour: done; powering off");
        Verdict::Success
    } else {
        println!("tour: a step failed; stopping as a failure");
        Verdict::Failure
    }
}

fn map_and_unmap() -> bool {
    let space = paging::AddressSpace::current();
    let mut pages = [0u64; TOUR_PAGES as usize];
    for (index, page) in pages.iter_mut().enumerate() {
        let Some(frame) = frames::allocate_zeroed() else {
            println!("tour: out of frames");
            return false;
        };
        memory::write_u64(frame, index as u64);
        *page = frame;
    }
    let before = PV.mmu.stats();
    let mapped = paging::batch(|| {
        pages.iter().enumerate().try_for_each(|(index, &frame)| {
            space.map(TOUR_VA + index as u64 * PAGE_SIZE, frame, paging::data_flags())
        })
    });
    let middle = PV.mmu.stats();
    let readable = (0..TOUR_PAGES).all(|index| traps::probe_read(TOUR_VA + index * PAGE_SIZE) == Some(index));
    let unmapped =
        paging::batch(|| (0..TOUR_PAGES).all(|index| space.unmap(TOUR_VA + index * PAGE_SIZE).is_ok()));
    let after = PV.mmu.stats();
    let gone = traps::probe_read(TOUR_VA).is_none();
    pages.into_iter().for_each(frames::free);
    let ok = mapped.is_ok() && readable && unmapped && gone;
    if platform::current().name() == "pv" {
        println!(
            "tour: mapped {TOUR_PAGES} pages with {} hypercall(s) ({} mmu_update requests), unmapped them with {} \
             ({} requests, {} TLB flushes): {}",
            middle.hypercalls - before.hypercalls,
            middle.updates - before.updates,
            after.hypercalls - middle.hypercalls,
            after.updates - middle.updates,
            after.ext_ops - middle.ext_ops,
            if ok { "ok" } else { "FAILED" }
        );
    } else {
        println!(
            "tour: mapped and unmapped {TOUR_PAGES} pages by storing to the page tables: {}",
            status(ok)
        );
    }
    ok
}

fn status(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "FAILED"
    }
}

fn noop(_: u32) {}

fn ping_self() -> bool {
    if platform::xen().is_none() {
        println!("tour: event channels: skipped (not on Xen)");
        return true;
    }
    let pair = xen::events::alloc_unbound(DOMID_SELF, noop)
        .and_then(|a| xen::events::bind_interdomain(DOMID_SELF, a, noop).map(|b| (a, b)));
    let Ok((a, b)) = pair else {
        println!("tour: could not make a loopback event channel: {pair:?}");
        return false;
    };
    let start = platform::current().monotonic_ns();
    let _ = xen::events::send(b);
    let mut polls = 0;
    while xen::events::count(a) == 0 && polls < 10_000 {
        let _ = hypercalls::ops::sched::sched_yield();
        polls += 1;
    }
    let elapsed = platform::current().monotonic_ns() - start;
    let ok = xen::events::count(a) == 1;
    println!("tour: ping from port {b} to port {a}: {} after {} us", status(ok), elapsed / 1000);
    let _ = xen::events::close(b);
    let _ = xen::events::close(a);
    ok
}

fn timer_ticks() -> bool {
    let Some(port) = xen::time::timer_port() else {
        println!("tour: timer ticks: skipped (no event timer on this platform)");
        return true;
    };
    let platform = platform::current();
    let start = platform.monotonic_ns();
    let first_tick = xen::time::ticks();
    for round in 1..=3u64 {
        // From the last wake-up, so a late one (nested TCG) still leaves
        // every sleep its own timer event.
        platform.sleep_until(platform.monotonic_ns() + 10_000_000);
        println!(
            "tour: tick {round} (VIRQ_TIMER on port {port}) at +{} us",
            (platform.monotonic_ns() - start) / 1000
        );
    }
    let ticks = xen::time::ticks() - first_tick;
    println!("tour: {ticks} timer events for three 10 ms sleeps: {}", status(ticks >= 3));
    ticks >= 3
}

fn xenstore_name() -> bool {
    let Some(facts) = platform::xen() else {
        println!("tour: xenstore: skipped (not on Xen)");
        return true;
    };
    if facts.initial_domain {
        println!("tour: xenstore: skipped (no xenstore as dom0)");
        return true;
    }
    // QEMU's built-in xenstore gives a domain no `name`; its `domid` will do.
    let read = xen::store::with(|client| match client.read_string(Transaction::NONE, "name") {
        Err(error) if error.errnum() == Some(2) => client
            .read_string(Transaction::NONE, "domid")
            .map(|domid| alloc::format!("gives me no name; my domid is {domid}")),
        other => other.map(|name| alloc::format!("says my name is \"{name}\"")),
    });
    match read {
        Ok(Ok(what)) => {
            println!("tour: xenstore {what}");
            true
        }
        Ok(Err(error)) => {
            println!("tour: xenstore read of `name` failed: {error:?}");
            false
        }
        Err(_) => {
            println!("tour: xenstore: not connected");
            false
        }
    }
}
