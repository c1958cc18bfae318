//! Host tests of the frame-accounting rules. `scenario` is shared with the
//! cargo-fuzz target in `hypervisor/fuzz`.

mod entries;
mod props;
mod refs;
mod scenario;
mod segdesc;
mod xsa;

// `scenario` reaches the module under test as `super::mm`, so that the
// fuzz crate can include the same file next to `use hypervisor::mm;`.
use crate::mm;

use mm::pte::{ACCESSED, PRESENT, RW, USER};
use mm::{
    AuditScratch, DomainId, ExternalRef, FrameInfo, FrameTable, Level, Mfn, Owner, SharedAccess,
    VcpuPageTables, ENTRIES_PER_TABLE,
};

pub const DOM: DomainId = 1;
pub const OTHER_DOM: DomainId = 2;
pub const FRAMES: usize = 32;

/// Frame layout of every unit test: 0-1 the hypervisor's, 2 free, 3 another
/// domain's, 4 shared read-only and 5 shared read-write with `DOM`, 6.. `DOM`'s.
pub const HYP: Mfn = Mfn(0);
pub const HYP2: Mfn = Mfn(1);
pub const FREE: Mfn = Mfn(2);
pub const FOREIGN: Mfn = Mfn(3);
pub const SHARED_RO: Mfn = Mfn(4);
pub const SHARED_RW: Mfn = Mfn(5);
pub const OUT_OF_RANGE: Mfn = Mfn(FRAMES as u64 + 7);

/// Domain frames, by number from 0.
pub const fn dom_frame(n: u64) -> Mfn {
    Mfn(6 + n)
}

/// A present entry pointing to `mfn`.
pub const fn entry(mfn: Mfn, flags: u64) -> u64 {
    mm::pte::make_entry(mfn, flags | PRESENT)
}

pub const RO: u64 = USER | ACCESSED;
pub const WR: u64 = USER | ACCESSED | RW;

pub type Memory = Vec<[u64; ENTRIES_PER_TABLE]>;

pub struct Harness {
    pub ft: FrameTable<'static>,
    pub mem: Memory,
    pub vcpu: VcpuPageTables,
}

impl Harness {
    pub fn new() -> Self {
        let frames: Vec<FrameInfo> = (0..FRAMES)
            .map(|index| match index {
                0 | 1 | 4 | 5 => FrameInfo::new(Owner::Hypervisor),
                2 => FrameInfo::new(Owner::Free),
                3 => FrameInfo::new(Owner::Domain(OTHER_DOM)),
                _ => FrameInfo::new(Owner::Domain(DOM)),
            })
            .collect();
        // Each test owns its table for its whole run; leaking keeps the
        // harness free of self-references.
        let mut ft = FrameTable::new(Box::leak(frames.into_boxed_slice()));
        ft.share_with_domain(SHARED_RO, DOM, SharedAccess::ReadOnly).unwrap();
        ft.share_with_domain(SHARED_RW, DOM, SharedAccess::ReadWrite).unwrap();
        let mut hypervisor_l4 = [0; 16];
        hypervisor_l4[0] = mm::pte::make_entry(HYP, PRESENT | RW);
        hypervisor_l4[2] = mm::pte::make_entry(HYP2, PRESENT | RW);
        ft.set_hypervisor_l4_entries(hypervisor_l4);
        Harness { ft, mem: vec![[0; ENTRIES_PER_TABLE]; FRAMES], vcpu: VcpuPageTables::new() }
    }

    pub fn set(&mut self, mfn: Mfn, index: usize, value: u64) {
        self.mem[mfn.0 as usize][index] = value;
    }

    pub fn get(&self, mfn: Mfn, index: usize) -> u64 {
        self.mem[mfn.0 as usize][index]
    }

    pub fn info(&self, mfn: Mfn) -> FrameInfo {
        *self.ft.frame(mfn).unwrap()
    }

    /// (general refs, type refs) of a frame.
    pub fn counts(&self, mfn: Mfn) -> (u32, u32) {
        let info = self.info(mfn);
        (info.ref_count(), info.type_count())
    }

    pub fn update(&mut self, table: Mfn, index: usize, value: u64) -> Result<(), mm::MmError> {
        self.ft.update_entry(&mut self.mem[..], DOM, table, index, value, false)
    }

    pub fn pin(&mut self, mfn: Mfn, level: Level) -> Result<(), mm::MmError> {
        self.ft.pin(&mut self.mem[..], DOM, mfn, level)
    }

    pub fn unpin(&mut self, mfn: Mfn) -> Result<(), mm::MmError> {
        self.ft.unpin(&mut self.mem[..], DOM, mfn)
    }

    pub fn new_baseptr(&mut self, mfn: Mfn) -> Result<Option<Mfn>, mm::MmError> {
        self.vcpu.new_baseptr(&mut self.ft, &mut self.mem[..], DOM, mfn)
    }

    /// Writes L4 -> L3 -> L2 -> L1 -> data (writable) into frames 0..=4
    /// (domain numbering) and returns them in that order.
    pub fn write_tree(&mut self) -> [Mfn; 5] {
        let [l4, l3, l2, l1, data] = [0, 1, 2, 3, 4].map(dom_frame);
        self.set(l4, 0, entry(l3, WR));
        self.set(l3, 0, entry(l2, WR));
        self.set(l2, 0, entry(l1, WR));
        self.set(l1, 0, entry(data, WR));
        [l4, l3, l2, l1, data]
    }

    /// The audit with the vCPU's references and `extra` as the only external
    /// ones; panics with the failure.
    pub fn audit(&self, extra: &[ExternalRef]) {
        let mut external: Vec<ExternalRef> = extra.to_vec();
        external.extend(self.vcpu.kernel_base().map(ExternalRef::Base));
        external.extend(self.vcpu.user_base().map(ExternalRef::Base));
        external.extend(self.vcpu.gdt_frames().map(ExternalRef::SegDesc));
        external.extend(self.vcpu.ldt_frames().map(|(_, mfn)| ExternalRef::SegDesc(mfn)));
        let mut scratch = vec![AuditScratch::default(); FRAMES];
        if let Err(failure) = self.ft.audit(&self.mem[..], &mut scratch, &external) {
            panic!("audit failed: {failure:?}");
        }
    }

    /// Every domain frame is unreferenced (shared frames keep their
    /// permanent type reference).
    pub fn assert_all_released(&self) {
        for index in 0..FRAMES as u64 {
            let info = self.info(Mfn(index));
            assert_eq!(info.ref_count(), 0, "general refs of mfn {index}");
            assert_eq!(info.type_count(), info.idle_type_count(), "type refs of mfn {index}");
            assert_eq!(info.linear_count(), 0, "linear count of mfn {index}");
            assert!(!info.is_pinned(), "mfn {index} pinned");
        }
    }
}
