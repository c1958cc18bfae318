//! The GDT, TSS and syscall MSRs, laid out the way Xen lays them out so that
//! PV guests can use Xen's flat selectors unchanged:
//!
//! | selector | descriptor                                  |
//! |----------|---------------------------------------------|
//! | 0xe008   | hypervisor code (ring 0, 64-bit)            |
//! | 0xe010   | hypervisor data (ring 0)                    |
//! | 0xe023   | FLAT_RING3_CS32                             |
//! | 0xe02b   | FLAT_RING3_DS32 = FLAT_RING3_SS64 = FLAT_KERNEL_SS |
//! | 0xe033   | FLAT_RING3_CS64 = FLAT_KERNEL_CS = FLAT_USER_CS   |
//! | 0xe040   | TSS                                         |
//! | 0xe050   | the guest's LDT (`MMUEXT_SET_LDT`)          |
//!
//! Entries below 0xe000 (the first 14 pages) belong to the guest's own GDT
//! (`set_gdt`). SYSCALL enters at 0xe008 and SYSRET returns to 0xe033 /
//! 0xe02b, which is why Xen chose these numbers: STAR's layout demands
//! code32 = base, data = base + 8, code64 = base + 16.

use core::mem::size_of;

use x86_64::instructions::segmentation::{Segment, CS, DS, ES, SS};
use x86_64::instructions::tables::{lgdt, load_tss};
use x86_64::registers::model_specific::{Efer, EferFlags, LStar, SFMask, Star};
use x86_64::registers::rflags::RFlags;
use x86_64::structures::gdt::SegmentSelector;
use x86_64::structures::tss::TaskStateSegment;
use x86_64::structures::DescriptorTablePointer;
use x86_64::{PrivilegeLevel, VirtAddr};

pub const HYPERVISOR_CS: u16 = 0xe008;
pub const HYPERVISOR_DS: u16 = 0xe010;
pub const GUEST_CS32: u16 = 0xe023;
pub const GUEST_SS: u16 = 0xe02b;
pub const GUEST_CS64: u16 = 0xe033;
const TSS_SELECTOR: u16 = 0xe040;
const LDT_SELECTOR: u16 = 0xe050;

/// Entries a guest may fill with `set_gdt` (Xen's FIRST_RESERVED_GDT_ENTRY).
pub const GUEST_GDT_ENTRIES: usize = 14 * 512;
const GDT_ENTRIES: usize = 16 * 512;

pub const DOUBLE_FAULT_IST: u8 = 1;
const IST_STACK_SIZE: usize = 16 * 1024;

#[repr(C, align(4096))]
struct Gdt([u64; GDT_ENTRIES]);

/// The largest LDT a guest may have (`MMUEXT_SET_LDT`).
pub const MAX_LDT_ENTRIES: usize = 8192;

/// The hypervisor's copy of the guest's LDT: validated descriptors copied
/// in page by page as the guest's LDT pages are taken; the rest are zero
/// (not present), so using them faults and lets the hypervisor fetch them.
#[repr(C, align(4096))]
struct Ldt([u64; MAX_LDT_ENTRIES]);

#[repr(align(16))]
struct IstStack([u8; IST_STACK_SIZE]);

static GDT: spin::Mutex<Gdt> = spin::Mutex::new(Gdt([0; GDT_ENTRIES]));
static LDT: spin::Mutex<Ldt> = spin::Mutex::new(Ldt([0; MAX_LDT_ENTRIES]));
static TSS: spin::Once<TaskStateSegment> = spin::Once::new();
static DOUBLE_FAULT_STACK: spin::Mutex<IstStack> = spin::Mutex::new(IstStack([0; IST_STACK_SIZE]));

const fn segment(access: u64, flags: u64) -> u64 {
    // Base 0, limit 0xfffff (ignored in 64-bit mode), granularity 4 KiB.
    0xffff | (access << 40) | (0xf << 48) | (flags << 52)
}
// Access bytes: present | DPL | code/data | type.
const CODE64_RING0: u64 = segment(0x9b, 0xa);
const DATA_RING0: u64 = segment(0x93, 0xc);
const CODE32_RING3: u64 = segment(0xfb, 0xc);
const DATA_RING3: u64 = segment(0xf3, 0xc);
const CODE64_RING3: u64 = segment(0xfb, 0xa);

extern "C" {
    fn hv_syscall_entry();
    fn hv_compat_syscall_entry();
}

