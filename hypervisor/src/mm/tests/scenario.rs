//! A hostile guest issuing random memory-management operations against a
//! small frame table, with the security invariants checked after each one.
//! Shared by the proptest in `props.rs` and the cargo-fuzz target in
//! `hypervisor/fuzz`, which includes this file; it therefore names the
//! module under test only as `super::mm`.

use super::mm;

use mm::pte::{self, ACCESSED, DIRTY, GLOBAL, GNTTAB, GUEST_KERNEL, NX, PCD, PSE, PWT};
use mm::pte::{PRESENT, RW, USER};
use mm::{
    AuditScratch, DomainId, ExternalRef, FrameInfo, FrameTable, Level, Mfn, Owner, PageType, SharedAccess,
    VcpuPageTables, ENTRIES_PER_TABLE, HYPERVISOR_L4_SLOTS,
};
use std::collections::HashSet;
use std::vec::Vec;

pub const DOMAIN: DomainId = 1;
pub const FRAMES: usize = 24;
/// Frame numbers the operations draw from: the table plus two beyond it.
const FRAME_CHOICES: u8 = FRAMES as u8 + 2;
/// Entry indices the operations draw from: a few ordinary slots and the
/// edges of the hypervisor's L4 range.
const SLOTS: [usize; 10] = [0, 1, 2, 3, 255, 256, 258, 271, 272, 511];

/// The frames of the model machine: 0-1 hypervisor, 2 free, 3 another
/// domain's, 4/5 shared read-only/read-write, the rest the guest's.
fn initial_frames() -> Vec<FrameInfo> {
    (0..FRAMES)
        .map(|index| match index {
            0 | 1 | 4 | 5 => FrameInfo::new(Owner::Hypervisor),
            2 => FrameInfo::new(Owner::Free),
            3 => FrameInfo::new(Owner::Domain(DOMAIN + 1)),
            _ => FrameInfo::new(Owner::Domain(DOMAIN)),
        })
        .collect()
}

/// The hypervisor's L4 slots map hypervisor frames, without `USER`.
fn hypervisor_l4() -> [u64; 16] {
    let mut entries = [0; 16];
    entries[0] = pte::make_entry(Mfn(0), PRESENT | RW);
    entries[2] = pte::make_entry(Mfn(1), PRESENT | RW | NX);
    entries
}

fn frame_table(frames: &mut [FrameInfo]) -> FrameTable<'_> {
    let mut table = FrameTable::new(frames);
    table.set_hypervisor_l4_entries(hypervisor_l4());
    table
}

/// One guest request. Frame and target bytes below 128 name a frame
/// directly; from 128 up they name one of the frames currently in use as
/// page tables, so that tables get linked to each other often (an update's
/// target from 192 up: one of the same type as its table).
#[derive(Clone, Debug)]
pub enum Op {
    Update {
        table: u8,
        slot: u8,
        target: u8,
        flags: u16,
        preserve_ad: bool,
    },
    /// A store through a writable mapping the guest holds.
    GuestWrite {
        frame: u8,
        slot: u8,
        target: u8,
        flags: u16,
    },
    Pin {
        frame: u8,
        level: u8,
    },
    Unpin {
        frame: u8,
    },
    NewBase {
        frame: u8,
    },
    NewUserBase {
        frame: Option<u8>,
    },
    Machphys {
        frame: u8,
    },
    SetGdt {
        frame: u8,
        entries: u16,
    },
    MapWritable {
        frame: u8,
    },
    UnmapWritable {
        which: u8,
    },
    UpdateDescriptor {
        frame: u8,
        index: u8,
        descriptor: u64,
    },
}

/// Entry flags from a seed: mostly present, the ordinary bits at random,
/// and about one time in five one bit the rules care about.
pub fn flags_from_seed(seed: u16) -> u64 {
    let mut flags = 0;
    for (bit, mask) in [(1 << 3, RW), (1 << 4, USER), (1 << 5, ACCESSED), (1 << 6, DIRTY), (1 << 7, NX)] {
        if seed & bit != 0 {
            flags |= mask;
        }
    }
    if seed & 7 != 0 {
        flags |= PRESENT;
    }
    flags
        | match (seed >> 8) & 0x1f {
            1 => PSE,
            2 => GLOBAL,
            3 => PWT,
            4 => PCD,
            5 => GNTTAB,
            6 => GUEST_KERNEL,
            7 => 1 << 9,
            _ => 0,
        }
}

/// Descriptors from a seed: mostly well-formed code segments and gates,
/// sometimes arbitrary bits.
pub fn descriptor_from_seed(seed: u64) -> u64 {
    match seed % 4 {
        0 => 0x0020_9a00_0000_ffff | (((seed >> 8) & 3) << 45),
        1 => ((seed >> 8) & 0xffff) << 16 | (0x8c00 << 32),
        2 => 0x0000_8900_0000_0067,
        _ => seed,
    }
}

