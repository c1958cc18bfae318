//! Self-tests of the platform interface itself: interrupt state, time, and
//! page tables through `pte_*`. They run on every platform.

use alloc::vec::Vec;

use kernel::ensure;
use kernel::layout::{PAGE_SIZE, XEN_RESERVED_END, XEN_RESERVED_START};
use kernel::selftest::Outcome;

use super::{Context, SCRATCH_VA};
use crate::arch::{memory, traps};
use crate::mm::{frames, paging};
use crate::platform::{self, pv::PV};

/// This file's part of the scratch range.
const BASE: u64 = SCRATCH_VA + (16 << 20);

pub fn interrupt_state(_: &mut Context) -> Outcome {
    let platform = platform::current();
    let before = platform.interrupts_enabled();
    let was_enabled = platform.interrupts_save_disable();
    ensure!(was_enabled == before, "save_disable reported {was_enabled}, but delivery was {before}");
    ensure!(!platform.interrupts_enabled(), "delivery still enabled after disable");
    let nested = platform.interrupts_save_disable();
    ensure!(!nested, "a nested save reported delivery enabled");
    platform.interrupts_restore(nested);
    ensure!(!platform.interrupts_enabled(), "restoring a disabled state enabled delivery");
    platform.interrupts_restore(was_enabled);
    ensure!(platform.interrupts_enabled() == before, "the original state did not come back");
    Outcome::Pass
}

pub fn time_monotonic(_: &mut Context) -> Outcome {
    let platform = platform::current();
    let first = platform.monotonic_ns();
    let mut spins = 0u64;
    let mut last = first;
    while last == first && spins < 100_000_000 {
        core::hint::spin_loop();
        spins += 1;
        last = platform.monotonic_ns();
    }
    ensure!(last > first, "the clock did not advance ({first} ns after {spins} polls)");
    let mut previous = last;
    for _ in 0..1000 {
        let now = platform.monotonic_ns();
        ensure!(now >= previous, "time went backwards: {now} after {previous}");
        previous = now;
    }
    Outcome::Pass
}

pub fn time_sleep(_: &mut Context) -> Outcome {
    let platform = platform::current();
    let start = platform.monotonic_ns();
    let deadline = start + 20_000_000;
    platform.sleep_until(deadline);
    let end = platform.monotonic_ns();
    ensure!(end >= deadline, "woke {} ns early", deadline - end);
    ensure!(end - deadline < 2_000_000_000, "overslept by {} ms", (end - deadline) / 1_000_000);
    Outcome::Pass
}

pub fn wallclock(_: &mut Context) -> Outcome {
    let Some(now) = platform::current().wallclock() else {
        return Outcome::Skip("no wall clock on this platform (no RTC driver natively)");
    };
    let (year, month, day, ..) = now.civil();
    ensure!((2020..2200).contains(&year), "implausible date {now}");
    ensure!((1..=12).contains(&month) && (1..=31).contains(&day), "malformed date {now}");
    Outcome::Pass
}

pub fn batched_map(_: &mut Context) -> Outcome {
    const PAGES: u64 = 64;
    let space = paging::AddressSpace::current();
    let mut frames_used = Vec::new();
    for index in 0..PAGES {
        let Some(frame) = frames::allocate_zeroed() else {
            return Outcome::Fail("out of frames".into());
        };
        memory::write_u64(frame, 0x5eed_0000 + index);
        frames_used.push(frame);
    }
    let stats_before = PV.mmu.stats();
    let mapped = paging::batch(|| {
        frames_used.iter().enumerate().try_for_each(|(index, &frame)| {
            space.map(BASE + index as u64 * PAGE_SIZE, frame, paging::data_flags())
        })
    });
    ensure!(mapped.is_ok(), "mapping failed: {mapped:?}");
    let stats_after = PV.mmu.stats();
    for index in 0..PAGES {
        let seen = traps::probe_read(BASE + index * PAGE_SIZE);
        ensure!(seen == Some(0x5eed_0000 + index), "page {index} shows {seen:?}");
    }
    if platform::current().name() == "pv" && !PV.mmu.writable_page_tables() {
        let calls = stats_after.hypercalls - stats_before.hypercalls;
        let updates = stats_after.updates - stats_before.updates;
        ensure!(updates >= PAGES, "only {updates} mmu_update requests for {PAGES} pages");
        ensure!(calls <= 2, "{calls} hypercalls for one batch of {PAGES} mappings");
    }
    let unmapped: Result<Vec<u64>, _> =
        paging::batch(|| (0..PAGES).map(|index| space.unmap(BASE + index * PAGE_SIZE)).collect());
    ensure!(unmapped.as_deref() == Ok(&frames_used[..]), "unmap returned other frames: {unmapped:?}");
    for index in [0, PAGES / 2, PAGES - 1] {
        ensure!(traps::probe_read(BASE + index * PAGE_SIZE).is_none(), "page {index} still mapped");
    }
    frames_used.into_iter().for_each(frames::free);
    Outcome::Pass
}

/// A second L4 sharing the kernel's lower tables: switching to it and back
/// exercises `load_root` (CR3 or `MMUEXT_NEW_BASEPTR`) and table release.
pub fn new_address_space(_: &mut Context) -> Outcome {
    let platform = platform::current();
    let old = paging::AddressSpace::current();
    let Ok(new) = paging::AddressSpace::new() else {
        return Outcome::Fail("no frame for an L4".into());
    };
    let xen_slots = (XEN_RESERVED_START >> 39) & 511..(XEN_RESERVED_END >> 39) & 511;
    paging::batch(|| {
        for index in (0..512).filter(|index| !xen_slots.contains(&(*index as u64))) {
            let entry = platform.pte_read(old.root, index);
            if entry & 1 != 0 {
                platform.pte_write(new.root, 4, index, entry);
            }
        }
    });
    new.activate();
    let switched = platform.current_root() == new.root;
    let text_readable = traps::probe_read(crate::arch::boot::kernel_image().start).is_some();
    let direct_map_readable = traps::probe_read(memory::phys_to_virt(new.root)).is_some();
    old.activate();
    ensure!(switched, "current_root does not report the new L4");
    ensure!(text_readable && direct_map_readable, "the new address space lost the kernel's mappings");
    ensure!(platform.current_root() == old.root, "did not switch back");
    platform.release_page_table(new.root);
    frames::free(new.root);
    Outcome::Pass
}
