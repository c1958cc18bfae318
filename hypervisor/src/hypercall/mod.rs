//! Hypercall dispatch. A 64-bit PV guest enters with SYSCALL, the number in
//! %rax and arguments in %rdi, %rsi, %rdx, %r10, %r8; the result goes back
//! in %rax, a negative Xen errno on failure. Unknown numbers get -ENOSYS.

mod console;
mod control;
mod cpu;
mod debugreg;
mod event_channel;
mod exchange;
mod grant_table;
mod guest_frames;
mod memory;
mod mm;
mod multicall;
mod physdev;
mod reservation;
mod sched;
mod timer;
mod vcpu;
mod version;

use hypercalls::abi::xen::*;
use hypercalls::XenError;

use crate::arch::entry::Frame;
pub use mm::l1_slot;

/// What a hypercall handler returns: a value for %rax or a Xen error.
pub type HypercallResult = Result<u64, XenError>;

/// The five argument registers, in order.
#[derive(Clone, Copy, Debug)]
pub struct Args(pub [u64; 5]);

#[inline(always)]
pub fn dispatch(frame: &mut Frame) {
    let number = frame.rax;
    let args = Args([frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8]);
    let result = call(number, args, frame);
    frame.rax = match result {
        Ok(value) => value,
        Err(error) => error.to_return() as u64,
    };
}

#[inline(always)]
fn call(number: u64, args: Args, frame: &mut Frame) -> HypercallResult {
    // A number with upper bits set names no hypercall (checked by hand:
    // this is the hottest path in the hypervisor).
    if number > u64::from(u32::MAX) {
        return Err(XenError::ENOSYS);
    }
    let number = number as u32;
    log::debug!("hypercall {number} {:x?}", args.0);
    match number {
        __HYPERVISOR_console_io => console::console_io(args),
        __HYPERVISOR_xen_version => version::xen_version(args),
        __HYPERVISOR_sched_op => sched::sched_op(args, frame),
        __HYPERVISOR_sched_op_compat => sched::sched_op_compat(args, frame),
        __HYPERVISOR_mmu_update => mm::mmu_update(args),
        __HYPERVISOR_mmuext_op => mm::mmuext_op(args),
        __HYPERVISOR_update_va_mapping => mm::update_va_mapping(args),
        __HYPERVISOR_update_va_mapping_otherdomain => mm::update_va_mapping_otherdomain(args),
        __HYPERVISOR_set_trap_table => cpu::set_trap_table(args),
        __HYPERVISOR_set_callbacks => cpu::set_callbacks(args),
        __HYPERVISOR_callback_op => cpu::callback_op(args),
        __HYPERVISOR_iret => cpu::iret(frame),
        __HYPERVISOR_stack_switch => cpu::stack_switch(args),
        __HYPERVISOR_fpu_taskswitch => cpu::fpu_taskswitch(args),
        __HYPERVISOR_set_segment_base => cpu::set_segment_base(args),
        __HYPERVISOR_vm_assist => cpu::vm_assist(args),
        __HYPERVISOR_set_gdt => cpu::set_gdt(args),
        __HYPERVISOR_update_descriptor => cpu::update_descriptor(args),
        __HYPERVISOR_memory_op => memory::memory_op(args),
        __HYPERVISOR_multicall => multicall::multicall(args, frame),
        __HYPERVISOR_physdev_op => physdev::physdev_op(args),
        __HYPERVISOR_set_debugreg => debugreg::set_debugreg(args),
        __HYPERVISOR_get_debugreg => debugreg::get_debugreg(args),
        __HYPERVISOR_event_channel_op => event_channel::event_channel_op(args),
        __HYPERVISOR_event_channel_op_compat => event_channel::event_channel_op_compat(args),
        __HYPERVISOR_vcpu_op => vcpu::vcpu_op(args),
        __HYPERVISOR_grant_table_op => grant_table::grant_table_op(args),
        __HYPERVISOR_set_timer_op => timer::set_timer_op(args),
        __HYPERVISOR_nmi_op => cpu::nmi_op(args),
        __HYPERVISOR_physdev_op_compat => physdev::physdev_op_compat(args),
        __HYPERVISOR_platform_op => control::platform_op(args),
        __HYPERVISOR_sysctl => control::sysctl(args),
        __HYPERVISOR_domctl => control::domctl(args),
        _ => Err(XenError::ENOSYS),
    }
}