/// Decodes fuzzer bytes into operations (at most 256).
pub fn decode_ops(data: &[u8]) -> Vec<Op> {
    let mut bytes = data.iter().copied();
    let mut next = move || bytes.next();
    let mut ops = Vec::new();
    while ops.len() < 256 {
        let Some(code) = next() else { break };
        let mut byte = || next().unwrap_or(0);
        let op = match code % 11 {
            0..=2 => Op::Update {
                table: byte(),
                slot: byte(),
                target: byte(),
                flags: u16::from_le_bytes([byte(), byte()]),
                preserve_ad: byte() & 1 != 0,
            },
            3 => Op::GuestWrite {
                frame: byte(),
                slot: byte(),
                target: byte(),
                flags: u16::from_le_bytes([byte(), byte()]),
            },
            4 => Op::Pin { frame: byte(), level: byte() },
            5 => Op::Unpin { frame: byte() },
            6 => Op::NewBase { frame: byte() },
            7 => {
                let frame = byte();
                Op::NewUserBase { frame: (frame & 1 == 0).then_some(frame >> 1) }
            }
            8 => Op::SetGdt { frame: byte(), entries: u16::from_le_bytes([byte(), byte()]) },
            9 => match byte() % 3 {
                0 => Op::MapWritable { frame: byte() },
                1 => Op::UnmapWritable { which: byte() },
                _ => Op::Machphys { frame: byte() },
            },
            _ => Op::UpdateDescriptor {
                frame: byte(),
                index: byte(),
                descriptor: u64::from_le_bytes([(); 8].map(|()| byte())),
            },
        };
        ops.push(op);
    }
    ops
}

/// How much of the interesting state space a run reached.
#[derive(Clone, Copy, Debug, Default)]
pub struct Coverage {
    pub successes: usize,
    pub failures: usize,
    pub linear_entries: usize,
    pub deepest_pinned_tree: usize,
    pub writable_leaves: usize,
}

/// The significant state of a frame: what a refused operation must leave
/// exactly as it was.
fn significant(info: &FrameInfo) -> impl PartialEq + std::fmt::Debug {
    let in_use = (info.type_count() > 0).then(|| (info.page_type(), info.is_validated()));
    (info.owner(), info.ref_count(), info.type_count(), info.is_pinned(), info.linear_count(), in_use)
}

pub struct Scenario {
    frames: Vec<FrameInfo>,
    mem: Vec<[u64; ENTRIES_PER_TABLE]>,
    vcpu: VcpuPageTables,
    writable: Vec<Mfn>,
    pub coverage: Coverage,
}

impl Default for Scenario {
    fn default() -> Self {
        Self::new()
    }
}

impl Scenario {
    pub fn new() -> Self {
        let mut frames = initial_frames();
        let mut table = frame_table(&mut frames);
        table
            .share_with_domain(Mfn(4), DOMAIN, SharedAccess::ReadOnly)
            .expect("frame 4 is the hypervisor's and unused");
        table
            .share_with_domain(Mfn(5), DOMAIN, SharedAccess::ReadWrite)
            .expect("frame 5 is the hypervisor's and unused");
        Scenario {
            frames,
            mem: vec![[0; ENTRIES_PER_TABLE]; FRAMES],
            vcpu: VcpuPageTables::new(),
            writable: Vec::new(),
            coverage: Coverage::default(),
        }
    }

    fn pick(&self, choice: u8) -> Mfn {
        self.pick_like(choice, None)
    }

    /// Resolves a frame choice (see [`Op`]); from 192 up with `like` given,
    /// it prefers tables of the same type as `like`, to provoke linear
    /// entries.
    fn pick_like(&self, choice: u8, like: Option<Mfn>) -> Mfn {
        let like_type = like
            .filter(|_| choice >= 192)
            .and_then(|mfn| self.frames.get(mfn.0 as usize))
            .map(|info| info.page_type());
        if choice >= 128 {
            let tables: Vec<usize> = (0..FRAMES)
                .filter(|&i| self.frames[i].page_type().level().is_some())
                .filter(|&i| self.frames[i].type_count() > 0)
                .filter(|&i| like_type.is_none_or(|t| self.frames[i].page_type() == t))
                .collect();
            if !tables.is_empty() {
                return Mfn(tables[usize::from(choice) % tables.len()] as u64);
            }
        }
        Mfn(u64::from(choice % FRAME_CHOICES))
    }

