//! A from-scratch consistency check of the frame table against frame
//! contents: every count is recomputed from the validated tables, the pins
//! and the references the caller says it holds. Used by the tests and the
//! fuzzer after every operation; the hypervisor may run it in debug builds.

use super::descriptor::check_descriptor;
use super::frame::Owner;
use super::table::FrameTable;
use super::{is_guest_l4_slot, pte, FrameMemory, Level, Mfn, ENTRIES_PER_TABLE, HYPERVISOR_L4_SLOTS};

/// Per-frame working space for [`FrameTable::audit`] (one per frame), so
/// the audit needs no allocator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuditScratch {
    general: u32,
    typed: u32,
    linear_entries: i32,
    linear_uses: i32,
}

/// A reference held outside the frame table's own records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExternalRef {
    /// A vCPU base pointer: a general and an L4 type reference.
    Base(Mfn),
    /// A hypervisor-made writable mapping ([`FrameTable::map_writable`]).
    Writable(Mfn),
    /// A GDT/LDT frame in use ([`FrameTable::get_segdesc_frame`]).
    SegDesc(Mfn),
    /// A bare general reference ([`FrameTable::get_page`]).
    General(Mfn),
}

/// What is wrong, and with which frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditFailure {
    pub mfn: Mfn,
    pub problem: AuditProblem,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditProblem {
    /// The scratch slice is shorter than the frame table.
    ScratchTooSmall,
    /// An external reference names a frame outside the table.
    ExternalOutOfRange,
    /// A type that needs validation is held but the frame is not validated.
    NotValidated,
    /// A pinned frame that is not an in-use page table.
    PinnedNonTable,
    /// A present entry names a frame outside the table.
    EntryOutOfRange {
        index: usize,
    },
    /// A present entry names a frame its table's owner does not own.
    EntryToForeignFrame {
        index: usize,
    },
    /// A present entry sets bits reserved at its level.
    ReservedBits {
        index: usize,
    },
    /// An L1 entry maps writable a frame without a `Writable` type.
    WritableMappingOfNonWritable {
        index: usize,
    },
    /// An L2-L4 entry names a frame of neither the next lower level nor
    /// (linearly) its own.
    WrongTargetType {
        index: usize,
    },
    /// A linear (same-level) entry is writable.
    WritableLinearEntry {
        index: usize,
    },
    /// A table both holds linear entries and is the target of one, so
    /// linear mappings would nest.
    NestedLinear,
    /// An L4 hypervisor slot differs from the hypervisor's entry.
    HypervisorSlotTampered {
        index: usize,
    },
    /// A validated descriptor frame holds an unsafe descriptor.
    BadDescriptor {
        index: usize,
    },
    GeneralCountMismatch {
        expected: u32,
        actual: u32,
    },
    TypeCountMismatch {
        expected: u32,
        actual: u32,
    },
    LinearCountMismatch {
        expected: i32,
        actual: i32,
    },
}

