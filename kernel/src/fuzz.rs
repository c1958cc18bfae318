//! The hypercall fuzzer (`fuzz=<seed>,<count>` on the command line):
//! `count` seeded random hypercalls whose arguments point into the
//! guest's own scratch memory, into the hypervisor's range and into
//! unmapped space, and name frames the guest does not own. What it may
//! and may not issue is the policy in `kernel::hostile_plan::fuzz`
//! (host-tested); this file prepares the scratch resources that policy
//! describes, issues the calls, repairs what a call may legitimately
//! change, and every [`CHECK_EVERY`] calls proves the hypervisor is alive
//! and the guest still works (`xen_version`, a console line, a timer tick
//! and an event-channel loopback). It ends with
//! `fuzz: N calls, M errors returned, hypervisor alive`.

use alloc::vec::Vec;

use drivers::debug_exit::Verdict;
use hypercalls::abi::arch_x86::{SEGBASE_FS, SEGBASE_GS_KERNEL, SEGBASE_GS_USER};
use hypercalls::abi::callback::{CALLBACKOP_unregister, CALLBACKTYPE_nmi};
use hypercalls::abi::event_channel::{EVTCHNOP_alloc_unbound, EVTCHNOP_close};
use hypercalls::abi::vcpu::VCPUOP_stop_periodic_timer;
use hypercalls::abi::xen::*;
use kernel::hostile_plan::fuzz::{
    parse_spec, Call, Env, Planner, Repairs, Spec, PLAYGROUND_PAGES, STRADDLE_POISON, STRADDLE_ZONE,
};
use kernel::layout::{PAGE_SIZE, SCRATCH_BASE};

use crate::arch::{memory, raw_hypercall};
use crate::hostile::env::{own_domid, set_alias_writable};
use crate::mm::{frames, paging};
use crate::platform::{self, pv::PV, xen};
use crate::println;

/// The fuzzer's part of the scratch range: buffers, then (after an
/// unmapped guard page) the sink page, then a 2 MiB-aligned playground.
const BUFFERS: u64 = SCRATCH_BASE + (768 << 20);
const BUFFER_PAGES: u64 = 4;
const SINK: u64 = SCRATCH_BASE + (770 << 20);
const PLAYGROUND: u64 = SCRATCH_BASE + (772 << 20);
const SPARE_FRAMES: usize = 16;
const FUZZ_PORTS: usize = 4;
/// Calls between liveness checks (and progress lines).
pub const CHECK_EVERY: u64 = 10_000;

/// `nmi_op(XENNMI_unregister_callback)` (`public/nmi.h`).
const XENNMI_UNREGISTER_CALLBACK: u64 = 1;

pub fn run(spec: &str) -> Verdict {
    let Spec { seed, count, trace } = match parse_spec(spec) {
        Ok(parsed) => parsed,
        Err(problem) => {
            println!("fuzz: {problem} (got `fuzz={spec}`)");
            return Verdict::Failure;
        }
    };
    let scratch = match Scratch::prepare() {
        Ok(scratch) => scratch,
        Err(problem) => {
            println!("fuzz: {problem}");
            return Verdict::Failure;
        }
    };
    println!(
        "fuzz: seed {seed}, {count} calls, as domain {} ({}); {} spare frames, {} foreign",
        scratch.env.own_domid,
        if scratch.env.privileged { "dom0: privileged hypercalls excluded" } else { "domU" },
        scratch.env.spare_mfns.len(),
        scratch.env.foreign_mfns.len()
    );
    let started = xen::time::system_time_ns();
    let mut planner = Planner::new(&scratch.env, seed);
    let mut errors = 0u64;
    for done in 0..count {
        if done > 0 && done % CHECK_EVERY == 0 {
            if let Err(problem) = alive() {
                println!("fuzz: after {done} calls: {problem}");
                return Verdict::Failure;
            }
            let elapsed = xen::time::system_time_ns() - started;
            println!(
                "fuzz: {done} calls, {errors} errors, {} calls/s",
                done * 1_000_000_000 / elapsed.max(1)
            );
        }
        let call = planner.next_call();
        if trace {
            println!("fuzz: #{done}: {} {:x?}", call.number, call.args);
        }
        scratch.fill(call);
        let result = raw_hypercall::hypercall(call.number, call.args);
        if (-4095..0).contains(&result) {
            errors += 1;
        }
        scratch.after(call, result);
    }
    let elapsed = xen::time::system_time_ns() - started;
    if let Err(problem) = alive() {
        println!("fuzz: after {count} calls: {problem}");
        return Verdict::Failure;
    }
    println!("fuzz: {:.1} s for {count} calls", elapsed as f64 / 1e9);
    println!("fuzz: {count} calls, {errors} errors returned, hypervisor alive");
    Verdict::Success
}

