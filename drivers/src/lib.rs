//! Drivers shared by the guest kernel and the hypervisor.
//!
//! Everything here is protocol logic: it decides *what* to read and write,
//! never *how* to touch hardware or shared memory. Port I/O arrives through
//! the [`PortIo`] trait and shared pages arrive as typed views made of atomics,
//! which the binaries' arch modules construct. That keeps this crate free of
//! `unsafe` and lets every protocol be tested on the host with `cargo test`.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod console_ring;
pub mod debug_exit;
pub mod evtchn;
pub mod evtchn_fifo;
pub mod grant_table;
pub mod ring;
pub mod shared_info;
pub mod uart16550;
pub mod xenstore;

/// x86 port I/O, implemented by each binary's arch module.
pub trait PortIo {
    fn read8(&mut self, port: u16) -> u8;
    fn write8(&mut self, port: u16, value: u8);
}
