//! The suite's last word: after every attack, the hypervisor still serves
//! the guest normally. Each check is an ordinary operation that must work.

use core::sync::atomic::Ordering;

use hypercalls::abi::xen::{__HYPERVISOR_console_io, CONSOLEIO_write, DOMID_SELF, UVMF_INVLPG};
use kernel::hostile_plan::Attack;
use kernel::selftest::Outcome;

use super::env::{Env, PTE_PRESENT, PTE_RW, VICTIM};
use super::hc;
use crate::arch::{memory, traps};
use crate::mm::frames;
use crate::platform::{self, pv::PV, xen};

pub const CHECKS: &[Attack<Env>] = &[
    Attack { name: "alive-xen-version", xsa: None, run: version },
    Attack { name: "alive-mmu-update-round-trip", xsa: None, run: mmu_round_trip },
    Attack { name: "alive-evtchn-loopback", xsa: None, run: loopback },
    Attack { name: "alive-timer-tick", xsa: None, run: timer_tick },
    Attack { name: "alive-console-write", xsa: None, run: console_write },
];

fn version(_: &mut Env) -> Outcome {
    let Some(facts) = platform::xen() else { return Outcome::Fail("no Xen facts".into()) };
    let expected = (i64::from(facts.version.0) << 16) | i64::from(facts.version.1);
    let got = hc::xen_version();
    if got == expected {
        Outcome::Pass
    } else {
        Outcome::Fail(alloc::format!("xen_version answered {got:#x}, at boot {expected:#x}"))
    }
}

/// Remaps the victim page to a new frame with `mmu_update`, reads through
/// it, and maps the old frame back with `update_va_mapping`.
fn mmu_round_trip(env: &mut Env) -> Outcome {
    let Some(frame) = frames::allocate_zeroed() else { return Outcome::Fail("out of frames".into()) };
    memory::write_u64(frame, 0x0a11_0e5e);
    let Some(mfn) = PV.mmu.mfn(frame / 4096) else { return Outcome::Fail("no machine frame".into()) };
    let (slot, entry) = env.victim();
    let mapped = hc::mmu_update(slot, (mfn << 12) | PTE_PRESENT | PTE_RW);
    hc::invlpg(VICTIM);
    let seen = traps::probe_read(VICTIM);
    let restored = hc::update_va_mapping(VICTIM, entry, UVMF_INVLPG);
    let original = traps::probe_read(VICTIM);
    frames::free(frame);
    match (mapped, seen, restored, original) {
        (0, Some(0x0a11_0e5e), 0, Some(0x5ca1_ab1e)) => Outcome::Pass,
        other => Outcome::Fail(alloc::format!("(map, read, restore, read) = {other:x?}")),
    }
}

fn noop(_: u32) {}

fn loopback(_: &mut Env) -> Outcome {
    let Ok(listening) = xen::events::alloc_unbound(DOMID_SELF, noop) else {
        return Outcome::Fail("alloc_unbound failed".into());
    };
    let Ok(connected) = xen::events::bind_interdomain(DOMID_SELF, listening, noop) else {
        let _ = xen::events::close(listening);
        return Outcome::Fail("bind_interdomain failed".into());
    };
    let sent = xen::events::send(connected);
    let mut arrived = false;
    for _ in 0..10_000 {
        if xen::events::count(listening) > 0 {
            arrived = true;
            break;
        }
        let _ = hypercalls::ops::sched::sched_yield();
    }
    let _ = xen::events::close(connected);
    let _ = xen::events::close(listening);
    if sent.is_ok() && arrived {
        Outcome::Pass
    } else {
        Outcome::Fail(alloc::format!("the event did not arrive (send: {sent:?})"))
    }
}

fn timer_tick(_: &mut Env) -> Outcome {
    let before = xen::time::ticks();
    let start = xen::time::system_time_ns();
    xen::time::sleep_until(start + 2_000_000);
    if xen::time::ticks() > before && xen::time::system_time_ns() >= start + 2_000_000 {
        Outcome::Pass
    } else {
        Outcome::Fail("no VIRQ_TIMER tick for a 2 ms sleep".into())
    }
}

/// Through the console ring as a domU (its indices must move), through
/// `console_io` as dom0.
fn console_write(env: &mut Env) -> Outcome {
    let text = b"hostile: the console still works\n";
    if env.privileged {
        let rc = hc::call(
            __HYPERVISOR_console_io,
            [CONSOLEIO_write.into(), text.len() as u64, hc::addr(text), 0, 0],
        );
        return if rc == 0 {
            Outcome::Pass
        } else {
            Outcome::Fail(alloc::format!("console_io answered {rc}"))
        };
    }
    let Some(ring) = crate::platform::pv::raw_rings::console() else {
        return Outcome::Fail("a domU without a console ring".into());
    };
    let before = ring.view.out_prod.load(Ordering::Acquire);
    crate::println!("hostile: the console still works");
    let after = ring.view.out_prod.load(Ordering::Acquire);
    if after.wrapping_sub(before) as usize >= text.len() {
        Outcome::Pass
    } else {
        Outcome::Fail("the console line did not go through the ring".into())
    }
}
