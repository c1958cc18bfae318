//! Attacks on the virtual CPU: the trap table, callbacks, `iret` to a
//! ring-0 selector, descriptors with ring-0 privilege, GDTs the guest can
//! still write, debug registers, segment bases and vCPU operations.
//!
//! A 64-bit PV kernel runs in ring 3, so Xen's rule is not "refuse every
//! kernel-looking value" but "make sure it ends up in ring 3": handler
//! addresses only have to be canonical (pv/callback.c:376, 66), `iret`
//! ORs RPL 3 into CS and SS and clears IOPL (pv/iret.c:82-86), and a
//! descriptor's DPL is raised to 3 (`check_descriptor`,
//! pv/descriptor-tables.c:211).

use hypercalls::abi::arch_x86::{FLAT_KERNEL_CS, FLAT_KERNEL_SS, SEGBASE_FS};
use hypercalls::abi::callback::*;
use hypercalls::abi::errno::*;
use hypercalls::abi::vcpu::*;
use hypercalls::abi::xen::*;
use kernel::hostile_plan::expect::OK;
use kernel::hostile_plan::{Attack, Expect};
use kernel::selftest::Outcome;

use super::env::{Env, TableFrame, PTE_PRESENT};
use super::{expect, hc};
use crate::arch::raw_hypercall::{iret_probe, IretLanding};
use crate::arch::{memory, pv_entry};
use crate::mm::frames;
use crate::platform::{self, pv::PV};

pub const ATTACKS: &[Attack<Env>] = &[
    Attack { name: "trap-table-hypervisor-handler", xsa: None, run: trap_table_hypervisor },
    Attack { name: "trap-table-noncanonical-handler", xsa: None, run: trap_table_noncanonical },
    Attack { name: "callback-at-hypervisor-address", xsa: None, run: callback_hypervisor },
    Attack { name: "callback-at-noncanonical-address", xsa: None, run: callback_noncanonical },
    Attack { name: "callback-unknown-type", xsa: None, run: callback_unknown_type },
    Attack { name: "callback-unregister-event", xsa: None, run: callback_unregister_event },
    Attack { name: "iret-kernel-cs-rpl0", xsa: None, run: iret_cs_rpl0 },
    Attack { name: "iret-kernel-ss-rpl0", xsa: None, run: iret_ss_rpl0 },
    Attack { name: "iret-hypervisor-code-selector", xsa: None, run: iret_hypervisor_cs },
    Attack { name: "iret-iopl3", xsa: None, run: iret_iopl3 },
    Attack { name: "update-descriptor-dpl0-code", xsa: None, run: descriptor_dpl0 },
    Attack { name: "update-descriptor-dpl0-code-in-live-gdt", xsa: None, run: descriptor_dpl0_live },
    Attack { name: "update-descriptor-tss", xsa: None, run: descriptor_tss },
    Attack { name: "update-descriptor-gate-to-hypervisor-cs", xsa: None, run: descriptor_gate },
    Attack { name: "update-descriptor-in-page-table", xsa: None, run: descriptor_in_table },
    Attack { name: "update-descriptor-unaligned", xsa: None, run: descriptor_unaligned },
    Attack { name: "update-descriptor-foreign-frame", xsa: None, run: descriptor_foreign },
    Attack { name: "set-gdt-writable-frame", xsa: None, run: gdt_writable },
    Attack { name: "set-gdt-too-many-entries", xsa: None, run: gdt_too_many },
    Attack { name: "set-gdt-foreign-frame", xsa: None, run: gdt_foreign },
    Attack { name: "set-gdt-bad-descriptor", xsa: None, run: gdt_bad_descriptor },
    Attack { name: "debugreg-breakpoint-in-hypervisor", xsa: None, run: debugreg_hypervisor },
    Attack { name: "debugreg-general-detect", xsa: None, run: debugreg_general_detect },
    Attack { name: "debugreg-unknown-register", xsa: None, run: debugreg_unknown },
    Attack { name: "segment-base-noncanonical", xsa: None, run: segment_base_noncanonical },
    Attack { name: "segment-base-hypervisor-allowed", xsa: None, run: segment_base_hypervisor },
    Attack { name: "vcpu-send-nmi-without-handler", xsa: None, run: send_nmi },
    Attack { name: "vcpu-op-unknown-vcpu", xsa: None, run: unknown_vcpu },
    Attack { name: "vcpu-periodic-timer-too-fast", xsa: None, run: periodic_too_fast },
    Attack { name: "vcpu-info-offset-beyond-page", xsa: None, run: vcpu_info_offset },
    Attack { name: "vcpu-info-in-hypervisor-frame", xsa: None, run: vcpu_info_foreign },
    Attack { name: "vm-assist-unknown-type", xsa: None, run: vm_assist_unknown_type },
    Attack { name: "vm-assist-unknown-command", xsa: None, run: vm_assist_unknown_command },
];

