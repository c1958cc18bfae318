//! `grant_table_op`: setting up and sizing the grant table.
//!
//! Grant operations report per-operation failures in a `status` field with
//! `GNTST_*` codes rather than errnos; [`gntst_to_error`] maps them.

use crate::abi::grant_table::*;
use crate::abi::xen::{__HYPERVISOR_grant_table_op, XenPfn, DOMID_SELF};
use crate::transport::{addr_of_mut, hypercall3};
use crate::XenError;

/// The errno closest to a `GNTST_*` status.
pub fn gntst_to_error(status: i16) -> Result<(), XenError> {
    match status {
        GNTST_okay => Ok(()),
        GNTST_bad_domain => Err(XenError::ESRCH),
        GNTST_permission_denied => Err(XenError::EPERM),
        GNTST_bad_page | GNTST_bad_virt_addr | GNTST_bad_dev_addr => Err(XenError::EFAULT),
        GNTST_no_device_space | GNTST_no_space => Err(XenError::ENOSPC),
        GNTST_eagain => Err(XenError::EAGAIN),
        GNTST_bad_gntref | GNTST_bad_handle | GNTST_bad_copy_arg | GNTST_address_too_big => {
            Err(XenError::EINVAL)
        }
        _ => Err(XenError::EIO),
    }
}

fn op<T>(cmd: u32, arg: &mut T) -> Result<(), XenError> {
    // SAFETY: the commands used here take one `T` (count 1), the struct
    // named for them in grant_table.h, mutably borrowed for the call; the
    // frame lists they name are set up by the callers below from borrowed
    // slices of the right length.
    super::unit(unsafe { hypercall3(__HYPERVISOR_grant_table_op, cmd as u64, addr_of_mut(arg), 1) })
}

/// Asks for this domain's grant table frames: fills `frames` (its length
/// is the number of frames wanted) with their frame numbers.
pub fn setup_table(frames: &mut [XenPfn]) -> Result<(), XenError> {
    let mut arg = GnttabSetupTable {
        dom: DOMID_SELF,
        nr_frames: super::count(frames.len())?,
        status: 0,
        frame_list: addr_of_mut(frames),
    };
    op(GNTTABOP_setup_table, &mut arg)?;
    gntst_to_error(arg.status)
}

/// Current and maximum number of grant-table frames of this domain.
pub fn query_size() -> Result<GnttabQuerySize, XenError> {
    let mut arg = GnttabQuerySize { dom: DOMID_SELF, ..GnttabQuerySize::default() };
    op(GNTTABOP_query_size, &mut arg)?;
    gntst_to_error(arg.status).map(|_| arg)
}

/// Selects grant-table format `version` (1 or 2); returns the version in use.
pub fn set_version(version: u32) -> Result<u32, XenError> {
    let mut arg = GnttabSetVersion { version };
    op(GNTTABOP_set_version, &mut arg).map(|_| arg.version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::testing::{read_guest, with_responder, write_guest};

    #[test]
    fn setup_table_fills_frames() {
        let mut frames = [0; 2];
        let (result, calls) = with_responder(
            |call| {
                let mut arg: GnttabSetupTable = read_guest(call.args[1]);
                assert_eq!((arg.dom, arg.nr_frames), (DOMID_SELF, 2));
                write_guest(arg.frame_list, [0x100u64, 0x101]);
                arg.status = GNTST_okay;
                write_guest(call.args[1], arg);
                0
            },
            || setup_table(&mut frames),
        );
        assert_eq!(result, Ok(()));
        assert_eq!(frames, [0x100, 0x101]);
        assert_eq!(calls[0].nr, __HYPERVISOR_grant_table_op);
        assert_eq!(calls[0].args[0], GNTTABOP_setup_table as u64);
        assert_eq!(calls[0].args[2], 1);
    }

    #[test]
    fn a_bad_status_becomes_an_error() {
        let (result, _) = with_responder(
            |call| {
                let mut arg: GnttabQuerySize = read_guest(call.args[1]);
                arg.status = GNTST_bad_domain;
                write_guest(call.args[1], arg);
                0
            },
            query_size,
        );
        assert_eq!(result, Err(XenError::ESRCH));
        assert_eq!(gntst_to_error(GNTST_general_error), Err(XenError::EIO));
    }

    #[test]
    fn set_version_reports_the_version_in_use() {
        let (result, _) = with_responder(
            |call| {
                write_guest(call.args[1], GnttabSetVersion { version: 1 });
                0
            },
            || set_version(2),
        );
        assert_eq!(result, Ok(1));
    }
}
