//! `physdev_op`: physical interrupts and I/O privilege.

use crate::abi::physdev::*;
use crate::abi::xen::__HYPERVISOR_physdev_op;
use crate::transport::{addr_of_mut, hypercall2};
use crate::XenError;

/// Issues `PHYSDEVOP_<cmd>` on `arg`.
///
/// # Safety
///
/// `arg` must be the struct `cmd` takes; some commands (I/O privilege,
/// PIRQ mapping, PCI management) hand the guest hardware access that can
/// reach memory by DMA, which the caller must use correctly.
pub unsafe fn physdev_op<T>(cmd: u32, arg: &mut T) -> Result<(), XenError> {
    // SAFETY: `arg` is mutably borrowed for the call; the command's effects
    // are the caller's contract.
    super::unit(unsafe { hypercall2(__HYPERVISOR_physdev_op, cmd as u64, addr_of_mut(arg)) })
}

/// Signals end-of-interrupt for PIRQ `irq`.
pub fn eoi(irq: u32) -> Result<(), XenError> {
    // SAFETY: PHYSDEVOP_eoi takes a `PhysdevEoi` and only acknowledges.
    unsafe { physdev_op(PHYSDEVOP_eoi, &mut PhysdevEoi { irq }) }
}

/// `XENIRQSTAT_*` flags of PIRQ `irq`.
pub fn irq_status_query(irq: u32) -> Result<u32, XenError> {
    let mut arg = PhysdevIrqStatusQuery { irq, flags: 0 };
    // SAFETY: PHYSDEVOP_irq_status_query takes this struct and only
    // reports.
    unsafe { physdev_op(PHYSDEVOP_irq_status_query, &mut arg) }.map(|_| arg.flags)
}

/// Sets the vCPU's I/O privilege level (0-3; a PV kernel in ring 3 needs
/// 3 for `in`/`out`).
///
/// # Safety
///
/// Port I/O can program devices (and their DMA): the caller must only
/// touch ports it owns.
pub unsafe fn set_iopl(iopl: u32) -> Result<(), XenError> {
    // SAFETY: the struct is borrowed; the privilege is the caller's contract.
    unsafe { physdev_op(PHYSDEVOP_set_iopl, &mut PhysdevSetIopl { iopl }) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::testing::{read_guest, with_responder, write_guest};

    #[test]
    fn irq_status_query_returns_flags() {
        let (result, calls) = with_responder(
            |call| {
                let mut arg: PhysdevIrqStatusQuery = read_guest(call.args[1]);
                assert_eq!(arg.irq, 9);
                arg.flags = XENIRQSTAT_needs_eoi;
                write_guest(call.args[1], arg);
                0
            },
            || irq_status_query(9),
        );
        assert_eq!(result, Ok(XENIRQSTAT_needs_eoi));
        assert_eq!(
            (calls[0].nr, calls[0].args[0]),
            (__HYPERVISOR_physdev_op, PHYSDEVOP_irq_status_query as u64)
        );
    }

    #[test]
    fn set_iopl_passes_the_level() {
        let (result, _) = with_responder(
            |call| {
                assert_eq!(read_guest::<PhysdevSetIopl>(call.args[1]).iopl, 3);
                0
            },
            // SAFETY: intercepted.
            || unsafe { set_iopl(3) },
        );
        assert_eq!(result, Ok(()));
    }
}
