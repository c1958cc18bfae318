//! Raw hypercalls with the argument shapes the attacks need, all through
//! `arch::raw_hypercall` (whose contract the attacks keep: scratch state
//! only, and the old value restored where the hypervisor might accept).

use hypercalls::abi::xen::*;

use crate::arch::raw_hypercall;

/// A pointer the hypervisor must not follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bad {
    Null,
    NonCanonical,
    /// The hypervisor's direct map (machine address 0), canonical.
    Hypervisor,
    /// Canonical, in the guest's half, and never mapped.
    Unmapped,
}

impl Bad {
    pub const ALL: [Bad; 4] = [Bad::Null, Bad::NonCanonical, Bad::Hypervisor, Bad::Unmapped];

    pub fn address(self) -> u64 {
        match self {
            Bad::Null => 0,
            Bad::NonCanonical => 0x0000_8000_0000_0000,
            Bad::Hypervisor => 0xffff_8300_0000_0000,
            Bad::Unmapped => 0x0000_7fff_ffff_f000,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Bad::Null => "null",
            Bad::NonCanonical => "noncanonical",
            Bad::Hypervisor => "hypervisor",
            Bad::Unmapped => "unmapped",
        }
    }
}

/// The start of the hypervisor's image (Xen's `XEN_VIRT_START`).
pub const HYPERVISOR_TEXT: u64 = 0xffff_82d0_8000_0000;

pub fn call(number: u32, args: [u64; 5]) -> i64 {
    raw_hypercall::hypercall(number.into(), args)
}

/// The guest address of a value passed by reference.
pub fn addr<T: ?Sized>(value: &T) -> u64 {
    value as *const T as *const u8 as u64
}

pub fn addr_mut<T: ?Sized>(value: &mut T) -> u64 {
    value as *mut T as *mut u8 as u64
}

/// `mmu_update` of (ptr, val) pairs with an explicit count, success-count
/// pointer and foreign domain.
pub fn mmu_update_raw(requests: &[[u64; 2]], count: u64, done: u64, foreign: u64) -> i64 {
    call(__HYPERVISOR_mmu_update, [addr(requests), count, done, foreign, 0])
}

/// One `MMU_NORMAL_PT_UPDATE` (or other command in `ptr`'s low bits).
pub fn mmu_update(ptr: u64, val: u64) -> i64 {
    mmu_update_raw(&[[ptr, val]], 1, 0, DOMID_SELF.into())
}

/// One extended operation.
pub fn mmuext(cmd: u32, arg1: u64, arg2: u64) -> i64 {
    let op = [[u64::from(cmd), arg1, arg2]];
    mmuext_raw(&op, 1, 0, DOMID_SELF.into())
}

pub fn mmuext_raw(ops: &[[u64; 3]], count: u64, done: u64, foreign: u64) -> i64 {
    call(__HYPERVISOR_mmuext_op, [addr(ops), count, done, foreign, 0])
}

pub fn update_va_mapping(va: u64, val: u64, flags: u64) -> i64 {
    call(__HYPERVISOR_update_va_mapping, [va, val, flags, 0, 0])
}

pub fn pin(level: u8, mfn: u64) -> i64 {
    mmuext(MMUEXT_PIN_L1_TABLE + u32::from(level) - 1, mfn, 0)
}

pub fn unpin(mfn: u64) -> i64 {
    mmuext(MMUEXT_UNPIN_TABLE, mfn, 0)
}

pub fn invlpg(va: u64) -> i64 {
    mmuext(MMUEXT_INVLPG_LOCAL, va, 0)
}

/// `event_channel_op(cmd, arg)` on a structure given as words.
pub fn evtchn(cmd: u32, words: &mut [u64]) -> i64 {
    call(__HYPERVISOR_event_channel_op, [cmd.into(), addr_mut(words), 0, 0, 0])
}

pub fn xen_version() -> i64 {
    call(__HYPERVISOR_xen_version, [0; 5])
}