const EINVAL: Expect = Expect::Errno(XEN_EINVAL);

/// Puts the kernel's own trap table and callbacks back.
pub(super) fn restore_traps() {
    hc::call(__HYPERVISOR_set_trap_table, [0; 5]);
    platform::current().install_traps();
}

fn set_trap_table(address: u64) -> i64 {
    // Vector 200 is never raised; the terminating entry has address 0.
    let table = [[200 | u64::from(FLAT_KERNEL_CS) << 16, address], [0, 0]];
    let rc = hc::call(__HYPERVISOR_set_trap_table, [hc::addr(&table), 0, 0, 0, 0]);
    restore_traps();
    rc
}

/// Xen only refuses non-canonical handlers; the guest runs its handlers
/// in ring 3, where a hypervisor address faults (pv/callback.c:376).
fn trap_table_hypervisor(_: &mut Env) -> Outcome {
    expect(OK, set_trap_table(hc::HYPERVISOR_TEXT))
}

fn trap_table_noncanonical(_: &mut Env) -> Outcome {
    expect(EINVAL, set_trap_table(hc::Bad::NonCanonical.address()))
}

fn register_callback(kind: u16, address: u64) -> i64 {
    let request = [u64::from(kind) | u64::from(CALLBACKF_mask_events) << 16, address];
    let rc = hc::call(__HYPERVISOR_callback_op, [CALLBACKOP_register.into(), hc::addr(&request), 0, 0, 0]);
    restore_traps();
    rc
}

/// The failsafe callback, which only runs when a return to the guest
/// fails: canonical is all Xen asks (pv/callback.c:66).
fn callback_hypervisor(_: &mut Env) -> Outcome {
    expect(OK, register_callback(CALLBACKTYPE_failsafe, hc::HYPERVISOR_TEXT))
}

fn callback_noncanonical(_: &mut Env) -> Outcome {
    expect(EINVAL, register_callback(CALLBACKTYPE_failsafe, hc::Bad::NonCanonical.address()))
}

/// An unknown callback type: `-ENOSYS` (pv/callback.c:109).
fn callback_unknown_type(_: &mut Env) -> Outcome {
    let (_, failsafe) = pv_entry::callback_addresses();
    expect(Expect::Errno(XEN_ENOSYS), register_callback(99, failsafe))
}

/// The event callback cannot be taken away (pv/callback.c:127).
fn callback_unregister_event(_: &mut Env) -> Outcome {
    let request = [u64::from(CALLBACKTYPE_event)];
    let rc = hc::call(__HYPERVISOR_callback_op, [CALLBACKOP_unregister.into(), hc::addr(&request), 0, 0, 0]);
    restore_traps();
    expect(EINVAL, rc)
}

/// A 64-bit PV kernel's frames carry its code selector with RPL 0: that
/// is how `iret` knows to stay in guest kernel mode (RPL 3 means "return
/// to guest user mode", pv/iret.c:66). The CPU runs it with RPL 3.
const KERNEL_MODE_CS: u16 = FLAT_KERNEL_CS & !3;

/// Returns through `iret` with a doctored frame, events masked throughout.
fn probe(cs: u16, ss: u16, rflags: u64) -> IretLanding {
    let platform = platform::current();
    let were_enabled = platform.interrupts_save_disable();
    let (_, failsafe) = pv_entry::callback_addresses();
    let landing = iret_probe(cs.into(), ss.into(), rflags, failsafe);
    platform.interrupts_disable();
    platform.interrupts_restore(were_enabled);
    landing
}

