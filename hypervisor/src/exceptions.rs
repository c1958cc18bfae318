//! Guest exceptions: emulate what Xen emulates for PV guests, and bounce
//! the rest to the guest's own handler (`set_trap_table`) on its kernel
//! stack, in Xen's 64-bit PV frame format.

use crate::arch::entry::Frame;
use crate::arch::{cpu, guest_access};
use crate::domain::{self, Domain};
use crate::ldt::LdtFault;
use crate::traps::crash_domain;

pub const PAGE_FAULT: u64 = 14;
const DOUBLE_FAULT: u64 = 8;

/// Vectors whose frames carry an error code.
fn has_error_code(vector: u64) -> bool {
    matches!(vector, 8 | 10 | 11 | 12 | 13 | 14 | 17 | 21 | 29 | 30)
}

const INVALID_OPCODE: u64 = 6;
const GENERAL_PROTECTION: u64 = 13;
/// Selector error-code bits: the selector indexes the IDT / the LDT.
const SELECTOR_IN_IDT: u64 = 1 << 1;
const SELECTOR_IN_LDT: u64 = 1 << 2;

pub fn guest_exception(frame: &mut Frame) {
    let vector = frame.vector;
    match vector {
        INVALID_OPCODE | GENERAL_PROTECTION
            if crate::emulate::privileged_instruction(frame) || software_interrupt(frame) =>
        {
            return;
        }
        GENERAL_PROTECTION if frame.error_code & (SELECTOR_IN_IDT | SELECTOR_IN_LDT) == SELECTOR_IN_LDT => {
            match crate::ldt::fault((frame.error_code >> 3) as usize) {
                LdtFault::Taken => return,
                // As on Xen: a page fault at the LDT page's linear address,
                // as if the CPU had read the descriptor there itself.
                LdtFault::PageFault(address) => {
                    frame.vector = PAGE_FAULT;
                    frame.error_code = 0;
                    domain::with(|d| set_guest_cr2(d, address));
                }
                LdtFault::NotOurs => {}
            }
        }
        PAGE_FAULT => {
            let cr2 = cpu::read_cr2();
            if crate::emulate::page_table_write(frame, cr2, frame.error_code) {
                return;
            }
            domain::with(|d| set_guest_cr2(d, cr2));
        }
        _ => {}
    }
    if frame.vector == DOUBLE_FAULT {
        crash_domain(frame, "double fault");
    }
    let vector = frame.vector;
    let error_code = has_error_code(vector).then_some(frame.error_code);
    log::debug!(
        "exception {vector} (error {:#x}) at RIP {:#x}, CR2 {:#x}: bouncing to the guest",
        frame.error_code,
        frame.rip,
        cpu::read_cr2()
    );
    let handler = domain::with(|d| d.vcpu.traps[vector as usize]);
    if handler.address == 0 {
        crash_domain(frame, "exception with no guest handler registered");
    }
    if let Err(why) = bounce(frame, handler.address, error_code, handler.mask_events) {
        crash_domain(frame, why);
    }
}

/// `int $n` raises #GP (every hypervisor gate is DPL 0) with the vector in
/// the error code. As Xen does, deliver it to the guest's own handler for
/// vector n when that handler's DPL allows the caller: guest kernel mode
/// counts as ring 0 here, user mode as ring 3. Returns whether it did.
fn software_interrupt(frame: &mut Frame) -> bool {
    const IDT_FLAG: u64 = 1 << 1;
    if frame.vector != GENERAL_PROTECTION || frame.error_code & IDT_FLAG == 0 {
        return false;
    }
    let vector = (frame.error_code >> 3) as usize & 255;
    let (handler, in_kernel) = domain::with(|d| (d.vcpu.traps[vector], domain::in_kernel_mode()));
    let caller_ring = if in_kernel { 0 } else { 3 };
    if handler.address == 0 || handler.privilege < caller_ring {
        return false;
    }
    // Resume after the two-byte `int $n`, as the CPU would have.
    frame.rip += 2;
    if let Err(why) = bounce(frame, handler.address, None, handler.mask_events) {
        crash_domain(frame, why);
    }
    true
}

/// SYSCALL from guest user mode: enter the guest kernel at its syscall
/// callback (`CALLBACKTYPE_syscall`), on its kernel stack, with the user's
/// RIP and RFLAGS in the frame's rcx/r11 slots, as Xen does.
pub fn user_syscall(frame: &mut Frame) {
    let callback = domain::with(|d| d.vcpu.syscall_callback);
    if callback == 0 {
        crash_domain(frame, "system call from user mode with no syscall callback registered");
    }
    if let Err(why) = bounce(frame, callback, None, false) {
        crash_domain(frame, why);
    }
}

