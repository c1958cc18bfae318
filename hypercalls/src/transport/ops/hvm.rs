//! `hvm_op`: HVM parameters and event delivery for HVM/PVH guests.

use crate::abi::hvm::*;
use crate::abi::xen::{__HYPERVISOR_hvm_op, DOMID_SELF};
use crate::transport::{addr_of_mut, hypercall2};
use crate::XenError;

fn op<T>(cmd: u32, arg: &mut T) -> Result<(), XenError> {
    // SAFETY: the commands used in this module take exactly the struct `T`
    // named for them in hvm_op.h, mutably borrowed for the call; Xen
    // touches no other guest memory while handling them.
    super::unit(unsafe { hypercall2(__HYPERVISOR_hvm_op, cmd as u64, addr_of_mut(arg)) })
}

/// Reads `HVM_PARAM_<index>` of this domain (e.g. `HVM_PARAM_STORE_PFN`).
pub fn get_param(index: u32) -> Result<u64, XenError> {
    let mut arg = XenHvmParam { domid: DOMID_SELF, pad: 0, index, value: 0 };
    op(HVMOP_get_param, &mut arg).map(|_| arg.value)
}

/// Sets `HVM_PARAM_<index>` of this domain (e.g. `HVM_PARAM_CALLBACK_IRQ`
/// with [`hvm_callback_via_vector`]).
///
/// # Safety
///
/// Parameters redirect how Xen and backends reach the guest: a callback
/// vector must have a handler installed before events can arrive, and a
/// frame number given to a parameter becomes memory others write to.
pub unsafe fn set_param(index: u32, value: u64) -> Result<(), XenError> {
    let mut arg = XenHvmParam { domid: DOMID_SELF, pad: 0, index, value };
    op(HVMOP_set_param, &mut arg)
}

/// Delivers `vcpu`'s event upcalls on IDT `vector` (the per-vCPU
/// alternative to `HVM_PARAM_CALLBACK_IRQ`).
///
/// # Safety
///
/// A handler for `vector` must be installed on that vCPU.
pub unsafe fn set_evtchn_upcall_vector(vcpu: u32, vector: u8) -> Result<(), XenError> {
    let mut arg = XenHvmEvtchnUpcallVector { vcpu, vector };
    op(HVMOP_set_evtchn_upcall_vector, &mut arg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::testing::{read_guest, with_responder, write_guest};

    #[test]
    fn get_param_returns_the_value() {
        let (result, calls) = with_responder(
            |call| {
                let mut arg: XenHvmParam = read_guest(call.args[1]);
                assert_eq!((arg.domid, arg.index), (DOMID_SELF, HVM_PARAM_STORE_PFN));
                arg.value = 0xfeffc;
                write_guest(call.args[1], arg);
                0
            },
            || get_param(HVM_PARAM_STORE_PFN),
        );
        assert_eq!(result, Ok(0xfeffc));
        assert_eq!((calls[0].nr, calls[0].args[0]), (__HYPERVISOR_hvm_op, HVMOP_get_param as u64));
    }

    #[test]
    fn set_param_and_upcall_vector_send_their_values() {
        let ((), calls) = with_responder(
            |call| {
                if call.args[0] == HVMOP_set_param as u64 {
                    let arg: XenHvmParam = read_guest(call.args[1]);
                    assert_eq!(arg.value, hvm_callback_via_vector(0xf3));
                } else {
                    let arg: XenHvmEvtchnUpcallVector = read_guest(call.args[1]);
                    assert_eq!((arg.vcpu, arg.vector), (1, 0xf3));
                }
                0
            },
            // SAFETY: intercepted.
            || unsafe {
                set_param(HVM_PARAM_CALLBACK_IRQ, hvm_callback_via_vector(0xf3)).unwrap();
                set_evtchn_upcall_vector(1, 0xf3).unwrap();
            },
        );
        assert_eq!(calls[1].args[0], HVMOP_set_evtchn_upcall_vector as u64);
    }
}
