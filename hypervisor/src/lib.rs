//! The hypervisor's policy code, free of `unsafe` and tested on the host.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod cpuid_policy;
pub mod decode;
pub mod domain_builder;
pub mod hypercall_page;
pub mod layout;
pub mod mm;
pub mod options;
pub mod pvclock;
pub mod services;
pub mod xenstore;
