//! The fuzzer's exclusions, checked over many planned calls: what the
//! module documentation promises never to issue is never planned.

use std::collections::BTreeSet;

use hypercalls::abi::event_channel::*;
use hypercalls::abi::grant_table::GNTTABOP_set_version;
use hypercalls::abi::sched::*;
use hypercalls::abi::vcpu::*;
use hypercalls::abi::xen::*;

use super::calls::PRIVILEGED_ONLY;
use super::*;

const BUFFERS: u64 = 0xffff_c000_1000_0000;
const SINK: u64 = 0xffff_c000_2000_0000;
const PLAYGROUND: u64 = 0xffff_c000_3000_0000;
const PLAYGROUND_L1: u64 = 0x7777_7000;
const OWN_DOMID: u16 = 1;

fn env(privileged: bool) -> Env {
    Env {
        privileged,
        own_domid: if privileged { 0 } else { OWN_DOMID },
        buffer_base: BUFFERS,
        buffer_bytes: 4 * 4096,
        sink: SINK,
        playground: PLAYGROUND,
        playground_l1: PLAYGROUND_L1,
        spare_mfns: (0x9000..0x9010).collect(),
        foreign_mfns: vec![0x3f8, 0x3f9],
        ports: vec![20, 21, 22],
    }
}

/// Inside the buffers the planner hands out (the last 64 bytes, where
/// straddling pointers point, are never handed out).
fn in_buffers(address: u64) -> bool {
    (BUFFERS..BUFFERS + 4 * 4096 - 64).contains(&address)
}

/// Anywhere in the mapped buffer region, straddle zone included.
fn in_region(address: u64) -> bool {
    (BUFFERS..BUFFERS + 4 * 4096).contains(&address)
}

/// The word the call writes at `address` before issuing, if any.
fn word_at(call: &Call, address: u64) -> Option<u64> {
    call.filled_words().find(|&(at, _)| at == address).map(|(_, word)| word)
}