impl FrameTable<'_> {
    /// Recomputes every frame's general, type and linear counts from the
    /// contents of validated tables, pins, shared frames and `external`
    /// (which must list every reference held elsewhere), and checks each
    /// entry of each in-use table against the rules. Any frame a table
    /// points to must belong to that table's owner, so a hypervisor frame
    /// can be reachable from no guest table.
    pub fn audit<M: FrameMemory + ?Sized>(
        &self,
        mem: &M,
        scratch: &mut [AuditScratch],
        external: &[ExternalRef],
    ) -> Result<(), AuditFailure> {
        let count = self.frames.len();
        let Some(expected) = scratch.get_mut(..count) else {
            return Err(AuditFailure { mfn: Mfn(0), problem: AuditProblem::ScratchTooSmall });
        };
        expected.fill(AuditScratch::default());

        for reference in external {
            let (ExternalRef::Base(mfn)
            | ExternalRef::Writable(mfn)
            | ExternalRef::SegDesc(mfn)
            | ExternalRef::General(mfn)) = *reference;
            let index =
                self.index(mfn).ok_or(AuditFailure { mfn, problem: AuditProblem::ExternalOutOfRange })?;
            expected[index].general += 1;
            if !matches!(reference, ExternalRef::General(_)) {
                expected[index].typed += 1;
            }
        }

        for index in 0..count {
            let mfn = Mfn(index as u64);
            let fail = |problem| AuditFailure { mfn, problem };
            let frame = &self.frames[index];
            if frame.pinned {
                if frame.page_type.level().is_none() || frame.type_count == 0 {
                    return Err(fail(AuditProblem::PinnedNonTable));
                }
                expected[index].general += 1;
                expected[index].typed += 1;
            }
            if frame.shared.is_some() {
                expected[index].typed += 1;
            }
            if frame.type_count == 0 || !frame.page_type.needs_validation() {
                continue;
            }
            if !frame.validated {
                return Err(fail(AuditProblem::NotValidated));
            }
            match frame.page_type.level() {
                Some(level) => self.audit_table(mem, mfn, level, expected)?,
                None => {
                    for slot in 0..ENTRIES_PER_TABLE {
                        let raw = mem.read_entry(mfn, slot);
                        if check_descriptor(raw) != Some(raw) {
                            return Err(fail(AuditProblem::BadDescriptor { index: slot }));
                        }
                    }
                }
            }
        }

        for (index, (frame, wanted)) in self.frames.iter().zip(expected.iter()).enumerate() {
            let mfn = Mfn(index as u64);
            let fail = |problem| Err(AuditFailure { mfn, problem });
            if frame.ref_count != wanted.general {
                return fail(AuditProblem::GeneralCountMismatch {
                    expected: wanted.general,
                    actual: frame.ref_count,
                });
            }
            if frame.type_count != wanted.typed {
                return fail(AuditProblem::TypeCountMismatch {
                    expected: wanted.typed,
                    actual: frame.type_count,
                });
            }
            if wanted.linear_entries > 0 && wanted.linear_uses > 0 {
                return fail(AuditProblem::NestedLinear);
            }
            let linear = wanted.linear_entries - wanted.linear_uses;
            if frame.linear != linear {
                return fail(AuditProblem::LinearCountMismatch { expected: linear, actual: frame.linear });
            }
        }
        Ok(())
    }

    fn audit_table<M: FrameMemory + ?Sized>(
        &self,
        mem: &M,
        table: Mfn,
        level: Level,
        expected: &mut [AuditScratch],
    ) -> Result<(), AuditFailure> {
        let table_index = self.index(table).unwrap_or_default();
        let owner = self.frames[table_index].owner;
        let fail = |problem| Err(AuditFailure { mfn: table, problem });
        for index in 0..ENTRIES_PER_TABLE {
            let entry = mem.read_entry(table, index);
            if level == Level::L4 && !is_guest_l4_slot(index) {
                let reserved = self.hypervisor_l4_entries()[index - HYPERVISOR_L4_SLOTS.start];
                if entry != reserved {
                    return fail(AuditProblem::HypervisorSlotTampered { index });
                }
                continue;
            }
            if !pte::is_present(entry) {
                continue;
            }
            if entry & pte::disallow_mask(level, self.cache_attrs_permitted) != 0 {
                return fail(AuditProblem::ReservedBits { index });
            }
            let target = pte::entry_mfn(entry);
            let Some(target_index) = self.index(target) else {
                return fail(AuditProblem::EntryOutOfRange { index });
            };
            let mapped = &self.frames[target_index];
            if !owned_by_same_domain(owner, mapped.owner) {
                return fail(AuditProblem::EntryToForeignFrame { index });
            }
            let writable = pte::is_writable(entry);
            let Some(lower) = level.lower() else {
                expected[target_index].general += 1;
                if writable {
                    if !mapped.has_writable_type() {
                        return fail(AuditProblem::WritableMappingOfNonWritable { index });
                    }
                    expected[target_index].typed += 1;
                }
                continue;
            };
            if target == table {
                if writable {
                    return fail(AuditProblem::WritableLinearEntry { index });
                }
                continue;
            }
            expected[target_index].general += 1;
            expected[target_index].typed += 1;
            if mapped.page_type == level.page_type() {
                if writable {
                    return fail(AuditProblem::WritableLinearEntry { index });
                }
                expected[table_index].linear_entries += 1;
                expected[target_index].linear_uses += 1;
            } else if mapped.page_type != lower.page_type() {
                return fail(AuditProblem::WrongTargetType { index });
            }
        }
        Ok(())
    }
}

fn owned_by_same_domain(table_owner: Owner, frame_owner: Owner) -> bool {
    matches!((table_owner, frame_owner),
        (Owner::Domain(a), Owner::Domain(b)) if a == b)
}
