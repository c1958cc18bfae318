//! The x86_64 hypercall transport: the only `unsafe` code in this crate.
//!
//! Xen fills a *hypercall page* with one 32-byte stub per hypercall number
//! (`mov $nr, %eax; syscall; ret` for PV, `vmcall`/`vmmcall` for HVM/PVH).
//! A PV guest names the page with `XEN_ELFNOTE_HYPERCALL_PAGE` and finds it
//! filled at entry; an HVM/PVH guest asks Xen to fill a page by writing its
//! physical address to the MSR that CPUID leaf `base + 2` names. Either way
//! the guest then calls [`set_hypercall_page`] once, and every hypercall is
//! a `call` to `page + 32 * nr` with the x86_64 Xen register convention:
//!
//! | argument | 1 | 2 | 3 | 4 | 5 | result |
//! |----------|---|---|---|---|---|--------|
//! | register |rdi|rsi|rdx|r10|r8 | rax    |
//!
//! The stub and Xen may clobber every argument register (debug builds of
//! Xen deliberately scribble on them), `rcx` and `r11` (`syscall`), `r9`
//! (the sixth argument register), `rax`, and the flags; the `call` itself
//! pushes a return address, so the stack must be usable.

#![allow(unsafe_code)]

use core::sync::atomic::{AtomicUsize, Ordering};

use crate::abi::errno::XEN_ENOSYS;

/// Bytes per hypercall stub in the hypercall page.
pub const HYPERCALL_ENTRY_SIZE: usize = 32;

/// Hypercall numbers that fit in the (4 KiB) hypercall page.
pub const HYPERCALL_PAGE_ENTRIES: usize = 4096 / HYPERCALL_ENTRY_SIZE;

/// Virtual address of the hypercall page; 0 until [`set_hypercall_page`].
static HYPERCALL_PAGE: AtomicUsize = AtomicUsize::new(0);

/// The value every hypercall returns before [`set_hypercall_page`] is called
/// (or for a number outside the page): `-ENOSYS`, as Xen itself returns for
/// a hypercall it does not implement.
pub const NOT_AVAILABLE: i64 = -(XEN_ENOSYS as i64);

/// Records where the hypercall page is mapped. Call once, before any
/// hypercall; `0` makes every hypercall return [`NOT_AVAILABLE`] again.
///
/// # Safety
///
/// `virt_addr` must be the virtual address of a mapped, executable page
/// whose 32-byte entries are hypercall stubs (filled by Xen, or by the
/// bundled hypervisor's domain builder), and must stay so for as long as
/// hypercalls are made.
pub unsafe fn set_hypercall_page(virt_addr: usize) {
    HYPERCALL_PAGE.store(virt_addr, Ordering::Release);
}

/// The address given to [`set_hypercall_page`], if any.
pub fn hypercall_page_address() -> Option<usize> {
    match HYPERCALL_PAGE.load(Ordering::Acquire) {
        0 => None,
        page => Some(page),
    }
}

/// The stub address for hypercall `nr`, if the page is set and `nr` fits.
fn entry_address(nr: u32) -> Option<usize> {
    let page = hypercall_page_address()?;
    let nr = nr as usize;
    (nr < HYPERCALL_PAGE_ENTRIES).then(|| page + nr * HYPERCALL_ENTRY_SIZE)
}

/// Issues hypercall `nr` with five arguments (unused ones are passed as 0,
/// which Xen ignores).
///
/// # Safety
///
/// The hypercall may do anything the hypervisor allows the calling domain:
/// rewrite its page tables, write to any guest memory named by an argument,
/// or stop the domain. The caller must uphold the contract of the specific
/// hypercall; see the wrappers in [`crate::ops`].
#[inline]
unsafe fn raw_hypercall(nr: u32, args: [u64; 5]) -> i64 {
    #[cfg(test)]
    if let Some(result) = testing::intercept(nr, args) {
        return result;
    }
    let Some(entry) = entry_address(nr) else {
        return NOT_AVAILABLE;
    };
    call_stub(entry, args)
}