/// Checks one hypercall (top level or a multicall entry) against the
/// exclusions; `where_` says which, for the failure message.
fn check(env: &Env, call: &Call, number: u64, args: [u64; 5], where_: &str) {
    let spare: BTreeSet<u64> = env.spare_mfns.iter().copied().collect();
    assert_ne!(number, u64::from(__HYPERVISOR_iret), "{where_}: iret planned");
    if env.privileged {
        assert!(
            !PRIVILEGED_ONLY.iter().any(|&n| u64::from(n) == number),
            "{where_}: privileged-only hypercall {number} planned as dom0"
        );
    }
    let Ok(number) = u32::try_from(number) else { return };
    if [__HYPERVISOR_mmu_update, __HYPERVISOR_mmuext_op, __HYPERVISOR_multicall].contains(&number)
        && in_region(args[0])
    {
        assert!(args[1] <= 4, "{where_}: count {:#x} for a readable list", args[1]);
    }
    match number {
        __HYPERVISOR_sched_op => {
            let command = args[0] as u32;
            assert_ne!(command, SCHEDOP_block, "{where_}: SCHEDOP_block");
            if [SCHEDOP_shutdown, SCHEDOP_shutdown_code, SCHEDOP_watchdog].contains(&command) {
                assert!(
                    !in_region(args[1]),
                    "{where_}: shutdown-class op {command} with a readable argument"
                );
            }
            if command == SCHEDOP_poll {
                if let Some(timeout) = word_at(call, args[1] + 16) {
                    assert_ne!(timeout, 0, "{where_}: poll without a timeout");
                }
            }
            if command == SCHEDOP_remote_shutdown {
                if let Some(request) = word_at(call, args[1]) {
                    let domid = request as u16;
                    assert!(
                        domid != DOMID_SELF && domid != env.own_domid,
                        "{where_}: remote_shutdown of self"
                    );
                }
            }
        }
        __HYPERVISOR_sched_op_compat => {
            assert!(
                ![SCHEDOP_block, SCHEDOP_shutdown].contains(&(args[0] as u32)),
                "{where_}: compat block/shutdown"
            );
        }
        __HYPERVISOR_vcpu_op => {
            let command = args[0] as u32;
            assert!(
                ![VCPUOP_initialise, VCPUOP_down, VCPUOP_register_vcpu_info, VCPUOP_send_nmi]
                    .contains(&command),
                "{where_}: excluded vcpu_op {command}"
            );
            if [VCPUOP_register_runstate_memory_area, VCPUOP_register_vcpu_time_memory_area]
                .contains(&command)
            {
                if let Some(area) = word_at(call, args[2]) {
                    assert!(area == SINK || !in_region(area), "{where_}: area {area:#x} not the sink");
                }
            }
        }
        __HYPERVISOR_mmuext_op => {
            for index in 0..4 {
                let Some(command) = word_at(call, args[0] + 24 * index) else { continue };
                let arg1 = word_at(call, args[0] + 24 * index + 8).unwrap_or(0);
                if command as u32 == MMUEXT_NEW_BASEPTR {
                    assert!(!spare.contains(&arg1), "{where_}: NEW_BASEPTR to an owned frame");
                }
            }
        }
        __HYPERVISOR_mmu_update => {
            for index in 0..4 {
                let Some(pointer) = word_at(call, args[0] + 16 * index) else { continue };
                let frame = pointer >> 12;
                if pointer & 3 == u64::from(MMU_MACHPHYS_UPDATE) {
                    assert_ne!(frame, PLAYGROUND_L1 >> 12, "{where_}: M2P of the playground table");
                }
            }
        }
        __HYPERVISOR_update_va_mapping | __HYPERVISOR_update_va_mapping_otherdomain => {
            let address = args[0];
            let playground = (PLAYGROUND..PLAYGROUND + PLAYGROUND_PAGES * 4096).contains(&address);
            let refused = HYPERVISOR_ADDRESSES.contains(&address)
                || UNMAPPED_ADDRESSES.contains(&address)
                || (0x0000_8000_0000_0000..0xffff_8000_0000_0000).contains(&address);
            assert!(playground || refused, "{where_}: update_va_mapping of {address:#x}");
        }
        __HYPERVISOR_event_channel_op | __HYPERVISOR_event_channel_op_compat => {
            let (command, base) = if number == __HYPERVISOR_event_channel_op {
                (args[0] as u32, args[1])
            } else {
                let Some(word) = word_at(call, args[0]) else { return };
                (word as u32, args[0] + 4)
            };
            // Read the argument's first 8 bytes wherever they start.
            let first = |call: &Call| -> Option<u64> {
                let aligned = base & !7;
                let low = word_at(call, aligned)?;
                if base == aligned {
                    return Some(low);
                }
                Some(low >> 32 | word_at(call, aligned + 8).unwrap_or(0) << 32)
            };
            let Some(first) = first(call) else { return };
            match command {
                EVTCHNOP_close | EVTCHNOP_bind_vcpu => {
                    let port = first as u32;
                    assert!(
                        env.ports.contains(&port) || port >= 4096,
                        "{where_}: closes/moves port {port}: {number} {args:x?} {:x?}",
                        call.filled_words().collect::<Vec<_>>()
                    );
                }
                EVTCHNOP_reset => {
                    let domid = first as u16;
                    assert!(domid != DOMID_SELF && domid != env.own_domid, "{where_}: resets itself");
                }
                EVTCHNOP_init_control | EVTCHNOP_expand_array => {
                    assert!(!spare.contains(&first), "{where_}: FIFO control block in a guest frame");
                }
                EVTCHNOP_bind_pirq if env.privileged => {
                    assert_eq!(first as u32, u32::MAX, "{where_}: binds a real pirq as dom0");
                }
                _ => {}
            }
        }
        __HYPERVISOR_grant_table_op if args[0] as u32 & 0xfff == GNTTABOP_set_version => {
            if let Some(version) = word_at(call, args[1]) {
                assert_ne!(version as u32, 2, "{where_}: grant table version 2");
            }
        }
        __HYPERVISOR_set_debugreg if args[0] == 7 || args[0] == 5 => {
            assert_eq!(args[1] & 0xff, 0, "{where_}: enables a breakpoint");
        }
        __HYPERVISOR_console_io if args[0] == u64::from(CONSOLEIO_write) => {
            assert!(!in_region(args[2]), "{where_}: console write of real bytes");
        }
        __HYPERVISOR_physdev_op if env.privileged => {
            assert!([5, 6].contains(&args[0]), "{where_}: physdev op {} as dom0", args[0]);
        }
        __HYPERVISOR_multicall => {
            // The entries are the words of the buffer the list points at.
            let Some(list) = call.fills.iter().find(|fill| fill.address == args[0]) else { return };
            for index in 0..(list.len / 8) as u64 {
                let entry = args[0] + 64 * index;
                let Some(op) = word_at(call, entry) else { continue };
                let mut entry_args = [0; 5];
                for (slot, arg) in entry_args.iter_mut().enumerate() {
                    *arg = word_at(call, entry + 16 + 8 * slot as u64).unwrap_or(0);
                }
                check(env, call, op, entry_args, "multicall entry");
            }
        }
        _ => {}
    }
}

