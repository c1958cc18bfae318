//! PV CPU state: the hypercalls that replace `lidt`, `wrmsr` to the syscall
//! MSRs, `mov` to segment bases, `ltr`/TSS stack fields, `clts`, and the
//! local APIC timer.

use crate::abi::arch_x86::{TrapInfo, XenCallback};
use crate::abi::callback::{
    CALLBACKOP_register, CALLBACKOP_unregister, CallbackRegister, CallbackUnregister,
};
use crate::abi::xen::{
    __HYPERVISOR_callback_op, __HYPERVISOR_fpu_taskswitch, __HYPERVISOR_set_callbacks,
    __HYPERVISOR_set_segment_base, __HYPERVISOR_set_timer_op, __HYPERVISOR_set_trap_table,
    __HYPERVISOR_stack_switch, __HYPERVISOR_vm_assist,
};
use crate::transport::{addr_of, hypercall1, hypercall2, hypercall3};
use crate::XenError;

/// Installs the virtual IDT. `table` must end with an all-zero entry
/// (Xen reads up to it); otherwise `EINVAL` is returned without a call.
///
/// # Safety
///
/// Every handler address must be the entry point of code that handles the
/// trap correctly in the guest's PV trap frame format.
pub unsafe fn set_trap_table(table: &[TrapInfo]) -> Result<(), XenError> {
    match table.last() {
        Some(last) if last.address == 0 => {}
        _ => return Err(XenError::EINVAL),
    }
    // SAFETY: Xen reads entries up to the zero terminator, which is inside
    // `table` (checked above) and borrowed for the call. The handlers are
    // the caller's contract.
    super::unit(unsafe { hypercall1(__HYPERVISOR_set_trap_table, addr_of(table)) })
}

/// Sets the event-upcall, failsafe and 64-bit `syscall` entry points.
///
/// # Safety
///
/// Each address must be a correct PV entry point for its callback type.
pub unsafe fn set_callbacks(
    event: XenCallback,
    failsafe: XenCallback,
    syscall: XenCallback,
) -> Result<(), XenError> {
    // SAFETY: plain values; the entry points are the caller's contract.
    super::unit(unsafe { hypercall3(__HYPERVISOR_set_callbacks, event, failsafe, syscall) })
}

/// Registers one callback (`CALLBACKOP_register`).
///
/// # Safety
///
/// As for [`set_callbacks`].
pub unsafe fn callback_register(callback: &CallbackRegister) -> Result<(), XenError> {
    // SAFETY: Xen reads the borrowed struct; the entry point is the
    // caller's contract.
    super::unit(unsafe {
        hypercall2(__HYPERVISOR_callback_op, CALLBACKOP_register as u64, addr_of(callback))
    })
}

/// Unregisters a callback type (`CALLBACKOP_unregister`).
pub fn callback_unregister(callback_type: u16) -> Result<(), XenError> {
    let arg = CallbackUnregister { r#type: callback_type, _unused: 0 };
    // SAFETY: Xen reads the borrowed struct; removing a callback cannot
    // make Xen enter the guest anywhere new.
    super::unit(unsafe { hypercall2(__HYPERVISOR_callback_op, CALLBACKOP_unregister as u64, addr_of(&arg)) })
}

/// Enables or disables a `VMASST_TYPE_*` assist (`VMASST_CMD_*`).
pub fn vm_assist(cmd: u32, assist_type: u32) -> Result<(), XenError> {
    // SAFETY: plain values; assists change how Xen validates later
    // requests, not memory the caller holds.
    super::unit(unsafe { hypercall2(__HYPERVISOR_vm_assist, cmd as u64, assist_type as u64) })
}

/// Sets an FS/GS base (`SEGBASE_*`).
///
/// # Safety
///
/// Code relying on the old base (thread-locals, per-CPU data) breaks.
pub unsafe fn set_segment_base(which: u32, base: u64) -> Result<(), XenError> {
    // SAFETY: plain values; the base change is the caller's contract.
    super::unit(unsafe { hypercall2(__HYPERVISOR_set_segment_base, which as u64, base) })
}

/// Sets the kernel stack Xen switches to on a trap from user mode.
///
/// # Safety
///
/// `ss:sp` must be a valid, unused kernel stack.
pub unsafe fn stack_switch(ss: u64, sp: u64) -> Result<(), XenError> {
    // SAFETY: plain values; the stack is the caller's contract.
    super::unit(unsafe { hypercall2(__HYPERVISOR_stack_switch, ss, sp) })
}

/// Sets (`true`) or clears CR0.TS, the PV `clts` / lazy-FPU switch.
pub fn fpu_taskswitch(set: bool) -> Result<(), XenError> {
    // SAFETY: only CR0.TS changes; the next FPU use traps (#NM) if set.
    super::unit(unsafe { hypercall1(__HYPERVISOR_fpu_taskswitch, set as u64) })
}

/// Arms the one-shot timer for absolute system time `timeout_ns` (0
/// cancels); it raises `VIRQ_TIMER`.
pub fn set_timer_op(timeout_ns: u64) -> Result<(), XenError> {
    // SAFETY: a plain value; the result is an event, not a memory access.
    super::unit(unsafe { hypercall1(__HYPERVISOR_set_timer_op, timeout_ns) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::callback::CALLBACKTYPE_event;
    use crate::transport::testing::{read_guest, with_responder};

    #[test]
    fn trap_table_must_be_terminated() {
        let table = [TrapInfo { vector: 14, flags: 0, cs: 0xe033, address: 0x1000 }];
        // SAFETY: intercepted (and refused before any call).
        let (result, calls) = with_responder(|_| 0, || unsafe { set_trap_table(&table) });
        assert_eq!(result, Err(XenError::EINVAL));
        assert!(calls.is_empty());
    }

    #[test]
    fn trap_table_is_passed_by_address() {
        let table = [
            TrapInfo { vector: 14, flags: 0, cs: 0xe033, address: 0x1000 },
            TrapInfo { vector: 0, flags: 0, cs: 0, address: 0 },
        ];
        let (result, calls) = with_responder(
            |call| {
                let first: TrapInfo = read_guest(call.args[0]);
                assert_eq!((first.vector, first.address), (14, 0x1000));
                0
            },
            // SAFETY: intercepted.
            || unsafe { set_trap_table(&table) },
        );
        assert_eq!(result, Ok(()));
        assert_eq!(calls[0].nr, __HYPERVISOR_set_trap_table);
    }

    #[test]
    fn callbacks_and_timer_pass_plain_values() {
        let register = CallbackRegister { r#type: CALLBACKTYPE_event, flags: 0, address: 0x5000 };
        let ((), calls) = with_responder(
            |call| {
                if call.nr == __HYPERVISOR_callback_op {
                    let seen: CallbackRegister = read_guest(call.args[1]);
                    assert_eq!(seen, CallbackRegister { r#type: 0, flags: 0, address: 0x5000 });
                }
                0
            },
            // SAFETY: intercepted.
            || unsafe {
                set_callbacks(1, 2, 3).unwrap();
                callback_register(&register).unwrap();
                set_timer_op(99).unwrap();
                fpu_taskswitch(true).unwrap();
            },
        );
        assert_eq!(calls[0].args[..3], [1, 2, 3]);
        assert_eq!(calls[1].args[0], CALLBACKOP_register as u64);
        assert_eq!((calls[2].nr, calls[2].args[0]), (__HYPERVISOR_set_timer_op, 99));
        assert_eq!((calls[3].nr, calls[3].args[0]), (__HYPERVISOR_fpu_taskswitch, 1));
    }
}
