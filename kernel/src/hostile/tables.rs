//! Page-table structure attacks: pinning, base pointers, superpages,
//! linear (self-referencing) tables, the hypervisor's L4 slots, and
//! `MMUEXT_CLEAR_PAGE`/`COPY_PAGE` aimed at tables. Scratch tables are
//! built from fresh frames ([`TableFrame`]) so nothing the kernel runs on
//! changes if the hypervisor wrongly accepts.
//!
//! Xen's answers: `_get_page_type()` refuses a type change while the frame
//! has other users, so pinning or linking a frame that is mapped writable
//! or in use at another level is `-EINVAL` (mm.c:3570, 1142); validation
//! failures propagate the entry's error (`alloc_l1_table` returns
//! `get_page_from_l1e`'s `-EBUSY`); `PSE` is in `base_disallow_mask`
//! (mm.c:295), so superpages are `-EINVAL` (XSA-148); an L4 slot of the
//! hypervisor is `-EINVAL` (mm.c:2387); linear entries must be read-only,
//! and a changed `RW` bit is never fast-pathed (`FASTPATH_PDE_FLAG_WHITELIST`,
//! mm.c:2139: XSA-182); a table used as a linear target may not hold linear
//! entries itself (`inc_linear_entries`, XSA-240).

use hypercalls::abi::errno::*;
use hypercalls::abi::xen::*;
use kernel::hostile_plan::expect::OK;
use kernel::hostile_plan::{Attack, Expect};
use kernel::selftest::Outcome;

use super::env::{Env, TableFrame, PTE_PRESENT, PTE_PSE, PTE_RW, PTE_USER, VICTIM};
use super::{expect, hc};
use crate::arch::memory;
use crate::mm::frames;
use crate::platform::pv::PV;

pub const ATTACKS: &[Attack<Env>] = &[
    Attack { name: "pin-writable-mapped-frame", xsa: None, run: pin_writable_frame },
    Attack { name: "link-writable-mapped-frame-as-l1", xsa: None, run: link_writable_frame },
    Attack { name: "pin-l4-as-l3", xsa: None, run: pin_l4_as_l3 },
    Attack { name: "pin-l1-as-l2", xsa: None, run: pin_l1_as_l2 },
    Attack { name: "pin-twice", xsa: None, run: pin_twice },
    Attack { name: "unpin-not-pinned", xsa: None, run: unpin_not_pinned },
    Attack { name: "unpin-current-base", xsa: None, run: unpin_current_base },
    Attack { name: "map-unpinned-base-writable", xsa: None, run: map_unpinned_base },
    Attack { name: "new-baseptr-to-l1", xsa: None, run: new_baseptr_l1 },
    Attack { name: "new-baseptr-to-writable-frame", xsa: None, run: new_baseptr_writable },
    Attack { name: "new-baseptr-to-hypervisor-table", xsa: None, run: new_baseptr_hypervisor },
    Attack { name: "new-user-baseptr-to-l1", xsa: None, run: new_user_baseptr_l1 },
    Attack { name: "l2-superpage-entry", xsa: Some(148), run: l2_superpage },
    Attack { name: "pin-l2-holding-superpage", xsa: Some(148), run: pin_l2_superpage },
    Attack { name: "l3-superpage-entry", xsa: Some(148), run: l3_superpage },
    Attack { name: "l4-hypervisor-slot-256", xsa: None, run: l4_slot_256 },
    Attack { name: "l4-hypervisor-slot-262", xsa: None, run: l4_slot_262 },
    Attack { name: "l4-hypervisor-slot-271", xsa: None, run: l4_slot_271 },
    Attack { name: "pin-l4-smuggling-hypervisor-slot", xsa: None, run: pin_l4_smuggling },
    Attack { name: "linear-l4-readonly-allowed", xsa: None, run: linear_l4_readonly },
    Attack { name: "linear-l4-flip-writable", xsa: Some(182), run: linear_l4_flip },
    Attack { name: "linear-l2-flip-writable", xsa: Some(182), run: linear_l2_flip },
    Attack { name: "linear-l4-writable", xsa: Some(182), run: linear_l4_writable },
    Attack { name: "linear-table-nesting", xsa: Some(240), run: linear_nesting },
    Attack { name: "l4-entry-to-l1-table", xsa: None, run: l4_entry_to_l1 },
    Attack { name: "l3-entry-to-l4-table", xsa: None, run: l3_entry_to_l4 },
    Attack { name: "pin-l1-mapping-hypervisor-frame", xsa: None, run: pin_l1_hypervisor },
    Attack { name: "pin-l1-mapping-itself-writable", xsa: None, run: pin_l1_itself },
    Attack { name: "pin-shared-info-frame", xsa: None, run: pin_shared_info },
    Attack { name: "pin-grant-table-frame", xsa: None, run: pin_grant_frame },
    Attack { name: "clear-page-of-page-table", xsa: None, run: clear_page_table },
    Attack { name: "clear-page-of-hypervisor-frame", xsa: None, run: clear_hypervisor_frame },
    Attack { name: "copy-page-into-page-table", xsa: None, run: copy_into_table },
    Attack { name: "copy-page-from-hypervisor-frame", xsa: None, run: copy_from_hypervisor },
    Attack { name: "set-ldt-at-hypervisor-address", xsa: None, run: set_ldt_hypervisor },
    Attack { name: "set-ldt-too-many-entries", xsa: None, run: set_ldt_too_many },
    Attack { name: "mmuext-mark-super", xsa: None, run: mark_super },
    Attack { name: "mmuext-flush-cache", xsa: None, run: flush_cache },
    Attack { name: "mmuext-flush-cache-global", xsa: None, run: flush_cache_global },
    Attack { name: "mmuext-unknown-command", xsa: None, run: unknown_command },
];

