//! The virtual CPU's privileged state, which a ring-3 PV kernel cannot
//! touch itself: its trap table, callbacks, kernel stack, segment bases,
//! FPU switch flag, GDT, and the `iret` that returns from its handlers.

use hypercalls::abi::arch_x86::{VGCF_in_syscall, SEGBASE_FS, SEGBASE_GS_KERNEL, SEGBASE_GS_USER};
use hypercalls::abi::callback::*;
use hypercalls::abi::nmi::{XENNMI_register_callback, XENNMI_unregister_callback, XenNmiCallback};
use hypercalls::abi::xen::*;
use hypercalls::XenError;
use hypervisor::mm::Mfn;

use super::{Args, HypercallResult};
use crate::arch::descriptors::{self, GUEST_CS64, GUEST_GDT_ENTRIES, GUEST_SS};
use crate::arch::entry::Frame;
use crate::arch::{cpu, guest_access};
use crate::domain::{self, memory as domain_memory, TrapHandler, GUEST_DOMID, NMI_VECTOR};
use crate::exceptions;

/// Handler addresses must be canonical; like Xen, nothing else is checked:
/// a handler the guest cannot execute only hurts the guest (the bounce to
/// it faults, and a fault bouncing to itself crashes the domain).
fn guest_code_address(address: u64) -> Result<u64, XenError> {
    if is_canonical(address) {
        Ok(address)
    } else {
        Err(XenError::EINVAL)
    }
}

/// `set_trap_table(traps)`: a list of `trap_info` ending with a zero
/// address; a null list clears the table.
pub fn set_trap_table(Args([list, ..]): Args) -> HypercallResult {
    if list == 0 {
        domain::with(|d| d.vcpu.traps = [TrapHandler::default(); 256]);
        return Ok(0);
    }
    for index in 0..256u64 {
        let mut entry = [0u8; 16];
        guest_access::read(list + 16 * index, &mut entry).map_err(|_| XenError::EFAULT)?;
        let address = u64::from_le_bytes(entry[8..].try_into().unwrap_or_default());
        if address == 0 {
            break;
        }
        let (vector, flags) = (entry[0], entry[1]);
        let handler = TrapHandler {
            address: guest_code_address(address)?,
            mask_events: flags & 4 != 0,
            privilege: flags & 3,
        };
        domain::with(|d| d.vcpu.traps[usize::from(vector)] = handler);
    }
    Ok(0)
}

/// `set_callbacks(event, failsafe, syscall)`, the 64-bit form.
pub fn set_callbacks(Args([event, failsafe, syscall, ..]): Args) -> HypercallResult {
    for address in [event, failsafe, syscall] {
        if address != 0 {
            guest_code_address(address)?;
        }
    }
    domain::with(|d| {
        d.vcpu.event_callback = event;
        d.vcpu.failsafe_callback = failsafe;
        d.vcpu.syscall_callback = syscall;
    });
    Ok(0)
}

/// `callback_op(CALLBACKOP_register / _unregister, arg)`.
pub fn callback_op(Args([command, argument, ..]): Args) -> HypercallResult {
    match u32::try_from(command).map_err(|_| XenError::ENOSYS)? {
        CALLBACKOP_register => {
            let mut raw = [0u8; 16];
            guest_access::read(argument, &mut raw).map_err(|_| XenError::EFAULT)?;
            let kind = u16::from_le_bytes([raw[0], raw[1]]);
            let address = u64::from_le_bytes(raw[8..].try_into().unwrap_or_default());
            guest_code_address(address)?;
            set_callback(kind, address)
        }
        CALLBACKOP_unregister => {
            let mut raw = [0u8; 2];
            guest_access::read(argument, &mut raw).map_err(|_| XenError::EFAULT)?;
            match u16::from_le_bytes(raw) {
                // Xen refuses to forget the callbacks a PV guest cannot live without.
                CALLBACKTYPE_event | CALLBACKTYPE_failsafe | CALLBACKTYPE_syscall => Err(XenError::EINVAL),
                kind => set_callback(kind, 0),
            }
        }
        _ => Err(XenError::ENOSYS),
    }
}

