//! The bundled hypervisor's bootable image: a minimal Xen-compatible
//! hypervisor for one 64-bit PV guest, booted by QEMU through PVH.
//!
//! Unsafe code is fenced into `arch`; everything else is
//! `deny(unsafe_code)`, and the policy code it calls (the `hypervisor`
//! library: domain builder, page-type validator, xenstore) is
//! `forbid(unsafe_code)` and tested on the host.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![cfg_attr(target_os = "none", deny(unsafe_code))]
// Xen's constants keep their C names (`__HYPERVISOR_mmu_update`, ...), and
// matching on them is the clearest way to dispatch.
#![allow(non_upper_case_globals)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
#[allow(unsafe_code)]
mod arch;
#[cfg(target_os = "none")]
mod backends;
#[cfg(target_os = "none")]
mod boot;
#[cfg(target_os = "none")]
mod console;
#[cfg(target_os = "none")]
mod domain;
#[cfg(target_os = "none")]
mod emulate;
#[cfg(target_os = "none")]
mod events;
#[cfg(target_os = "none")]
mod exceptions;
#[cfg(target_os = "none")]
mod hypercall;
#[cfg(target_os = "none")]
mod ldt;
#[cfg(target_os = "none")]
mod time;
#[cfg(target_os = "none")]
mod traps;

#[cfg(target_os = "none")]
pub use hypervisor::layout;

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    console::emergency(format_args!("PANIC: {info}"));
    console::exit(drivers::debug_exit::Verdict::HypervisorFault)
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("the hypervisor is a bare-metal image: build it with `cargo xtask build`");
    std::process::exit(2);
}
