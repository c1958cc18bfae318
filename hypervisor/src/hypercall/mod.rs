//! Hypercall dispatch. A 64-bit PV guest enters with SYSCALL, the number in
//! %rax and arguments in %rdi, %rsi, %rdx, %r10, %r8; the result goes back
//! in %rax, a negative Xen errno on failure. Unknown numbers get -ENOSYS.

mod console;
mod sched;
mod version;

use hypercalls::abi::xen::*;
use hypercalls::XenError;

use crate::arch::entry::Frame;

/// What a hypercall handler returns: a value for %rax or a Xen error.
pub type HypercallResult = Result<u64, XenError>;

/// The five argument registers, in order.
#[derive(Clone, Copy, Debug)]
pub struct Args(pub [u64; 5]);

pub fn dispatch(frame: &mut Frame) {
    let number = frame.rax;
    let args = Args([frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8]);
    let result = call(number, args, frame);
    frame.rax = match result {
        Ok(value) => value,
        Err(error) => error.to_return() as u64,
    };
}

fn call(number: u64, args: Args, frame: &mut Frame) -> HypercallResult {
    let Ok(number) = u32::try_from(number) else {
        return Err(XenError::ENOSYS);
    };
    log::debug!("hypercall {number} {:x?}", args.0);
    match number {
        __HYPERVISOR_console_io => console::console_io(args),
        __HYPERVISOR_xen_version => version::xen_version(args),
        __HYPERVISOR_sched_op => sched::sched_op(args, frame),
        __HYPERVISOR_sched_op_compat => sched::sched_op_compat(args, frame),
        _ => Err(XenError::ENOSYS),
    }
}
