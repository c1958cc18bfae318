//! What the kernel does once it is up, as the command line asks:
//! `selftest` runs the in-guest tests, `crash=<kind>` demonstrates the
//! exception handlers, and otherwise the kernel takes its short tour of the
//! platform (`tour.rs`) and powers off.

use drivers::debug_exit::Verdict;
use kernel::cmdline::Cmdline;

use crate::arch::cpu;
use crate::boot::BootInfo;
use crate::println;

/// The unmapped address `crash=page-fault` writes to (the system tests look
/// for it in CR2).
pub const CRASH_ADDRESS: u64 = 0x0dea_dbee_f000;

pub fn run(cmdline: Cmdline<'static>, boot: &'static BootInfo) -> Verdict {
    if let Some(kind) = cmdline.value("crash") {
        return crash(kind);
    }
    if let Some(verdict) = crate::bench::run_if_asked(&cmdline) {
        return verdict;
    }
    if cmdline.has_flag("hostile") {
        return crate::hostile::run();
    }
    if let Some(spec) = cmdline.value("fuzz") {
        return crate::fuzz::run(spec);
    }
    if cmdline.has_flag("selftest") {
        let mut context = crate::selftests::Context { boot, cmdline };
        let summary =
            kernel::selftest::run_all(&mut context, crate::selftests::ALL, &mut crate::console::writer());
        return if summary.succeeded() { Verdict::Success } else { Verdict::Failure };
    }
    crate::tour::run()
}

fn crash(kind: &str) -> Verdict {
    println!("crash: triggering a deliberate {kind}");
    match kind {
        "page-fault" => cpu::deliberate_fault_write(CRASH_ADDRESS),
        "invalid-opcode" => cpu::deliberate_invalid_opcode(),
        "panic" => panic!("deliberate panic from the command line"),
        _ => {
            println!("crash: unknown kind `{kind}` (use page-fault, invalid-opcode or panic)");
            return Verdict::Failure;
        }
    }
    println!("crash: the {kind} did not stop the kernel");
    Verdict::Failure
}
