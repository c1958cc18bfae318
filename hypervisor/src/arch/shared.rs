//! Pages the hypervisor shares with its guest, seen as the typed views the
//! `drivers` crate defines: `shared_info`, `vcpu_info`, the console ring
//! and the xenstore ring. Each view is made only of atomics (and arrays of
//! them) with exactly the ABI layout, so the guest writing the same memory
//! at any time cannot break the hypervisor's reads: every bit pattern is a
//! valid value and every access is an atomic operation.
//!
//! What makes the `&'static` lifetime honest is the callers' side: the
//! frame behind a view is never freed or reused. `shared_info` is a
//! hypervisor frame allocated once and never released; the guest frames
//! (rings, a registered `vcpu_info`) carry a writable type reference the
//! hypervisor never drops, so they can neither leave the guest nor become
//! page tables while the view exists.

use core::sync::atomic::{AtomicPtr, Ordering};

use drivers::console_ring::ConsoleRingView;
use drivers::shared_info::{SharedInfoView, VcpuInfoView};
use drivers::xenstore::XenstoreRingView;

use super::memory::{self, PAGE_SIZE};

/// The machine address `machine` as a `&'static T`, checked to be aligned
/// for `T` and to stay within one page. Private: only the atomics-only
/// views below are ever made this way.
fn view<T>(machine: u64) -> &'static T {
    let size = core::mem::size_of::<T>() as u64;
    assert!(machine.is_multiple_of(core::mem::align_of::<T>() as u64), "view at {machine:#x} is misaligned");
    assert!(machine % PAGE_SIZE + size <= PAGE_SIZE, "view at {machine:#x} crosses a page");
    // Checks the whole range is in the direct map (panics otherwise).
    let address = memory::machine_to_virt(machine);
    memory::machine_to_virt(machine + size - 1);
    // SAFETY: the range is mapped (checked above), aligned for `T`, and
    // within one frame that stays allocated for the hypervisor's lifetime
    // (see the module comment). `T` is one of the drivers' views, built
    // only of atomics, so any contents are a valid `T` and shared access
    // from the guest is sound; the hypervisor never forms a `&mut` to it.
    unsafe { &*(address as *const T) }
}

/// The domain's `shared_info` page (a hypervisor frame, page-aligned).
pub fn shared_info_view(machine: u64) -> &'static SharedInfoView {
    assert!(machine.is_multiple_of(PAGE_SIZE), "shared_info at {machine:#x} is not page-aligned");
    view(machine)
}

/// A `vcpu_info`: inside `shared_info`, or where the guest registered it.
pub fn vcpu_info_view(machine: u64) -> &'static VcpuInfoView {
    view(machine)
}

/// The console ring page (`struct xencons_interface`).
pub fn console_ring_view(machine: u64) -> &'static ConsoleRingView {
    assert!(machine.is_multiple_of(PAGE_SIZE), "console ring at {machine:#x} is not page-aligned");
    view(machine)
}

/// The xenstore ring page (`struct xenstore_domain_interface`).
pub fn xenstore_ring_view(machine: u64) -> &'static XenstoreRingView {
    assert!(machine.is_multiple_of(PAGE_SIZE), "xenstore ring at {machine:#x} is not page-aligned");
    view(machine)
}

/// The `vcpu_info` upcalls are delivered through, read on every way back
/// to the guest and so kept outside any lock (null until events are set up).
static CURRENT_VCPU_INFO: AtomicPtr<VcpuInfoView> = AtomicPtr::new(core::ptr::null_mut());

/// Makes `view` the `vcpu_info` [`current_vcpu_info`] returns.
pub fn set_current_vcpu_info(view: &'static VcpuInfoView) {
    CURRENT_VCPU_INFO.store(core::ptr::from_ref(view).cast_mut(), Ordering::SeqCst);
}

/// The vCPU's `vcpu_info`, once events are set up.
pub fn current_vcpu_info() -> Option<&'static VcpuInfoView> {
    let pointer = CURRENT_VCPU_INFO.load(Ordering::SeqCst);
    // SAFETY: the pointer is null or came from a `&'static VcpuInfoView`
    // (`set_current_vcpu_info`), and the view is only read through shared
    // references to its atomics.
    unsafe { pointer.as_ref() }
}
