//! `console_io`: Xen's emergency console (the hypervisor's own log).
//!
//! Xen only honours this for privileged domains unless built with guest
//! console output enabled; QEMU's Xen emulation returns `ENOSYS`, so
//! callers should fall back to the PV console ring.

use crate::abi::xen::{__HYPERVISOR_console_io, CONSOLEIO_read, CONSOLEIO_write};
use crate::transport::{addr_of, addr_of_mut, hypercall3};
use crate::XenError;

/// Writes `bytes` to the hypervisor console.
pub fn write(bytes: &[u8]) -> Result<(), XenError> {
    let len = super::count(bytes.len())?;
    // SAFETY: Xen only reads `len` bytes from `bytes`, which is borrowed
    // for the duration of the call.
    let ret =
        unsafe { hypercall3(__HYPERVISOR_console_io, CONSOLEIO_write as u64, len as u64, addr_of(bytes)) };
    super::unit(ret)
}

/// Reads pending console input into `buf`; returns the bytes read.
pub fn read(buf: &mut [u8]) -> Result<usize, XenError> {
    let len = super::count(buf.len())?;
    // SAFETY: Xen writes at most `len` bytes into `buf`, which is mutably
    // borrowed for the duration of the call.
    let ret =
        unsafe { hypercall3(__HYPERVISOR_console_io, CONSOLEIO_read as u64, len as u64, addr_of_mut(buf)) };
    XenError::from_return(ret).map(|n| n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::testing::{read_guest_slice, with_responder, write_guest};

    #[test]
    fn write_passes_command_length_and_buffer() {
        let (result, calls) = with_responder(
            |call| {
                let text: Vec<u8> = read_guest_slice(call.args[2], call.args[1] as usize);
                assert_eq!(text, b"hello");
                0
            },
            || write(b"hello"),
        );
        assert_eq!(result, Ok(()));
        assert_eq!(calls[0].nr, __HYPERVISOR_console_io);
        assert_eq!(calls[0].args[..2], [CONSOLEIO_write as u64, 5]);
    }

    #[test]
    fn write_reports_enosys_from_qemu() {
        let (result, _) = with_responder(|_| XenError::ENOSYS.to_return(), || write(b"x"));
        assert_eq!(result, Err(XenError::ENOSYS));
    }

    #[test]
    fn read_returns_the_bytes_xen_wrote() {
        let mut buf = [0u8; 8];
        let (result, calls) = with_responder(
            |call| {
                write_guest(call.args[2], *b"ab");
                2
            },
            || read(&mut buf),
        );
        assert_eq!(result, Ok(2));
        assert_eq!(calls[0].args[..2], [CONSOLEIO_read as u64, 8]);
        assert_eq!(&buf[..2], b"ab");
    }
}