    /// Applies one operation, then checks every invariant (panicking with a
    /// description if one is broken).
    pub fn step(&mut self, op: &Op) {
        let before: Vec<_> = self.frames.iter().map(significant).collect();
        let vcpu_before = self.vcpu;
        let writable_before = self.writable.len();
        let ok = self.apply(op);
        if ok {
            self.coverage.successes += 1;
        } else {
            self.coverage.failures += 1;
            let after: Vec<_> = self.frames.iter().map(significant).collect();
            assert!(before == after, "refused {op:?} changed the frame table");
            assert_eq!(self.vcpu, vcpu_before, "refused {op:?} changed the vCPU");
            assert_eq!(self.writable.len(), writable_before);
        }
        self.check(op);
    }

    fn apply(&mut self, op: &Op) -> bool {
        match *op {
            Op::Update { table, slot, target, flags, preserve_ad } => {
                let table = self.pick(table);
                let target = self.pick_like(target, Some(table));
                let value = pte::make_entry(target, flags_from_seed(flags));
                let slot = SLOTS[usize::from(slot) % SLOTS.len()];
                let mem = &mut self.mem[..];
                frame_table(&mut self.frames)
                    .update_entry(mem, DOMAIN, table, slot, value, preserve_ad)
                    .is_ok()
            }
            Op::GuestWrite { frame, slot, target, flags } => {
                let (frame, target) = (self.pick(frame), self.pick(target));
                let writable = usize::try_from(frame.0)
                    .ok()
                    .and_then(|index| self.frames.get(index))
                    .is_some_and(|info| info.has_writable_type());
                if writable {
                    let slot = SLOTS[usize::from(slot) % SLOTS.len()];
                    let value = pte::make_entry(target, flags_from_seed(flags));
                    self.mem[frame.0 as usize][slot] = value;
                }
                writable
            }
            Op::Pin { frame, level } => {
                let level = Level::from_pin_command(u32::from(level % 4)).unwrap();
                let frame = self.pick(frame);
                let mem = &mut self.mem[..];
                frame_table(&mut self.frames).pin(mem, DOMAIN, frame, level).is_ok()
            }
            Op::Unpin { frame } => {
                let frame = self.pick(frame);
                let mem = &mut self.mem[..];
                frame_table(&mut self.frames).unpin(mem, DOMAIN, frame).is_ok()
            }
            Op::NewBase { frame } => {
                let frame = self.pick(frame);
                let mem = &mut self.mem[..];
                let mut table = frame_table(&mut self.frames);
                self.vcpu.new_baseptr(&mut table, mem, DOMAIN, frame).is_ok()
            }
            Op::NewUserBase { frame } => {
                let frame = frame.map(|choice| self.pick(choice));
                let mem = &mut self.mem[..];
                let mut table = frame_table(&mut self.frames);
                self.vcpu.new_user_baseptr(&mut table, mem, DOMAIN, frame).is_ok()
            }
            Op::Machphys { frame } => {
                let frame = self.pick(frame);
                frame_table(&mut self.frames).machphys_update(DOMAIN, frame).is_ok()
            }
            Op::SetGdt { frame, entries } => {
                let first = self.pick(frame);
                let frames = [first, Mfn(first.0 + 1)];
                let entries = usize::from(entries % 1100);
                let mem = &mut self.mem[..];
                let mut table = frame_table(&mut self.frames);
                self.vcpu.set_gdt(&mut table, mem, DOMAIN, &frames, entries).is_ok()
            }
            Op::MapWritable { frame } => {
                let frame = self.pick(frame);
                let mem = &mut self.mem[..];
                let ok = frame_table(&mut self.frames).map_writable(mem, DOMAIN, frame).is_ok();
                if ok {
                    self.writable.push(frame);
                }
                ok
            }
            Op::UnmapWritable { which } => {
                if self.writable.is_empty() {
                    return false;
                }
                let frame = self.writable.swap_remove(usize::from(which) % self.writable.len());
                let mem = &mut self.mem[..];
                frame_table(&mut self.frames)
                    .unmap_writable(mem, frame)
                    .expect("a frame we mapped writable can be unmapped");
                true
            }
            Op::UpdateDescriptor { frame, index, descriptor } => {
                let frame = self.pick(frame);
                let mem = &mut self.mem[..];
                frame_table(&mut self.frames)
                    .update_descriptor(
                        mem,
                        DOMAIN,
                        frame,
                        usize::from(index),
                        descriptor_from_seed(descriptor),
                    )
                    .is_ok()
            }
        }
    }

    fn external_refs(&self) -> Vec<ExternalRef> {
        let mut external: Vec<ExternalRef> =
            self.writable.iter().copied().map(ExternalRef::Writable).collect();
        external.extend(self.vcpu.kernel_base().map(ExternalRef::Base));
        external.extend(self.vcpu.user_base().map(ExternalRef::Base));
        external.extend(self.vcpu.gdt_frames().map(ExternalRef::SegDesc));
        external
    }

