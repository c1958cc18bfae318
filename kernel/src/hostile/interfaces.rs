//! Grant references out of range, memory operations on memory the guest
//! does not own (XSA-212's unchecked `memory_exchange` output), counts
//! whose upper 32 bits a 32-bit parameter drops, huge counts, nested and
//! invalid multicalls, hypercall numbers beyond the table.

use hypercalls::abi::errno::*;
use hypercalls::abi::grant_table::*;
use hypercalls::abi::memory::*;
use hypercalls::abi::physdev::PHYSDEVOP_set_iopl;
use hypercalls::abi::xen::*;
use kernel::hostile_plan::expect::{describe, OK};
use kernel::hostile_plan::{Attack, Expect};
use kernel::selftest::Outcome;

use super::env::{at_edge, edge_word, Env, PTE_PRESENT};
use super::{expect, hc};
use crate::platform::pv::PV;

pub const ATTACKS: &[Attack<Env>] = &[
    Attack { name: "grant-map-ref-out-of-range", xsa: None, run: grant_map_out_of_range },
    Attack { name: "grant-copy-ref-out-of-range", xsa: None, run: grant_copy_out_of_range },
    Attack { name: "grant-unmap-bad-handle", xsa: None, run: grant_unmap_bad_handle },
    Attack { name: "grant-setup-table-too-many-frames", xsa: None, run: grant_setup_too_many },
    Attack { name: "grant-query-size-unknown-domain", xsa: None, run: grant_query_unknown },
    Attack { name: "grant-op-negative-count", xsa: None, run: grant_negative_count },
    Attack { name: "grant-op-continuation-bits", xsa: None, run: grant_continuation_bits },
    Attack { name: "grant-set-version-3", xsa: None, run: grant_set_version_3 },
    Attack { name: "memory-exchange-output-in-hypervisor", xsa: Some(212), run: exchange_output_hypervisor },
    Attack { name: "memory-exchange-size-mismatch", xsa: None, run: exchange_mismatch },
    Attack { name: "memory-decrease-hypervisor-frame", xsa: None, run: decrease_hypervisor_frame },
    Attack { name: "memory-decrease-huge-order", xsa: None, run: decrease_huge_order },
    Attack { name: "memory-decrease-unknown-domain", xsa: None, run: decrease_unknown_domain },
    Attack { name: "memory-populate-in-dom0", xsa: None, run: populate_in_dom0 },
    Attack { name: "memory-op-extent-bits-on-query", xsa: None, run: extent_bits_on_query },
    Attack { name: "memory-op-unknown-command", xsa: None, run: memory_unknown },
    Attack { name: "mmu-update-count-upper-bits", xsa: None, run: mmu_update_count_upper_bits },
    Attack { name: "mmuext-count-upper-bits", xsa: None, run: mmuext_count_upper_bits },
    Attack { name: "multicall-count-upper-bits", xsa: None, run: multicall_count_upper_bits },
    Attack { name: "mmu-update-huge-count", xsa: None, run: mmu_update_huge_count },
    Attack { name: "multicall-huge-count", xsa: None, run: multicall_huge_count },
    Attack { name: "console-io-count-upper-bits", xsa: None, run: console_count_upper_bits },
    Attack { name: "multicall-nested", xsa: None, run: multicall_nested },
    Attack { name: "multicall-invalid-op", xsa: None, run: multicall_invalid_op },
    Attack { name: "hypercall-number-upper-bits", xsa: None, run: number_upper_bits },
    Attack { name: "hypercall-number-unassigned", xsa: None, run: number_unassigned },
    Attack { name: "hypercall-number-all-ones", xsa: None, run: number_all_ones },
    Attack { name: "physdev-set-iopl-4", xsa: None, run: iopl_4 },
];

const EINVAL: Expect = Expect::Errno(XEN_EINVAL);
const UNKNOWN_DOMAIN: u16 = 0x1234;

fn grant_op<T>(command: u32, argument: &mut T, count: u64) -> i64 {
    hc::call(__HYPERVISOR_grant_table_op, [command.into(), hc::addr_mut(argument), count, 0, 0])
}

/// The call succeeds and the operation's status says why it failed.
fn expect_status(rc: i64, status: i16, wanted: i16) -> Outcome {
    if let Outcome::Fail(reason) = expect(OK, rc) {
        return Outcome::Fail(reason);
    }
    if status != wanted {
        return Outcome::Fail(alloc::format!("expected status {wanted}, got {status}"));
    }
    Outcome::Pass
}

