//! Reading and writing guest memory by guest-virtual address, the way Xen's
//! copy_from_guest/copy_to_guest do: the guest's page tables are live (the
//! hypervisor runs on them), so the hypervisor simply dereferences the
//! address, and a fault is caught by the fixup table and becomes -EFAULT.
//!
//! Before touching memory, the range is checked to lie wholly in the
//! guest's part of the address space: canonical, and outside the
//! hypervisor's reserved range, so a guest can never make the hypervisor
//! read or write its own memory on the guest's behalf.

use core::arch::global_asm;

use hypercalls::abi::xen::{HYPERVISOR_VIRT_END, HYPERVISOR_VIRT_START};

global_asm!(
    r#"
    /* hv_copy_bytes(dst, src, len) -> bytes NOT copied (0 on success). */
    .pushsection .text.guest_access, "ax", @progbits
    .global hv_copy_bytes
    hv_copy_bytes:
        mov %rdx, %rcx
    1:  rep movsb
        xor %eax, %eax
        ret
    2:  mov %rcx, %rax
        ret
    .popsection
    .pushsection .extable, "a", @progbits
    .quad 1b, 2b
    .popsection
    "#,
    options(att_syntax)
);

extern "C" {
    fn hv_copy_bytes(destination: *mut u8, source: *const u8, len: usize) -> usize;
    static __extable_start: [u64; 0];
    static __extable_end: [u64; 0];
}

/// A guest address range the hypervisor may not or cannot access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault;

fn is_canonical(address: u64) -> bool {
    ((address as i64) << 16 >> 16) as u64 == address
}

/// Whether `[address, address + len)` lies in guest-owned address space.
pub fn is_guest_range(address: u64, len: u64) -> bool {
    let Some(end) = address.checked_add(len) else {
        return false;
    };
    let last = end.saturating_sub(1).max(address);
    is_canonical(address)
        && is_canonical(last)
        // Both ends on the same side of the non-canonical hole...
        && (address as i64 >= 0) == (last as i64 >= 0)
        // ...and clear of the hypervisor's range.
        && (last < HYPERVISOR_VIRT_START || address >= HYPERVISOR_VIRT_END)
}

/// Copies `buffer.len()` bytes from guest address `address`.
pub fn read(address: u64, buffer: &mut [u8]) -> Result<(), Fault> {
    if !is_guest_range(address, buffer.len() as u64) {
        return Err(Fault);
    }
    // SAFETY: the destination is a Rust buffer; the source is a guest range
    // outside the hypervisor's memory, and any fault on it is recovered by
    // the fixup table (the copy then reports bytes left over).
    let left = unsafe { hv_copy_bytes(buffer.as_mut_ptr(), address as *const u8, buffer.len()) };
    if left == 0 {
        Ok(())
    } else {
        Err(Fault)
    }
}

/// Copies `bytes` to guest address `address`.
pub fn write(address: u64, bytes: &[u8]) -> Result<(), Fault> {
    if !is_guest_range(address, bytes.len() as u64) {
        return Err(Fault);
    }
    // SAFETY: as for `read`, in the other direction. Guest page tables never
    // map hypervisor frames writable (the page-type rules), so a write
    // through a guest address only reaches guest memory.
    let left = unsafe { hv_copy_bytes(address as *mut u8, bytes.as_ptr(), bytes.len()) };
    if left == 0 {
        Ok(())
    } else {
        Err(Fault)
    }
}

/// Reads a plain-old-data structure (an integer-only `repr(C)` argument).
pub fn read_struct<T: Copy + Default>(address: u64) -> Result<T, Fault> {
    let mut value = T::default();
    // SAFETY: the slice covers exactly `value`, an integer-only struct for
    // which any byte pattern is valid.
    let bytes = unsafe {
        core::slice::from_raw_parts_mut(&mut value as *mut T as *mut u8, core::mem::size_of::<T>())
    };
    read(address, bytes)?;
    Ok(value)
}

/// Writes a plain-old-data structure back to the guest.
pub fn write_struct<T: Copy>(address: u64, value: &T) -> Result<(), Fault> {
    // SAFETY: viewing a Copy value's bytes is always valid.
    let bytes =
        unsafe { core::slice::from_raw_parts(value as *const T as *const u8, core::mem::size_of::<T>()) };
    write(address, bytes)
}

pub fn read_u64(address: u64) -> Result<u64, Fault> {
    let mut bytes = [0; 8];
    read(address, &mut bytes)?;
    Ok(u64::from_le_bytes(bytes))
}

/// The resume address for a faulting instruction in the hypervisor, if the
/// fault was expected (a guest access above).
pub fn exception_fixup(rip: u64) -> Option<u64> {
    // SAFETY: the linker script brackets the table with these symbols; it
    // holds (fault address, fixup address) pairs.
    let table = unsafe {
        let start = core::ptr::addr_of!(__extable_start) as *const u64;
        let end = core::ptr::addr_of!(__extable_end) as *const u64;
        core::slice::from_raw_parts(start, end.offset_from(start) as usize)
    };
    table.chunks_exact(2).find(|pair| pair[0] == rip).map(|pair| pair[1])
}

global_asm!(
    r#"
    /* hv_load_user_gs(selector) -> 0 if loaded, 1 if the selector faulted
       (then the null selector is loaded instead, as Xen does). Runs with
       the user GS base swapped in, and swaps back. */
    .pushsection .text.guest_access, "ax", @progbits
    .global hv_load_user_gs
    hv_load_user_gs:
        swapgs
    1:  mov %edi, %gs
        swapgs
        xor %eax, %eax
        ret
    2:  xor %eax, %eax
        mov %eax, %gs
        swapgs
        mov $1, %eax
        ret
    .popsection
    .pushsection .extable, "a", @progbits
    .quad 1b, 2b
    .popsection
    "#,
    options(att_syntax)
);

extern "C" {
    fn hv_load_user_gs(selector: u64) -> u64;
}

/// Loads a guest-chosen selector into the user's %gs (SEGBASE_GS_USER_SEL),
/// which also resets the user GS base from that descriptor. A selector the
/// GDT refuses loads the null selector and reports it.
pub fn load_user_gs_selector(selector: u16) -> Result<(), Fault> {
    // SAFETY: loading %gs only changes the guest's segment state (the
    // hypervisor never uses %gs); a faulting selector is caught by the
    // fixup table, which loads the null selector instead; the SWAPGS pair
    // leaves the kernel/user GS bases where they were.
    let faulted = unsafe { hv_load_user_gs(u64::from(selector)) };
    if faulted == 0 {
        Ok(())
    } else {
        Err(Fault)
    }
}