fn set_callback(kind: u16, address: u64) -> HypercallResult {
    domain::with(|d| {
        let slot = match kind {
            CALLBACKTYPE_event => &mut d.vcpu.event_callback,
            CALLBACKTYPE_failsafe => &mut d.vcpu.failsafe_callback,
            CALLBACKTYPE_syscall => &mut d.vcpu.syscall_callback,
            // As in Xen, the NMI callback is the trap table's vector 2.
            CALLBACKTYPE_nmi => &mut d.vcpu.traps[usize::from(NMI_VECTOR)].address,
            // The 32-bit entry points are accepted as Xen does; they are
            // never used, since this hypervisor runs no 32-bit user code.
            CALLBACKTYPE_syscall32 | CALLBACKTYPE_sysenter => return Ok(()),
            _ => return Err(XenError::ENOSYS),
        };
        *slot = address;
        Ok(())
    })?;
    Ok(0)
}

/// `iret`: returns from a guest handler through the frame the guest pushed
/// (`struct iret_context`: rax, r11, rcx, flags, rip, cs, rflags, rsp, ss),
/// with Xen's rules: RPL forced to 3, IOPL cleared, IF forced on and its
/// guest-visible value moved into the upcall mask.
pub fn iret(frame: &mut Frame) -> HypercallResult {
    let mut raw = [0u8; 72];
    if guest_access::read(frame.rsp, &mut raw).is_err() {
        crate::traps::crash_domain(frame, "fault while reading the iret frame from the guest stack");
    }
    let word =
        |index: usize| u64::from_le_bytes(raw[index * 8..index * 8 + 8].try_into().unwrap_or_default());
    let (rax, r11, rcx, flags, rip, cs, rflags, rsp, ss) =
        (word(0), word(1), word(2), word(3), word(4), word(5), word(6), word(7), word(8));
    if cs & 3 == 3 {
        let has_user_tables = domain::with(|d| d.vcpu.user_root != 0);
        if !has_user_tables {
            crate::traps::crash_domain(frame, "iret to user mode with no user page tables");
        }
        domain::with(exceptions::toggle_guest_mode);
    }
    frame.rip = rip;
    frame.cs = u64::from(GUEST_CS64);
    frame.rflags = (rflags & !((3 << 12) | (1 << 17))) | (1 << 9);
    frame.rsp = rsp;
    frame.ss = if ss & 0xfff8 == 0 { u64::from(GUEST_SS) } else { ss | 3 };
    if flags & u64::from(VGCF_in_syscall) == 0 {
        frame.r11 = r11;
        frame.rcx = rcx;
    }
    domain::with(|d| {
        exceptions::set_upcall_mask(d, rflags & (1 << 9) == 0);
        // Returning from any handler ends an NMI in progress (Xen's
        // async_exception_cleanup), so the next one may be delivered.
        d.vcpu.nmi_masked = false;
    });
    Ok(rax)
}

/// `stack_switch(ss, sp)`: the kernel stack for entries from user mode.
pub fn stack_switch(Args([ss, sp, ..]): Args) -> HypercallResult {
    domain::with(|d| {
        d.vcpu.kernel_ss = ss;
        d.vcpu.kernel_sp = sp;
    });
    Ok(0)
}

/// `fpu_taskswitch(set)`: CR0.TS for the guest, so its next FPU use traps
/// (#NM) and it can switch FPU state lazily.
pub fn fpu_taskswitch(Args([set, ..]): Args) -> HypercallResult {
    domain::with(|d| d.vcpu.fpu_task_switched = set != 0);
    cpu::set_task_switched(set != 0);
    Ok(0)
}

/// `set_segment_base(which, base)`.
pub fn set_segment_base(Args([which, base, ..]): Args) -> HypercallResult {
    if !is_canonical(base) {
        return Err(XenError::EINVAL);
    }
    let in_kernel = domain::in_kernel_mode();
    match u32::try_from(which).map_err(|_| XenError::EINVAL)? {
        SEGBASE_FS => cpu::write_segment_base_msr(cpu::MSR_FS_BASE, base),
        // In kernel mode the user's GS base is the one SWAPGS would load.
        SEGBASE_GS_USER if in_kernel => cpu::write_segment_base_msr(cpu::MSR_KERNEL_GS_BASE, base),
        SEGBASE_GS_USER => cpu::write_segment_base_msr(cpu::MSR_GS_BASE, base),
        SEGBASE_GS_KERNEL if in_kernel => cpu::write_segment_base_msr(cpu::MSR_GS_BASE, base),
        SEGBASE_GS_KERNEL => cpu::write_segment_base_msr(cpu::MSR_KERNEL_GS_BASE, base),
        // `base` is a selector here: the user's %gs, loaded from kernel mode.
        SEGBASE_GS_USER_SEL if in_kernel => {
            let selector = u16::try_from(base).map_err(|_| XenError::EINVAL)?;
            guest_access::load_user_gs_selector(selector).map_err(|_| XenError::EFAULT)?;
        }
        _ => return Err(XenError::EINVAL),
    }
    Ok(0)
}

