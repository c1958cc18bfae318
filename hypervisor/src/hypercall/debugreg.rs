//! `set_debugreg` / `get_debugreg`: the guest's view of DR0-DR7. Breakpoint
//! addresses must lie in the guest's own address space, and no breakpoint
//! may be enabled: this hypervisor does not switch debug registers, so it
//! accepts only the state guests set at boot (everything cleared).

use hypercalls::XenError;

use super::{Args, HypercallResult};
use crate::arch::guest_access;

/// DR6's architectural reset value.
const DR6_DEFAULT: u64 = 0xffff_0ff0;

static DEBUG_REGISTERS: spin::Mutex<[u64; 8]> = spin::Mutex::new([0, 0, 0, 0, 0, 0, DR6_DEFAULT, 0x400]);

pub fn set_debugreg(Args([register, value, ..]): Args) -> HypercallResult {
    let register = usize::try_from(register).map_err(|_| XenError::EINVAL)?;
    const GENERAL_DETECT: u64 = 1 << 13;
    match register {
        0..=3 if value == 0 || guest_access::is_guest_range(value, 1) => {}
        0..=3 => return Err(XenError::EPERM),
        // DR6 is status; DR7 may be written only with every breakpoint
        // disabled, and never with general detect (as on Xen).
        6 => {}
        7 if value & GENERAL_DETECT != 0 => return Err(XenError::EPERM),
        7 if value & 0xff == 0 => {}
        7 => return Err(XenError::EPERM),
        _ => return Err(XenError::ENODEV),
    }
    DEBUG_REGISTERS.lock()[register] = value;
    Ok(0)
}

pub fn get_debugreg(Args([register, ..]): Args) -> HypercallResult {
    match usize::try_from(register) {
        Ok(register @ (0..=3 | 6 | 7)) => Ok(DEBUG_REGISTERS.lock()[register]),
        _ => Err(XenError::EINVAL),
    }
}