/// Loads the GDT and TSS and programs SYSCALL. `stack_top` is where every
/// entry from the guest starts (TSS.rsp0).
pub fn install(stack_top: u64) {
    let tss = TSS.call_once(|| {
        let mut tss = TaskStateSegment::new();
        tss.privilege_stack_table[0] = VirtAddr::new(stack_top);
        let stack = DOUBLE_FAULT_STACK.lock();
        tss.interrupt_stack_table[usize::from(DOUBLE_FAULT_IST - 1)] =
            VirtAddr::from_ptr(stack.0.as_ptr()) + IST_STACK_SIZE as u64;
        // No I/O permission bitmap: the map base lies past the TSS limit,
        // so every port access from ring 3 raises #GP.
        tss.iomap_base = size_of::<TaskStateSegment>() as u16;
        tss
    });

    let mut gdt = GDT.lock();
    let entry = |selector: u16| usize::from(selector >> 3);
    gdt.0[entry(HYPERVISOR_CS)] = CODE64_RING0;
    gdt.0[entry(HYPERVISOR_DS)] = DATA_RING0;
    gdt.0[entry(GUEST_CS32)] = CODE32_RING3;
    gdt.0[entry(GUEST_SS)] = DATA_RING3;
    gdt.0[entry(GUEST_CS64)] = CODE64_RING3;
    let tss_base = tss as *const TaskStateSegment as u64;
    let tss_limit = (size_of::<TaskStateSegment>() - 1) as u64;
    gdt.0[entry(TSS_SELECTOR)] = (tss_limit & 0xffff)
        | ((tss_base & 0xff_ffff) << 16)
        | (0x89 << 40)
        | (((tss_limit >> 16) & 0xf) << 48)
        | (((tss_base >> 24) & 0xff) << 56);
    gdt.0[entry(TSS_SELECTOR) + 1] = tss_base >> 32;

    let pointer = DescriptorTablePointer {
        limit: (size_of::<Gdt>() - 1) as u16,
        base: VirtAddr::from_ptr(gdt.0.as_ptr()),
    };
    // SAFETY: the GDT is static and holds valid descriptors at every
    // selector loaded below; the TSS is static too.
    unsafe {
        lgdt(&pointer);
        CS::set_reg(SegmentSelector(HYPERVISOR_CS));
        SS::set_reg(SegmentSelector(HYPERVISOR_DS));
        DS::set_reg(SegmentSelector(0));
        ES::set_reg(SegmentSelector(0));
        load_tss(SegmentSelector(TSS_SELECTOR));
    }

    // SAFETY: STAR names the descriptors installed above; LSTAR and CSTAR
    // point at the entry stubs; SFMASK clears IF (and TF, DF, AC, NT) so
    // the hypervisor starts every syscall with interrupts off.
    unsafe {
        Star::write(
            SegmentSelector::new(entry(GUEST_CS64) as u16, PrivilegeLevel::Ring3),
            SegmentSelector::new(entry(GUEST_SS) as u16, PrivilegeLevel::Ring3),
            SegmentSelector::new(entry(HYPERVISOR_CS) as u16, PrivilegeLevel::Ring0),
            SegmentSelector::new(entry(HYPERVISOR_DS) as u16, PrivilegeLevel::Ring0),
        )
        .expect("STAR layout");
        LStar::write(VirtAddr::new(hv_syscall_entry as *const () as u64));
        x86_64::registers::model_specific::Msr::new(0xc000_0083)
            .write(hv_compat_syscall_entry as *const () as u64);
        SFMask::write(
            RFlags::INTERRUPT_FLAG
                | RFlags::TRAP_FLAG
                | RFlags::DIRECTION_FLAG
                | RFlags::ALIGNMENT_CHECK
                | RFlags::NESTED_TASK,
        );
        Efer::update(|flags| *flags |= EferFlags::SYSTEM_CALL_EXTENSIONS);
    }
}

/// Copies validated guest descriptors into the guest part of the GDT
/// (`set_gdt`); entries past `descriptors` are cleared.
pub fn load_guest_descriptors(descriptors: &[u64]) {
    let mut gdt = GDT.lock();
    let count = descriptors.len().min(GUEST_GDT_ENTRIES);
    gdt.0[..count].copy_from_slice(&descriptors[..count]);
    gdt.0[count..GUEST_GDT_ENTRIES].fill(0);
}

/// Updates one guest descriptor in the live GDT.
pub fn set_guest_descriptor(index: usize, descriptor: u64) {
    if index < GUEST_GDT_ENTRIES {
        GDT.lock().0[index] = descriptor;
    }
}

/// Makes the CPU's LDT `entries` descriptors long, all empty until filled
/// with [`set_guest_ldt_descriptors`]; 0 entries unloads it.
pub fn load_guest_ldt(entries: usize) {
    let entries = entries.min(MAX_LDT_ENTRIES);
    let mut ldt = LDT.lock();
    ldt.0.fill(0);
    if entries == 0 {
        // SAFETY: a null selector leaves the CPU without an LDT, which
        // nothing in the hypervisor uses.
        unsafe { core::arch::asm!("lldt {0:x}", in(reg) 0u16, options(nostack, preserves_flags)) };
        return;
    }
    let base = ldt.0.as_ptr() as u64;
    let limit = (entries * 8 - 1) as u64;
    let mut gdt = GDT.lock();
    let slot = usize::from(LDT_SELECTOR >> 3);
    // A 16-byte system descriptor, type 2 (LDT), present, DPL 0.
    gdt.0[slot] = (limit & 0xffff)
        | ((base & 0xff_ffff) << 16)
        | (0x82 << 40)
        | (((limit >> 16) & 0xf) << 48)
        | (((base >> 24) & 0xff) << 56);
    gdt.0[slot + 1] = base >> 32;
    // SAFETY: the selector names the LDT descriptor just written, for a
    // static table whose entries are validated guest descriptors or zero.
    unsafe { core::arch::asm!("lldt {0:x}", in(reg) LDT_SELECTOR, options(nostack, preserves_flags)) };
}

/// Copies validated descriptors into the live LDT from entry `first` on.
pub fn set_guest_ldt_descriptors(first: usize, descriptors: &[u64]) {
    let mut ldt = LDT.lock();
    if let Some(slots) = ldt.0.get_mut(first..first + descriptors.len()) {
        slots.copy_from_slice(descriptors);
    }
}

/// Empties the LDT's entries from `first` on, for `count` entries.
pub fn clear_guest_ldt_descriptors(first: usize, count: usize) {
    let mut ldt = LDT.lock();
    let end = (first + count).min(MAX_LDT_ENTRIES);
    if first < end {
        ldt.0[first..end].fill(0);
    }
}
