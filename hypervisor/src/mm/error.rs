//! Why a memory-management operation was refused, and the Xen errno for it.

use core::fmt;

use super::{Level, Mfn, PageType};

/// The Xen errno values (`xen/include/public/errno.h`, positive) this
/// module can produce.
pub mod errno {
    pub const EPERM: i32 = 1;
    pub const EBUSY: i32 = 16;
    pub const EINVAL: i32 = 22;
}

/// A refused memory-management operation. Each variant maps to the errno
/// Xen returns in the same situation ([`MmError::xen_errno`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmError {
    /// The frame number is outside the frame table. `EINVAL`.
    FrameOutOfRange(Mfn),
    /// An L1 entry names a frame outside RAM (MMIO), which an unprivileged
    /// domain may not map. `EPERM`.
    MmioDenied(Mfn),
    /// The frame does not belong to the domain asking. `EINVAL`.
    NotOwner(Mfn),
    /// An L1 entry names a frame the domain does not own (the hypervisor's,
    /// a free one or another domain's). `EBUSY`, as Xen's `get_page_from_l1e`.
    ForeignFrame(Mfn),
    /// A present entry sets bits refused at its level (including `PSE`).
    /// `EINVAL`.
    ReservedBits { level: Level, bits: u64 },
    /// The frame is in use as another type. `EINVAL`.
    TypeConflict { mfn: Mfn, current: PageType, wanted: PageType },
    /// A writable mapping of a frame in use as a page table or descriptor
    /// table, or whose type is held read-only. `EBUSY`.
    WritableMappingRefused(Mfn),
    /// A same-level ("linear") page-table entry that breaks the rules: it is
    /// writable, its target is not a validated table of that level, or it
    /// would nest linear mappings. `EINVAL`.
    LinearRefused(Mfn),
    /// A guest update of an L4 slot the hypervisor owns. `EINVAL`.
    HypervisorSlot(usize),
    /// An entry index beyond the table. `EINVAL`.
    BadIndex(usize),
    /// `MMUEXT_PIN_*` of an already pinned frame. `EINVAL`.
    AlreadyPinned(Mfn),
    /// `MMUEXT_UNPIN_TABLE` of a frame that is not pinned. `EINVAL`.
    NotPinned(Mfn),
    /// A reference or type count would overflow. `EINVAL`.
    CountOverflow(Mfn),
    /// The frame is not (yet) a validated table of the wanted type. `EINVAL`.
    NotValidated(Mfn),
    /// Descriptor `index` of a would-be GDT/LDT frame is unsafe. `EINVAL`.
    BadDescriptor { mfn: Mfn, index: usize },
    /// More GDT entries than the guest may use. `EINVAL`.
    TooManyGdtEntries(usize),
    /// `MMUEXT_SET_LDT` with an unaligned base or more than 8192 entries,
    /// or an LDT page that is not part of the LDT. `EINVAL`.
    BadLdt { base: u64, entries: usize },
    /// `MMU_NORMAL_PT_UPDATE` of a frame whose type forbids guest writes
    /// (descriptor table, read-only shared frame). `EINVAL`.
    NotUpdatable(Mfn),
    /// The list of initial page tables has no single L4. `EINVAL`.
    NoRootTable,
    /// Ownership cannot change while the frame is referenced. `EBUSY`.
    FrameInUse(Mfn),
}

impl MmError {
    /// Xen's errno for this refusal, positive (`EINVAL` is 22).
    pub const fn xen_errno(&self) -> i32 {
        match self {
            MmError::MmioDenied(_) => errno::EPERM,
            MmError::ForeignFrame(_) | MmError::WritableMappingRefused(_) | MmError::FrameInUse(_) => {
                errno::EBUSY
            }
            MmError::FrameOutOfRange(_)
            | MmError::NotOwner(_)
            | MmError::ReservedBits { .. }
            | MmError::TypeConflict { .. }
            | MmError::LinearRefused(_)
            | MmError::HypervisorSlot(_)
            | MmError::BadIndex(_)
            | MmError::AlreadyPinned(_)
            | MmError::NotPinned(_)
            | MmError::CountOverflow(_)
            | MmError::NotValidated(_)
            | MmError::BadDescriptor { .. }
            | MmError::TooManyGdtEntries(_)
            | MmError::BadLdt { .. }
            | MmError::NotUpdatable(_)
            | MmError::NoRootTable => errno::EINVAL,
        }
    }

    /// The value a hypercall returns for this refusal (`-errno`).
    pub const fn hypercall_return(&self) -> i64 {
        -(self.xen_errno() as i64)
    }
}

impl fmt::Display for MmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MmError::FrameOutOfRange(mfn) => write!(f, "mfn {:#x} is not RAM", mfn.0),
            MmError::MmioDenied(mfn) => write!(f, "mfn {:#x}: MMIO mapping denied", mfn.0),
            MmError::NotOwner(mfn) => write!(f, "mfn {:#x} is not the domain's", mfn.0),
            MmError::ForeignFrame(mfn) => {
                write!(f, "mfn {:#x}: mapping a frame the domain does not own", mfn.0)
            }
            MmError::ReservedBits { level, bits } => {
                write!(f, "{level:?} entry sets reserved bits {bits:#x}")
            }
            MmError::TypeConflict { mfn, current, wanted } => {
                write!(f, "mfn {:#x} is {current:?}, wanted {wanted:?}", mfn.0)
            }
            MmError::WritableMappingRefused(mfn) => {
                write!(f, "mfn {:#x} cannot be mapped writable", mfn.0)
            }
            MmError::LinearRefused(mfn) => {
                write!(f, "mfn {:#x}: linear page-table entry refused", mfn.0)
            }
            MmError::HypervisorSlot(index) => write!(f, "L4 slot {index} is the hypervisor's"),
            MmError::BadIndex(index) => write!(f, "entry index {index} out of range"),
            MmError::AlreadyPinned(mfn) => write!(f, "mfn {:#x} already pinned", mfn.0),
            MmError::NotPinned(mfn) => write!(f, "mfn {:#x} not pinned", mfn.0),
            MmError::CountOverflow(mfn) => write!(f, "mfn {:#x}: count overflow", mfn.0),
            MmError::NotValidated(mfn) => write!(f, "mfn {:#x} is not validated", mfn.0),
            MmError::BadDescriptor { mfn, index } => {
                write!(f, "mfn {:#x}: bad descriptor {index}", mfn.0)
            }
            MmError::TooManyGdtEntries(n) => write!(f, "{n} GDT entries is too many"),
            MmError::BadLdt { base, entries } => write!(f, "no LDT of {entries} entries at {base:#x}"),
            MmError::NotUpdatable(mfn) => write!(f, "mfn {:#x} cannot be updated", mfn.0),
            MmError::NoRootTable => write!(f, "initial page tables need exactly one L4"),
            MmError::FrameInUse(mfn) => write!(f, "mfn {:#x} is in use", mfn.0),
        }
    }
}
