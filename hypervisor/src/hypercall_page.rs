//! The contents of a 64-bit PV guest's hypercall page: one 32-byte stub
//! per hypercall number, the same instruction sequence Xen writes.
//!
//! ```text
//! push %rcx; push %r11          ; SYSCALL overwrites both
//! mov  $nr, %eax
//! syscall
//! pop  %r11; pop %rcx
//! ret
//! ```
//! `__HYPERVISOR_iret` is different: the guest jumps (not calls) to it with
//! an iret frame on its stack, the stub also pushes %rax, and the
//! hypercall never returns to the stub.

use hypercalls::abi::xen::__HYPERVISOR_iret;

pub const STUB_SIZE: usize = 32;
pub const PAGE_SIZE: usize = 4096;

/// Writes the stubs for every hypercall number into `page`.
pub fn fill(page: &mut [u8; PAGE_SIZE]) {
    // Anything not written is int3, so a jump into the middle of a stub traps.
    page.fill(0xcc);
    for (nr, stub) in page.chunks_exact_mut(STUB_SIZE).enumerate() {
        let nr = nr as u32;
        let number = nr.to_le_bytes();
        if nr == __HYPERVISOR_iret {
            let code = [
                0x51, // push %rcx
                0x41, 0x53, // push %r11
                0x50, // push %rax
                0xb8, number[0], number[1], number[2], number[3], // mov $nr, %eax
                0x0f, 0x05, // syscall
            ];
            stub[..code.len()].copy_from_slice(&code);
        } else {
            let code = [
                0x51, // push %rcx
                0x41, 0x53, // push %r11
                0xb8, number[0], number[1], number[2], number[3], // mov $nr, %eax
                0x0f, 0x05, // syscall
                0x41, 0x5b, // pop %r11
                0x59, // pop %rcx
                0xc3, // ret
            ];
            stub[..code.len()].copy_from_slice(&code);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stub_loads_its_number_and_syscalls() {
        let mut page = [0; PAGE_SIZE];
        fill(&mut page);
        for (nr, stub) in page.chunks_exact(STUB_SIZE).enumerate() {
            let offset = if nr as u32 == __HYPERVISOR_iret { 4 } else { 3 };
            assert_eq!(stub[offset], 0xb8, "stub {nr}");
            assert_eq!(u32::from_le_bytes(stub[offset + 1..offset + 5].try_into().unwrap()), nr as u32);
            assert_eq!(&stub[offset + 5..offset + 7], &[0x0f, 0x05]);
        }
    }

    #[test]
    fn ordinary_stubs_return_and_iret_does_not() {
        let mut page = [0; PAGE_SIZE];
        fill(&mut page);
        assert_eq!(page[13], 0xc3, "the first stub ends in ret");
        let iret = &page[__HYPERVISOR_iret as usize * STUB_SIZE..][..STUB_SIZE];
        assert!(!iret.contains(&0xc3), "iret must not return into the stub");
        assert_eq!(iret[11], 0xcc, "the rest of the iret stub is int3");
    }
}
