//! The in-guest self-tests that need a booted kernel. The mechanism and the
//! output format are in `kernel::selftest`. This file holds the tests every
//! platform runs; `platform.rs` covers interrupts, time and page tables
//! through the platform interface, `xen.rs` and `xenstore.rs` what only
//! exists on Xen, `pvh.rs` what only a PVH guest of Xen does (those report
//! `SKIP` elsewhere).

mod grant_map;
mod platform;
mod pvh;
mod xen;
mod xenstore;

use alloc::boxed::Box;
use alloc::vec::Vec;

use kernel::cmdline::Cmdline;
use kernel::ensure;
use kernel::layout::PAGE_SIZE;
use kernel::selftest::{Outcome, SelfTest};
use x86_64::structures::paging::PageTableFlags as Flags;

use crate::arch::{cpu, heap, memory, traps};
use crate::boot::BootInfo;
use crate::mm::{frames, paging};

pub struct Context {
    pub boot: &'static BootInfo,
    pub cmdline: Cmdline<'static>,
}

/// Every test, in the order they run.
pub const ALL: &[SelfTest<Context>] = &[
    SelfTest { name: "memory-map", run: memory_map },
    SelfTest { name: "frame-allocator", run: frame_allocator },
    SelfTest { name: "heap", run: heap_allocations },
    SelfTest { name: "page-table-map-unmap", run: map_unmap },
    SelfTest { name: "page-table-protect", run: protect },
    SelfTest { name: "exception-recovery-breakpoint", run: breakpoint_recovery },
    SelfTest { name: "exception-recovery-page-fault", run: page_fault_recovery },
    SelfTest { name: "cmdline-parser", run: cmdline_parser },
    SelfTest { name: "cpuid", run: cpuid_vendor },
    SelfTest { name: "interrupt-state", run: platform::interrupt_state },
    SelfTest { name: "time-monotonic", run: platform::time_monotonic },
    SelfTest { name: "time-sleep", run: platform::time_sleep },
    SelfTest { name: "wallclock", run: platform::wallclock },
    SelfTest { name: "page-table-batched-map", run: platform::batched_map },
    SelfTest { name: "page-table-new-address-space", run: platform::new_address_space },
    SelfTest { name: "xen-version", run: xen::version },
    SelfTest { name: "xen-unknown-hypercall", run: xen::unknown_hypercall },
    SelfTest { name: "xen-shared-info-time", run: xen::shared_info_time },
    SelfTest { name: "pv-p2m-m2p", run: xen::p2m_m2p },
    SelfTest { name: "pv-update-va-mapping", run: xen::update_va_mapping },
    SelfTest { name: "pv-refuses-writable-page-table", run: xen::refuses_writable_page_table },
    SelfTest { name: "pv-writable-page-tables", run: xen::writable_page_tables },
    SelfTest { name: "pv-memory-exchange", run: xen::memory_exchange },
    SelfTest { name: "pv-ldt", run: xen::ldt },
    SelfTest { name: "evtchn-abi", run: xen::evtchn_abi },
    SelfTest { name: "evtchn-loopback", run: xen::evtchn_loopback },
    SelfTest { name: "evtchn-mask-unmask", run: xen::evtchn_mask_unmask },
    SelfTest { name: "evtchn-delivery-after-unmask", run: xen::delivery_after_unmask },
    SelfTest { name: "evtchn-close", run: xen::evtchn_close },
    SelfTest { name: "timer-ticks", run: xen::timer_ticks },
    SelfTest { name: "idle-block", run: xen::idle_block },
    SelfTest { name: "grant-table", run: xen::grant_table },
    SelfTest { name: "grant-map-copy", run: grant_map::map_copy_unmap },
    SelfTest { name: "console-ring", run: xenstore::console_ring },
    SelfTest { name: "xenstore-read", run: xenstore::read_name },
    SelfTest { name: "xenstore-write-read", run: xenstore::write_read },
    SelfTest { name: "xenstore-directory", run: xenstore::directory },
    SelfTest { name: "xenstore-transaction", run: xenstore::transaction },
    SelfTest { name: "xenstore-watch", run: xenstore::watch },
    SelfTest { name: "pvh-hypercall-page", run: pvh::hypercall_page },
    SelfTest { name: "pvh-features", run: pvh::features },
    SelfTest { name: "pvh-shared-info-placement", run: pvh::shared_info_placement },
    SelfTest { name: "pvh-upcall-vector", run: pvh::upcall_vector },
    SelfTest { name: "pvh-hvm-params", run: pvh::hvm_params },
    SelfTest { name: "pvh-grant-frames-placed", run: pvh::grant_frames_placed },
    SelfTest { name: "pvh-console", run: pvh::console },
];

/// A virtual address no other code uses, for mapping tests (each test
/// file uses its own megabyte above it).
pub(crate) const SCRATCH_VA: u64 = kernel::layout::SCRATCH_BASE;

fn memory_map(context: &mut Context) -> Outcome {
    let map = &context.boot.memory;
    ensure!(map.ram().count() > 0, "no RAM regions in the memory map");
    ensure!(map.total_ram() >= 16 << 20, "only {} KiB of RAM reported", map.total_ram() / 1024);
    ensure!(map.dropped() == 0, "{} memory regions did not fit", map.dropped());
    Outcome::Pass
}