/// The guest must keep running in ring 3, whichever way it comes back.
fn still_ring3(landing: IretLanding) -> Outcome {
    match landing {
        IretLanding::Resumed { cs, ss, .. } if cs & 3 == 3 && ss & 3 == 3 => Outcome::Pass,
        IretLanding::Resumed { cs, ss, .. } => {
            Outcome::Fail(alloc::format!("expected ring 3, got CS {cs:#x} SS {ss:#x}"))
        }
        IretLanding::Faulted | IretLanding::Failsafe => Outcome::Pass,
    }
}

/// A ring-0 code selector in the frame: Xen runs it with RPL 3
/// (`iret_saved.cs | 3`, pv/iret.c:82).
fn iret_cs_rpl0(_: &mut Env) -> Outcome {
    match probe(KERNEL_MODE_CS, FLAT_KERNEL_SS, 0x2) {
        landing @ IretLanding::Resumed { .. } => still_ring3(landing),
        other => Outcome::Fail(alloc::format!("expected to resume at the return address, got {other:?}")),
    }
}

/// ... and the stack selector too (pv/iret.c:86).
fn iret_ss_rpl0(_: &mut Env) -> Outcome {
    match probe(KERNEL_MODE_CS, FLAT_KERNEL_SS & !3, 0x2) {
        landing @ IretLanding::Resumed { .. } => still_ring3(landing),
        other => Outcome::Fail(alloc::format!("expected to resume at the return address, got {other:?}")),
    }
}

/// Xen's own ring-0 code selector (`__HYPERVISOR_CS`, 0xe008): RPL 3 is
/// forced, so the return either runs in ring 3 or faults back to the guest.
fn iret_hypervisor_cs(_: &mut Env) -> Outcome {
    still_ring3(probe(0xe008, FLAT_KERNEL_SS, 0x2))
}

/// IOPL 3 would let ring 3 use I/O ports: Xen clears it (pv/iret.c:83).
fn iret_iopl3(_: &mut Env) -> Outcome {
    match probe(KERNEL_MODE_CS, FLAT_KERNEL_SS, 0x2 | 3 << 12) {
        IretLanding::Resumed { rflags, .. } if rflags & (3 << 12) == 0 => Outcome::Pass,
        IretLanding::Resumed { rflags, .. } => {
            Outcome::Fail(alloc::format!("expected IOPL 0, got RFLAGS {rflags:#x}"))
        }
        other => Outcome::Fail(alloc::format!("expected to resume at the return address, got {other:?}")),
    }
}

const CODE64_DPL0: u64 = 0x00af_9a00_0000_ffff;
const TSS: u64 = 0x0000_8900_0000_0067;
/// A 64-bit call gate (type 0xc, present) to selector 0xe008.
const GATE_TO_HYPERVISOR_CS: u64 = 0x0000_8c00_e008_0000;

fn update_descriptor(maddr: u64, descriptor: u64) -> i64 {
    hc::call(__HYPERVISOR_update_descriptor, [maddr, descriptor, 0, 0, 0])
}

/// Runs `f` with a fresh (writable-mapped) frame: (phys, machine address).
fn with_data_frame(f: impl FnOnce(u64, u64) -> Outcome) -> Outcome {
    let Some(phys) = frames::allocate_zeroed() else { return Outcome::Fail("out of frames".into()) };
    let Some(mfn) = PV.mmu.mfn(phys / 4096) else { return Outcome::Fail("no machine frame".into()) };
    let outcome = f(phys, mfn * 4096);
    frames::free(phys);
    outcome
}

/// Accepted, with the DPL raised to the guest kernel's ring, 3.
fn descriptor_dpl0(_: &mut Env) -> Outcome {
    with_data_frame(|phys, maddr| {
        let rc = update_descriptor(maddr + 8, CODE64_DPL0);
        let stored = memory::read_u64(phys + 8);
        let dpl = (stored >> 45) & 3;
        if rc == 0 && dpl != 3 {
            return Outcome::Fail(alloc::format!("accepted with DPL {dpl} (stored {stored:#x})"));
        }
        expect(OK, rc)
    })
}