#[cfg(target_arch = "x86_64")]
#[inline]
unsafe fn call_stub(entry: usize, args: [u64; 5]) -> i64 {
    let result: i64;
    // SAFETY: `entry` lies in the page the caller of `set_hypercall_page`
    // promised holds hypercall stubs. The stub follows the convention in the
    // module docs; every register it or Xen may change is declared clobbered
    // (rax, rcx, r9, r11 and all argument registers), `nostack` is absent so
    // `call` may push, and flags/memory are not declared preserved. `entry`
    // is only read before the call, so sharing a register is fine.
    unsafe {
        core::arch::asm!(
            "call {entry}",
            entry = in(reg) entry,
            out("rax") result,
            inout("rdi") args[0] => _,
            inout("rsi") args[1] => _,
            inout("rdx") args[2] => _,
            inout("r10") args[3] => _,
            inout("r8") args[4] => _,
            out("r9") _,
            out("rcx") _,
            out("r11") _,
        );
    }
    result
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn call_stub(_entry: usize, _args: [u64; 5]) -> i64 {
    NOT_AVAILABLE
}

/// Issues hypercall `nr` with no arguments.
///
/// # Safety
///
/// See [`hypercall5`].
#[inline]
pub unsafe fn hypercall0(nr: u32) -> i64 {
    // SAFETY: the caller upholds this hypercall's contract (see `# Safety`).
    unsafe { raw_hypercall(nr, [0; 5]) }
}

/// Issues hypercall `nr` with one argument.
///
/// # Safety
///
/// See [`hypercall5`].
#[inline]
pub unsafe fn hypercall1(nr: u32, a1: u64) -> i64 {
    // SAFETY: the caller upholds this hypercall's contract (see `# Safety`).
    unsafe { raw_hypercall(nr, [a1, 0, 0, 0, 0]) }
}

/// Issues hypercall `nr` with two arguments.
///
/// # Safety
///
/// See [`hypercall5`].
#[inline]
pub unsafe fn hypercall2(nr: u32, a1: u64, a2: u64) -> i64 {
    // SAFETY: the caller upholds this hypercall's contract (see `# Safety`).
    unsafe { raw_hypercall(nr, [a1, a2, 0, 0, 0]) }
}

/// Issues hypercall `nr` with three arguments.
///
/// # Safety
///
/// See [`hypercall5`].
#[inline]
pub unsafe fn hypercall3(nr: u32, a1: u64, a2: u64, a3: u64) -> i64 {
    // SAFETY: the caller upholds this hypercall's contract (see `# Safety`).
    unsafe { raw_hypercall(nr, [a1, a2, a3, 0, 0]) }
}

/// Issues hypercall `nr` with four arguments.
///
/// # Safety
///
/// See [`hypercall5`].
#[inline]
pub unsafe fn hypercall4(nr: u32, a1: u64, a2: u64, a3: u64, a4: u64) -> i64 {
    // SAFETY: the caller upholds this hypercall's contract (see `# Safety`).
    unsafe { raw_hypercall(nr, [a1, a2, a3, a4, 0]) }
}

/// Issues hypercall `nr` with five arguments and returns Xen's raw result
/// (negative: a negated errno; see [`crate::XenError::from_return`]).
/// Returns [`NOT_AVAILABLE`] without calling anything if no hypercall page
/// is set or `nr` is outside it.
///
/// # Safety
///
/// The hypercall may do anything the hypervisor allows the calling domain:
/// change its page tables, read or write any memory an argument points at,
/// or stop it. Every pointer argument must be valid for what that
/// hypercall does with it, and the caller must keep any mapping it relies
/// on (including the one it is running from) intact across the call.
#[inline]
pub unsafe fn hypercall5(nr: u32, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64) -> i64 {
    // SAFETY: the caller upholds this hypercall's contract (see `# Safety`).
    unsafe { raw_hypercall(nr, [a1, a2, a3, a4, a5]) }
}

/// The guest address of a value passed to a hypercall by reference.
pub(crate) fn addr_of<T: ?Sized>(value: &T) -> u64 {
    value as *const T as *const u8 as u64
}

/// The guest address of a value the hypercall writes.
pub(crate) fn addr_of_mut<T: ?Sized>(value: &mut T) -> u64 {
    value as *mut T as *mut u8 as u64
}

pub mod ops;

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests;
