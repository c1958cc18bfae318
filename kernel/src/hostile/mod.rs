//! The hostile-guest suite (`hostile` on the command line): the guest
//! attacks its hypervisor through every PV interface, the way the Xen
//! security advisories did (XSA-148, -182, -212, -240, ...), and checks
//! that each attack is answered the way Xen 4.17 answers it: the same
//! errno, or the same refusal. Expected answers cite the Xen source.
//!
//! Each attack prints one line (`PASS <name> [XSA-n]`, `FAIL <name>:
//! expected .., got ..`, or `SKIP <name>: why` where the attack does not
//! apply, e.g. as dom0 under real Xen); the suite ends by proving the
//! hypervisor still serves the guest (`alive-*`), then prints exactly
//! `hostile: N passed, M failed` and shuts down with success iff M is 0.
//!
//! Under real Xen the kernel runs as dom0, which is privileged: where a
//! domU and dom0 get different answers (I/O memory, cache attributes, its
//! own domain id being 0) the attack expects dom0's answer explicitly.

mod cpu;
pub(crate) mod env;
mod events;
mod hc;
mod interfaces;
mod liveness;
mod mappings;
mod pointers;
mod rings;
mod tables;

use drivers::debug_exit::Verdict;
use kernel::hostile_plan::expect::check;
use kernel::hostile_plan::{run_attacks, Expect, Summary};
use kernel::selftest::Outcome;

use crate::{console, println};

/// `Pass` if `got` is what Xen answers, else a `Fail` saying both.
pub fn expect(expected: Expect, got: i64) -> Outcome {
    match check(expected, got) {
        Ok(()) => Outcome::Pass,
        Err(reason) => Outcome::Fail(reason),
    }
}

pub fn run() -> Verdict {
    let mut env = match env::prepare() {
        Ok(env) => env,
        Err(reason) => {
            println!("FAIL hostile-setup: {reason}");
            println!("{}", Summary { passed: 0, failed: 1, skipped: 0 });
            return Verdict::Failure;
        }
    };
    println!(
        "hostile: attacking as domain {} ({}), L4 at mfn {:#x}",
        env.own_domid,
        if env.privileged { "dom0: privileged" } else { "domU" },
        env.l4().mfn
    );
    let mut out = console::writer();
    let mut summary = Summary::default();
    for group in [mappings::ATTACKS, tables::ATTACKS, cpu::ATTACKS, events::ATTACKS, interfaces::ATTACKS] {
        summary.add(run_attacks(&mut env, group, &mut out));
    }
    summary.add(pointers::run(&mut env, &mut out));
    summary.add(run_attacks(&mut env, rings::ATTACKS, &mut out));
    summary.add(run_attacks(&mut env, liveness::CHECKS, &mut out));
    println!("{summary}");
    if summary.succeeded() {
        Verdict::Success
    } else {
        Verdict::Failure
    }
}