const LINK: u64 = PTE_PRESENT | PTE_RW | PTE_USER;
const EINVAL: Expect = Expect::Errno(XEN_EINVAL);

fn entry(mfn: u64, flags: u64) -> u64 {
    (mfn << 12) | flags
}

/// A fresh frame, still mapped writable in the direct map: (phys, mfn).
fn writable_frame() -> Option<(u64, u64)> {
    let phys = frames::allocate_zeroed()?;
    Some((phys, PV.mmu.mfn(phys / 4096)?))
}

fn no_frame() -> Outcome {
    Outcome::Fail("out of scratch frames".into())
}

/// Pins `table` at `level`, runs `f` on it, unpins and releases it.
fn with_pinned(level: u8, table: TableFrame, f: impl FnOnce(&TableFrame) -> Outcome) -> Outcome {
    let pinned = hc::pin(level, table.mfn);
    if pinned != 0 {
        table.release();
        return Outcome::Fail(alloc::format!(
            "setup: pinning an empty L{level} failed with {}",
            kernel::hostile_plan::expect::describe(pinned)
        ));
    }
    let outcome = f(&table);
    hc::unpin(table.mfn);
    table.release();
    outcome
}

fn pin_writable_frame(_: &mut Env) -> Outcome {
    let Some((phys, mfn)) = writable_frame() else { return no_frame() };
    let rc = hc::pin(1, mfn);
    if rc == 0 {
        hc::unpin(mfn);
    }
    frames::free(phys);
    expect(EINVAL, rc)
}

fn link_writable_frame(env: &mut Env) -> Outcome {
    let Some((phys, mfn)) = writable_frame() else { return no_frame() };
    let Some(index) = env.l2().free_index() else { return Outcome::Skip("no free L2 slot") };
    let rc = hc::mmu_update(env.l2().slot_at(index), entry(mfn, LINK));
    if rc == 0 {
        hc::mmu_update(env.l2().slot_at(index), 0);
    }
    frames::free(phys);
    expect(EINVAL, rc)
}

fn pin_and_undo(level: u8, mfn: u64) -> i64 {
    let rc = hc::pin(level, mfn);
    if rc == 0 {
        hc::unpin(mfn);
    }
    rc
}

fn pin_l4_as_l3(env: &mut Env) -> Outcome {
    expect(EINVAL, pin_and_undo(3, env.l4().mfn))
}

