//! Mapping attacks: PTEs naming frames the guest must never map, or must
//! never map writable. Each rewrites the victim PTE (a scratch page's) and
//! puts it back afterwards, in case the hypervisor accepted.
//!
//! Xen's answers come from `get_page_from_l1e()` (xen/arch/x86/mm.c): a
//! frame owned by someone else (the hypervisor, nobody) is `-EBUSY`
//! (`could_not_pin`, mm.c:1046), a writable mapping of a frame whose type
//! is not writable is `-EBUSY` too (mm.c:1014), I/O memory without
//! permission is `-EPERM` (mm.c:904) and `INVALID_MFN` is `-EINVAL` (mm.c:906).

use hypercalls::abi::errno::*;
use hypercalls::abi::memory::XENMEM_machphys_mfn_list;
use hypercalls::abi::xen::*;
use kernel::hostile_plan::expect::OK;
use kernel::hostile_plan::{Attack, Expect};
use kernel::selftest::Outcome;

use super::env::{Env, PTE_GNTTAB, PTE_PCD, PTE_PRESENT, PTE_PWT, PTE_RW, VICTIM};
use super::{expect, hc};
use crate::arch::traps;

pub const ATTACKS: &[Attack<Env>] = &[
    Attack { name: "map-hypervisor-m2p-table", xsa: None, run: map_m2p_table },
    Attack { name: "map-hypervisor-image-table-writable", xsa: None, run: map_image_table },
    Attack { name: "map-hypervisor-directmap-table-writable", xsa: None, run: map_directmap_table },
    Attack { name: "map-m2p-frame-writable", xsa: None, run: map_m2p_frame },
    Attack { name: "map-frame-owned-by-nobody", xsa: None, run: map_unowned_frame },
    Attack { name: "map-local-apic-mmio", xsa: None, run: map_lapic },
    Attack { name: "map-legacy-vga-mmio", xsa: None, run: map_vga },
    Attack { name: "map-invalid-mfn", xsa: None, run: map_invalid_mfn },
    Attack { name: "map-own-l4-writable", xsa: None, run: map_own_l4_writable },
    Attack { name: "map-own-l1-writable", xsa: None, run: map_own_l1_writable },
    Attack { name: "map-own-l2-writable", xsa: None, run: map_own_l2_writable },
    Attack { name: "map-own-page-table-readonly-allowed", xsa: None, run: map_own_l4_readonly },
    Attack { name: "map-pte-available-bit-62", xsa: None, run: map_available_bit_62 },
    Attack { name: "map-uncached-own-frame", xsa: None, run: map_cache_attributes },
    Attack { name: "uvm-map-hypervisor-frame", xsa: None, run: uvm_hypervisor_frame },
    Attack { name: "uvm-at-hypervisor-address", xsa: None, run: uvm_hypervisor_va },
    Attack { name: "uvm-at-noncanonical-address", xsa: None, run: uvm_noncanonical_va },
    Attack { name: "uvm-otherdomain-unknown-domain", xsa: None, run: uvm_otherdomain_unknown },
    Attack { name: "uvm-otherdomain-own-id", xsa: None, run: uvm_otherdomain_own_id },
    Attack { name: "uvm-otherdomain-domid-self", xsa: None, run: uvm_otherdomain_self },
    Attack { name: "mmu-update-foreigndom-own-id", xsa: None, run: foreigndom_own_id },
    Attack { name: "mmu-update-foreigndom-unknown", xsa: None, run: foreigndom_unknown },
    Attack { name: "mmu-update-foreigndom-dom0", xsa: None, run: foreigndom_dom0 },
    Attack { name: "mmu-update-command-bits-4-7", xsa: None, run: command_bits },
    Attack { name: "mmu-update-no-translate-command", xsa: None, run: no_translate },
    Attack { name: "machphys-update-foreign-frame", xsa: None, run: machphys_foreign },
];

/// Writes `entry` into the victim PTE, restores it, returns the answer.
fn map_victim(env: &Env, entry: u64) -> i64 {
    let rc = hc::mmu_update(env.l1().slot(), entry);
    env.restore_victim();
    rc
}

fn frame_entry(mfn: u64, writable: bool) -> u64 {
    (mfn << 12) | PTE_PRESENT | if writable { PTE_RW } else { 0 }
}

fn map_m2p_table(env: &mut Env) -> Outcome {
    expect(Expect::Errno(XEN_EBUSY), map_victim(env, frame_entry(env.hypervisor_tables[0], false)))
}

fn map_image_table(env: &mut Env) -> Outcome {
    expect(Expect::Errno(XEN_EBUSY), map_victim(env, frame_entry(env.hypervisor_tables[1], true)))
}

fn map_directmap_table(env: &mut Env) -> Outcome {
    expect(Expect::Errno(XEN_EBUSY), map_victim(env, frame_entry(env.hypervisor_tables[2], true)))
}

