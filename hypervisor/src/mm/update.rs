//! The operations behind `mmu_update` and `mmuext_op`: entry updates
//! (`mod_l*_entry`), M2P updates, pinning, and writable mappings made by the
//! hypervisor itself.

use super::descriptor::check_descriptor;
use super::frame::PageType;
use super::table::FrameTable;
use super::{is_guest_l4_slot, pte, DomainId, FrameMemory, Level, Mfn, MmError, ENTRIES_PER_TABLE};

impl FrameTable<'_> {
    /// `MMU_NORMAL_PT_UPDATE` (or `MMU_PT_UPDATE_PRESERVE_AD` when
    /// `preserve_ad`): writes `new` into entry `index` of frame `table`.
    ///
    /// If `table` is a validated page table, the new entry is checked like
    /// any entry of its level, references for its target are taken and those
    /// of the old entry dropped (`mod_l1_entry`..`mod_l4_entry`). If it is
    /// not a page table, it is written as plain data, which needs the frame
    /// to be typable `Writable` (as Xen allows); descriptor tables and
    /// read-only shared frames are refused.
    pub fn update_entry<M: FrameMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        domain: DomainId,
        table: Mfn,
        index: usize,
        new: u64,
        preserve_ad: bool,
    ) -> Result<(), MmError> {
        if index >= ENTRIES_PER_TABLE {
            return Err(MmError::BadIndex(index));
        }
        self.get_page(table, domain)?;
        let result = self.update_referenced(mem, domain, table, index, new, preserve_ad);
        self.put_page(table);
        result
    }

    fn update_referenced<M: FrameMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        domain: DomainId,
        table: Mfn,
        index: usize,
        new: u64,
        preserve_ad: bool,
    ) -> Result<(), MmError> {
        let frame = self.info(table)?;
        if frame.type_count > 0 && frame.validated {
            return match frame.page_type {
                PageType::Writable => {
                    mem.write_entry(table, index, new);
                    Ok(())
                }
                page_type => match page_type.level() {
                    Some(level) => self.modify_entry(mem, domain, table, level, index, new, preserve_ad),
                    None => Err(MmError::NotUpdatable(table)),
                },
            };
        }
        self.get_page_type(mem, table, PageType::Writable).map_err(|_| MmError::NotUpdatable(table))?;
        mem.write_entry(table, index, new);
        self.put_page_type(mem, table);
        Ok(())
    }

    /// One entry of a validated `level` table.
    #[allow(clippy::too_many_arguments)]
    fn modify_entry<M: FrameMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        domain: DomainId,
        table: Mfn,
        level: Level,
        index: usize,
        new: u64,
        preserve_ad: bool,
    ) -> Result<(), MmError> {
        if level == Level::L4 && !is_guest_l4_slot(index) {
            return Err(MmError::HypervisorSlot(index));
        }
        let old = mem.read_entry(table, index);
        let mut new = new;
        if pte::is_present(new) {
            let reserved = new & pte::disallow_mask(level, self.cache_attrs_permitted);
            if reserved != 0 {
                return Err(MmError::ReservedBits { level, bits: reserved });
            }
            new = pte::adjust_guest_entry(level, new);
            if !pte::needs_revalidation(old, new) {
                mem.write_entry(table, index, pte::with_preserved_ad(old, new, preserve_ad));
                return Ok(());
            }
            self.get_page_from_entry(mem, level, new, table, domain)?;
        }
        mem.write_entry(table, index, pte::with_preserved_ad(old, new, preserve_ad));
        self.put_page_from_entry(mem, level, old, table);
        Ok(())
    }

    /// `MMU_MACHPHYS_UPDATE`: the domain may set the M2P entry only of a
    /// frame it owns. The M2P write itself is the caller's.
    pub fn machphys_update(&mut self, domain: DomainId, mfn: Mfn) -> Result<(), MmError> {
        self.get_page(mfn, domain)?;
        self.put_page(mfn);
        Ok(())
    }

    /// `MMUEXT_PIN_Ln_TABLE`: makes `mfn` a validated `level` table that
    /// stays one, whatever else references it, until unpinned. Pinning a
    /// table in use at another level fails, and so does pinning twice.
    pub fn pin<M: FrameMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        domain: DomainId,
        mfn: Mfn,
        level: Level,
    ) -> Result<(), MmError> {
        self.get_page_and_type(mem, mfn, domain, level.page_type())?;
        if self.info(mfn)?.pinned {
            self.put_page_and_type(mem, mfn);
            return Err(MmError::AlreadyPinned(mfn));
        }
        self.info_mut(mfn)?.pinned = true;
        Ok(())
    }

    /// `MMUEXT_UNPIN_TABLE`: drops the pin's references; the table stays
    /// valid while anything else (a base pointer, another table) uses it.
    pub fn unpin<M: FrameMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        domain: DomainId,
        mfn: Mfn,
    ) -> Result<(), MmError> {
        self.get_page(mfn, domain)?;
        if !self.info(mfn)?.pinned {
            self.put_page(mfn);
            return Err(MmError::NotPinned(mfn));
        }
        self.info_mut(mfn)?.pinned = false;
        self.put_page_and_type(mem, mfn);
        self.put_page(mfn);
        Ok(())
    }

    /// Takes the references of a writable mapping the hypervisor makes of a
    /// domain frame outside the guest's page tables. Refused (`EBUSY`) for a
    /// frame in use as a page table or descriptor table.
    pub fn map_writable<M: FrameMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        domain: DomainId,
        mfn: Mfn,
    ) -> Result<(), MmError> {
        self.get_page(mfn, domain)?;
        if self.get_page_type(mem, mfn, PageType::Writable).is_err() {
            self.put_page(mfn);
            return Err(MmError::WritableMappingRefused(mfn));
        }
        Ok(())
    }

    /// Drops what [`map_writable`](Self::map_writable) took.
    pub fn unmap_writable<M: FrameMemory + ?Sized>(&mut self, mem: &mut M, mfn: Mfn) -> Result<(), MmError> {
        let frame = self.info(mfn)?;
        if !frame.has_writable_type() || frame.ref_count == 0 {
            return Err(MmError::TypeConflict { mfn, current: frame.page_type, wanted: PageType::Writable });
        }
        self.put_page_and_type(mem, mfn);
        Ok(())
    }

    /// The references of a GDT/LDT frame in use by a vCPU: the frame's
    /// descriptors are validated and it can no longer be mapped writable.
    pub fn get_segdesc_frame<M: FrameMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        domain: DomainId,
        mfn: Mfn,
    ) -> Result<(), MmError> {
        self.get_page_and_type(mem, mfn, domain, PageType::SegDesc)
    }

    /// Drops what [`get_segdesc_frame`](Self::get_segdesc_frame) took.
    pub fn put_segdesc_frame<M: FrameMemory + ?Sized>(&mut self, mem: &mut M, mfn: Mfn) {
        self.put_page_and_type(mem, mfn);
    }

    /// `HYPERVISOR_update_descriptor`: writes descriptor `index` of `mfn`,
    /// which must be the domain's and either a descriptor table or typable
    /// `Writable`. The descriptor is checked (and its DPL fixed up) first.
    pub fn update_descriptor<M: FrameMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        domain: DomainId,
        mfn: Mfn,
        index: usize,
        descriptor: u64,
    ) -> Result<(), MmError> {
        if index >= ENTRIES_PER_TABLE {
            return Err(MmError::BadIndex(index));
        }
        let fixed = check_descriptor(descriptor).ok_or(MmError::BadDescriptor { mfn, index })?;
        self.get_page(mfn, domain)?;
        let wanted = match self.info(mfn)?.page_type {
            PageType::SegDesc => PageType::SegDesc,
            _ => PageType::Writable,
        };
        if let Err(err) = self.get_page_type(mem, mfn, wanted) {
            self.put_page(mfn);
            return Err(match err {
                MmError::TypeConflict { .. } => MmError::NotUpdatable(mfn),
                other => other,
            });
        }
        mem.write_entry(mfn, index, fixed);
        self.put_page_and_type(mem, mfn);
        Ok(())
    }
}