fn pin_l1_as_l2(env: &mut Env) -> Outcome {
    expect(EINVAL, pin_and_undo(2, env.l1().mfn))
}

/// Already pinned: "mfn already pinned", `-EINVAL` (mm.c:3589).
fn pin_twice(env: &mut Env) -> Outcome {
    let first = hc::pin(1, env.l1().mfn);
    let second = hc::pin(1, env.l1().mfn);
    if first == 0 {
        hc::unpin(env.l1().mfn);
    }
    if first != 0 {
        return Outcome::Fail(alloc::format!("setup: the first pin failed ({first})"));
    }
    expect(EINVAL, second)
}

/// "mfn not pinned": `-EINVAL` (mm.c:3643).
fn unpin_not_pinned(env: &mut Env) -> Outcome {
    expect(EINVAL, hc::unpin(env.l1().mfn))
}

/// Allowed: the base pointer keeps its own type reference, so the table
/// stays a validated L4 while the guest runs on it (mm.c:3625).
fn unpin_current_base(env: &mut Env) -> Outcome {
    let unpinned = hc::unpin(env.l4().mfn);
    let still_running = crate::arch::traps::probe_read(VICTIM).is_some();
    let repinned = hc::pin(4, env.l4().mfn);
    if let Outcome::Fail(reason) = expect(OK, unpinned) {
        return Outcome::Fail(reason);
    }
    if !still_running {
        return Outcome::Fail("the guest lost its mappings after unpinning its base".into());
    }
    expect(OK, repinned)
}

fn map_unpinned_base(env: &mut Env) -> Outcome {
    if hc::unpin(env.l4().mfn) != 0 {
        return Outcome::Fail("setup: unpinning the base failed".into());
    }
    let rc = hc::mmu_update(env.l1().slot(), entry(env.l4().mfn, PTE_PRESENT | PTE_RW));
    env.restore_victim();
    hc::pin(4, env.l4().mfn);
    expect(Expect::Errno(XEN_EBUSY), rc)
}

fn new_baseptr(mfn: u64) -> i64 {
    hc::mmuext(MMUEXT_NEW_BASEPTR, mfn, 0)
}

fn new_baseptr_l1(env: &mut Env) -> Outcome {
    expect(EINVAL, new_baseptr(env.l1().mfn))
}

fn new_baseptr_writable(_: &mut Env) -> Outcome {
    let Some((phys, mfn)) = writable_frame() else { return no_frame() };
    let rc = new_baseptr(mfn);
    frames::free(phys);
    expect(EINVAL, rc)
}

fn new_baseptr_hypervisor(env: &mut Env) -> Outcome {
    expect(EINVAL, new_baseptr(env.hypervisor_tables[1]))
}

fn new_user_baseptr_l1(env: &mut Env) -> Outcome {
    let rc = hc::mmuext(MMUEXT_NEW_USER_BASEPTR, env.l1().mfn, 0);
    if rc == 0 {
        hc::mmuext(MMUEXT_NEW_USER_BASEPTR, 0, 0);
    }
    expect(EINVAL, rc)
}

/// Writes `value` into a free slot of the live table `step`, undoes it.
fn poke_free_slot(step: super::env::Step, value: u64) -> Result<i64, Outcome> {
    let index = step.free_index().ok_or(Outcome::Skip("no free slot in the table"))?;
    let rc = hc::mmu_update(step.slot_at(index), value);
    if rc == 0 {
        hc::mmu_update(step.slot_at(index), 0);
    }
    Ok(rc)
}

/// A 2 MiB page over machine address 0: the hypervisor's own memory.
fn l2_superpage(env: &mut Env) -> Outcome {
    match poke_free_slot(env.l2(), PTE_PRESENT | PTE_RW | PTE_PSE) {
        Ok(rc) => expect(EINVAL, rc),
        Err(outcome) => outcome,
    }
}

