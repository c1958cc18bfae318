//! The page-table and descriptor-table references a vCPU holds: its kernel
//! and user base pointers (`%cr3` values), its GDT frames and the frames of
//! its LDT that are in use.

use super::table::FrameTable;
use super::{DomainId, FrameMemory, Level, Mfn, MmError, PageType, FIRST_RESERVED_GDT_ENTRY};

/// GDT frames a guest may supply (`FIRST_RESERVED_GDT_PAGE`).
pub const MAX_GDT_FRAMES: usize = FIRST_RESERVED_GDT_ENTRY / 512;

/// Entries an LDT may have (`MMUEXT_SET_LDT` refuses more).
pub const MAX_LDT_ENTRIES: usize = 8192;
/// Frames the largest LDT spans.
pub const MAX_LDT_FRAMES: usize = MAX_LDT_ENTRIES / 512;

/// What one vCPU keeps referenced. Each base holds a general reference and
/// an L4 type reference, so a base table stays valid even when unpinned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuPageTables {
    kernel_base: Option<Mfn>,
    user_base: Option<Mfn>,
    gdt_frames: [Option<Mfn>; MAX_GDT_FRAMES],
    gdt_entries: usize,
    ldt_base: u64,
    ldt_entries: usize,
    /// The LDT's pages that have been taken as descriptor pages so far.
    ldt_frames: [Option<Mfn>; MAX_LDT_FRAMES],
}

impl VcpuPageTables {
    /// A vCPU that references nothing yet.
    pub const fn new() -> Self {
        VcpuPageTables {
            kernel_base: None,
            user_base: None,
            gdt_frames: [None; MAX_GDT_FRAMES],
            gdt_entries: 0,
            ldt_base: 0,
            ldt_entries: 0,
            ldt_frames: [None; MAX_LDT_FRAMES],
        }
    }

    /// The L4 the guest kernel runs on.
    pub const fn kernel_base(&self) -> Option<Mfn> {
        self.kernel_base
    }

    /// The L4 guest user mode runs on (64-bit PV keeps them apart).
    pub const fn user_base(&self) -> Option<Mfn> {
        self.user_base
    }