/// The same in a GDT page in use: what the CPU sees must be the fixed-up
/// descriptor, DPL 3, not the guest's DPL 0 (`lar` from ring 3 can see a
/// DPL 3 code segment and not a DPL 0 one).
fn descriptor_dpl0_live(_: &mut Env) -> Outcome {
    const SELECTOR: u16 = 1 << 3 | 3;
    let Some(page) = TableFrame::new(&[]) else { return Outcome::Fail("out of frames".into()) };
    let frames = [page.mfn];
    let installed = hc::call(__HYPERVISOR_set_gdt, [hc::addr(&frames), 16, 0, 0, 0]);
    let rc = if installed == 0 { update_descriptor(page.slot(1), CODE64_DPL0) } else { installed };
    let rights = crate::arch::cpu::access_rights(SELECTOR);
    if installed == 0 {
        hc::call(__HYPERVISOR_set_gdt, [hc::addr(&frames), 0, 0, 0, 0]);
    }
    page.release();
    if installed != 0 {
        return Outcome::Fail(alloc::format!("setup: set_gdt returned {installed}"));
    }
    match rights {
        Some(rights) if rc == 0 && (rights >> 13) & 3 == 3 => Outcome::Pass,
        _ if rc != 0 => expect(OK, rc),
        other => Outcome::Fail(alloc::format!("the live GDT entry shows access rights {other:x?}")),
    }
}

fn descriptor_tss(_: &mut Env) -> Outcome {
    with_data_frame(|_, maddr| expect(EINVAL, update_descriptor(maddr, TSS)))
}

/// A gate's target must be a guest selector (`guest_gate_selector_okay`).
fn descriptor_gate(_: &mut Env) -> Outcome {
    with_data_frame(|_, maddr| expect(EINVAL, update_descriptor(maddr, GATE_TO_HYPERVISOR_CS)))
}

/// A page table can be neither a descriptor page nor writable (a zero
/// descriptor, so nothing changes even if the hypervisor wrongly writes).
fn descriptor_in_table(env: &mut Env) -> Outcome {
    let mapped = (PV.mmu.mfn(env.victim_frame / 4096).unwrap_or(0) << 12) | PTE_PRESENT;
    let Some(table) = TableFrame::new(&[(0, mapped)]) else { return Outcome::Fail("out of frames".into()) };
    if hc::pin(1, table.mfn) != 0 {
        table.release();
        return Outcome::Fail("setup: cannot pin a scratch L1".into());
    }
    let rc = update_descriptor(table.slot(7), 0);
    hc::unpin(table.mfn);
    table.release();
    expect(EINVAL, rc)
}

fn descriptor_unaligned(_: &mut Env) -> Outcome {
    with_data_frame(|_, maddr| expect(EINVAL, update_descriptor(maddr + 4, CODE64_DPL0)))
}

fn descriptor_foreign(env: &mut Env) -> Outcome {
    expect(EINVAL, update_descriptor(env.hypervisor_tables[1] << 12, 0))
}

fn set_gdt(frames: &[u64], entries: u64) -> i64 {
    let rc = hc::call(__HYPERVISOR_set_gdt, [hc::addr(frames), entries, 0, 0, 0]);
    if rc == 0 {
        hc::call(__HYPERVISOR_set_gdt, [hc::addr(frames), 0, 0, 0, 0]);
    }
    rc
}

/// A GDT page must become a descriptor page, which a page the guest still
/// maps writable cannot (`get_page_and_type(PGT_seg_desc_page)`).
fn gdt_writable(_: &mut Env) -> Outcome {
    with_data_frame(|_, maddr| expect(EINVAL, set_gdt(&[maddr >> 12], 512)))
}

/// More entries than below Xen's reserved ones (FIRST_RESERVED_GDT_ENTRY).
fn gdt_too_many(_: &mut Env) -> Outcome {
    with_data_frame(|_, maddr| expect(EINVAL, set_gdt(&[maddr >> 12; 15], 14 * 512 + 1)))
}

fn gdt_foreign(env: &mut Env) -> Outcome {
    expect(EINVAL, set_gdt(&[env.hypervisor_tables[1]], 512))
}

/// A read-only page holding a TSS descriptor fails validation.
fn gdt_bad_descriptor(_: &mut Env) -> Outcome {
    let Some(page) = TableFrame::new(&[(3, TSS)]) else { return Outcome::Fail("out of frames".into()) };
    let rc = set_gdt(&[page.mfn], 512);
    page.release();
    expect(EINVAL, rc)
}

fn set_debugreg(register: u64, value: u64) -> i64 {
    hc::call(__HYPERVISOR_set_debugreg, [register, value, 0, 0, 0])
}

