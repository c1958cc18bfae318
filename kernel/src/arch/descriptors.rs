//! The GDT and TSS for the native and PVH platforms. (A PV kernel gets
//! Xen's flat selectors instead and never loads a GDT of its own.)

use x86_64::instructions::segmentation::{Segment, CS, DS, ES, SS};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::VirtAddr;

/// The IST slot (1-based, as the IDT encodes it) of the double-fault stack.
pub const DOUBLE_FAULT_IST: u8 = 1;

const IST_STACK_SIZE: usize = 16 * 1024;

#[repr(align(16))]
struct Stack([u8; IST_STACK_SIZE]);

static DOUBLE_FAULT_STACK: spin::Mutex<Stack> = spin::Mutex::new(Stack([0; IST_STACK_SIZE]));
static TSS: spin::Once<TaskStateSegment> = spin::Once::new();
static GDT: spin::Once<(GlobalDescriptorTable, SegmentSelector, SegmentSelector, SegmentSelector)> =
    spin::Once::new();

/// Loads the kernel's GDT and TSS and returns the code selector for the IDT.
pub fn install() -> u16 {
    let tss = TSS.call_once(|| {
        let mut tss = TaskStateSegment::new();
        let stack = DOUBLE_FAULT_STACK.lock();
        let top = VirtAddr::from_ptr(stack.0.as_ptr()) + IST_STACK_SIZE as u64;
        tss.interrupt_stack_table[usize::from(DOUBLE_FAULT_IST - 1)] = top;
        tss
    });
    let (gdt, code, data, tss_selector) = GDT.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        let code = gdt.append(Descriptor::kernel_code_segment());
        let data = gdt.append(Descriptor::kernel_data_segment());
        let tss_selector = gdt.append(Descriptor::tss_segment(tss));
        (gdt, code, data, tss_selector)
    });
    gdt.load();
    // SAFETY: the selectors index the GDT just loaded, which is static.
    unsafe {
        CS::set_reg(*code);
        SS::set_reg(*data);
        DS::set_reg(*data);
        ES::set_reg(*data);
        load_tss(*tss_selector);
    }
    code.0
}
