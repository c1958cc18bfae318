#![cfg_attr(not(test), no_std)]
//! The Xen public ABI as this project uses it, in one place.
//!
//! Both sides of the hypercall boundary build on this crate: the guest kernel
//! (which issues hypercalls) and the bundled hypervisor (which services them).
//! Keeping every number and layout here, each one checked against Xen 4.17's
//! public headers by [`conformance`], means the two sides cannot drift apart
//! from each other or from real Xen.
//!
//! * [`abi`]: constants and `#[repr(C)]` structs, one module per Xen header,
//!   keeping Xen's exact C names for constants and fields.
//! * [`errno`]: Xen's error numbers as a Rust enum.
//! * [`transport`]: the x86_64 hypercall instruction sequence. It and the
//!   typed wrappers built directly on it ([`ops`], which lives inside it)
//!   are the only `unsafe` code in the crate.
//! * [`ops`]: typed wrappers, one function per hypercall sub-operation.
//! * [`conformance`]: the table of every ABI item and the C probe that checks
//!   it against the real headers.

#![deny(unsafe_code)]
// Constants keep Xen's exact C names (`SCHEDOP_yield`) so they can be grepped
// against its headers, including where they are used as match patterns.
#![allow(non_upper_case_globals)]

#[macro_use]
mod macros;

pub mod abi;
pub mod conformance;
pub mod errno;
pub mod transport;

pub use errno::XenError;
pub use transport::ops;