fn pin_l2_superpage(_: &mut Env) -> Outcome {
    let Some(table) = TableFrame::new(&[(0, PTE_PRESENT | PTE_RW | PTE_PSE)]) else { return no_frame() };
    let rc = hc::pin(2, table.mfn);
    if rc == 0 {
        hc::unpin(table.mfn);
    }
    table.release();
    expect(EINVAL, rc)
}

fn l3_superpage(env: &mut Env) -> Outcome {
    match poke_free_slot(env.l3(), PTE_PRESENT | PTE_RW | PTE_PSE) {
        Ok(rc) => expect(EINVAL, rc),
        Err(outcome) => outcome,
    }
}

fn l4_slot(env: &Env, index: usize) -> Outcome {
    let old = memory::read_u64(env.l4().table + 8 * index as u64);
    let rc = hc::mmu_update(env.l4().slot_at(index), entry(env.l3().mfn, LINK));
    if rc == 0 {
        hc::mmu_update(env.l4().slot_at(index), old);
    }
    expect(EINVAL, rc)
}

fn l4_slot_256(env: &mut Env) -> Outcome {
    l4_slot(env, 256)
}

fn l4_slot_262(env: &mut Env) -> Outcome {
    l4_slot(env, 262)
}

fn l4_slot_271(env: &mut Env) -> Outcome {
    l4_slot(env, 271)
}

/// An L4 arriving with its own entry in a hypervisor slot: validation
/// ignores the guest's value and installs the hypervisor's (Xen's
/// `init_xen_l4_slots`), so the pin succeeds and the entry is replaced.
fn pin_l4_smuggling(env: &mut Env) -> Outcome {
    let bogus = entry(env.l3().mfn, LINK);
    let Some(table) = TableFrame::new(&[(261, bogus)]) else { return no_frame() };
    let wanted = memory::read_u64(env.l4().table + 8 * 261);
    with_pinned_result(4, table, |table| {
        let seen = table.read(261);
        if seen == bogus || seen != wanted {
            return Outcome::Fail(alloc::format!("slot 261 holds {seen:#x} after pinning, not {wanted:#x}"));
        }
        Outcome::Pass
    })
}

/// As [`with_pinned`], but the pin's own answer is the attack's (0 expected).
fn with_pinned_result(level: u8, table: TableFrame, f: impl FnOnce(&TableFrame) -> Outcome) -> Outcome {
    let pinned = hc::pin(level, table.mfn);
    if pinned != 0 {
        table.release();
        return expect(OK, pinned);
    }
    let outcome = f(&table);
    hc::unpin(table.mfn);
    table.release();
    outcome
}

/// Xen allows a read-only self-reference (a linear page table, used by
/// guests to read their own tables): `get_l4_linear_pagetable`.
fn linear_l4_readonly(_: &mut Env) -> Outcome {
    let Some(table) = TableFrame::new(&[]) else { return no_frame() };
    with_pinned(4, table, |table| {
        let rc = hc::mmu_update(table.slot(0), entry(table.mfn, PTE_PRESENT));
        hc::mmu_update(table.slot(0), 0);
        expect(OK, rc)
    })
}

/// XSA-182: flipping `RW` on a read-only linear entry took the fast path.
fn linear_l4_flip(_: &mut Env) -> Outcome {
    let Some(table) = TableFrame::new(&[]) else { return no_frame() };
    with_pinned(4, table, flip_linear)
}

fn flip_linear(table: &TableFrame) -> Outcome {
    let readonly = hc::mmu_update(table.slot(0), entry(table.mfn, PTE_PRESENT));
    if readonly != 0 {
        return Outcome::Fail(alloc::format!("setup: the read-only linear entry was refused ({readonly})"));
    }
    let writable = hc::mmu_update(table.slot(0), entry(table.mfn, PTE_PRESENT | PTE_RW | PTE_USER));
    hc::mmu_update(table.slot(0), 0);
    expect(EINVAL, writable)
}

fn linear_l2_flip(_: &mut Env) -> Outcome {
    let Some(table) = TableFrame::new(&[]) else { return no_frame() };
    with_pinned(2, table, flip_linear)
}