/// Xen keeps a PV guest's CR2 in `vcpu_info.arch.cr2`.
fn set_guest_cr2(domain: &Domain, cr2: u64) {
    use hypercalls::abi::xen::{ArchVcpuInfo, VcpuInfo};
    let offset = core::mem::offset_of!(VcpuInfo, arch) + core::mem::offset_of!(ArchVcpuInfo, cr2);
    crate::arch::memory::write_u64(domain.vcpu.vcpu_info + offset as u64, cr2);
}

/// Pushes Xen's bounce frame onto the guest kernel stack and redirects
/// `frame` to `handler`:
///
/// ```text
/// [rsp+0]  rcx           [rsp+8]  r11
/// [+16]    error code (only when the exception has one)
/// rip, cs (bits 32-39: the saved upcall mask), rflags, rsp, ss
/// ```
/// A frame interrupted in guest kernel mode shows CS with RPL 0, which is
/// how the guest tells kernel from user mode. From user mode the vCPU
/// switches to kernel mode and the frame goes on the stack registered with
/// `stack_switch`.
pub fn bounce(
    frame: &mut Frame,
    handler: u64,
    error_code: Option<u64>,
    mask_events: bool,
) -> Result<(), &'static str> {
    let (was_kernel, kernel_sp, mask_before) = domain::with(|d| {
        let mask = upcall_mask(d);
        (domain::in_kernel_mode(), d.vcpu.kernel_sp, mask)
    });
    let mut cs = frame.cs;
    let mut stack = if was_kernel {
        cs &= !3;
        frame.rsp
    } else {
        domain::with(crate::exceptions::switch_to_kernel_mode);
        kernel_sp
    };
    stack &= !0xf;

    let rflags_seen = (frame.rflags & !(1 << 9) & !(3 << 12)) | if mask_before { 0 } else { 1 << 9 };
    let mut words = [0u64; 8];
    let mut count = 0;
    let mut push = |value: u64| {
        words[count] = value;
        count += 1;
    };
    push(frame.rcx);
    push(frame.r11);
    if let Some(code) = error_code {
        push(code);
    }
    push(frame.rip);
    push(cs | (u64::from(mask_before) << 32));
    push(rflags_seen);
    push(frame.rsp);
    push(frame.ss);

    let size = 8 * count as u64;
    let base = stack.checked_sub(size).ok_or("guest kernel stack pointer underflows")?;
    let mut bytes = [0u8; 64];
    for (index, word) in words[..count].iter().enumerate() {
        bytes[index * 8..index * 8 + 8].copy_from_slice(&word.to_le_bytes());
    }
    guest_access::write(base, &bytes[..size as usize])
        .map_err(|_| "cannot write the bounce frame to the guest stack")?;

    if mask_events {
        domain::with(|d| set_upcall_mask(d, true));
    }
    frame.rip = handler;
    frame.cs = u64::from(crate::arch::descriptors::GUEST_CS64);
    frame.ss = u64::from(crate::arch::descriptors::GUEST_SS);
    frame.rsp = base;
    // As the CPU does on a trap: clear TF, NT, RF, VM and AC.
    frame.rflags &= !((1 << 8) | (1 << 14) | (1 << 16) | (1 << 17) | (1 << 18));
    frame.rflags |= 1 << 9;
    Ok(())
}

/// Switches the vCPU from guest user mode to guest kernel mode: the
/// kernel's page tables and GS base (Xen's toggle_guest_mode).
pub fn switch_to_kernel_mode(domain: &mut Domain) {
    if !domain::in_kernel_mode() {
        toggle_guest_mode(domain);
    }
}

pub fn toggle_guest_mode(domain: &mut Domain) {
    cpu::swapgs();
    let to_kernel = !domain::in_kernel_mode();
    crate::domain::set_kernel_mode(to_kernel);
    let root = domain.vcpu.root(to_kernel);
    crate::arch::memory::switch_to_guest_root(root);
}

fn upcall_mask_address(domain: &Domain) -> u64 {
    use hypercalls::abi::xen::VcpuInfo;
    domain.vcpu.vcpu_info + core::mem::offset_of!(VcpuInfo, evtchn_upcall_mask) as u64
}

pub fn upcall_mask(domain: &Domain) -> bool {
    crate::arch::memory::read_u8(upcall_mask_address(domain)) != 0
}

pub fn set_upcall_mask(domain: &Domain, masked: bool) {
    crate::arch::memory::write_u8(upcall_mask_address(domain), u8::from(masked));
}
