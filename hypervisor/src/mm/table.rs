//! The frame table: ownership, general references and type references.

use super::frame::{FrameInfo, Owner, PageType, SharedAccess};
use super::{DomainId, FrameMemory, Mfn, MmError, HYPERVISOR_L4_SLOTS};

/// Number of L4 slots the hypervisor keeps for itself.
const HYPERVISOR_L4_SLOT_COUNT: usize = HYPERVISOR_L4_SLOTS.end - HYPERVISOR_L4_SLOTS.start;

/// Accounting for every machine frame, in storage the caller provides
/// (one [`FrameInfo`] per MFN, starting at MFN 0).
#[derive(Debug)]
pub struct FrameTable<'a> {
    pub(in crate::mm) frames: &'a mut [FrameInfo],
    hypervisor_l4: [u64; HYPERVISOR_L4_SLOT_COUNT],
    pub(in crate::mm) cache_attrs_permitted: bool,
    /// A read-only mapping of a descriptor page in use went away, so any
    /// vCPU's LDT pages must be let go (see [`Self::take_ldt_invalidation`]).
    pub(in crate::mm) ldt_invalidation: bool,
}

impl<'a> FrameTable<'a> {
    /// A table over `frames`, whose index is the MFN. The hypervisor's L4
    /// entries start empty and cache attributes are refused, as for an
    /// unprivileged Xen domain.
    pub fn new(frames: &'a mut [FrameInfo]) -> Self {
        FrameTable {
            frames,
            hypervisor_l4: [0; HYPERVISOR_L4_SLOT_COUNT],
            cache_attrs_permitted: false,
            ldt_invalidation: false,
        }
    }

    /// Whether a mapping of a descriptor page in use was removed since the
    /// last call. Xen then drops every vCPU's LDT pages (they are taken
    /// again on next use), so that the guest can unmap an LDT page and map
    /// it writable without first changing its LDT.
    pub fn take_ldt_invalidation(&mut self) -> bool {
        core::mem::take(&mut self.ldt_invalidation)
    }

    /// Number of frames covered.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The record of `mfn`, if it is in the table.
    pub fn frame(&self, mfn: Mfn) -> Option<&FrameInfo> {
        self.index(mfn).map(|index| &self.frames[index])
    }

    /// The entries every validated L4 gets in [`HYPERVISOR_L4_SLOTS`]
    /// (Xen's `init_xen_l4_slots`). They are the hypervisor's business: they
    /// take no references and may name hypervisor frames, which is safe only
    /// because the hypervisor builds them without `USER`.
    pub fn set_hypervisor_l4_entries(&mut self, entries: [u64; HYPERVISOR_L4_SLOT_COUNT]) {
        self.hypervisor_l4 = entries;
    }

    pub fn hypervisor_l4_entries(&self) -> &[u64; HYPERVISOR_L4_SLOT_COUNT] {
        &self.hypervisor_l4
    }

    /// Lets guests choose cache attributes (PWT/PCD/PAT) in L1 entries, as Xen
    /// does for domains with I/O memory. Off by default.
    pub fn set_cache_attributes_permitted(&mut self, permitted: bool) {
        self.cache_attrs_permitted = permitted;
    }

    /// Gives an unused frame a new owner (allocating it to a domain, freeing
    /// it, or taking it for the hypervisor). Refused while anything
    /// references it.
    pub fn assign_owner(&mut self, mfn: Mfn, owner: Owner) -> Result<(), MmError> {
        let frame = self.info_mut(mfn)?;
        if frame.ref_count != 0 || frame.type_count != 0 || frame.pinned || frame.shared.is_some() {
            return Err(MmError::FrameInUse(mfn));
        }
        *frame = FrameInfo::new(owner);
        Ok(())
    }

    /// Shares an unused hypervisor frame with `domain` (Xen's
    /// `share_xen_page_with_guest`): the domain becomes its owner, so it may
    /// map it, and a permanent type reference (`Writable` for read-write,
    /// `None` for read-only) keeps it from ever becoming a page table or, when
    /// read-only, from being mapped writable.
    pub fn share_with_domain(
        &mut self,
        mfn: Mfn,
        domain: DomainId,
        access: SharedAccess,
    ) -> Result<(), MmError> {
        let frame = self.info_mut(mfn)?;
        if frame.owner != Owner::Hypervisor {
            return Err(MmError::NotOwner(mfn));
        }
        if frame.ref_count != 0 || frame.type_count != 0 {
            return Err(MmError::FrameInUse(mfn));
        }
        *frame = FrameInfo {
            owner: Owner::Domain(domain),
            page_type: match access {
                SharedAccess::ReadOnly => PageType::None,
                SharedAccess::ReadWrite => PageType::Writable,
            },
            type_count: 1,
            validated: true,
            shared: Some(access),
            ..FrameInfo::new(Owner::Hypervisor)
        };
        Ok(())
    }

    /// Takes a shared frame back once the domain has no mapping of it.
    pub fn unshare(&mut self, mfn: Mfn) -> Result<(), MmError> {
        let frame = self.info_mut(mfn)?;
        if frame.shared.is_none() {
            return Err(MmError::NotOwner(mfn));
        }
        if frame.ref_count != 0 || frame.type_count != 1 {
            return Err(MmError::FrameInUse(mfn));
        }
        *frame = FrameInfo::new(Owner::Hypervisor);
        Ok(())
    }