fn linear_l4_writable(_: &mut Env) -> Outcome {
    let Some(table) = TableFrame::new(&[]) else { return no_frame() };
    with_pinned(4, table, |table| {
        let rc = hc::mmu_update(table.slot(1), entry(table.mfn, LINK));
        hc::mmu_update(table.slot(1), 0);
        expect(EINVAL, rc)
    })
}

/// XSA-240: A maps B linearly; B may then not map anything linearly.
fn linear_nesting(_: &mut Env) -> Outcome {
    let (Some(a), Some(b)) = (TableFrame::new(&[]), TableFrame::new(&[])) else { return no_frame() };
    let b_mfn = b.mfn;
    with_pinned(4, a, |a| {
        with_pinned(4, b, |b| {
            let outer = hc::mmu_update(a.slot(1), entry(b_mfn, PTE_PRESENT));
            let inner = hc::mmu_update(b.slot(1), entry(a.mfn, PTE_PRESENT));
            hc::mmu_update(b.slot(1), 0);
            hc::mmu_update(a.slot(1), 0);
            if outer != 0 {
                return Outcome::Fail(alloc::format!("setup: A -> B (read-only) was refused ({outer})"));
            }
            expect(EINVAL, inner)
        })
    })
}

fn l4_entry_to_l1(env: &mut Env) -> Outcome {
    let Some(table) = TableFrame::new(&[]) else { return no_frame() };
    let l1 = env.l1().mfn;
    with_pinned(4, table, |table| {
        let rc = hc::mmu_update(table.slot(0), entry(l1, LINK));
        hc::mmu_update(table.slot(0), 0);
        expect(EINVAL, rc)
    })
}

fn l3_entry_to_l4(env: &mut Env) -> Outcome {
    let Some(table) = TableFrame::new(&[]) else { return no_frame() };
    let l4 = env.l4().mfn;
    with_pinned(3, table, |table| {
        let rc = hc::mmu_update(table.slot(0), entry(l4, PTE_PRESENT));
        hc::mmu_update(table.slot(0), 0);
        expect(EINVAL, rc)
    })
}

fn pin_l1_holding(value: u64) -> Result<i64, Outcome> {
    let table = TableFrame::new(&[(0, value)]).ok_or_else(no_frame)?;
    let rc = hc::pin(1, table.mfn);
    if rc == 0 {
        hc::unpin(table.mfn);
    }
    table.release();
    Ok(rc)
}

fn pin_l1_hypervisor(env: &mut Env) -> Outcome {
    match pin_l1_holding(entry(env.hypervisor_tables[2], PTE_PRESENT)) {
        Ok(rc) => expect(Expect::Errno(XEN_EBUSY), rc),
        Err(outcome) => outcome,
    }
}

/// A would-be L1 mapping itself writable: the writable type it needs is
/// the one the L1 type excludes, `-EBUSY`.
fn pin_l1_itself(_: &mut Env) -> Outcome {
    let Some(table) = TableFrame::build(|mfn| [(0, entry(mfn, PTE_PRESENT | PTE_RW))]) else {
        return no_frame();
    };
    let rc = hc::pin(1, table.mfn);
    if rc == 0 {
        hc::unpin(table.mfn);
    }
    table.release();
    expect(Expect::Errno(XEN_EBUSY), rc)
}

/// Frames the hypervisor shares with the guest read-write (`shared_info`,
/// the grant table) keep a writable type for good
/// (`share_xen_page_with_guest`): never a page table, `-EINVAL`.
fn pin_shared_info(_: &mut Env) -> Outcome {
    let Some(start) = crate::platform::pv::start::start_info() else {
        return Outcome::Fail("no start_info".into());
    };
    expect(EINVAL, pin_and_undo(1, start.shared_info >> 12))
}

fn pin_grant_frame(_: &mut Env) -> Outcome {
    let mut frames = [0u64; 1];
    let mut op = hypercalls::abi::grant_table::GnttabSetupTable {
        dom: DOMID_SELF,
        nr_frames: 1,
        status: 0,
        frame_list: hc::addr_mut(&mut frames),
    };
    let rc = hc::call(
        __HYPERVISOR_grant_table_op,
        [hypercalls::abi::grant_table::GNTTABOP_setup_table.into(), hc::addr_mut(&mut op), 1, 0, 0],
    );
    if rc != 0 || op.status != 0 || frames[0] == 0 {
        return Outcome::Fail(alloc::format!(
            "setup: GNTTABOP_setup_table answered {rc}, status {}",
            op.status
        ));
    }
    expect(EINVAL, pin_and_undo(1, frames[0]))
}

