//! The guest kernel's bootable image.
//!
//! Unsafe code is fenced: only `arch` (instructions, asm, raw memory) and
//! `platform` (the privileged-operation back ends) may contain it; every
//! other module is `deny(unsafe_code)`, and the policy code in the library
//! crate (`kernel::*`) is `forbid(unsafe_code)`.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![cfg_attr(target_os = "none", deny(unsafe_code))]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
#[allow(unsafe_code)]
mod arch;
#[cfg(target_os = "none")]
mod bench;
#[cfg(target_os = "none")]
mod boot;
#[cfg(target_os = "none")]
mod commands;
#[cfg(target_os = "none")]
mod console;
#[cfg(target_os = "none")]
mod fuzz;
#[cfg(target_os = "none")]
mod hostile;
#[cfg(target_os = "none")]
mod mm;
#[cfg(target_os = "none")]
#[allow(unsafe_code)]
mod platform;
#[cfg(target_os = "none")]
mod selftests;
#[cfg(target_os = "none")]
mod tour;
#[cfg(target_os = "none")]
mod traps;

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    println!("PANIC: {info}");
    // A panic before the platform is chosen has nowhere to report.
    platform::current().shutdown(drivers::debug_exit::Verdict::Failure)
}

/// The kernel only runs on bare metal; on the host there is nothing to run.
#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("the guest kernel is a bare-metal image: build it with `cargo xtask build`");
    std::process::exit(2);
}
