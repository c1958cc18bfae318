//! The `shared_info` page and `vcpu_info` (`xen/xen.h`) as atomics.
//!
//! Xen and the guest write these concurrently (Xen sets pending bits while
//! the guest clears them), so every field is an atomic with exactly the
//! layout of [`SharedInfo`] / [`VcpuInfo`]; the assertions below fail the
//! build if the two ever disagree. Event-channel logic is in
//! [`crate::evtchn`].

use core::sync::atomic::{AtomicI8, AtomicU32, AtomicU64, AtomicU8, Ordering};

use hypercalls::abi::xen::{
    ArchSharedInfo, ArchVcpuInfo, SharedInfo, VcpuInfo, VcpuTimeInfo, XEN_LEGACY_MAX_VCPUS,
};

/// `struct vcpu_time_info`.
#[repr(C)]
pub struct VcpuTimeInfoView {
    pub version: AtomicU32,
    pub pad0: AtomicU32,
    pub tsc_timestamp: AtomicU64,
    pub system_time: AtomicU64,
    pub tsc_to_system_mul: AtomicU32,
    pub tsc_shift: AtomicI8,
    pub flags: AtomicU8,
    pub pad1: [AtomicU8; 2],
}

/// `struct arch_vcpu_info` (x86_64).
#[repr(C)]
pub struct ArchVcpuInfoView {
    pub cr2: AtomicU64,
    pub pad: AtomicU64,
}

/// `struct vcpu_info`: the per-vCPU upcall flags and event selector.
#[repr(C)]
pub struct VcpuInfoView {
    pub evtchn_upcall_pending: AtomicU8,
    pub evtchn_upcall_mask: AtomicU8,
    pub evtchn_pending_sel: AtomicU64,
    pub arch: ArchVcpuInfoView,
    pub time: VcpuTimeInfoView,
}

/// `struct arch_shared_info` (x86_64).
#[repr(C)]
pub struct ArchSharedInfoView {
    pub max_pfn: AtomicU64,
    pub pfn_to_mfn_frame_list_list: AtomicU64,
    pub nmi_reason: AtomicU64,
    pub p2m_cr3: AtomicU64,
    pub p2m_vaddr: AtomicU64,
    pub p2m_generation: AtomicU64,
}

/// Words in each 2-level event-channel bitmap.
pub const EVTCHN_WORDS: usize = 64;

/// `struct shared_info`.
#[repr(C)]
pub struct SharedInfoView {
    pub vcpu_info: [VcpuInfoView; XEN_LEGACY_MAX_VCPUS as usize],
    pub evtchn_pending: [AtomicU64; EVTCHN_WORDS],
    pub evtchn_mask: [AtomicU64; EVTCHN_WORDS],
    pub wc_version: AtomicU32,
    pub wc_sec: AtomicU32,
    pub wc_nsec: AtomicU32,
    pub wc_sec_hi: AtomicU32,
    pub arch: ArchSharedInfoView,
}

/// Asserts at compile time that a view has its ABI type's size, alignment
/// and field offsets.
macro_rules! assert_same_layout {
    ($view:ty, $abi:ty, [$($field:ident),* $(,)?]) => {
        const _: () = {
            use core::mem::{align_of, offset_of, size_of};
            assert!(size_of::<$view>() == size_of::<$abi>());
            assert!(align_of::<$view>() == align_of::<$abi>());
            $(assert!(offset_of!($view, $field) == offset_of!($abi, $field));)*
        };
    };
}

assert_same_layout!(
    VcpuTimeInfoView,
    VcpuTimeInfo,
    [version, pad0, tsc_timestamp, system_time, tsc_to_system_mul, tsc_shift, flags, pad1]
);
assert_same_layout!(ArchVcpuInfoView, ArchVcpuInfo, [cr2, pad]);
assert_same_layout!(
    VcpuInfoView,
    VcpuInfo,
    [evtchn_upcall_pending, evtchn_upcall_mask, evtchn_pending_sel, arch, time]
);
assert_same_layout!(
    ArchSharedInfoView,
    ArchSharedInfo,
    [max_pfn, pfn_to_mfn_frame_list_list, nmi_reason, p2m_cr3, p2m_vaddr, p2m_generation]
);
assert_same_layout!(
    SharedInfoView,
    SharedInfo,
    [vcpu_info, evtchn_pending, evtchn_mask, wc_version, wc_sec, wc_nsec, wc_sec_hi, arch]
);

