//! `sched_op`: yielding, blocking, polling and shutting down.

use crate::abi::event_channel::EvtchnPort;
use crate::abi::sched::*;
use crate::abi::xen::__HYPERVISOR_sched_op;
use crate::transport::{addr_of, hypercall2};
use crate::XenError;

/// Gives up the CPU; the vCPU stays runnable.
pub fn sched_yield() -> Result<(), XenError> {
    // SAFETY: SCHEDOP_yield takes no argument and touches no guest memory.
    super::unit(unsafe { hypercall2(__HYPERVISOR_sched_op, SCHEDOP_yield as u64, 0) })
}

/// Sleeps until an event is pending for this vCPU. Xen clears the vCPU's
/// `evtchn_upcall_mask` first, so unmask-and-block is atomic.
pub fn block() -> Result<(), XenError> {
    // SAFETY: SCHEDOP_block takes no argument and touches no guest memory.
    super::unit(unsafe { hypercall2(__HYPERVISOR_sched_op, SCHEDOP_block as u64, 0) })
}

/// Shuts the domain down for `reason` (`SHUTDOWN_*`). Returns only for
/// `SHUTDOWN_suspend` (when resumed) or on error.
pub fn shutdown(reason: u32) -> Result<(), XenError> {
    let arg = SchedShutdown { reason };
    // SAFETY: Xen only reads the `SchedShutdown` borrowed here.
    super::unit(unsafe { hypercall2(__HYPERVISOR_sched_op, SCHEDOP_shutdown as u64, addr_of(&arg)) })
}

/// Records `reason` as the shutdown code without shutting down.
pub fn shutdown_code(reason: u32) -> Result<(), XenError> {
    let arg = SchedShutdown { reason };
    // SAFETY: Xen only reads the `SchedShutdown` borrowed here.
    super::unit(unsafe { hypercall2(__HYPERVISOR_sched_op, SCHEDOP_shutdown_code as u64, addr_of(&arg)) })
}

/// Sleeps until one of `ports` is pending or system time reaches
/// `timeout_abs_ns` (0: no timeout).
pub fn poll(ports: &[EvtchnPort], timeout_abs_ns: u64) -> Result<(), XenError> {
    let arg =
        SchedPoll { ports: addr_of(ports), nr_ports: super::count(ports.len())?, timeout: timeout_abs_ns };
    // SAFETY: Xen reads the `SchedPoll` and `nr_ports` ports from `ports`,
    // both borrowed for the call.
    super::unit(unsafe { hypercall2(__HYPERVISOR_sched_op, SCHEDOP_poll as u64, addr_of(&arg)) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::testing::{read_guest, read_guest_slice, with_responder};

    #[test]
    fn shutdown_passes_the_reason() {
        let (result, calls) = with_responder(
            |call| {
                let arg: SchedShutdown = read_guest(call.args[1]);
                assert_eq!(arg.reason, SHUTDOWN_crash);
                0
            },
            || shutdown(SHUTDOWN_crash),
        );
        assert_eq!(result, Ok(()));
        assert_eq!(calls[0].nr, __HYPERVISOR_sched_op);
        assert_eq!(calls[0].args[0], SCHEDOP_shutdown as u64);
    }

    #[test]
    fn poll_passes_ports_and_timeout() {
        let (result, _) = with_responder(
            |call| {
                assert_eq!(call.args[0], SCHEDOP_poll as u64);
                let arg: SchedPoll = read_guest(call.args[1]);
                assert_eq!(arg.timeout, 1234);
                let ports: Vec<u32> = read_guest_slice(arg.ports, arg.nr_ports as usize);
                assert_eq!(ports, [3, 7]);
                0
            },
            || poll(&[3, 7], 1234),
        );
        assert_eq!(result, Ok(()));
    }

    #[test]
    fn yield_and_block_use_their_commands() {
        let ((), calls) = with_responder(
            |_| 0,
            || {
                sched_yield().unwrap();
                block().unwrap();
            },
        );
        assert_eq!(calls[0].args[0], SCHEDOP_yield as u64);
        assert_eq!(calls[1].args[0], SCHEDOP_block as u64);
    }
}