/// The M2P's own frames, which Xen lists with `XENMEM_machphys_mfn_list`
/// (xen/arch/x86/x86_64/mm.c, `subarch_memory_op`) for any PV guest.
fn map_m2p_frame(env: &mut Env) -> Outcome {
    let mut list = [0u64; 4];
    let mut request = [4u64, hc::addr_mut(&mut list), 0];
    let rc = hc::call(
        __HYPERVISOR_memory_op,
        [XENMEM_machphys_mfn_list.into(), hc::addr_mut(&mut request), 0, 0, 0],
    );
    if rc != 0 || request[2] as u32 == 0 {
        return Outcome::Fail(alloc::format!(
            "no M2P frame to attack: XENMEM_machphys_mfn_list answered {} with {} extents (Xen lists them)",
            kernel::hostile_plan::expect::describe(rc),
            request[2] as u32
        ));
    }
    expect(Expect::Errno(XEN_EBUSY), map_victim(env, frame_entry(list[0], true)))
}

/// A frame just below the guest's lowest (RAM, given the allocators of
/// both Xen and the bundled hypervisor) that is not the guest's.
fn map_unowned_frame(env: &mut Env) -> Outcome {
    let (high, low) = env.mfn_range;
    let owned = |mfn: u64| {
        traps::probe_read(MACH2PHYS_VIRT_START + 8 * mfn)
            .and_then(|pfn| crate::platform::pv::PV.mmu.mfn(pfn))
            .is_some_and(|back| back == mfn)
    };
    let below = (1..64).map(|step| low.saturating_sub(step));
    let Some(mfn) = below.chain((1..64).map(|step| high + step)).find(|&mfn| mfn > 0x100 && !owned(mfn))
    else {
        return Outcome::Skip("every frame next to the guest's is the guest's");
    };
    expect(Expect::Errno(XEN_EBUSY), map_victim(env, frame_entry(mfn, false)))
}

/// The local APIC page: I/O memory no domain is given, dom0 included
/// (Xen denies it in `dom0_setup_permissions`).
fn map_lapic(env: &mut Env) -> Outcome {
    expect(Expect::Errno(XEN_EPERM), map_victim(env, frame_entry(0xfee00, false)))
}

/// The legacy VGA window: I/O memory (`dom_io`). A domU may not map it
/// (mm.c:904); the hardware domain has I/O access to it and may.
fn map_vga(env: &mut Env) -> Outcome {
    let expected = if env.privileged { OK } else { Expect::Errno(XEN_EPERM) };
    expect(expected, map_victim(env, frame_entry(0xa0, false)))
}

/// Xen's `INVALID_MFN` (all 40 frame bits set) is `-EINVAL` (mm.c:906).
fn map_invalid_mfn(env: &mut Env) -> Outcome {
    expect(Expect::Errno(XEN_EINVAL), map_victim(env, frame_entry(0xff_ffff_ffff, false)))
}

fn map_own_l4_writable(env: &mut Env) -> Outcome {
    expect(Expect::Errno(XEN_EBUSY), map_victim(env, frame_entry(env.l4().mfn, true)))
}

fn map_own_l1_writable(env: &mut Env) -> Outcome {
    expect(Expect::Errno(XEN_EBUSY), map_victim(env, frame_entry(env.l1().mfn, true)))
}

fn map_own_l2_writable(env: &mut Env) -> Outcome {
    expect(Expect::Errno(XEN_EBUSY), map_victim(env, frame_entry(env.l2().mfn, true)))
}

/// Read-only mappings of the guest's own tables are how PV guests read them.
fn map_own_l4_readonly(env: &mut Env) -> Outcome {
    let rc = hc::mmu_update(env.l1().slot(), frame_entry(env.l4().mfn, false));
    hc::invlpg(VICTIM);
    let seen = traps::probe_read(VICTIM + 8 * 256);
    env.restore_victim();
    let wanted = crate::arch::memory::read_u64(env.l4().table + 8 * 256);
    if rc == 0 && seen != Some(wanted) {
        return Outcome::Fail(alloc::format!("the mapping shows {seen:x?}, not the L4 ({wanted:#x})"));
    }
    expect(OK, rc)
}

/// Bit 62 is one of the guest's available bits (`_PAGE_AVAIL_HIGH`) in a
/// release build of Xen: only debug builds reserve it as `_PAGE_GNTTAB`
/// to catch implicit unmaps of grant mappings (asm/page.h:347 undefines it
/// under `NDEBUG`), and guests such as the BSDs use the spare bits.
fn map_available_bit_62(env: &mut Env) -> Outcome {
    let entry = frame_entry(crate::platform::pv::PV.mmu.mfn(env.victim_frame / 4096).unwrap_or(0), false);
    expect(OK, map_victim(env, entry | PTE_GNTTAB))
}

