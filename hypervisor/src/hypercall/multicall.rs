//! `multicall(calls, count)`: several hypercalls for the price of one
//! entry. Each `multicall_entry` (op, result, args[6]) gets its own result;
//! a failing entry does not stop the batch.

use hypercalls::abi::xen::{__HYPERVISOR_iret, __HYPERVISOR_multicall};
use hypercalls::XenError;

use super::{Args, HypercallResult};
use crate::arch::entry::Frame;
use crate::arch::guest_access;

const ENTRY_SIZE: u64 = 64;

pub fn multicall(Args([list, count, ..]): Args, frame: &mut Frame) -> HypercallResult {
    // Xen declares the count `uint32_t`: the upper 32 bits are not part of it.
    for index in 0..(count & 0xffff_ffff) {
        let entry = list.checked_add(index * ENTRY_SIZE).ok_or(XenError::EFAULT)?;
        let mut raw = [0u8; 64];
        guest_access::read(entry, &mut raw).map_err(|_| XenError::EFAULT)?;
        let word = |i: usize| u64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap_or_default());
        let op = word(0);
        let args = Args([word(2), word(3), word(4), word(5), word(6)]);
        // Neither a nested multicall nor an iret may run inside a batch.
        let result = match u32::try_from(op) {
            Ok(__HYPERVISOR_multicall | __HYPERVISOR_iret) => Err(XenError::EINVAL),
            _ => super::call(op, args, frame),
        };
        let value = match result {
            Ok(value) => value,
            Err(error) => error.to_return() as u64,
        };
        guest_access::write(entry + 8, &value.to_le_bytes()).map_err(|_| XenError::EFAULT)?;
        if crate::domain::shutdown_reason().is_some() {
            break;
        }
    }
    Ok(0)
}
