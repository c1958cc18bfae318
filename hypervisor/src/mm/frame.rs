//! Per-frame bookkeeping: who owns a frame, what it is used as, how often.

use super::{DomainId, Level};

/// Who a machine frame belongs to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Owner {
    /// Not allocated to anyone; nobody may map it.
    #[default]
    Free,
    /// The hypervisor's own memory; no guest may ever map it.
    Hypervisor,
    /// Allocated to a domain, which may map it (subject to its type).
    Domain(DomainId),
    /// I/O memory (Xen's `dom_io`): the first MiB, which holds the legacy
    /// VGA window and BIOS areas. Only a domain with I/O rights may map it,
    /// and the bundled hypervisor grants those to nobody.
    Io,
}

/// What a frame is in use as. The type is fixed while the type count is
/// non-zero; with a zero count it records only the last use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PageType {
    /// No particular use. With a non-zero count (a read-only shared frame)
    /// this blocks every other type.
    #[default]
    None,
    /// Mapped writable somewhere.
    Writable,
    L1,
    L2,
    L3,
    L4,
    /// Part of a GDT or LDT.
    SegDesc,
}

impl PageType {
    /// The level, for page-table types.
    pub const fn level(self) -> Option<Level> {
        match self {
            PageType::L1 => Some(Level::L1),
            PageType::L2 => Some(Level::L2),
            PageType::L3 => Some(Level::L3),
            PageType::L4 => Some(Level::L4),
            PageType::None | PageType::Writable | PageType::SegDesc => None,
        }
    }

    /// Whether frames of this type have contents the hypervisor validates
    /// and which the guest therefore must not write.
    pub const fn needs_validation(self) -> bool {
        !matches!(self, PageType::None | PageType::Writable)
    }
}

/// How the hypervisor shares one of its frames with a domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SharedAccess {
    ReadOnly,
    ReadWrite,
}

/// The accounting record of one machine frame (Xen's `struct page_info`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameInfo {
    pub(in crate::mm) owner: Owner,
    pub(in crate::mm) page_type: PageType,
    pub(in crate::mm) type_count: u32,
    pub(in crate::mm) ref_count: u32,
    pub(in crate::mm) pinned: bool,
    pub(in crate::mm) validated: bool,
    pub(in crate::mm) shared: Option<SharedAccess>,
    /// Positive: how many linear (same-level) entries this table holds.
    /// Negative: how many linear entries elsewhere point to this table.
    /// It can never be both, which keeps linear mappings one level deep.
    pub(in crate::mm) linear: i32,
}

impl FrameInfo {
    /// An unreferenced frame belonging to `owner`.
    pub const fn new(owner: Owner) -> Self {
        FrameInfo {
            owner,
            page_type: PageType::None,
            type_count: 0,
            ref_count: 0,
            pinned: false,
            validated: false,
            shared: None,
            linear: 0,
        }
    }

    pub const fn owner(&self) -> Owner {
        self.owner
    }

    pub const fn page_type(&self) -> PageType {
        self.page_type
    }

    /// Type references: how many users rely on the frame being of
    /// [`page_type`](Self::page_type).
    pub const fn type_count(&self) -> u32 {
        self.type_count
    }

    /// General references: how many mappings and other users keep the
    /// frame alive.
    pub const fn ref_count(&self) -> u32 {
        self.ref_count
    }

    pub const fn is_pinned(&self) -> bool {
        self.pinned
    }

    /// Whether the contents were checked for the current type.
    pub const fn is_validated(&self) -> bool {
        self.validated
    }

    /// How the hypervisor shares this frame, if it is one of its own.
    pub const fn shared(&self) -> Option<SharedAccess> {
        self.shared
    }

    /// See the field: > 0 linear entries held, < 0 linear uses.
    pub const fn linear_count(&self) -> i32 {
        self.linear
    }

    /// Whether a writable mapping of the frame exists (or may be made
    /// without a type change).
    pub const fn has_writable_type(&self) -> bool {
        matches!(self.page_type, PageType::Writable) && self.type_count > 0
    }

    /// The type count that a frame keeps when nothing uses it: one for a
    /// frame shared by the hypervisor (its permanent type reference).
    pub const fn idle_type_count(&self) -> u32 {
        if self.shared.is_some() {
            1
        } else {
            0
        }
    }
}