/// The scratch resources the policy's [`Env`] describes, and where the
/// buffer pages live (guest-physical), to fill them without pointers.
struct Scratch {
    env: Env,
    buffer_frames: Vec<u64>,
    kernel_ports: Vec<u32>,
}

impl Scratch {
    fn prepare() -> Result<Self, &'static str> {
        if platform::current().name() != "pv" {
            return Err("the fuzzer needs a Xen PV guest");
        }
        let facts = platform::xen().ok_or("Xen services are not up")?;
        let space = paging::AddressSpace::current();
        let map = |va: u64| -> Result<u64, &'static str> {
            let frame = frames::allocate_zeroed().ok_or("out of frames")?;
            space.map(va, frame, paging::data_flags()).map_err(|_| "cannot map a scratch page")?;
            Ok(frame)
        };
        let buffer_frames =
            (0..BUFFER_PAGES).map(|page| map(BUFFERS + page * PAGE_SIZE)).collect::<Result<Vec<_>, _>>()?;
        map(SINK)?;
        // The playground's L1 comes into being with its first mapping and
        // stays when the page goes; after that its PTEs are the fuzzer's.
        let probe = map(PLAYGROUND)?;
        let (l1, _, _) = space.leaf(PLAYGROUND).map_err(|_| "no playground table")?;
        space.unmap(PLAYGROUND).map_err(|_| "cannot clear the playground")?;
        frames::free(probe);
        let playground_l1 = PV.mmu.machine_address(l1);
        let mut spare_mfns = Vec::new();
        for _ in 0..SPARE_FRAMES {
            let frame = frames::allocate_zeroed().ok_or("out of frames")?;
            if set_alias_writable(frame, false) != 0 {
                return Err("cannot make a spare frame read-only");
            }
            spare_mfns.push(PV.mmu.mfn(frame / PAGE_SIZE).ok_or("a spare frame has no machine frame")?);
        }
        let root = platform::current().current_root();
        let foreign_mfns = [256u64, 261, 262]
            .iter()
            .map(|slot| (memory::read_u64(root + 8 * slot) & paging::ADDRESS_MASK) / PAGE_SIZE)
            .filter(|&mfn| mfn != 0)
            .collect();
        let mut ports = Vec::new();
        for _ in 0..FUZZ_PORTS {
            let mut request = [u64::from(DOMID_SELF) | u64::from(DOMID_SELF) << 16];
            let rc =
                hypercall(__HYPERVISOR_event_channel_op, [EVTCHNOP_alloc_unbound.into(), addr(&mut request)]);
            if rc == 0 {
                ports.push((request[0] >> 32) as u32);
            }
        }
        let kernel_ports = kernel_ports();
        let env = Env {
            privileged: facts.initial_domain,
            own_domid: own_domid().filter(|&id| id != DOMID_SELF).unwrap_or(u16::from(!facts.initial_domain)),
            buffer_base: BUFFERS,
            buffer_bytes: BUFFER_PAGES * PAGE_SIZE,
            sink: SINK,
            playground: PLAYGROUND,
            playground_l1,
            spare_mfns,
            foreign_mfns,
            ports,
        };
        debug_assert_eq!(PLAYGROUND % (PLAYGROUND_PAGES * PAGE_SIZE), 0);
        Ok(Self { env, buffer_frames, kernel_ports })
    }

    /// Where buffer address `va` is in guest-physical memory.
    fn phys(&self, va: u64) -> u64 {
        let offset = va - BUFFERS;
        self.buffer_frames[(offset / PAGE_SIZE) as usize] + offset % PAGE_SIZE
    }

    fn fill(&self, call: &Call) {
        for (address, word) in call.filled_words() {
            memory::write_u64(self.phys(address), word);
        }
        let zone = BUFFERS + BUFFER_PAGES * PAGE_SIZE - STRADDLE_ZONE;
        for offset in (0..STRADDLE_ZONE).step_by(8) {
            memory::write_u64(self.phys(zone + offset), STRADDLE_POISON);
        }
    }

    /// Closes a port the call allocated and repairs what it changed.
    fn after(&self, call: &Call, result: i64) {
        if let Some(at) = call.close_port_at.filter(|_| result == 0) {
            let word = memory::read_u64(self.phys(at & !7));
            let port = (word >> (8 * (at & 7))) as u32;
            if !self.kernel_ports.contains(&port) && !self.env.ports.contains(&port) {
                let mut request = [u64::from(port)];
                hypercall(__HYPERVISOR_event_channel_op, [EVTCHNOP_close.into(), addr(&mut request)]);
            }
        }
        repair(call.repairs);
    }
}