impl VcpuTimeInfoView {
    pub const fn new() -> Self {
        Self {
            version: AtomicU32::new(0),
            pad0: AtomicU32::new(0),
            tsc_timestamp: AtomicU64::new(0),
            system_time: AtomicU64::new(0),
            tsc_to_system_mul: AtomicU32::new(0),
            tsc_shift: AtomicI8::new(0),
            flags: AtomicU8::new(0),
            pad1: [const { AtomicU8::new(0) }; 2],
        }
    }

    /// A consistent copy of the time parameters, taken while Xen is not
    /// updating them (`version` even and unchanged across the read). Gives up
    /// and returns `None` after `max_attempts` torn reads.
    pub fn snapshot(&self, max_attempts: usize) -> Option<VcpuTimeInfo> {
        for _ in 0..max_attempts {
            let before = self.version.load(Ordering::Acquire);
            let copy = VcpuTimeInfo {
                version: before,
                pad0: 0,
                tsc_timestamp: self.tsc_timestamp.load(Ordering::Relaxed),
                system_time: self.system_time.load(Ordering::Relaxed),
                tsc_to_system_mul: self.tsc_to_system_mul.load(Ordering::Relaxed),
                tsc_shift: self.tsc_shift.load(Ordering::Relaxed),
                flags: self.flags.load(Ordering::Relaxed),
                pad1: [0; 2],
            };
            // The fence orders the field loads before the second version load.
            core::sync::atomic::fence(Ordering::Acquire);
            if before.is_multiple_of(2) && self.version.load(Ordering::Relaxed) == before {
                return Some(copy);
            }
        }
        None
    }
}

impl Default for VcpuTimeInfoView {
    fn default() -> Self {
        Self::new()
    }
}

impl VcpuInfoView {
    pub const fn new() -> Self {
        Self {
            evtchn_upcall_pending: AtomicU8::new(0),
            evtchn_upcall_mask: AtomicU8::new(0),
            evtchn_pending_sel: AtomicU64::new(0),
            arch: ArchVcpuInfoView { cr2: AtomicU64::new(0), pad: AtomicU64::new(0) },
            time: VcpuTimeInfoView::new(),
        }
    }
}

impl Default for VcpuInfoView {
    fn default() -> Self {
        Self::new()
    }
}

impl SharedInfoView {
    /// A zeroed page: no events pending or masked.
    pub const fn new() -> Self {
        Self {
            vcpu_info: [const { VcpuInfoView::new() }; XEN_LEGACY_MAX_VCPUS as usize],
            evtchn_pending: [const { AtomicU64::new(0) }; EVTCHN_WORDS],
            evtchn_mask: [const { AtomicU64::new(0) }; EVTCHN_WORDS],
            wc_version: AtomicU32::new(0),
            wc_sec: AtomicU32::new(0),
            wc_nsec: AtomicU32::new(0),
            wc_sec_hi: AtomicU32::new(0),
            arch: ArchSharedInfoView {
                max_pfn: AtomicU64::new(0),
                pfn_to_mfn_frame_list_list: AtomicU64::new(0),
                nmi_reason: AtomicU64::new(0),
                p2m_cr3: AtomicU64::new(0),
                p2m_vaddr: AtomicU64::new(0),
                p2m_generation: AtomicU64::new(0),
            },
        }
    }

    /// The `vcpu_info` slot of vCPU `index`, if it lives in this page (the
    /// first [`XEN_LEGACY_MAX_VCPUS`]; later ones must be registered with
    /// `VCPUOP_register_vcpu_info`).
    pub fn vcpu(&self, index: usize) -> Option<&VcpuInfoView> {
        self.vcpu_info.get(index)
    }
}

impl Default for SharedInfoView {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_snapshot_returns_stable_fields() {
        let time = VcpuTimeInfoView::new();
        time.version.store(4, Ordering::Relaxed);
        time.system_time.store(123_456, Ordering::Relaxed);
        time.tsc_shift.store(-2, Ordering::Relaxed);
        let copy = time.snapshot(1).unwrap();
        assert_eq!((copy.version, copy.system_time, copy.tsc_shift), (4, 123_456, -2));
    }

    #[test]
    fn time_snapshot_gives_up_while_an_update_is_in_progress() {
        let time = VcpuTimeInfoView::new();
        time.version.store(5, Ordering::Relaxed);
        assert!(time.snapshot(10).is_none());
    }

    #[test]
    fn only_legacy_vcpus_live_in_the_page() {
        let page = Box::new(SharedInfoView::new());
        assert!(page.vcpu(0).is_some());
        assert!(page.vcpu(XEN_LEGACY_MAX_VCPUS as usize - 1).is_some());
        assert!(page.vcpu(XEN_LEGACY_MAX_VCPUS as usize).is_none());
    }
}