/// A reference beyond the granting domain's table: `GNTST_bad_gntref`
/// (common/grant_table.c:1059), here against the guest's own table.
fn grant_map_out_of_range(env: &mut Env) -> Outcome {
    let mut op = GnttabMapGrantRef {
        host_addr: super::env::VICTIM,
        flags: GNTMAP_host_map | GNTMAP_readonly,
        r#ref: 0xffff_fff0,
        dom: env.own_domid,
        ..Default::default()
    };
    let rc = grant_op(GNTTABOP_map_grant_ref, &mut op, 1);
    env.restore_victim();
    expect_status(rc, op.status, GNTST_bad_gntref)
}

fn grant_copy_out_of_range(env: &mut Env) -> Outcome {
    let end = GnttabCopyPtr { u: 0xffff_fff0, domid: env.own_domid, offset: 0 };
    let mut op = GnttabCopy {
        source: end,
        dest: end,
        len: 8,
        flags: GNTCOPY_source_gref | GNTCOPY_dest_gref,
        status: 0,
    };
    expect_status(grant_op(GNTTABOP_copy, &mut op, 1), op.status, GNTST_bad_gntref)
}

/// A handle never handed out: `GNTST_bad_handle`.
fn grant_unmap_bad_handle(_: &mut Env) -> Outcome {
    let mut op =
        GnttabUnmapGrantRef { host_addr: super::env::VICTIM, handle: 0xffff_fff0, ..Default::default() };
    expect_status(grant_op(GNTTABOP_unmap_grant_ref, &mut op, 1), op.status, GNTST_bad_handle)
}

/// More frames than the table may have: `GNTST_general_error` (grant_table.c:2092).
fn grant_setup_too_many(_: &mut Env) -> Outcome {
    let mut frames = [0u64; 4];
    let mut op = GnttabSetupTable {
        dom: DOMID_SELF,
        nr_frames: 0x10000,
        status: 0,
        frame_list: hc::addr_mut(&mut frames),
    };
    let rc = grant_op(GNTTABOP_setup_table, &mut op, 1);
    if rc == 0 && op.status == GNTST_general_error {
        return Outcome::Pass;
    }
    // A hypervisor that accepted wrote far more than four frame numbers.
    expect_status(rc, op.status, GNTST_general_error)
}

fn grant_query_unknown(_: &mut Env) -> Outcome {
    let mut op = GnttabQuerySize { dom: UNKNOWN_DOMAIN, ..Default::default() };
    expect_status(grant_op(GNTTABOP_query_size, &mut op, 1), op.status, GNTST_bad_domain)
}

/// `(int)count < 0`: `-EINVAL` (grant_table.c:3647).
fn grant_negative_count(_: &mut Env) -> Outcome {
    let mut op = GnttabQuerySize { dom: DOMID_SELF, ..Default::default() };
    expect(EINVAL, grant_op(GNTTABOP_query_size, &mut op, 0x8000_0000))
}

/// Continuation bits are for `GNTTABOP_cache_flush` only (grant_table.c:3650).
fn grant_continuation_bits(_: &mut Env) -> Outcome {
    let mut op = GnttabQuerySize { dom: DOMID_SELF, ..Default::default() };
    expect(EINVAL, grant_op(GNTTABOP_query_size | 1 << 12, &mut op, 1))
}

fn grant_set_version_3(_: &mut Env) -> Outcome {
    let mut op = [3u64];
    expect(EINVAL, grant_op(GNTTABOP_set_version, &mut op, 1))
}

fn memory_op<T>(command: u64, argument: &mut T) -> i64 {
    hc::call(__HYPERVISOR_memory_op, [command, hc::addr_mut(argument), 0, 0, 0])
}

fn reservation(list: &mut [u64], order: u32, domid: u16) -> XenMemoryReservation {
    XenMemoryReservation {
        extent_start: hc::addr_mut(list),
        nr_extents: list.len() as u64,
        extent_order: order,
        mem_flags: 0,
        domid,
    }
}

/// XSA-212: `memory_exchange` wrote its output list without checking it
/// was guest memory. Both lists are checked before any page moves
/// (common/memory.c:601): `-EFAULT`.
fn exchange_output_hypervisor(env: &mut Env) -> Outcome {
    let mut input = [PV.mmu.mfn(env.victim_frame / 4096).unwrap_or(0)];
    let mut exchange = XenMemoryExchange {
        r#in: reservation(&mut input, 0, DOMID_SELF),
        out: XenMemoryReservation {
            extent_start: hc::Bad::Hypervisor.address(),
            nr_extents: 1,
            extent_order: 0,
            mem_flags: 0,
            domid: DOMID_SELF,
        },
        nr_exchanged: 0,
    };
    expect(Expect::Errno(XEN_EFAULT), memory_op(XENMEM_exchange.into(), &mut exchange))
}

