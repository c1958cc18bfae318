//! Feeds arbitrary bytes, decoded into a hostile guest's memory-management
//! operations, to the frame table, checking after every step that the
//! reference counts audit exactly, that no MMU walk from a base or pinned
//! table reaches a frame the guest does not own or a page table writable,
//! that refused operations change nothing, and that tearing everything
//! down releases every reference.
#![no_main]

use hypervisor::mm;
use libfuzzer_sys::fuzz_target;

// Shared with the proptest in src/mm/tests; only part of it is used here.
#[allow(dead_code)]
#[path = "../../src/mm/tests/scenario.rs"]
mod scenario;

fuzz_target!(|data: &[u8]| {
    scenario::run(&scenario::decode_ops(data));
});