fn addr(words: &mut [u64]) -> u64 {
    words.as_mut_ptr() as u64
}

fn hypercall(number: u32, args: [u64; 2]) -> i64 {
    raw_hypercall::hypercall(number.into(), [args[0], args[1], 0, 0, 0])
}

/// The ports the kernel itself depends on, never to be closed.
fn kernel_ports() -> Vec<u32> {
    let mut ports: Vec<u32> = xen::time::timer_port().into_iter().collect();
    if let Some(start) = crate::platform::pv::start::start_info() {
        ports.push(start.console.1);
        ports.push(start.store.1);
    }
    ports
}

/// Puts back the state the kernel relies on that a call may have changed.
fn repair(repairs: Repairs) {
    if repairs.0 == 0 {
        return;
    }
    if repairs.has(Repairs::TRAPS) || repairs.has(Repairs::CALLBACKS) {
        raw_hypercall::hypercall(__HYPERVISOR_set_trap_table.into(), [0; 5]);
        platform::current().install_traps();
    }
    if repairs.has(Repairs::FPU) {
        raw_hypercall::hypercall(__HYPERVISOR_fpu_taskswitch.into(), [0; 5]);
    }
    if repairs.has(Repairs::SEGMENT_BASES) {
        for which in [SEGBASE_FS, SEGBASE_GS_USER, SEGBASE_GS_KERNEL] {
            raw_hypercall::hypercall(__HYPERVISOR_set_segment_base.into(), [which.into(), 0, 0, 0, 0]);
        }
    }
    if repairs.has(Repairs::DEBUG_REGISTERS) {
        raw_hypercall::hypercall(__HYPERVISOR_set_debugreg.into(), [7, 0x400, 0, 0, 0]);
        for register in 0..4 {
            raw_hypercall::hypercall(__HYPERVISOR_set_debugreg.into(), [register, 0, 0, 0, 0]);
        }
    }
    if repairs.has(Repairs::NMI_CALLBACK) {
        raw_hypercall::hypercall(__HYPERVISOR_nmi_op.into(), [XENNMI_UNREGISTER_CALLBACK, 0, 0, 0, 0]);
        let mut request = [u64::from(CALLBACKTYPE_nmi)];
        raw_hypercall::hypercall(
            __HYPERVISOR_callback_op.into(),
            [CALLBACKOP_unregister.into(), addr(&mut request), 0, 0, 0],
        );
    }
    if repairs.has(Repairs::PERIODIC_TIMER) {
        raw_hypercall::hypercall(
            __HYPERVISOR_vcpu_op.into(),
            [VCPUOP_stop_periodic_timer.into(), 0, 0, 0, 0],
        );
    }
}

fn noop(_: u32) {}

/// The hypervisor answers, the console prints, the timer ticks and an
/// event goes round a loopback channel.
fn alive() -> Result<(), &'static str> {
    let facts = platform::xen().ok_or("no Xen facts")?;
    let version = raw_hypercall::hypercall(__HYPERVISOR_xen_version.into(), [0; 5]);
    if version != (i64::from(facts.version.0) << 16 | i64::from(facts.version.1)) {
        return Err("xen_version no longer answers as at boot");
    }
    let ticks = xen::time::ticks();
    let now = xen::time::system_time_ns();
    xen::time::sleep_until(now + 1_000_000);
    if xen::time::ticks() == ticks {
        return Err("no timer tick for a 1 ms sleep");
    }
    let listening = xen::events::alloc_unbound(DOMID_SELF, noop).map_err(|_| "alloc_unbound failed")?;
    let connected = xen::events::bind_interdomain(DOMID_SELF, listening, noop);
    let arrived = connected.is_ok_and(|port| {
        xen::events::send(port).is_ok()
            && (0..10_000).any(|_| {
                let _ = hypercalls::ops::sched::sched_yield();
                xen::events::count(listening) > 0
            })
    });
    if let Ok(port) = connected {
        let _ = xen::events::close(port);
    }
    let _ = xen::events::close(listening);
    if !arrived {
        return Err("an event did not go round a loopback channel");
    }
    Ok(())
}
