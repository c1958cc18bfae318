//! The guest kernel's policy code: everything that decides without touching
//! hardware. It is `forbid(unsafe_code)` and tested on the host with
//! `cargo test -p kernel`; the bootable binary (`main.rs`) links it.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod batch;
pub mod bench_stats;
pub mod cmdline;
pub mod frame_alloc;
pub mod hostile_plan;
pub mod layout;
pub mod memory_map;
pub mod pv_layout;
pub mod pvh;
pub mod selftest;
pub mod table_plan;
pub mod time;