/// `breakpoint_addr_ok()` refuses the hypervisor's range: `-EPERM`
/// (pv/misc-hypercalls.c:75).
fn debugreg_hypervisor(_: &mut Env) -> Outcome {
    let rc = set_debugreg(0, hc::HYPERVISOR_TEXT);
    set_debugreg(0, 0);
    expect(Expect::Errno(XEN_EPERM), rc)
}

/// DR7.GD would make the hypervisor's own debug-register accesses trap:
/// `-EPERM` (pv/misc-hypercalls.c:135).
fn debugreg_general_detect(_: &mut Env) -> Outcome {
    let rc = set_debugreg(7, 0x400 | 1 << 13);
    set_debugreg(7, 0x400);
    expect(Expect::Errno(XEN_EPERM), rc)
}

/// There is no DR8: `-ENODEV` (pv/misc-hypercalls.c:172).
fn debugreg_unknown(_: &mut Env) -> Outcome {
    expect(Expect::Errno(XEN_ENODEV), set_debugreg(8, 0))
}

fn set_segment_base(which: u32, base: u64) -> i64 {
    hc::call(__HYPERVISOR_set_segment_base, [which.into(), base, 0, 0, 0])
}

fn segment_base_noncanonical(_: &mut Env) -> Outcome {
    let rc = set_segment_base(SEGBASE_FS, hc::Bad::NonCanonical.address());
    set_segment_base(SEGBASE_FS, 0);
    expect(EINVAL, rc)
}

/// Canonical is all Xen asks of a base; ring 3 cannot reach what it names.
fn segment_base_hypervisor(_: &mut Env) -> Outcome {
    let rc = set_segment_base(SEGBASE_FS, hc::HYPERVISOR_TEXT);
    set_segment_base(SEGBASE_FS, 0);
    expect(OK, rc)
}

fn vcpu_op(command: u32, vcpu: u64, argument: u64) -> i64 {
    hc::call(__HYPERVISOR_vcpu_op, [command.into(), vcpu, argument, 0, 0])
}

/// An NMI for a guest with no NMI callback is dropped (arch/x86/domain.c:1506).
fn send_nmi(_: &mut Env) -> Outcome {
    let rc = vcpu_op(VCPUOP_send_nmi, 0, 0);
    let _ = hc::xen_version();
    expect(OK, rc)
}

/// `domain_vcpu()` finds no such vCPU: `-ENOENT` (arch/x86/domain.c:1502).
fn unknown_vcpu(_: &mut Env) -> Outcome {
    expect(Expect::Errno(XEN_ENOENT), vcpu_op(VCPUOP_is_up, 4096, 0))
}

/// Periods under 1 ms are refused (common/domain.c:1696).
fn periodic_too_fast(_: &mut Env) -> Outcome {
    let period = [1000u64];
    let rc = vcpu_op(VCPUOP_set_periodic_timer, 0, hc::addr(&period));
    vcpu_op(VCPUOP_stop_periodic_timer, 0, 0);
    expect(EINVAL, rc)
}

/// `map_vcpu_info()`: an offset leaving no room is `-ENXIO` (common/domain.c:1495).
fn vcpu_info_offset(env: &mut Env) -> Outcome {
    let mfn = PV.mmu.mfn(env.victim_frame / 4096).unwrap_or(0);
    let request = [mfn, 4096];
    expect(Expect::Errno(XEN_ENXIO), vcpu_op(VCPUOP_register_vcpu_info, 0, hc::addr(&request)))
}

/// ... and a frame the guest does not own is `-EINVAL` (common/domain.c:1516).
fn vcpu_info_foreign(env: &mut Env) -> Outcome {
    let request = [env.hypervisor_tables[1], 0];
    expect(EINVAL, vcpu_op(VCPUOP_register_vcpu_info, 0, hc::addr(&request)))
}

fn vm_assist(command: u32, kind: u32) -> i64 {
    hc::call(__HYPERVISOR_vm_assist, [command.into(), kind.into(), 0, 0, 0])
}

/// Assists outside the valid mask: `-EINVAL` (common/domain.c, `do_vm_assist`).
fn vm_assist_unknown_type(_: &mut Env) -> Outcome {
    expect(EINVAL, vm_assist(VMASST_CMD_enable, 31))
}

fn vm_assist_unknown_command(_: &mut Env) -> Outcome {
    expect(Expect::Errno(XEN_ENOSYS), vm_assist(7, VMASST_TYPE_writable_pagetables))
}
