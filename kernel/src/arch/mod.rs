//! The kernel's unsafe fence: every `asm!`, raw pointer and privileged
//! instruction lives under this module and is exposed as a safe function.
//! The rest of the kernel is `deny(unsafe_code)`.

pub mod boot;
pub mod cpu;
pub mod descriptors;
pub mod heap;
pub mod memory;
pub mod pit;
pub mod pv_entry;
pub mod raw_hypercall;
pub mod traps;