/// One page in, two out: `-EINVAL` (common/memory.c:579).
fn exchange_mismatch(env: &mut Env) -> Outcome {
    let mut input = [PV.mmu.mfn(env.victim_frame / 4096).unwrap_or(0)];
    let mut output = [0u64; 2];
    let mut exchange = XenMemoryExchange {
        r#in: reservation(&mut input, 0, DOMID_SELF),
        out: reservation(&mut output, 0, DOMID_SELF),
        nr_exchanged: 0,
    };
    expect(EINVAL, memory_op(XENMEM_exchange.into(), &mut exchange))
}

/// Giving back a frame the guest does not own releases nothing
/// (`guest_remove_page` fails, common/memory.c): 0 extents done.
fn decrease_hypervisor_frame(env: &mut Env) -> Outcome {
    let mut list = [env.hypervisor_tables[1]];
    let mut request = reservation(&mut list, 0, DOMID_SELF);
    expect(OK, memory_op(XENMEM_decrease_reservation.into(), &mut request))
}

/// Orders above `max_order()` do nothing (common/memory.c:458): 0 done.
fn decrease_huge_order(env: &mut Env) -> Outcome {
    let mut list = [PV.mmu.mfn(env.victim_frame / 4096).unwrap_or(0)];
    let mut request = reservation(&mut list, 30, DOMID_SELF);
    expect(OK, memory_op(XENMEM_decrease_reservation.into(), &mut request))
}

/// Reservation operations report progress, not errors: an unknown domain
/// is 0 extents done (common/memory.c:1419).
fn decrease_unknown_domain(env: &mut Env) -> Outcome {
    let mut list = [PV.mmu.mfn(env.victim_frame / 4096).unwrap_or(0)];
    let mut request = reservation(&mut list, 0, UNKNOWN_DOMAIN);
    expect(OK, memory_op(XENMEM_decrease_reservation.into(), &mut request))
}

/// Another domain's memory: XSM refuses a domU, still reported as 0 done
/// (common/memory.c:1435).
fn populate_in_dom0(env: &mut Env) -> Outcome {
    if env.privileged {
        return Outcome::Skip("as dom0, domain 0 is the guest itself");
    }
    let mut list = [0x10_0000u64];
    let mut request = reservation(&mut list, 0, 0);
    expect(OK, memory_op(XENMEM_populate_physmap.into(), &mut request))
}

/// A continuation on an operation that has none: `-EINVAL` (common/memory.c:1485).
fn extent_bits_on_query(_: &mut Env) -> Outcome {
    let mut unused = 0u64;
    expect(EINVAL, memory_op(u64::from(XENMEM_maximum_ram_page) | 1 << 6, &mut unused))
}

fn memory_unknown(_: &mut Env) -> Outcome {
    let mut unused = [0u64; 8];
    expect(Expect::Errno(XEN_ENOSYS), memory_op(63, &mut unused))
}

/// A victim PTE value naming a hypervisor frame (refused if ever looked at).
fn forbidden_value(env: &Env) -> u64 {
    (env.hypervisor_tables[0] << 12) | PTE_PRESENT
}

/// `unsigned int count`: the upper half is dropped, so only the first
/// request runs. The second (which would map a hypervisor frame, and be
/// refused anyway) must not even be looked at: the victim PTE is unchanged
/// and the call succeeds.
fn mmu_update_count_upper_bits(env: &mut Env) -> Outcome {
    let (slot, entry) = env.victim();
    let requests = at_edge(&[slot, entry, slot, forbidden_value(env)]);
    let rc = hc::call(__HYPERVISOR_mmu_update, [requests, 1 << 32 | 1, 0, DOMID_SELF.into(), 0]);
    env.restore_victim();
    expect(OK, rc)
}

/// The second operation would pin the victim's L1; with the count cut to
/// 1 it never runs, so unpinning afterwards fails.
fn mmuext_count_upper_bits(env: &mut Env) -> Outcome {
    let ops = at_edge(&[MMUEXT_TLB_FLUSH_LOCAL.into(), 0, 0, MMUEXT_PIN_L1_TABLE.into(), env.l1().mfn, 0]);
    let rc = hc::call(__HYPERVISOR_mmuext_op, [ops, 1 << 32 | 1, 0, DOMID_SELF.into(), 0]);
    let was_pinned = hc::unpin(env.l1().mfn) == 0;
    if was_pinned {
        return Outcome::Fail(alloc::format!("the second operation ran (returned {})", describe(rc)));
    }
    expect(OK, rc)
}

fn multicall_entry(op: u32, args: [u64; 6]) -> [u64; 8] {
    [op.into(), 0x5a5a, args[0], args[1], args[2], args[3], args[4], args[5]]
}

/// The hypervisor writes each entry's result back into `entries`.
fn multicall(entries: &mut [[u64; 8]], count: u64) -> i64 {
    hc::call(__HYPERVISOR_multicall, [hc::addr_mut(entries), count, 0, 0, 0])
}

