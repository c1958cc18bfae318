//! `console_io`: the hypervisor's own console, which Xen offers to every
//! domain for debugging (and to dom0 as its main console).

use hypercalls::abi::xen::{CONSOLEIO_read, CONSOLEIO_write};
use hypercalls::XenError;

use super::{Args, HypercallResult};
use crate::arch::guest_access;
use crate::console;

/// Bytes copied per chunk; Xen also writes in bounded chunks.
const CHUNK: usize = 128;
/// The most one call may write, as a sanity bound on a guest's count.
const MAX_WRITE: u64 = 1 << 20;

pub fn console_io(Args([command, count, buffer, ..]): Args) -> HypercallResult {
    // Xen declares the count `unsigned int`: the upper 32 bits are not part of it.
    let count = count & 0xffff_ffff;
    match u32::try_from(command).map_err(|_| XenError::ENOSYS)? {
        CONSOLEIO_write => write(count, buffer),
        CONSOLEIO_read => read(count, buffer),
        _ => Err(XenError::ENOSYS),
    }
}

fn write(count: u64, buffer: u64) -> HypercallResult {
    if count > MAX_WRITE {
        return Err(XenError::EINVAL);
    }
    let mut chunk = [0u8; CHUNK];
    let mut done = 0;
    while done < count {
        let len = (count - done).min(CHUNK as u64) as usize;
        guest_access::read(buffer + done, &mut chunk[..len]).map_err(|_| XenError::EFAULT)?;
        console::write_guest(&chunk[..len]);
        done += len as u64;
    }
    Ok(0)
}

/// Returns what serial input has arrived, up to `count` bytes.
fn read(count: u64, buffer: u64) -> HypercallResult {
    let mut copied = 0;
    while copied < count {
        let Some(byte) = console::read_byte() else { break };
        guest_access::write(buffer + copied, &[byte]).map_err(|_| XenError::EFAULT)?;
        copied += 1;
    }
    Ok(copied)
}
