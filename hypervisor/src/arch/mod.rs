//! The hypervisor's unsafe fence: every `asm!`, raw pointer and privileged
//! instruction is here, behind safe functions. The rest of the hypervisor
//! is `deny(unsafe_code)`, and its policy library is `forbid(unsafe_code)`.

pub mod boot;
pub mod cpu;
pub mod descriptors;
pub mod entry;
pub mod fifo_words;
pub mod floor;
pub mod guest_access;
pub mod heap;
pub mod lapic;
pub mod memory;
pub mod shared;
