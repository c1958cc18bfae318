//! `vcpu_op(cmd, vcpuid, arg)`: per-vCPU state, timers and shared areas.
//! The domain has one vCPU, which is up and initialised from the start.

use core::mem::size_of;

use hypercalls::abi::sched::SHUTDOWN_poweroff;
use hypercalls::abi::vcpu::*;
use hypercalls::abi::xen::{VcpuInfo, VcpuTimeInfo};
use hypercalls::XenError;
use hypervisor::services::ports::MAX_VCPUS;

use super::{Args, HypercallResult};
use crate::arch::guest_access;
use crate::arch::memory::PAGE_SIZE;
use crate::{events, time};

fn read<T: Copy + Default>(address: u64) -> Result<T, XenError> {
    guest_access::read_struct(address).map_err(|_| XenError::EFAULT)
}

pub fn vcpu_op(Args([command, vcpu, argument, ..]): Args) -> HypercallResult {
    // Xen's `int cmd, unsigned int vcpuid`: upper halves are ignored.
    if vcpu as u32 >= MAX_VCPUS {
        return Err(XenError::ENOENT);
    }
    match command as u32 {
        // vCPU 0 is initialised by the domain builder.
        VCPUOP_initialise => Err(XenError::EEXIST),
        VCPUOP_up => Ok(0),
        // The last vCPU going down powers the domain off.
        VCPUOP_down => {
            super::sched::shutdown_domain(SHUTDOWN_poweroff);
            Ok(0)
        }
        VCPUOP_is_up => Ok(1),
        VCPUOP_get_runstate_info => {
            let now = time::now_ns();
            let info = events::with(|state, _| state.runstate().at(now));
            guest_access::write_struct(argument, &info).map_err(|_| XenError::EFAULT)?;
            Ok(0)
        }
        VCPUOP_set_periodic_timer => {
            let request: VcpuSetPeriodicTimer = read(argument)?;
            events::with(|state, _| state.timers.set_periodic(request.period_ns))?;
            events::timers_changed();
            Ok(0)
        }
        VCPUOP_stop_periodic_timer => {
            events::with(|state, _| state.timers.stop_periodic());
            events::timers_changed();
            Ok(0)
        }
        VCPUOP_set_singleshot_timer => {
            let request: VcpuSetSingleshotTimer = read(argument)?;
            let now = time::now_ns();
            events::with(|state, _| state.timers.set_singleshot(request.timeout_abs_ns, request.flags, now))?;
            events::timers_changed();
            Ok(0)
        }
        VCPUOP_stop_singleshot_timer => {
            events::with(|state, _| state.timers.stop_singleshot());
            events::timers_changed();
            Ok(0)
        }
        VCPUOP_register_vcpu_info => register_vcpu_info(read(argument)?),
        VCPUOP_register_runstate_memory_area => {
            let area: VcpuRegisterRunstateMemoryArea = read(argument)?;
            check_area::<VcpuRunstateInfo>(area.addr)?;
            events::register_runstate_area(area.addr);
            Ok(0)
        }
        VCPUOP_register_vcpu_time_memory_area => {
            let area: VcpuRegisterTimeMemoryArea = read(argument)?;
            check_area::<VcpuTimeInfo>(area.addr)?;
            events::register_time_area(area.addr);
            Ok(0)
        }
        // Delivered on the way back to the guest if it has an NMI handler,
        // dropped if not; the argument must be null.
        VCPUOP_send_nmi if argument != 0 => Err(XenError::EINVAL),
        VCPUOP_send_nmi => {
            events::raise_nmi();
            Ok(0)
        }
        // Only a hardware domain's pinned vCPUs have a physical id.
        VCPUOP_get_physid => Err(XenError::EINVAL),
        _ => Err(XenError::ENOSYS),
    }
}

/// Xen's `guest_handle_okay`: the area must lie in guest address space
/// (whether it is mapped is found out when it is written). 0 turns the
/// area off.
fn check_area<T>(address: u64) -> Result<(), XenError> {
    if guest_access::is_guest_range(address, size_of::<T>() as u64) {
        Ok(())
    } else {
        Err(XenError::EFAULT)
    }
}

/// `VCPUOP_register_vcpu_info`: moves vcpu_info into a guest frame, once.
/// The offset must leave the whole structure in the frame and keep its
/// 64-bit fields aligned (else -ENXIO, as Xen's map_vcpu_info); the frame
/// must be the guest's ordinary memory, which the hypervisor then holds.
fn register_vcpu_info(request: VcpuRegisterVcpuInfo) -> HypercallResult {
    let size = size_of::<VcpuInfo>() as u64;
    let offset = u64::from(request.offset);
    if offset > PAGE_SIZE - size || offset % 8 != 0 {
        return Err(XenError::ENXIO);
    }
    if events::with(|state, _| state.vcpu_info_frame().is_some()) {
        return Err(XenError::EINVAL);
    }
    events::hold_guest_frame(request.mfn).map_err(|_| XenError::EINVAL)?;
    let machine = request.mfn.checked_mul(PAGE_SIZE).ok_or(XenError::EINVAL)? + offset;
    events::move_vcpu_info(request.mfn, machine);
    Ok(0)
}