fn frame_allocator(_: &mut Context) -> Outcome {
    let before = frames::with(|f| f.free_frames());
    let first = frames::allocate_zeroed();
    let second = frames::allocate_zeroed();
    let (Some(first), Some(second)) = (first, second) else {
        return Outcome::Fail("allocation failed with frames free".into());
    };
    ensure!(first != second, "the same frame {first:#x} was handed out twice");
    ensure!(frames::with(|f| f.free_frames()) == before - 2, "the free count did not drop by two");
    ensure!(memory::read_u64(first) == 0, "frame {first:#x} was not zeroed");
    frames::free(second);
    frames::free(first);
    ensure!(frames::with(|f| f.free_frames()) == before, "freeing did not restore the count");
    let again = frames::allocate_zeroed();
    ensure!(again == Some(first), "the lowest free frame was not reused");
    frames::free(first);
    Outcome::Pass
}

fn heap_allocations(_: &mut Context) -> Outcome {
    let before = heap::stats().allocated;
    {
        let numbers: Vec<u64> = (0..10_000).collect();
        ensure!(numbers.iter().sum::<u64>() == 49_995_000, "vector contents corrupted");
        let big = alloc::vec![0xa5u8; 1 << 20];
        ensure!(big.iter().all(|&b| b == 0xa5), "1 MiB allocation corrupted");
        let boxed = Box::new([7u32; 256]);
        ensure!(boxed[255] == 7, "boxed array corrupted");
        ensure!(heap::stats().allocated > before + (1 << 20), "the heap did not account the allocations");
    }
    ensure!(heap::stats().allocated == before, "memory leaked: {} bytes", heap::stats().allocated - before);
    Outcome::Pass
}

fn map_unmap(_: &mut Context) -> Outcome {
    let space = paging::AddressSpace::current();
    let Some(frame) = frames::allocate_zeroed() else {
        return Outcome::Fail("no frame".into());
    };
    if let Err(error) = space.map(SCRATCH_VA, frame, paging::data_flags()) {
        return Outcome::Fail(alloc::format!("map failed: {error:?}"));
    }
    memory::write_u64(frame + 8, 0x1234_5678_9abc_def0);
    ensure!(
        traps::probe_read(SCRATCH_VA + 8) == Some(0x1234_5678_9abc_def0),
        "the new mapping does not show the frame's contents"
    );
    ensure!(space.translate(SCRATCH_VA).map(|(f, _)| f) == Some(frame), "translate disagrees with map");
    ensure!(
        matches!(
            space.map(SCRATCH_VA, frame, paging::data_flags()),
            Err(paging::MapError::AlreadyMapped { .. })
        ),
        "mapping over a present entry was allowed"
    );
    ensure!(space.unmap(SCRATCH_VA) == Ok(frame), "unmap returned the wrong frame");
    ensure!(traps::probe_read(SCRATCH_VA).is_none(), "the page is still readable after unmap");
    ensure!(space.unmap(SCRATCH_VA) == Err(paging::MapError::NotMapped), "double unmap was allowed");
    frames::free(frame);
    Outcome::Pass
}

fn protect(_: &mut Context) -> Outcome {
    let space = paging::AddressSpace::current();
    let Some(frame) = frames::allocate_zeroed() else {
        return Outcome::Fail("no frame".into());
    };
    let address = SCRATCH_VA + PAGE_SIZE;
    ensure!(space.map(address, frame, paging::data_flags()).is_ok(), "map failed");
    let read_only = paging::data_flags() - Flags::WRITABLE;
    ensure!(space.protect(address, read_only).is_ok(), "protect failed");
    let flags = space.translate(address).map(|(_, flags)| flags);
    ensure!(flags.is_some_and(|f| !f.contains(Flags::WRITABLE)), "the mapping is still writable: {flags:?}");
    ensure!(traps::probe_read(address) == Some(0), "the read-only page is not readable");
    ensure!(space.unmap(address) == Ok(frame), "unmap failed");
    frames::free(frame);
    Outcome::Pass
}

fn breakpoint_recovery(_: &mut Context) -> Outcome {
    let before = crate::traps::breakpoints_taken();
    cpu::breakpoint();
    cpu::breakpoint();
    ensure!(crate::traps::breakpoints_taken() == before + 2, "int3 did not reach the handler twice");
    Outcome::Pass
}

fn page_fault_recovery(_: &mut Context) -> Outcome {
    ensure!(traps::probe_read(0).is_none(), "address 0 is readable: the identity map is still there");
    ensure!(traps::probe_read(crate::commands::CRASH_ADDRESS).is_none(), "an unmapped address was readable");
    let kernel_word = crate::arch::boot::kernel_image().start;
    ensure!(traps::probe_read(kernel_word).is_some(), "the kernel's own text is not readable");
    Outcome::Pass
}

fn cmdline_parser(context: &mut Context) -> Outcome {
    ensure!(context.cmdline.has_flag("selftest"), "`selftest` is running but not seen on the command line");
    let parsed = Cmdline::parse("a b=1 b=0x20 c=");
    ensure!(parsed.has_flag("a") && !parsed.has_flag("b"), "flags misparsed");
    ensure!(parsed.number("b") == Some(Ok(32)), "the last hex value did not win");
    ensure!(parsed.value("c") == Some(""), "empty values are lost");
    Outcome::Pass
}

fn cpuid_vendor(_: &mut Context) -> Outcome {
    let leaf0 = cpu::cpuid(0, 0);
    ensure!(leaf0.eax >= 1, "CPUID reports no standard leaves");
    let mut vendor = [0u8; 12];
    vendor[0..4].copy_from_slice(&leaf0.ebx.to_le_bytes());
    vendor[4..8].copy_from_slice(&leaf0.edx.to_le_bytes());
    vendor[8..12].copy_from_slice(&leaf0.ecx.to_le_bytes());
    ensure!(vendor.iter().all(|b| b.is_ascii_graphic()), "vendor string is not text: {vendor:?}");
    Outcome::Pass
}
