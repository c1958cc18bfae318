//! The Xen public ABI, one module per Xen header, keeping Xen's exact C
//! names for constants and struct fields (so they can be grepped against
//! Xen's headers) and CamelCase names for struct types.
//!
//! Everything here is checked against Xen 4.17's headers: see
//! [`crate::conformance`]. To add an item, use the macros in `macros.rs`
//! (`xen_consts!`, `xen_strs!`, `xen_struct!`, `xen_sys_struct!`,
//! `xen_typedefs!`) and list the new table or type in the module's
//! `module_checks!`.

pub mod arch_x86;
pub mod callback;
pub mod elfnote;
pub mod errno;
pub mod event_channel;
pub mod features;
pub mod grant_table;
pub mod hvm;
pub mod io;
pub mod memory;
pub mod nmi;
pub mod physdev;
pub mod platform;
pub mod sched;
pub mod vcpu;
pub mod version;
pub mod xen;
mod xen_structs;

use crate::conformance::Check;

/// Every module's checks, in a fixed order.
pub(crate) const CHECKS: &[&[&[Check]]] = &[
    elfnote::CHECKS,
    features::CHECKS,
    errno::CHECKS,
    xen::CHECKS,
    xen_structs::CHECKS,
    arch_x86::CHECKS,
    sched::CHECKS,
    event_channel::CHECKS,
    memory::CHECKS,
    hvm::CHECKS,
    vcpu::CHECKS,
    grant_table::CHECKS,
    callback::CHECKS,
    version::CHECKS,
    physdev::CHECKS,
    nmi::CHECKS,
    platform::CHECKS,
    io::ring::CHECKS,
    io::console::CHECKS,
    io::xs_wire::CHECKS,
];