    /// Takes a general reference on a frame `domain` owns (Xen's `get_page`).
    pub fn get_page(&mut self, mfn: Mfn, domain: DomainId) -> Result<(), MmError> {
        let frame = self.info_mut(mfn)?;
        if frame.owner != Owner::Domain(domain) {
            return Err(MmError::NotOwner(mfn));
        }
        frame.ref_count = frame.ref_count.checked_add(1).ok_or(MmError::CountOverflow(mfn))?;
        Ok(())
    }

    /// Drops a general reference taken by [`get_page`](Self::get_page).
    pub fn put_page(&mut self, mfn: Mfn) {
        if let Some(index) = self.index(mfn) {
            let frame = &mut self.frames[index];
            debug_assert!(frame.ref_count > 0, "put_page of unreferenced {mfn:?}");
            frame.ref_count = frame.ref_count.saturating_sub(1);
        }
    }

    /// Takes a type reference (Xen's `get_page_type`). If the frame is
    /// unused (type count 0) it may change type, and a page-table or
    /// descriptor type is validated first; the frame's contents then hold
    /// references of their own until the last type reference goes. If the
    /// frame is in use, `wanted` must be its current type. The caller holds
    /// a general reference.
    pub fn get_page_type<M: FrameMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        mfn: Mfn,
        wanted: PageType,
    ) -> Result<(), MmError> {
        let index = self.index(mfn).ok_or(MmError::FrameOutOfRange(mfn))?;
        let frame = &mut self.frames[index];
        let conflict = MmError::TypeConflict { mfn, current: frame.page_type, wanted };
        if wanted == PageType::None {
            return Err(conflict);
        }
        if frame.type_count > 0 {
            if frame.page_type != wanted {
                return Err(conflict);
            }
            if !frame.validated {
                // Only a table whose validation is still running can be seen
                // like this; a reference to it would be premature.
                return Err(MmError::NotValidated(mfn));
            }
            frame.type_count = frame.type_count.checked_add(1).ok_or(MmError::CountOverflow(mfn))?;
            return Ok(());
        }

        // 0 -> 1: the type may change, and validated contents are rechecked.
        frame.page_type = wanted;
        frame.type_count = 1;
        frame.validated = false;
        frame.linear = 0;
        if !wanted.needs_validation() {
            frame.validated = true;
            return Ok(());
        }
        match self.validate(mem, mfn, wanted) {
            Ok(()) => {
                self.frames[index].validated = true;
                Ok(())
            }
            Err(err) => {
                let frame = &mut self.frames[index];
                frame.page_type = PageType::None;
                frame.type_count = 0;
                Err(err)
            }
        }
    }

    /// Drops a type reference. When the last reference of a page-table type
    /// goes, the table is devalidated: every entry's references are dropped.
    pub fn put_page_type<M: FrameMemory + ?Sized>(&mut self, mem: &mut M, mfn: Mfn) {
        self.put_page_type_from(mem, mfn, None);
    }

    /// [`get_page`](Self::get_page) then [`get_page_type`](Self::get_page_type),
    /// undoing the first if the second fails.
    pub fn get_page_and_type<M: FrameMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        mfn: Mfn,
        domain: DomainId,
        wanted: PageType,
    ) -> Result<(), MmError> {
        self.get_page(mfn, domain)?;
        self.get_page_type(mem, mfn, wanted).inspect_err(|_| {
            self.put_page(mfn);
        })
    }

    /// Drops what [`get_page_and_type`](Self::get_page_and_type) took.
    pub fn put_page_and_type<M: FrameMemory + ?Sized>(&mut self, mem: &mut M, mfn: Mfn) {
        self.put_page_type(mem, mfn);
        self.put_page(mfn);
    }

    /// Drops a type reference held by an entry of table `container` (if
    /// any), settling the linear-mapping counts when the entry was a
    /// same-level one.
    pub(in crate::mm) fn put_page_type_from<M: FrameMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        mfn: Mfn,
        container: Option<Mfn>,
    ) {
        let Some(index) = self.index(mfn) else {
            return;
        };
        let page_type = self.frames[index].page_type;
        debug_assert!(self.frames[index].type_count > 0, "put_page_type of {mfn:?}");
        if self.frames[index].type_count == 0 {
            return;
        }
        if let Some(container_index) = container.and_then(|c| self.index(c)) {
            if page_type.level().is_some() && self.frames[container_index].page_type == page_type {
                self.frames[index].linear += 1;
                self.frames[container_index].linear -= 1;
            }
        }
        let frame = &mut self.frames[index];
        frame.type_count -= 1;
        if frame.type_count == 0 && page_type.needs_validation() && frame.validated {
            frame.validated = false;
            if let Some(level) = page_type.level() {
                self.devalidate(mem, mfn, level);
                debug_assert_eq!(self.frames[index].linear, 0, "linear count of {mfn:?}");
            }
        }
    }

    pub(in crate::mm) fn index(&self, mfn: Mfn) -> Option<usize> {
        usize::try_from(mfn.0).ok().filter(|&index| index < self.frames.len())
    }

    pub(in crate::mm) fn info_mut(&mut self, mfn: Mfn) -> Result<&mut FrameInfo, MmError> {
        let index = self.index(mfn).ok_or(MmError::FrameOutOfRange(mfn))?;
        Ok(&mut self.frames[index])
    }

    pub(in crate::mm) fn info(&self, mfn: Mfn) -> Result<&FrameInfo, MmError> {
        self.frame(mfn).ok_or(MmError::FrameOutOfRange(mfn))
    }
}
