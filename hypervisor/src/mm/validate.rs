//! Validation of page-table and descriptor frames, entry by entry, and the
//! references each entry holds (Xen's `promote_l*_table`, `demote_l*_table`,
//! `get_page_from_l*e`, `put_page_from_l*e` and the linear page-table rules).

use super::descriptor::check_descriptor;
use super::frame::{Owner, PageType};
use super::table::FrameTable;
use super::{
    errno, is_guest_l4_slot, pte, DomainId, FrameMemory, Level, Mfn, MmError, ENTRIES_PER_TABLE,
    HYPERVISOR_L4_SLOTS,
};

/// Xen's INVALID_MFN as a 64-bit PTE can spell it: every frame bit set.
const INVALID_MFN: Mfn = Mfn(pte::ADDR_MASK >> 12);

/// The slots of a `level` table that belong to the guest.
fn guest_slots(level: Level) -> impl Iterator<Item = usize> {
    (0..ENTRIES_PER_TABLE).filter(move |&index| level != Level::L4 || is_guest_l4_slot(index))
}

impl FrameTable<'_> {
    /// Checks the contents of `mfn` for use as `page_type` and takes the
    /// references its entries need. On failure nothing is held and nothing
    /// was written.
    pub(in crate::mm) fn validate<M: FrameMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        mfn: Mfn,
        page_type: PageType,
    ) -> Result<(), MmError> {
        let Some(level) = page_type.level() else {
            return self.validate_descriptors(mem, mfn);
        };
        let domain = match self.info(mfn)?.owner {
            Owner::Domain(domain) => domain,
            Owner::Free | Owner::Hypervisor | Owner::Io => return Err(MmError::NotOwner(mfn)),
        };
        for index in guest_slots(level) {
            let entry = mem.read_entry(mfn, index);
            if !pte::is_present(entry) {
                continue;
            }
            if let Err(err) = self.get_page_from_entry(mem, level, entry, mfn, domain) {
                self.release_entries(mem, mfn, level, index);
                return Err(err);
            }
        }
        // Only a table that passed is rewritten, so a refused frame reads
        // back exactly as the guest wrote it.
        for index in guest_slots(level) {
            let entry = mem.read_entry(mfn, index);
            let adjusted = pte::adjust_guest_entry(level, entry);
            if adjusted != entry {
                mem.write_entry(mfn, index, adjusted);
            }
        }
        if level == Level::L4 {
            for (index, &entry) in HYPERVISOR_L4_SLOTS.zip(self.hypervisor_l4_entries().iter()) {
                mem.write_entry(mfn, index, entry);
            }
        }
        Ok(())
    }

    /// Drops the references held by every guest entry of a table whose last
    /// type reference went.
    pub(in crate::mm) fn devalidate<M: FrameMemory + ?Sized>(&mut self, mem: &mut M, mfn: Mfn, level: Level) {
        self.release_entries(mem, mfn, level, ENTRIES_PER_TABLE);
    }

    /// Drops the references of the guest entries below index `end`.
    fn release_entries<M: FrameMemory + ?Sized>(&mut self, mem: &mut M, mfn: Mfn, level: Level, end: usize) {
        for index in guest_slots(level).take_while(|&index| index < end) {
            let entry = mem.read_entry(mfn, index);
            self.put_page_from_entry(mem, level, entry, mfn);
        }
    }

    /// Checks one present guest entry of the `level` table `table` and takes
    /// the references it needs.
    pub(in crate::mm) fn get_page_from_entry<M: FrameMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        level: Level,
        entry: u64,
        table: Mfn,
        domain: DomainId,
    ) -> Result<(), MmError> {
        let reserved = entry & pte::disallow_mask(level, self.cache_attrs_permitted);
        if reserved != 0 {
            return Err(MmError::ReservedBits { level, bits: reserved });
        }
        let target = pte::entry_mfn(entry);
        let Some(lower) = level.lower() else {
            return self.get_page_from_l1_entry(mem, entry, target, domain);
        };
        match self.get_page_and_type(mem, target, domain, lower.page_type()) {
            Ok(()) => Ok(()),
            Err(err) if err.xen_errno() == errno::EINVAL => {
                match self.get_linear(entry, table, target, level, domain) {
                    Ok(()) => Ok(()),
                    Err(linear_err) => {
                        let same_level =
                            self.frame(target).is_some_and(|frame| frame.page_type == level.page_type());
                        Err(if same_level { linear_err } else { err })
                    }
                }
            }
            Err(err) => Err(err),
        }
    }

    /// An L1 entry maps a data frame: it must be the domain's, and a
    /// writable mapping needs a `Writable` type reference, which a frame in
    /// use as a page table or descriptor table cannot give.
    fn get_page_from_l1_entry<M: FrameMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        entry: u64,
        target: Mfn,
        domain: DomainId,
    ) -> Result<(), MmError> {
        let Some(frame) = self.frame(target).filter(|frame| frame.owner != Owner::Io) else {
            // Outside RAM is I/O memory, which no domain here may map. The
            // all-ones frame number is Xen's INVALID_MFN: not even I/O.
            if target == INVALID_MFN {
                return Err(MmError::FrameOutOfRange(target));
            }
            return Err(MmError::MmioDenied(target));
        };
        if frame.owner != Owner::Domain(domain) {
            return Err(MmError::ForeignFrame(target));
        }
        self.get_page(target, domain).map_err(|_| MmError::ForeignFrame(target))?;
        if pte::is_writable(entry) {
            if let Err(_refused) = self.get_page_type(mem, target, PageType::Writable) {
                self.put_page(target);
                return Err(MmError::WritableMappingRefused(target));
            }
        }
        Ok(())
    }

    /// A same-level entry (L2->L2, L3->L3, L4->L4): allowed read-only, onto
    /// an already validated table, and never nested: a table holding linear
    /// entries cannot be the target of one, and vice versa (XSA-240). An entry
    /// naming its own table takes no references at all.
    fn get_linear(
        &mut self,
        entry: u64,
        table: Mfn,
        target: Mfn,
        level: Level,
        domain: DomainId,
    ) -> Result<(), MmError> {
        if pte::is_writable(entry) {
            return Err(MmError::LinearRefused(target));
        }
        if target == table {
            return Ok(());
        }
        self.get_page(target, domain)?;
        let (Some(table_index), Some(target_index)) = (self.index(table), self.index(target)) else {
            self.put_page(target);
            return Err(MmError::LinearRefused(target));
        };
        let holder = &self.frames[table_index];
        let mapped = &self.frames[target_index];
        let acceptable = holder.linear >= 0
            && holder.linear < i32::MAX
            && mapped.linear <= 0
            && mapped.linear > i32::MIN
            && mapped.page_type == level.page_type()
            && mapped.validated
            && mapped.type_count > 0
            && mapped.type_count < u32::MAX;
        if !acceptable {
            self.put_page(target);
            return Err(MmError::LinearRefused(target));
        }
        self.frames[table_index].linear += 1;
        self.frames[target_index].linear -= 1;
        self.frames[target_index].type_count += 1;
        Ok(())
    }

    /// Drops what [`get_page_from_entry`](Self::get_page_from_entry) took
    /// for a (previously validated) entry.
    pub(in crate::mm) fn put_page_from_entry<M: FrameMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        level: Level,
        entry: u64,
        table: Mfn,
    ) {
        if !pte::is_present(entry) {
            return;
        }
        let target = pte::entry_mfn(entry);
        if level == Level::L1 {
            if pte::is_writable(entry) {
                self.put_page_type(mem, target);
            } else if self
                .frame(target)
                .is_some_and(|frame| frame.page_type == PageType::SegDesc && frame.type_count != 0)
            {
                self.ldt_invalidation = true;
            }
            self.put_page(target);
        } else if target != table {
            self.put_page_type_from(mem, target, Some(table));
            self.put_page(target);
        }
    }

    /// A GDT/LDT frame: every descriptor must be safe; fixed-up DPLs are
    /// written back, as Xen's `validate_segdesc_page` does.
    fn validate_descriptors<M: FrameMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        mfn: Mfn,
    ) -> Result<(), MmError> {
        for index in 0..ENTRIES_PER_TABLE {
            if check_descriptor(mem.read_entry(mfn, index)).is_none() {
                return Err(MmError::BadDescriptor { mfn, index });
            }
        }
        for index in 0..ENTRIES_PER_TABLE {
            let raw = mem.read_entry(mfn, index);
            if let Some(fixed) = check_descriptor(raw).filter(|&fixed| fixed != raw) {
                mem.write_entry(mfn, index, fixed);
            }
        }
        Ok(())
    }
}