    /// The invariants: exact reference accounting (the audit), and what
    /// the MMU could reach from every root the guest may load or keep.
    pub fn check(&mut self, op: &Op) {
        let external = self.external_refs();
        let mut scratch = vec![AuditScratch::default(); FRAMES];
        let audit = frame_table(&mut self.frames).audit(&self.mem[..], &mut scratch, &external);
        if let Err(failure) = audit {
            panic!("after {op:?}: audit failed: {failure:?}");
        }

        let mut roots: Vec<(Mfn, Level)> = (0..FRAMES)
            .filter(|&i| self.frames[i].is_pinned())
            .filter_map(|i| Some((Mfn(i as u64), self.frames[i].page_type().level()?)))
            .collect();
        roots.extend(self.vcpu.kernel_base().map(|base| (base, Level::L4)));
        roots.extend(self.vcpu.user_base().map(|base| (base, Level::L4)));
        let mut seen = HashSet::new();
        for (root, level) in roots {
            let depth = self.walk(root, level, true, &mut seen, op);
            if self.frames[root.0 as usize].is_pinned() {
                self.coverage.deepest_pinned_tree = self.coverage.deepest_pinned_tree.max(depth);
            }
        }
        self.coverage.linear_entries += self.frames.iter().filter(|info| info.linear_count() > 0).count();
    }

    /// Walks `table` as the MMU would if it were loaded as a `level` table,
    /// trusting nothing but frame contents: every reachable leaf must be
    /// the guest's, and every leaf reachable writable must be a frame with a
    /// `Writable` type (never a page table or descriptor table). Returns
    /// the depth of table levels below and including this one.
    fn walk(
        &mut self,
        table: Mfn,
        level: Level,
        writable: bool,
        seen: &mut HashSet<(Mfn, Level, bool)>,
        op: &Op,
    ) -> usize {
        if !seen.insert((table, level, writable)) {
            return 1;
        }
        let mut depth = 1;
        for index in 0..ENTRIES_PER_TABLE {
            let entry = self.mem[table.0 as usize][index];
            if !pte::is_present(entry) {
                continue;
            }
            if level == Level::L4 && HYPERVISOR_L4_SLOTS.contains(&index) {
                assert_eq!(entry & USER, 0, "after {op:?}: guest-usable hypervisor slot");
                continue;
            }
            if entry & USER == 0 {
                // Not reachable from ring 3, where all of a 64-bit PV guest runs.
                continue;
            }
            let target = pte::entry_mfn(entry);
            let info = usize::try_from(target.0)
                .ok()
                .and_then(|i| self.frames.get(i))
                .unwrap_or_else(|| panic!("after {op:?}: {table:?}[{index}] leaves RAM"));
            assert_eq!(
                info.owner(),
                Owner::Domain(DOMAIN),
                "after {op:?}: {table:?}[{index}] reaches a frame not the guest's"
            );
            let writable = writable && pte::is_writable(entry);
            match level.lower() {
                Some(lower) => {
                    assert_eq!(entry & PSE, 0, "after {op:?}: superpage in {table:?}");
                    depth = depth.max(1 + self.walk(target, lower, writable, seen, op));
                }
                None if writable => {
                    assert!(
                        info.page_type() == PageType::Writable && info.type_count() > 0,
                        "after {op:?}: writable leaf {target:?} is {:?}",
                        info.page_type()
                    );
                    self.coverage.writable_leaves += 1;
                }
                None => {}
            }
        }
        depth
    }

    /// Drops every pin, base, GDT and writable mapping, then checks that
    /// every count is back to zero.
    pub fn teardown_and_check(&mut self) {
        let pinned: Vec<Mfn> =
            (0..FRAMES).filter(|&i| self.frames[i].is_pinned()).map(|i| Mfn(i as u64)).collect();
        {
            let mut table = frame_table(&mut self.frames);
            let mem = &mut self.mem[..];
            for frame in pinned {
                table.unpin(mem, DOMAIN, frame).expect("pinned frames unpin");
            }
            self.vcpu.release(&mut table, mem);
            for frame in self.writable.drain(..) {
                table.unmap_writable(mem, frame).expect("mapped frames unmap");
            }
        }
        for (index, info) in self.frames.iter().enumerate() {
            assert_eq!(info.ref_count(), 0, "mfn {index} keeps general references");
            assert_eq!(info.type_count(), info.idle_type_count(), "mfn {index} keeps type references");
            assert_eq!(info.linear_count(), 0, "mfn {index} keeps linear counts");
        }
    }
}

/// Runs a whole sequence: every step checked, then the teardown.
pub fn run(ops: &[Op]) -> Coverage {
    let mut scenario = Scenario::new();
    for op in ops {
        scenario.step(op);
    }
    scenario.teardown_and_check();
    scenario.coverage
}
