//! `sched_op`: yield, block, poll, shutdown and shutdown_code (and the
//! pre-3.0.2 `sched_op_compat`).

use hypercalls::abi::sched::*;
use hypercalls::XenError;
use hypervisor::services::ports::NR_PORTS;
use hypervisor::services::shutdown::ShutdownCode;
use spin::Mutex;

use super::{Args, HypercallResult};
use crate::arch::entry::Frame;
use crate::arch::guest_access;
use crate::domain::{self, BACKEND_DOMID, GUEST_DOMID};
use crate::events;

/// Xen's limit on the ports one `SCHEDOP_poll` may name.
const MAX_POLL_PORTS: u32 = 128;

pub fn sched_op(Args([command, argument, ..]): Args, _frame: &mut Frame) -> HypercallResult {
    // Xen's `int cmd`: the upper half of the register is ignored.
    match command as u32 {
        SCHEDOP_yield => Ok(0),
        SCHEDOP_block => {
            events::block();
            Ok(0)
        }
        SCHEDOP_shutdown => {
            let request: SchedShutdownArg = read(argument)?;
            shutdown_domain(request.reason);
            Ok(0)
        }
        SCHEDOP_shutdown_code => {
            let request: SchedShutdownArg = read(argument)?;
            SHUTDOWN_CODE.lock().record(request.reason);
            Ok(0)
        }
        SCHEDOP_poll => poll(read(argument)?),
        SCHEDOP_remote_shutdown => {
            let request: SchedRemoteShutdown = read(argument)?;
            if request.domain_id == GUEST_DOMID || request.domain_id == BACKEND_DOMID {
                // Only a domain's device model or the control domain may.
                Err(XenError::EPERM)
            } else {
                Err(XenError::ESRCH)
            }
        }
        // Pinning overrides are for the hardware domain only.
        SCHEDOP_pin_override => Err(XenError::EPERM),
        _ => Err(XenError::ENOSYS),
    }
}

/// The pre-3.0.2 form: the argument is the reason itself, not a pointer.
pub fn sched_op_compat(Args([command, argument, ..]): Args, _frame: &mut Frame) -> HypercallResult {
    match command as u32 {
        SCHEDOP_yield => Ok(0),
        SCHEDOP_block => {
            events::block();
            Ok(0)
        }
        SCHEDOP_shutdown => {
            shutdown_domain(argument as u32);
            Ok(0)
        }
        _ => Err(XenError::ENOSYS),
    }
}

fn read<T: Copy + Default>(address: u64) -> Result<T, XenError> {
    guest_access::read_struct(address).map_err(|_| XenError::EFAULT)
}

/// Copy of `struct sched_shutdown` that can be read from guest memory.
#[derive(Clone, Copy, Default)]
#[repr(C)]
struct SchedShutdownArg {
    reason: u32,
}

const _: () = assert!(core::mem::size_of::<SchedShutdownArg>() == core::mem::size_of::<SchedShutdown>());

static SHUTDOWN_CODE: Mutex<ShutdownCode> = Mutex::new(ShutdownCode::new());

/// Xen's `domain_shutdown`: a code recorded earlier with
/// `SCHEDOP_shutdown_code` takes precedence over `reason`. The domain stops
/// on the way back to it (see `traps`).
pub fn shutdown_domain(reason: u32) {
    let code = SHUTDOWN_CODE.lock().shutdown(reason);
    domain::record_shutdown(u32::from(code));
}

/// `SCHEDOP_poll`: returns at once if an upcall is deliverable or a named
/// port is already pending; otherwise sleeps until one of the named ports
/// fires (with several ports, any port), an upcall is raised, or the
/// absolute `timeout` passes (0: none).
fn poll(request: SchedPoll) -> HypercallResult {
    if request.nr_ports > MAX_POLL_PORTS {
        return Err(XenError::EINVAL);
    }
    let list_len = u64::from(request.nr_ports) * 4;
    if !guest_access::is_guest_range(request.ports, list_len) {
        return Err(XenError::EFAULT);
    }
    if events::with(|_, guest| guest.need_delivery()) {
        return Ok(0);
    }
    let mut last = 0;
    for index in 0..u64::from(request.nr_ports) {
        let mut raw = [0u8; 4];
        guest_access::read(request.ports + 4 * index, &mut raw).map_err(|_| XenError::EFAULT)?;
        let port = u32::from_le_bytes(raw);
        if port >= NR_PORTS {
            return Err(XenError::EINVAL);
        }
        if events::with(|state, guest| state.channels.guest_port_pending(port, guest))? {
            return Ok(0);
        }
        last = port;
    }
    events::poll_wait((request.nr_ports == 1).then_some(last), request.timeout);
    Ok(0)
}
