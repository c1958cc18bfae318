//! Instructions the hypervisor emulates for a PV guest, as Xen does: the
//! privileged ones a ring-3 kernel may still execute (#GP), Xen's
//! forced-emulation CPUID (#UD), and stores to the guest's own read-only
//! page tables under `vm_assist(writable_pagetables)` (#PF): the
//! trap-and-emulate path, next to the hypercall path it replaces.

use hypercalls::abi::xen::VMASST_TYPE_writable_pagetables;
use hypervisor::decode::{self, Privileged, StoreKind, StoreValue};
use hypervisor::mm::Mfn;

use crate::arch::entry::Frame;
use crate::arch::{cpu, guest_access, memory};
use crate::domain::{self, memory as domain_memory, GUEST_DOMID};

/// CR4 bits a PV guest may see and set in its virtual CR4: PAE (always
/// on), TSD, DE, OSFXSR, OSXMMEXCPT and OSXSAVE. Paging-mode and protection
/// bits (PGE, PSE, PCE, SMEP, SMAP, ...) are the hypervisor's.
pub const GUEST_CR4_BITS: u64 = (1 << 2) | (1 << 3) | (1 << 5) | (1 << 9) | (1 << 10) | (1 << 18);

/// The virtual CR4 a guest starts with.
pub fn initial_guest_cr4() -> u64 {
    cpu::read_cr4() & GUEST_CR4_BITS
}

/// Longest instruction the decoders look at.
const MAX_INSTRUCTION: usize = 15;

fn fetch(frame: &Frame) -> Option<[u8; MAX_INSTRUCTION]> {
    let mut code = [0u8; MAX_INSTRUCTION];
    if guest_access::read(frame.rip, &mut code).is_err() {
        // The instruction may end right before an unmapped page: take what exists.
        for (offset, byte) in code.iter_mut().enumerate() {
            let mut one = [0u8];
            if guest_access::read(frame.rip + offset as u64, &mut one).is_err() {
                break;
            }
            *byte = one[0];
        }
    }
    (code[0] != 0 || code[1] != 0).then_some(code)
}

/// The general-purpose register numbered as in instruction encodings.
fn gpr(frame: &mut Frame, number: u8) -> &mut u64 {
    match number & 15 {
        0 => &mut frame.rax,
        1 => &mut frame.rcx,
        2 => &mut frame.rdx,
        3 => &mut frame.rbx,
        4 => &mut frame.rsp,
        5 => &mut frame.rbp,
        6 => &mut frame.rsi,
        7 => &mut frame.rdi,
        8 => &mut frame.r8,
        9 => &mut frame.r9,
        10 => &mut frame.r10,
        11 => &mut frame.r11,
        12 => &mut frame.r12,
        13 => &mut frame.r13,
        14 => &mut frame.r14,
        _ => &mut frame.r15,
    }
}

/// Emulates the privileged instruction at the guest's RIP, if it is one
/// the hypervisor handles; returns whether it did (RIP is then past it).
pub fn privileged_instruction(frame: &mut Frame) -> bool {
    if !domain::in_kernel_mode() {
        return false;
    }
    let Some(code) = fetch(frame) else { return false };
    let Some((instruction, len)) = decode::privileged(&code) else { return false };
    let done = match instruction {
        Privileged::ForcedCpuid => {
            let (leaf, subleaf) = (frame.rax as u32, frame.rcx as u32);
            let native = cpu::cpuid(leaf, subleaf);
            let [a, b, c, d] = hypervisor::cpuid_policy::guest_view(
                leaf,
                subleaf,
                [native.eax, native.ebx, native.ecx, native.edx],
            );
            (frame.rax, frame.rbx, frame.rcx, frame.rdx) = (a.into(), b.into(), c.into(), d.into());
            true
        }
        Privileged::Rdmsr => match read_msr(frame.rcx as u32) {
            Some(value) => {
                frame.rax = value & 0xffff_ffff;
                frame.rdx = value >> 32;
                true
            }
            None => false,
        },
        Privileged::Wrmsr => write_msr(frame.rcx as u32, (frame.rdx << 32) | (frame.rax & 0xffff_ffff)),
        Privileged::MovFromCr { cr, reg } => match read_cr(cr) {
            Some(value) => {
                *gpr(frame, reg) = value;
                true
            }
            None => false,
        },
        Privileged::MovToCr { cr: 0, reg } => {
            // Only CR0.TS is the guest's to change (lazy FPU switching).
            let value = *gpr(frame, reg);
            let task_switched = value & (1 << 3) != 0;
            let others_unchanged = (value ^ cpu::read_cr0()) & !(1 << 3) == 0;
            if others_unchanged {
                domain::with(|d| d.vcpu.fpu_task_switched = task_switched);
                cpu::set_task_switched(task_switched);
            }
            others_unchanged
        }
        // As Xen does, a PV kernel keeps its own view of CR4 (Linux writes it
        // while setting up paging); the real CR4 stays the hypervisor's.
        Privileged::MovToCr { cr: 4, reg } => {
            let value = *gpr(frame, reg);
            domain::with(|d| d.vcpu.cr4 = value & GUEST_CR4_BITS);
            true
        }
        Privileged::MovToCr { .. } => false,
        // With a virtual IOPL of at least 1 (physdev_op set_iopl), Xen lets a
        // PV kernel touch I/O ports it has no access to: reads see all ones,
        // writes vanish (Linux probes PCI this way). Otherwise: #GP.
        Privileged::PortIn { size, .. } => {
            let permitted = domain::with(|d| d.vcpu.iopl >= 1);
            if permitted {
                let ones = u64::MAX >> (64 - 8 * u32::from(size));
                frame.rax = match size {
                    4 => ones,
                    _ => (frame.rax & !ones) | ones,
                };
            }
            permitted
        }
        Privileged::PortOut { .. } => domain::with(|d| d.vcpu.iopl >= 1),
        // Under the same virtual IOPL Xen lets CLI and STI through as no-ops:
        // a PV kernel's interrupt flag is evtchn_upcall_mask, which these
        // instructions cannot reach (Linux runs a few before its pv_ops
        // patching).
        Privileged::InterruptFlag => domain::with(|d| d.vcpu.iopl >= 1),
        Privileged::Clts => {
            domain::with(|d| d.vcpu.fpu_task_switched = false);
            cpu::set_task_switched(false);
            true
        }
    };
    if done {
        frame.rip += len as u64;
    }
    done
}

