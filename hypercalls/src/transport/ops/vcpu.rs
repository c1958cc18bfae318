//! `vcpu_op`: per-vCPU timers, state and shared areas.

use crate::abi::vcpu::*;
use crate::abi::xen::{__HYPERVISOR_vcpu_op, VcpuGuestContext};
use crate::transport::{addr_of_mut, hypercall3};
use crate::XenError;

/// Issues `VCPUOP_<cmd>` for `vcpu` with `arg` (or none).
///
/// # Safety
///
/// `arg`, if given, must be the struct `cmd` takes.
unsafe fn op<T>(cmd: u32, vcpu: u32, arg: Option<&mut T>) -> Result<u64, XenError> {
    let addr = arg.map_or(0, addr_of_mut);
    // SAFETY: `arg` is mutably borrowed for the call; which struct it is
    // is the caller's contract.
    XenError::from_return(unsafe { hypercall3(__HYPERVISOR_vcpu_op, cmd as u64, vcpu as u64, addr) })
}

/// Whether `vcpu` is up.
pub fn is_up(vcpu: u32) -> Result<bool, XenError> {
    // SAFETY: VCPUOP_is_up takes no argument.
    unsafe { op::<()>(VCPUOP_is_up, vcpu, None) }.map(|up| up != 0)
}

/// Raises `VIRQ_TIMER` on `vcpu` at absolute system time `timeout_abs_ns`;
/// `flags` is `VCPU_SSHOTTMR_future` to fail with `ETIME` if already past.
pub fn set_singleshot_timer(vcpu: u32, timeout_abs_ns: u64, flags: u32) -> Result<(), XenError> {
    let mut arg = VcpuSetSingleshotTimer { timeout_abs_ns, flags };
    // SAFETY: Xen reads the struct borrowed here.
    unsafe { op(VCPUOP_set_singleshot_timer, vcpu, Some(&mut arg)) }.map(|_| ())
}

/// Cancels `vcpu`'s single-shot timer.
pub fn stop_singleshot_timer(vcpu: u32) -> Result<(), XenError> {
    // SAFETY: no argument.
    unsafe { op::<()>(VCPUOP_stop_singleshot_timer, vcpu, None) }.map(|_| ())
}

/// Raises `VIRQ_TIMER` on `vcpu` every `period_ns`.
pub fn set_periodic_timer(vcpu: u32, period_ns: u64) -> Result<(), XenError> {
    let mut arg = VcpuSetPeriodicTimer { period_ns };
    // SAFETY: Xen reads the struct borrowed here.
    unsafe { op(VCPUOP_set_periodic_timer, vcpu, Some(&mut arg)) }.map(|_| ())
}

/// Stops `vcpu`'s periodic timer.
pub fn stop_periodic_timer(vcpu: u32) -> Result<(), XenError> {
    // SAFETY: no argument.
    unsafe { op::<()>(VCPUOP_stop_periodic_timer, vcpu, None) }.map(|_| ())
}

/// Has Xen keep `area` updated with `vcpu`'s runstate from now on.
pub fn register_runstate_memory_area(vcpu: u32, area: &'static mut VcpuRunstateInfo) -> Result<(), XenError> {
    let mut arg = VcpuRegisterRunstateMemoryArea { addr: addr_of_mut(area) };
    // SAFETY: Xen keeps writing a `VcpuRunstateInfo` at `area`, which the
    // caller gave up for good (`&'static mut`), so no Rust code reads it
    // through another reference while Xen writes.
    unsafe { op(VCPUOP_register_runstate_memory_area, vcpu, Some(&mut arg)) }.map(|_| ())
}

/// Moves `vcpu`'s `vcpu_info` to byte `offset` of frame `mfn` (a GFN for
/// HVM/PVH guests).
///
/// # Safety
///
/// From now on Xen writes a `VcpuInfo` at that location at any time: the
/// memory must stay reserved for it (never reused or unmapped).
pub unsafe fn register_vcpu_info(vcpu: u32, mfn: u64, offset: u32) -> Result<(), XenError> {
    let mut arg = VcpuRegisterVcpuInfo { mfn, offset, rsvd: 0 };
    // SAFETY: the struct is borrowed for the call; the lasting effect is
    // the caller's contract above.
    unsafe { op(VCPUOP_register_vcpu_info, vcpu, Some(&mut arg)) }.map(|_| ())
}

/// Sets the initial register state of offline PV `vcpu` (then [`up`]).
///
/// # Safety
///
/// The vCPU will start running at `context.user_regs.rip` on the page
/// tables, stack and trap table `context` names: all must be valid for it.
pub unsafe fn initialise(vcpu: u32, context: &VcpuGuestContext) -> Result<(), XenError> {
    let mut copy = *context;
    // SAFETY: Xen reads the context copy borrowed here; the state it names
    // is the caller's contract above.
    unsafe { op(VCPUOP_initialise, vcpu, Some(&mut copy)) }.map(|_| ())
}

/// Brings up an initialised, offline vCPU.
pub fn up(vcpu: u32) -> Result<(), XenError> {
    // SAFETY: no argument; Xen refuses (EINVAL) a vCPU never initialised.
    unsafe { op::<()>(VCPUOP_up, vcpu, None) }.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::testing::{read_guest, with_responder};

    #[test]
    fn singleshot_timer_passes_vcpu_deadline_and_flags() {
        let (result, calls) = with_responder(
            |call| {
                let arg: VcpuSetSingleshotTimer = read_guest(call.args[2]);
                assert_eq!((arg.timeout_abs_ns, arg.flags), (5_000, VCPU_SSHOTTMR_future));
                0
            },
            || set_singleshot_timer(2, 5_000, VCPU_SSHOTTMR_future),
        );
        assert_eq!(result, Ok(()));
        assert_eq!(calls[0].nr, __HYPERVISOR_vcpu_op);
        assert_eq!(calls[0].args[..2], [VCPUOP_set_singleshot_timer as u64, 2]);
    }

    #[test]
    fn is_up_decodes_the_return_value() {
        let (up, calls) = with_responder(|_| 1, || is_up(0));
        assert_eq!(up, Ok(true));
        assert_eq!(calls[0].args, [VCPUOP_is_up as u64, 0, 0, 0, 0]);
        let (down, _) = with_responder(|_| 0, || is_up(3));
        assert_eq!(down, Ok(false));
    }

    #[test]
    fn register_vcpu_info_sends_frame_and_offset() {
        let (result, _) = with_responder(
            |call| {
                let arg: VcpuRegisterVcpuInfo = read_guest(call.args[2]);
                assert_eq!((arg.mfn, arg.offset), (0x77, 0x40));
                0
            },
            // SAFETY: intercepted.
            || unsafe { register_vcpu_info(0, 0x77, 0x40) },
        );
        assert_eq!(result, Ok(()));
    }
}