fn planned(privileged: bool, seed: u64, calls: usize, mut each: impl FnMut(&Env, &Call)) {
    let env = env(privileged);
    let mut planner = Planner::new(&env, seed);
    for _ in 0..calls {
        let call = planner.next_call().clone();
        each(&env, &call);
    }
}

#[test]
fn never_plans_what_would_destroy_the_guest() {
    for privileged in [false, true] {
        for seed in 0..8 {
            planned(privileged, seed, 20_000, |env, call| {
                check(env, call, call.number, call.args, "top level")
            });
        }
    }
}

#[test]
fn buffers_stay_inside_the_region_and_never_overlap() {
    planned(false, 1, 50_000, |_, call| {
        let mut spans: Vec<(u64, u64)> =
            call.fills.iter().map(|fill| (fill.address, fill.address + 8 * fill.len as u64)).collect();
        spans.sort_unstable();
        for &(start, end) in &spans {
            assert!(start >= BUFFERS && end <= BUFFERS + 4 * 4096 - 64, "fill {start:#x}..{end:#x}");
        }
        assert!(spans.windows(2).all(|pair| pair[0].1 <= pair[1].0), "overlapping fills {spans:x?}");
        if let Some(at) = call.close_port_at {
            assert!(in_buffers(at), "port write-back outside the buffers");
        }
    });
}

#[test]
fn the_same_seed_plans_the_same_calls() {
    let env = env(false);
    let mut first = Planner::new(&env, 99);
    let mut second = Planner::new(&env, 99);
    for _ in 0..1000 {
        let a = first.next_call().clone();
        let b = second.next_call();
        assert_eq!((a.number, a.args, &a.words), (b.number, b.args, &b.words));
    }
    let mut other = Planner::new(&env, 100);
    let differs = (0..100).any(|_| {
        let a = first.next_call().clone();
        a.args != other.next_call().args
    });
    assert!(differs, "two seeds planned identical calls");
}

#[test]
fn covers_every_hypercall_and_invalid_numbers() {
    let mut seen = BTreeSet::new();
    planned(false, 5, 100_000, |_, call| {
        seen.insert(call.number);
    });
    for number in [0u64, 1, 2, 10, 12, 13, 14, 17, 20, 24, 26, 29, 32, 36, 43, 60, 127, 1 << 32 | 17] {
        assert!(seen.contains(&number), "hypercall {number} never planned");
    }
    assert!(!seen.contains(&u64::from(__HYPERVISOR_iret)));
}

#[test]
fn state_changing_calls_ask_for_repairs() {
    planned(false, 3, 20_000, |_, call| {
        let wanted = match call.number as u32 {
            __HYPERVISOR_set_trap_table => Repairs::TRAPS,
            __HYPERVISOR_set_callbacks => Repairs::CALLBACKS,
            __HYPERVISOR_fpu_taskswitch => Repairs::FPU,
            __HYPERVISOR_set_segment_base => Repairs::SEGMENT_BASES,
            __HYPERVISOR_set_debugreg => Repairs::DEBUG_REGISTERS,
            __HYPERVISOR_nmi_op => Repairs::NMI_CALLBACK,
            _ => return,
        };
        assert!(call.repairs.has(wanted), "hypercall {} without its repair", call.number);
    });
}

#[test]
fn port_allocating_calls_are_closed_again() {
    let mut allocating = 0;
    planned(false, 11, 20_000, |_, call| {
        if call.number == u64::from(__HYPERVISOR_event_channel_op)
            && call.args[0] as u32 == EVTCHNOP_alloc_unbound
            && in_buffers(call.args[1])
        {
            allocating += 1;
            assert_eq!(call.close_port_at, Some(call.args[1] + 4));
        }
    });
    assert!(allocating > 10);
}

#[test]
fn parses_seed_and_count() {
    assert_eq!(parse_spec("1,1000000"), Ok(Spec { seed: 1, count: 1_000_000, trace: false }));
    assert_eq!(parse_spec("0x10, 5"), Ok(Spec { seed: 16, count: 5, trace: false }));
    assert_eq!(parse_spec("2,3,trace"), Ok(Spec { seed: 2, count: 3, trace: true }));
    assert!(parse_spec("7").is_err());
    assert!(parse_spec("x,5").is_err());
    assert!(parse_spec("1,").is_err());
    assert!(parse_spec("1,2,loud").is_err());
}
