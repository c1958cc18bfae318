//! The generators for the memory hypercalls (`mmuext_op`, `memory_op`),
//! grant-table operations and multicall lists; the rest are in `calls.rs`.

use hypercalls::abi::grant_table::*;
use hypercalls::abi::memory::*;
use hypercalls::abi::xen::*;

use super::calls::IN_MULTICALL;
use super::{Planner, HYPERVISOR_ADDRESSES};

impl Planner<'_> {
    pub(super) fn mmuext_op(&mut self) -> [u64; 5] {
        let p = self;
        let mut ops = [0u64; 12];
        for op in ops.chunks_exact_mut(3) {
            let command = p.rng.below(22) as u32;
            let (arg1, arg2) = match command {
                MMUEXT_NEW_BASEPTR => {
                    // Never a frame the guest owns: it would run on it.
                    let frame = if p.rng.chance(1, 2) && !p.env.foreign_mfns.is_empty() {
                        p.env.foreign_mfns[0]
                    } else {
                        (1 << 39) | p.rng.below(1 << 20)
                    };
                    (frame, 0)
                }
                MMUEXT_TLB_FLUSH_MULTI | MMUEXT_INVLPG_MULTI => {
                    let (address, mask) = (p.mapping_address(), p.rng.next_u64());
                    (address, p.pointer_to(&[mask]))
                }
                MMUEXT_INVLPG_LOCAL | MMUEXT_INVLPG_ALL => (p.mapping_address(), 0),
                MMUEXT_SET_LDT => {
                    let base = p.rng.pick(&[0, HYPERVISOR_ADDRESSES[2], p.env.playground]);
                    (base, p.rng.pick(&[0, 1, 8192, 8193]))
                }
                MMUEXT_COPY_PAGE => (p.mfn(), p.mfn()),
                _ => (p.mfn(), p.rng.next_u64()),
            };
            op[0] = command.into();
            op[1] = arg1;
            op[2] = arg2;
        }
        let list = p.pointer_to(&ops);
        let count = p.count(list, 4);
        let done = if p.rng.chance(1, 2) { 0 } else { p.pointer_to(&[u64::MAX]) };
        [list, count, done, p.domid(), 0]
    }

    pub(super) fn memory_op(&mut self, depth: u32) -> [u64; 5] {
        let p = self;
        let command = p.rng.below(30);
        let extent = if p.rng.chance(1, 8) { p.rng.below(4) << 6 } else { 0 };
        let argument = match command as u32 {
            XENMEM_increase_reservation | XENMEM_decrease_reservation | XENMEM_populate_physmap
                if depth == 0 =>
            {
                let list = [p.mfn(), p.mfn(), p.mfn(), p.rng.below(1 << 20)];
                let extents = p.pointer_to(&list);
                let count = if p.in_buffers(extents) {
                    p.rng.pick(&[0, 1, 2, 4])
                } else {
                    p.rng.pick(&[1, 4, 1 << 40])
                };
                let order = p.rng.pick(&[0, 0, 1, 9, 10, 20]);
                let noise = p.rng.next_u64() & 0xffff_ffff;
                let flags = p.rng.pick(&[0, 1 << 16, 0x2000, noise]);
                let domid = p.domid();
                p.pointer_to(&[extents, count, order | flags << 32, domid])
            }
            XENMEM_exchange if depth == 0 => {
                let frames = [p.mfn(), p.mfn()];
                let input = p.pointer_to(&frames);
                let output = p.pointer_to(&[0, 0, 0, 0]);
                let domid = p.domid();
                let (order, exchanged) = (p.rng.below(2), p.rng.below(3));
                p.pointer_to(&[input, 2, 0, domid, output, 2, order, domid, exchanged])
            }
            XENMEM_machphys_mfn_list | XENMEM_memory_map | XENMEM_machine_memory_map => {
                let output = p.pointer_to(&[0; 16]);
                let capacity = p.rng.pick(&[0, 1, 4, 1000]);
                p.pointer_to(&[capacity, output, 0])
            }
            XENMEM_current_reservation | XENMEM_maximum_reservation | XENMEM_maximum_gpfn => {
                let domid = p.domid();
                p.pointer_to(&[domid])
            }
            _ => p.random_buffer(9),
        };
        [command | extent, argument, 0, 0, 0]
    }

    pub(super) fn grant_table_op(&mut self) -> [u64; 5] {
        let p = self;
        let command = p.rng.below(14) as u32;
        // One operation each (more would read stale buffer contents);
        // 0x8000_0000 is refused before anything is read, and the upper
        // half of the count is dropped by every hypervisor's `unsigned int`.
        let count = p.rng.pick(&[1, 1, 1, 0, 0x8000_0000, 1 << 32 | 1]);
        let argument = match command {
            GNTTABOP_query_size => {
                let domid = p.domid();
                p.pointer_to(&[domid, 0])
            }
            GNTTABOP_setup_table => {
                let frames = p.pointer_to(&[0; 8]);
                let nr_frames = p.rng.pick(&[0, 1, 4, 64, 0xffff_ffff]);
                let domid = p.domid();
                p.pointer_to(&[domid | nr_frames << 32, 0, frames])
            }
            // Never version 2: the kernel's grant code speaks version 1.
            GNTTABOP_set_version => {
                let version = p.rng.pick(&[0, 1, 3, u64::from(u32::MAX)]);
                p.pointer_to(&[version])
            }
            GNTTABOP_map_grant_ref | GNTTABOP_unmap_grant_ref | GNTTABOP_unmap_and_replace => {
                let host = p.mapping_address();
                let reference = p.rng.pick(&[0, 1, 8, 4096, u64::from(u32::MAX)]);
                let flags = p.rng.below(32);
                let (domid, handle, device) = (p.domid(), p.rng.next_u64(), p.rng.below(8));
                p.pointer_to(&[host, flags | reference << 32, domid, handle, device])
            }
            GNTTABOP_transfer | GNTTABOP_copy => {
                let words = [p.mfn(), p.other_domid(), p.mfn(), p.rng.below(4096), p.mfn(), p.random_word()];
                p.pointer_to(&words)
            }
            _ => p.random_buffer(6),
        };
        let command = u64::from(command) | if p.rng.chance(1, 10) { 1 << 12 } else { 0 };
        [command, argument, count, 0, 0]
    }

    /// A multicall list of harmless entries (nested ones too, which Xen
    /// refuses), with an honest or absurd count.
    pub(super) fn multicall(&mut self, depth: u32) -> [u64; 5] {
        let p = self;
        let entries = 1 + p.rng.below(4) as usize;
        let mut list = [0u64; 4 * 8];
        for entry in list.chunks_exact_mut(8).take(entries) {
            let number = p.rng.pick(IN_MULTICALL);
            let args = if number == __HYPERVISOR_multicall && depth >= 1 {
                [p.bad_pointer(), 1, 0, 0, 0]
            } else {
                p.plan(number, depth + 1)
            };
            entry[0] = number.into();
            entry[1] = 0x5a5a_5a5a;
            entry[2..7].copy_from_slice(&args);
        }
        let address = p.pointer_to(&list[..8 * entries]);
        let count = p.count(address, entries as u64);
        [address, count, 0, 0, 0]
    }
}
