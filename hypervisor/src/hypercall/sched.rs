//! `sched_op`: yield, block, poll and shutdown.

use hypercalls::abi::sched::*;
use hypercalls::XenError;

use super::{Args, HypercallResult};
use crate::arch::entry::Frame;
use crate::arch::guest_access;
use crate::domain;

pub fn sched_op(Args([command, argument, ..]): Args, _frame: &mut Frame) -> HypercallResult {
    match u32::try_from(command).map_err(|_| XenError::ENOSYS)? {
        SCHEDOP_yield => Ok(0),
        SCHEDOP_shutdown => {
            let request: SchedShutdownArg =
                guest_access::read_struct(argument).map_err(|_| XenError::EFAULT)?;
            shutdown(request.reason)
        }
        _ => Err(XenError::ENOSYS),
    }
}

/// The pre-3.0.2 form: the argument is the reason itself, not a pointer.
pub fn sched_op_compat(Args([command, argument, ..]): Args, _frame: &mut Frame) -> HypercallResult {
    match u32::try_from(command).map_err(|_| XenError::ENOSYS)? {
        SCHEDOP_yield => Ok(0),
        SCHEDOP_shutdown => shutdown(u32::try_from(argument).map_err(|_| XenError::EINVAL)?),
        _ => Err(XenError::ENOSYS),
    }
}

/// Copy of `struct sched_shutdown` that can be read from guest memory.
#[derive(Clone, Copy, Default)]
#[repr(C)]
struct SchedShutdownArg {
    reason: u32,
}

const _: () = assert!(core::mem::size_of::<SchedShutdownArg>() == core::mem::size_of::<SchedShutdown>());

fn shutdown(reason: u32) -> HypercallResult {
    if reason > SHUTDOWN_MAX {
        return Err(XenError::EINVAL);
    }
    domain::with(|d| d.shutdown_reason = Some(reason));
    Ok(0)
}