/// The MSRs a PV guest may read: its segment bases and a few harmless
/// architectural ones. Anything else gets #GP, as on Xen.
fn read_msr(msr: u32) -> Option<u64> {
    const EFER: u32 = 0xc000_0080;
    const PAT: u32 = 0x277;
    const MISC_ENABLE: u32 = 0x1a0;
    match msr {
        cpu::MSR_FS_BASE | cpu::MSR_GS_BASE | cpu::MSR_KERNEL_GS_BASE | EFER | PAT => {
            Some(cpu::read_msr(msr))
        }
        MISC_ENABLE => Some(0),
        _ => None,
    }
}

fn write_msr(msr: u32, value: u64) -> bool {
    let canonical = ((value as i64) << 16 >> 16) as u64 == value;
    match msr {
        cpu::MSR_FS_BASE | cpu::MSR_GS_BASE | cpu::MSR_KERNEL_GS_BASE if canonical => {
            cpu::write_segment_base_msr(msr, value);
            true
        }
        _ => false,
    }
}

fn read_cr(cr: u8) -> Option<u64> {
    match cr {
        0 => Some(cpu::read_cr0()),
        // A PV guest's CR3 holds a machine address, as Xen reports it.
        3 => Some(domain::current_root()),
        4 => Some(domain::with(|d| d.vcpu.cr4)),
        _ => None,
    }
}

/// A write fault on a read-only page: if it is the guest writing one of
/// its own page tables (and it asked for writable page tables), validate
/// the new entry as `mmu_update` would and perform the store.
pub fn page_table_write(frame: &mut Frame, fault_address: u64, error_code: u64) -> bool {
    const PRESENT_AND_WRITE: u64 = 0b11;
    if error_code & PRESENT_AND_WRITE != PRESENT_AND_WRITE || !fault_address.is_multiple_of(8) {
        return false;
    }
    let (enabled, in_kernel, root) = domain::with(|d| {
        let enabled = d.vm_assist & (1 << VMASST_TYPE_writable_pagetables) != 0;
        (enabled, domain::in_kernel_mode(), d.vcpu.kernel_root)
    });
    if !enabled || !in_kernel {
        return false;
    }
    let Some(machine) = translate(root, fault_address) else { return false };
    let table = Mfn(machine / memory::PAGE_SIZE);
    let is_page_table = domain_memory::with(|state, _| {
        state.frames.frame(table).is_some_and(|info| info.page_type().level().is_some())
    });
    if !is_page_table {
        return false;
    }
    let Some(code) = fetch(frame) else { return false };
    let Some(store) = decode::pte_store(&code) else { return false };
    let operand = match store.value {
        StoreValue::Register(reg) => *gpr(frame, reg),
        StoreValue::Immediate(value) => value,
    };
    let index = ((machine % memory::PAGE_SIZE) / 8) as usize;
    let old = memory::read_u64(machine);
    // What the instruction writes, if anything, and the flags it sets.
    let (new, flags) = match store.kind {
        StoreKind::Write | StoreKind::Exchange => (Some(operand), None),
        StoreKind::CompareExchange => {
            let flags = decode::subtraction_flags(frame.rax, old);
            ((frame.rax == old).then_some(operand), Some(flags))
        }
        StoreKind::BitTestReset(bit) => {
            let carry = (old >> bit) & 1;
            ((carry != 0).then_some(old & !(1 << bit)), Some(carry))
        }
    };
    if let Some(value) = new {
        let updated = domain_memory::with(|state, mem| {
            state.frames.update_entry(mem, GUEST_DOMID, table, index, value, false)
        });
        if updated.is_err() {
            return false;
        }
        cpu::flush_tlb();
    }
    match (store.kind, store.value) {
        (StoreKind::Exchange, StoreValue::Register(reg)) => *gpr(frame, reg) = old,
        (StoreKind::CompareExchange, _) if new.is_none() => frame.rax = old,
        _ => {}
    }
    if let Some(flags) = flags {
        // BTR sets only CF; CMPXCHG sets all six arithmetic flags.
        let affected =
            if matches!(store.kind, StoreKind::BitTestReset(_)) { 1 } else { decode::ARITHMETIC_FLAGS };
        frame.rflags = (frame.rflags & !affected) | flags;
    }
    frame.rip += store.len as u64;
    true
}

/// The machine address `address` maps to in the guest tables at `root`.
fn translate(root: u64, address: u64) -> Option<u64> {
    let mut table = root;
    for level in (1..=4u32).rev() {
        let entry = memory::read_u64(table + 8 * ((address >> (12 + 9 * (level - 1))) & 511));
        if entry & memory::PTE_PRESENT == 0 || (level > 1 && entry & memory::PTE_LARGE != 0) {
            return None;
        }
        table = entry & 0x000f_ffff_ffff_f000;
    }
    Some(table + address % memory::PAGE_SIZE)
}