fn multicall_count_upper_bits(_: &mut Env) -> Outcome {
    let entry = multicall_entry(__HYPERVISOR_xen_version, [0; 6]);
    let mut words = [0u64; 16];
    words[..8].copy_from_slice(&entry);
    words[8..].copy_from_slice(&entry);
    let list = at_edge(&words);
    let rc = hc::call(__HYPERVISOR_multicall, [list, 1 << 32 | 1, 0, 0, 0]);
    let second = edge_word(16, 9);
    if second != 0x5a5a {
        return Outcome::Fail(alloc::format!("the second entry ran (result {second:#x})"));
    }
    expect(OK, rc)
}

/// `count` requests from a page followed by unmapped space: the first
/// runs, the second faults (`-EFAULT`, mm.c:4061) and the success count says 1.
fn mmu_update_huge_count(env: &mut Env) -> Outcome {
    let (slot, entry) = env.victim();
    let requests = at_edge(&[slot, entry]);
    let mut done = [0u32; 2];
    let rc = hc::call(
        __HYPERVISOR_mmu_update,
        [requests, 0x7fff_ffff, hc::addr_mut(&mut done), DOMID_SELF.into(), 0],
    );
    env.restore_victim();
    if rc == -i64::from(XEN_EFAULT) && done[0] != 1 {
        return Outcome::Fail(alloc::format!("expected 1 request done, got {}", done[0]));
    }
    expect(Expect::Errno(XEN_EFAULT), rc)
}

fn multicall_huge_count(_: &mut Env) -> Outcome {
    let list = at_edge(&multicall_entry(__HYPERVISOR_xen_version, [0; 6]));
    let rc = hc::call(__HYPERVISOR_multicall, [list, 0xffff_ffff, 0, 0, 0]);
    if edge_word(8, 1) == 0x5a5a {
        return Outcome::Fail("the first entry did not run".into());
    }
    expect(Expect::Errno(XEN_EFAULT), rc)
}

/// `unsigned int count`: the upper half is dropped and 44 bytes are written.
fn console_count_upper_bits(_: &mut Env) -> Outcome {
    let text = b"hostile: a console write with a 64-bit count\n";
    let count = 1 << 32 | text.len() as u64;
    expect(OK, hc::call(__HYPERVISOR_console_io, [CONSOLEIO_write.into(), count, hc::addr(text), 0, 0]))
}

/// A multicall inside a multicall: the inner one fails with `-EINVAL`
/// ("Multicall reentry is disallowed", common/multicall.c:47), the outer
/// one completes.
fn multicall_nested(_: &mut Env) -> Outcome {
    let mut inner = [multicall_entry(__HYPERVISOR_xen_version, [0; 6])];
    let mut entries = [multicall_entry(__HYPERVISOR_multicall, [hc::addr_mut(&mut inner), 1, 0, 0, 0, 0])];
    let rc = multicall(&mut entries, 1);
    if rc == 0 && entries[0][1] as i64 != -i64::from(XEN_EINVAL) {
        return Outcome::Fail(alloc::format!(
            "expected the nested entry to fail with -EINVAL, got {}",
            describe(entries[0][1] as i64)
        ));
    }
    expect(OK, rc)
}

fn multicall_invalid_op(_: &mut Env) -> Outcome {
    let mut entries = [multicall_entry(0, [0; 6])];
    entries[0][0] = 0xffff_ffff_0000_0011;
    let rc = multicall(&mut entries, 1);
    if rc == 0 && entries[0][1] as i64 != -i64::from(XEN_ENOSYS) {
        return Outcome::Fail(alloc::format!(
            "expected the entry to fail with -ENOSYS, got {}",
            describe(entries[0][1] as i64)
        ));
    }
    expect(OK, rc)
}

/// The whole of `%rax` is the number (pv/hypercall.c:49): 2^32 + 17 is not
/// `xen_version`.
fn number_upper_bits(_: &mut Env) -> Outcome {
    expect(Expect::Errno(XEN_ENOSYS), crate::arch::raw_hypercall::hypercall(1 << 32 | 17, [0; 5]))
}

fn number_unassigned(_: &mut Env) -> Outcome {
    expect(Expect::Errno(XEN_ENOSYS), hc::call(43, [0; 5]))
}

fn number_all_ones(_: &mut Env) -> Outcome {
    expect(Expect::Errno(XEN_ENOSYS), crate::arch::raw_hypercall::hypercall(u64::MAX, [0; 5]))
}

fn iopl_4(_: &mut Env) -> Outcome {
    let iopl = [4u32];
    expect(EINVAL, hc::call(__HYPERVISOR_physdev_op, [PHYSDEVOP_set_iopl.into(), hc::addr(&iopl), 0, 0, 0]))
}