/// Cache attributes are refused to a domain without I/O access
/// (`l1_disallow_mask`, mm.c:183); dom0 has I/O access and may set them.
fn map_cache_attributes(env: &mut Env) -> Outcome {
    let entry = frame_entry(crate::platform::pv::PV.mmu.mfn(env.victim_frame / 4096).unwrap_or(0), true);
    let expected = if env.privileged { OK } else { Expect::Errno(XEN_EINVAL) };
    expect(expected, map_victim(env, entry | PTE_PCD | PTE_PWT))
}

fn uvm_hypervisor_frame(env: &mut Env) -> Outcome {
    let rc = hc::update_va_mapping(VICTIM, frame_entry(env.hypervisor_tables[1], false), UVMF_INVLPG);
    env.restore_victim();
    expect(Expect::Errno(XEN_EBUSY), rc)
}

/// `map_guest_l1e()` refuses addresses outside the guest's range: `-EINVAL`.
fn uvm_hypervisor_va(env: &mut Env) -> Outcome {
    let rc = hc::update_va_mapping(hc::Bad::Hypervisor.address(), env.l1().entry, UVMF_INVLPG);
    expect(Expect::Errno(XEN_EINVAL), rc)
}

fn uvm_noncanonical_va(env: &mut Env) -> Outcome {
    let rc = hc::update_va_mapping(hc::Bad::NonCanonical.address(), env.l1().entry, UVMF_INVLPG);
    expect(Expect::Errno(XEN_EINVAL), rc)
}

fn uvm_otherdomain(env: &Env, domid: u64) -> i64 {
    let (_, entry) = env.victim();
    let rc = hc::call(__HYPERVISOR_update_va_mapping_otherdomain, [VICTIM, entry, UVMF_INVLPG, domid, 0]);
    env.restore_victim();
    rc
}

/// `get_pg_owner()` (common/page_alloc.c): an unknown domain is `-ESRCH`.
fn uvm_otherdomain_unknown(env: &mut Env) -> Outcome {
    expect(Expect::Errno(XEN_ESRCH), uvm_otherdomain(env, 0x1234))
}

/// ... and so is the caller's own id ("Cannot specify itself as foreign domain").
fn uvm_otherdomain_own_id(env: &mut Env) -> Outcome {
    expect(Expect::Errno(XEN_ESRCH), uvm_otherdomain(env, env.own_domid.into()))
}

/// `DOMID_SELF` names the caller: the update is an ordinary one.
fn uvm_otherdomain_self(env: &mut Env) -> Outcome {
    expect(OK, uvm_otherdomain(env, DOMID_SELF.into()))
}

fn foreigndom(env: &Env, domid: u64) -> i64 {
    let (slot, entry) = env.victim();
    let rc = hc::mmu_update_raw(&[[slot, entry]], 1, 0, domid);
    env.restore_victim();
    rc
}

fn foreigndom_own_id(env: &mut Env) -> Outcome {
    expect(Expect::Errno(XEN_ESRCH), foreigndom(env, env.own_domid.into()))
}

fn foreigndom_unknown(env: &mut Env) -> Outcome {
    expect(Expect::Errno(XEN_ESRCH), foreigndom(env, 0x1234))
}

/// Another domain's pages: `xsm_mmu_update` refuses a domU (`-EPERM`).
fn foreigndom_dom0(env: &mut Env) -> Outcome {
    if env.privileged {
        return Outcome::Skip("as dom0, domain 0 is the guest itself (see mmu-update-foreigndom-own-id)");
    }
    expect(Expect::Errno(XEN_EPERM), foreigndom(env, 0))
}

/// The command is `ptr & 7` (mm.c:4065): 4..7 are unknown, `-ENOSYS`.
fn command_bits(env: &mut Env) -> Outcome {
    let (slot, entry) = env.victim();
    let rc = hc::mmu_update(slot | 4, entry);
    env.restore_victim();
    expect(Expect::Errno(XEN_ENOSYS), rc)
}

/// `MMU_PT_UPDATE_NO_TRANSLATE` is an ordinary update for a PV guest (mm.c:4076).
fn no_translate(env: &mut Env) -> Outcome {
    let (slot, entry) = env.victim();
    let rc = hc::mmu_update(slot | u64::from(MMU_PT_UPDATE_NO_TRANSLATE), entry);
    env.restore_victim();
    expect(OK, rc)
}

/// `get_page_from_mfn()` of a frame the guest does not own: `-EINVAL` (mm.c:4240).
fn machphys_foreign(env: &mut Env) -> Outcome {
    let ptr = (env.hypervisor_tables[1] << 12) | u64::from(MMU_MACHPHYS_UPDATE);
    expect(Expect::Errno(XEN_EINVAL), hc::mmu_update(ptr, 0x1234))
}
