//! Typed hypercall wrappers, one function per operation, returning
//! `Result<_, XenError>`. Also reachable as `hypercalls::ops`.
//!
//! A wrapper is a safe `fn` when everything the hypercall touches is named
//! by its Rust arguments (references and slices, borrowed for the call) and
//! it cannot break the caller's memory model. It is an `unsafe fn`, with a
//! `# Safety` section, when the hypercall changes the caller's own address
//! space or CPU state, or hands the hypervisor a raw address it will use
//! after the call returns.
//!
//! PV-only operations (page tables, traps, callbacks, segments) are in
//! [`pv_mm`] and [`pv_cpu`]; everything else works for PV and HVM/PVH
//! guests alike.

pub mod console;
pub mod event_channel;
pub mod grant_table;
pub mod hvm;
pub mod memory;
pub mod physdev;
pub mod pv_cpu;
pub mod pv_mm;
pub mod sched;
pub mod vcpu;
pub mod version;

use crate::XenError;
use core::fmt;

/// A batched operation (`mmu_update`, `mmuext_op`) failed part-way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchError {
    pub error: XenError,
    /// Requests completed before the failing one.
    pub done: u32,
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} after {} requests", self.error, self.done)
    }
}

impl From<BatchError> for XenError {
    fn from(batch: BatchError) -> Self {
        batch.error
    }
}

/// Turns a raw return value into `Result`, discarding the value.
fn unit(ret: i64) -> Result<(), XenError> {
    XenError::from_return(ret).map(|_| ())
}

/// A slice length as a hypercall count; Xen's counts are 32-bit.
fn count(len: usize) -> Result<u32, XenError> {
    u32::try_from(len).map_err(|_| XenError::E2BIG)
}
