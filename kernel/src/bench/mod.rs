//! `bench` on the command line: time the privileged operations this
//! platform offers, print one `bench:` line per result (format and
//! statistics in `kernel::bench_stats`), and power off.
//!
//! What runs where:
//!
//! | benchmark                  | native | Xen PV | Xen PVH |
//! |----------------------------|--------|--------|---------|
//! | `loop_overhead`, `cpuid_native`, `pte_write_invlpg` | yes | yes | yes |
//! | `null_hypercall`, `multicall_per_entry`, `evtchn_roundtrip`, `timer_set_block`, `timer_wakeup_latency` | | yes | yes |
//! | `mmu_update_single`, `mmu_update_batch_per_pte`, `update_va_mapping`, `trapped_pte_write`, `cpuid_emulated` | | yes | |
//!
//! `pte_write_invlpg` goes through the platform interface everywhere: a
//! store and `invlpg` natively, a queued `mmu_update` plus
//! `MMUEXT_INVLPG_LOCAL` in one `multicall` under PV. The PV-only figures
//! time the hypercall (or the trapped store) alone, with requests prepared
//! beforehand. `bench=boot` runs nothing, for `cargo xtask bench`'s boot
//! timing.

mod harness;
mod page_tables;
mod xen;

use drivers::debug_exit::Verdict;
use kernel::cmdline::Cmdline;

use crate::arch::cpu;
use crate::platform;
use crate::println;
use harness::Runner;

/// Runs the benchmarks if the command line asks for them.
pub fn run_if_asked(cmdline: &Cmdline<'_>) -> Option<Verdict> {
    match cmdline.value("bench") {
        Some("boot") => {
            println!("bench: boot only");
            return Some(Verdict::Success);
        }
        Some(other) => {
            println!("bench: unknown mode `{other}` (use `bench` or `bench=boot`)");
            return Some(Verdict::Failure);
        }
        None if !cmdline.has_flag("bench") => return None,
        None => {}
    }
    Some(run_all())
}

fn run_all() -> Verdict {
    let platform = platform::current();
    println!("bench: platform {}", platform.name());
    let mut runner = Runner::new();

    runner.measure("loop_overhead", 1000, || Ok::<(), &str>(()));
    runner.measure("cpuid_native", 1000, || {
        core::hint::black_box(cpu::cpuid(0, 0));
        Ok::<(), &str>(())
    });
    page_tables::run(&mut runner);
    if platform::xen().is_some() {
        xen::run(&mut runner);
    }

    let (results, failures, not_offered) = runner.totals();
    println!("bench: {results} results, {failures} failed, {not_offered} not offered by this hypervisor");
    if failures == 0 {
        Verdict::Success
    } else {
        Verdict::Failure
    }
}