fn is_canonical(address: u64) -> bool {
    ((address as i64) << 16 >> 16) as u64 == address
}

/// `vm_assist(cmd, type)`: the assists a 64-bit PV guest may turn on.
pub fn vm_assist(Args([command, kind, ..]): Args) -> HypercallResult {
    const VALID: u64 = (1 << VMASST_TYPE_writable_pagetables)
        | (1 << VMASST_TYPE_architectural_iopl)
        | (1 << VMASST_TYPE_runstate_update_flag)
        | (1 << VMASST_TYPE_m2p_strict);
    if kind >= 64 || VALID & (1 << kind) == 0 {
        return Err(XenError::EINVAL);
    }
    match u32::try_from(command).map_err(|_| XenError::ENOSYS)? {
        VMASST_CMD_enable => domain::with(|d| d.vm_assist |= 1 << kind),
        VMASST_CMD_disable => domain::with(|d| d.vm_assist &= !(1 << kind)),
        _ => return Err(XenError::ENOSYS),
    }
    Ok(0)
}

/// `set_gdt(frames, entries)`: the guest's own descriptors, validated and
/// typed as descriptor pages (no longer writable by the guest), then
/// copied into the hypervisor's GDT below Xen's reserved entries.
pub fn set_gdt(Args([list, entries, ..]): Args) -> HypercallResult {
    if entries as usize > GUEST_GDT_ENTRIES {
        return Err(XenError::EINVAL);
    }
    let pages = (entries as usize).div_ceil(512);
    let mut frames = [Mfn(0); 14];
    for (index, frame) in frames.iter_mut().enumerate().take(pages) {
        *frame = Mfn(guest_access::read_u64(list + 8 * index as u64).map_err(|_| XenError::EFAULT)?);
    }
    domain_memory::with(|state, mem| {
        let tables = &mut state.frames;
        state.bases.set_gdt(tables, mem, GUEST_DOMID, &frames[..pages], entries as usize)
    })
    .map_err(|e| XenError::from_errno(e.xen_errno()))?;
    let mut descriptors = alloc::vec![0u64; entries as usize];
    for (index, descriptor) in descriptors.iter_mut().enumerate() {
        *descriptor = crate::arch::memory::read_u64(frames[index / 512].0 * 4096 + 8 * (index % 512) as u64);
    }
    descriptors::load_guest_descriptors(&descriptors);
    Ok(0)
}

/// `update_descriptor(maddr, desc)`: one descriptor in a descriptor page.
pub fn update_descriptor(Args([machine_address, descriptor, ..]): Args) -> HypercallResult {
    if machine_address % 8 != 0 {
        return Err(XenError::EINVAL);
    }
    let mfn = Mfn(machine_address / 4096);
    let index = ((machine_address % 4096) / 8) as usize;
    domain_memory::with(|state, mem| {
        state.frames.update_descriptor(mem, GUEST_DOMID, mfn, index, descriptor)
    })
    .map_err(|e| XenError::from_errno(e.xen_errno()))?;
    let gdt_position =
        domain_memory::with(|state, _| state.bases.gdt_frames().position(|frame| frame == mfn));
    // The live tables get the stored value, which the validator may have
    // fixed up (a DPL raised, a call gate's DPL cleared), never the
    // guest's raw one.
    let stored = crate::arch::memory::read_u64(machine_address);
    if let Some(page) = gdt_position {
        descriptors::set_guest_descriptor(page * 512 + index, stored);
    }
    crate::ldt::descriptor_updated(mfn, index, stored);
    Ok(0)
}

/// `nmi_op(cmd, arg)`: the older way to name the NMI handler, which is
/// the same slot as `CALLBACKTYPE_nmi` and vector 2 of the trap table.
pub fn nmi_op(Args([command, argument, ..]): Args) -> HypercallResult {
    match command as u32 {
        XENNMI_register_callback => {
            let callback: XenNmiCallback =
                guest_access::read_struct(argument).map_err(|_| XenError::EFAULT)?;
            let address = guest_code_address(callback.handler_address)?;
            domain::with(|d| d.vcpu.traps[usize::from(NMI_VECTOR)].address = address);
            Ok(0)
        }
        XENNMI_unregister_callback => {
            domain::with(|d| d.vcpu.traps[usize::from(NMI_VECTOR)].address = 0);
            Ok(0)
        }
        _ => Err(XenError::ENOSYS),
    }
}