/// Clearing or overwriting a page table as data: the writable type is
/// refused, `-EINVAL` (mm.c:3866, 3914).
fn clear_page_table(env: &mut Env) -> Outcome {
    let mapped = entry(PV.mmu.mfn(env.victim_frame / 4096).unwrap_or(0), PTE_PRESENT);
    let Some(table) = TableFrame::new(&[(0, mapped)]) else { return no_frame() };
    with_pinned(1, table, |table| expect(EINVAL, hc::mmuext(MMUEXT_CLEAR_PAGE, table.mfn, 0)))
}

fn clear_hypervisor_frame(env: &mut Env) -> Outcome {
    expect(EINVAL, hc::mmuext(MMUEXT_CLEAR_PAGE, env.hypervisor_tables[0], 0))
}

fn copy_into_table(env: &mut Env) -> Outcome {
    let source = PV.mmu.mfn(env.victim_frame / 4096).unwrap_or(0);
    let Some(table) = TableFrame::new(&[]) else { return no_frame() };
    with_pinned(1, table, |table| expect(EINVAL, hc::mmuext(MMUEXT_COPY_PAGE, table.mfn, source)))
}

fn copy_from_hypervisor(env: &mut Env) -> Outcome {
    let Some((phys, mfn)) = writable_frame() else { return no_frame() };
    let rc = hc::mmuext(MMUEXT_COPY_PAGE, mfn, env.hypervisor_tables[1]);
    let leaked = memory::read_u64(phys) != 0;
    frames::free(phys);
    if leaked {
        return Outcome::Fail("hypervisor memory was copied into the guest's frame".into());
    }
    expect(EINVAL, rc)
}

/// `!__addr_ok(ptr)` or more than 8192 entries: `-EINVAL` (mm.c:3834).
fn set_ldt_hypervisor(_: &mut Env) -> Outcome {
    let rc = hc::mmuext(MMUEXT_SET_LDT, hc::Bad::Hypervisor.address(), 1);
    hc::mmuext(MMUEXT_SET_LDT, 0, 0);
    expect(EINVAL, rc)
}

fn set_ldt_too_many(_: &mut Env) -> Outcome {
    let rc = hc::mmuext(MMUEXT_SET_LDT, 0, 8193);
    hc::mmuext(MMUEXT_SET_LDT, 0, 0);
    expect(EINVAL, rc)
}

/// Superpage marking is gone from Xen: `-EOPNOTSUPP` (mm.c:3930).
fn mark_super(env: &mut Env) -> Outcome {
    expect(Expect::Errno(XEN_EOPNOTSUPP), hc::mmuext(MMUEXT_MARK_SUPER, env.l1().mfn, 0))
}

/// `wbinvd` only for a domain allowed to flush caches (one with I/O
/// memory: dom0): `-EACCES` otherwise (mm.c:3800).
fn flush_cache(env: &mut Env) -> Outcome {
    let expected = if env.privileged { OK } else { Expect::Errno(XEN_EACCES) };
    expect(expected, hc::mmuext(MMUEXT_FLUSH_CACHE, 0, 0))
}

/// The global flush: `-EINVAL` without that permission (mm.c:3821).
fn flush_cache_global(env: &mut Env) -> Outcome {
    let expected = if env.privileged { OK } else { EINVAL };
    expect(expected, hc::mmuext(MMUEXT_FLUSH_CACHE_GLOBAL, 0, 0))
}

/// Command 14 was never assigned: `-ENOSYS` (mm.c:3934).
fn unknown_command(_: &mut Env) -> Outcome {
    expect(Expect::Errno(XEN_ENOSYS), hc::mmuext(14, 0, 0))
}