    /// The frames of the guest's GDT, in order.
    pub fn gdt_frames(&self) -> impl Iterator<Item = Mfn> + '_ {
        self.gdt_frames.iter().map_while(|frame| *frame)
    }

    /// The number of GDT entries the guest set.
    pub const fn gdt_entries(&self) -> usize {
        self.gdt_entries
    }

    /// The LDT's linear address and number of entries (0: no LDT).
    pub const fn ldt(&self) -> (u64, usize) {
        (self.ldt_base, self.ldt_entries)
    }

    /// The LDT pages in use: (page index within the LDT, frame).
    pub fn ldt_frames(&self) -> impl Iterator<Item = (usize, Mfn)> + '_ {
        self.ldt_frames.iter().enumerate().filter_map(|(page, frame)| frame.map(|mfn| (page, mfn)))
    }

    /// `MMUEXT_SET_LDT`: the LDT now lies at linear address `base` with
    /// `entries` descriptors (none when 0). Only the arguments are checked
    /// here: as in Xen, the pages behind `base` are taken one by one with
    /// [`map_ldt_frame`](Self::map_ldt_frame) when the LDT is used. The old
    /// LDT's frames are released; returns whether any were held.
    pub fn set_ldt<M: FrameMemory + ?Sized>(
        &mut self,
        frames: &mut FrameTable<'_>,
        mem: &mut M,
        base: u64,
        entries: usize,
    ) -> Result<bool, MmError> {
        let base = if entries == 0 { 0 } else { base };
        if base % 4096 != 0 || entries > MAX_LDT_ENTRIES {
            return Err(MmError::BadLdt { base, entries });
        }
        if (base, entries) == (self.ldt_base, self.ldt_entries) {
            return Ok(false);
        }
        let released = self.release_ldt(frames, mem);
        self.ldt_base = base;
        self.ldt_entries = entries;
        Ok(released)
    }

    /// Takes `mfn`, the frame the guest maps at page `page` of its LDT, as a
    /// descriptor page (Xen's `pv_map_ldt_shadow_page`): it must be the
    /// domain's and hold only safe descriptors, and cannot be mapped
    /// writable until the LDT changes. Taking a page twice is a no-op.
    pub fn map_ldt_frame<M: FrameMemory + ?Sized>(
        &mut self,
        frames: &mut FrameTable<'_>,
        mem: &mut M,
        domain: DomainId,
        page: usize,
        mfn: Mfn,
    ) -> Result<(), MmError> {
        if page >= self.ldt_entries.div_ceil(512) {
            return Err(MmError::BadLdt { base: self.ldt_base, entries: self.ldt_entries });
        }
        match self.ldt_frames[page] {
            Some(held) if held == mfn => Ok(()),
            Some(_) => Err(MmError::BadLdt { base: self.ldt_base, entries: self.ldt_entries }),
            None => {
                frames.get_segdesc_frame(mem, domain, mfn)?;
                self.ldt_frames[page] = Some(mfn);
                Ok(())
            }
        }
    }

    /// Lets go of the LDT pages taken so far, keeping the LDT itself (Xen's
    /// `pv_destroy_ldt`); returns whether any were held.
    pub fn release_ldt<M: FrameMemory + ?Sized>(&mut self, frames: &mut FrameTable<'_>, mem: &mut M) -> bool {
        let mut released = false;
        for slot in &mut self.ldt_frames {
            if let Some(mfn) = slot.take() {
                frames.put_segdesc_frame(mem, mfn);
                released = true;
            }
        }
        released
    }

    /// `MMUEXT_NEW_BASEPTR`: switches the kernel base to the L4 `mfn`,
    /// validating it if needed. Returns the previous base, whose references
    /// have been dropped (`None` if there was none or it is unchanged).
    pub fn new_baseptr<M: FrameMemory + ?Sized>(
        &mut self,
        frames: &mut FrameTable<'_>,
        mem: &mut M,
        domain: DomainId,
        mfn: Mfn,
    ) -> Result<Option<Mfn>, MmError> {
        Self::switch_base(&mut self.kernel_base, frames, mem, domain, Some(mfn))
    }

    /// `MMUEXT_NEW_USER_BASEPTR`: as [`new_baseptr`](Self::new_baseptr) for
    /// the user base; `None` (Xen's MFN 0) clears it.
    pub fn new_user_baseptr<M: FrameMemory + ?Sized>(
        &mut self,
        frames: &mut FrameTable<'_>,
        mem: &mut M,
        domain: DomainId,
        mfn: Option<Mfn>,
    ) -> Result<Option<Mfn>, MmError> {
        Self::switch_base(&mut self.user_base, frames, mem, domain, mfn)
    }

    fn switch_base<M: FrameMemory + ?Sized>(
        base: &mut Option<Mfn>,
        frames: &mut FrameTable<'_>,
        mem: &mut M,
        domain: DomainId,
        new: Option<Mfn>,
    ) -> Result<Option<Mfn>, MmError> {
        if *base == new {
            return Ok(None);
        }
        if let Some(mfn) = new {
            frames.get_page_and_type(mem, mfn, domain, PageType::L4)?;
        }
        let old = core::mem::replace(base, new);
        if let Some(old) = old {
            frames.put_page_and_type(mem, old);
        }
        Ok(old)
    }

    /// `HYPERVISOR_set_gdt`: the first `entries.div_ceil(512)` of `gdt_frames`
    /// become the GDT. Each must be the domain's and hold only safe
    /// descriptors; it then cannot be mapped writable while in use. The old
    /// GDT frames are released. Every failure is `EINVAL`, as in Xen.
    pub fn set_gdt<M: FrameMemory + ?Sized>(
        &mut self,
        frames: &mut FrameTable<'_>,
        mem: &mut M,
        domain: DomainId,
        gdt_frames: &[Mfn],
        entries: usize,
    ) -> Result<(), MmError> {
        if entries > FIRST_RESERVED_GDT_ENTRY {
            return Err(MmError::TooManyGdtEntries(entries));
        }
        let needed = entries.div_ceil(512);
        let Some(new_frames) = gdt_frames.get(..needed) else {
            return Err(MmError::TooManyGdtEntries(entries));
        };
        for (taken, &mfn) in new_frames.iter().enumerate() {
            if let Err(err) = frames.get_segdesc_frame(mem, domain, mfn) {
                for &held in &new_frames[..taken] {
                    frames.put_segdesc_frame(mem, held);
                }
                return Err(err);
            }
        }
        self.release_gdt(frames, mem);
        for (slot, &mfn) in self.gdt_frames.iter_mut().zip(new_frames) {
            *slot = Some(mfn);
        }
        self.gdt_entries = entries;
        Ok(())
    }

    /// Drops every reference the vCPU holds (domain teardown).
    pub fn release<M: FrameMemory + ?Sized>(&mut self, frames: &mut FrameTable<'_>, mem: &mut M) {
        for base in [self.kernel_base.take(), self.user_base.take()].into_iter().flatten() {
            frames.put_page_and_type(mem, base);
        }
        self.release_gdt(frames, mem);
        self.release_ldt(frames, mem);
        self.ldt_base = 0;
        self.ldt_entries = 0;
    }

    fn release_gdt<M: FrameMemory + ?Sized>(&mut self, frames: &mut FrameTable<'_>, mem: &mut M) {
        for slot in &mut self.gdt_frames {
            if let Some(mfn) = slot.take() {
                frames.put_segdesc_frame(mem, mfn);
            }
        }
        self.gdt_entries = 0;
    }

    /// The start-of-day state of a domain built by the domain builder:
    /// `tables` lists every bootstrap page-table frame with its level, with
    /// exactly one L4. The L4 is pinned (validating the whole tree, which
    /// types every table and refuses writable mappings of them) and becomes
    /// the kernel base. Every listed table must end up validated at its
    /// level, i.e. be reachable from the L4; otherwise nothing is kept.
    pub fn build_initial<M: FrameMemory + ?Sized>(
        frames: &mut FrameTable<'_>,
        mem: &mut M,
        domain: DomainId,
        tables: &[(Mfn, Level)],
    ) -> Result<Self, MmError> {
        let mut roots = tables.iter().filter(|(_, level)| *level == Level::L4);
        let (Some(&(root, _)), None) = (roots.next(), roots.next()) else {
            return Err(MmError::NoRootTable);
        };
        frames.pin(mem, domain, root, Level::L4)?;
        let mut vcpu = VcpuPageTables::new();
        let checked =
            vcpu.new_baseptr(frames, mem, domain, root).and_then(|_| Self::check_typed(frames, tables));
        match checked {
            Ok(()) => Ok(vcpu),
            Err(err) => {
                vcpu.release(frames, mem);
                // The pin was taken above, so unpinning cannot fail.
                let _ = frames.unpin(mem, domain, root);
                Err(err)
            }
        }
    }

    fn check_typed(frames: &FrameTable<'_>, tables: &[(Mfn, Level)]) -> Result<(), MmError> {
        for &(mfn, level) in tables {
            let frame = frames.frame(mfn).ok_or(MmError::FrameOutOfRange(mfn))?;
            if !frame.is_validated() || frame.type_count() == 0 {
                return Err(MmError::NotValidated(mfn));
            }
            if frame.page_type() != level.page_type() {
                return Err(MmError::TypeConflict {
                    mfn,
                    current: frame.page_type(),
                    wanted: level.page_type(),
                });
            }
        }
        Ok(())
    }
}
