//! The transport against a fake hypercall page of real machine code, so the
//! register convention is exercised by actually executing `call`.

use super::*;

/// Stub for hypercall `nr`: returns
/// `rdi + 2*rsi + 4*rdx + 8*r10 + 16*r8 + nr`, and scribbles on rcx, r11
/// and rdi as Xen may. Exactly 32 bytes.
fn fake_stub(nr: u8) -> [u8; HYPERCALL_ENTRY_SIZE] {
    assert!(nr < 0x80, "imm8 is sign-extended");
    [
        0x48, 0x8d, 0x04, 0x77, // lea rax, [rdi + rsi*2]
        0x48, 0x8d, 0x04, 0x90, // lea rax, [rax + rdx*4]
        0x4a, 0x8d, 0x04, 0xd0, // lea rax, [rax + r10*8]
        0x4c, 0x89, 0xc1, // mov rcx, r8
        0x48, 0xc1, 0xe1, 0x04, // shl rcx, 4
        0x48, 0x01, 0xc8, // add rax, rcx
        0x45, 0x31, 0xdb, // xor r11d, r11d
        0x31, 0xff, // xor edi, edi
        0x48, 0x83, 0xc0, nr,   // add rax, nr
        0xc3, // ret
    ]
}

/// Maps one executable page filled with `fake_stub`s.
fn fake_hypercall_page() -> usize {
    // SAFETY: anonymous private mapping; checked for failure below.
    let page = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(page, libc::MAP_FAILED, "cannot map a test page");
    for nr in 0..HYPERCALL_PAGE_ENTRIES {
        let stub = fake_stub(nr as u8);
        // SAFETY: slot `nr` lies within the 4096-byte mapping made above.
        unsafe {
            core::ptr::copy_nonoverlapping(
                stub.as_ptr(),
                (page as *mut u8).add(nr * HYPERCALL_ENTRY_SIZE),
                HYPERCALL_ENTRY_SIZE,
            )
        };
    }
    page as usize
}

fn expected(nr: u32, args: [u64; 5]) -> i64 {
    (args[0] + 2 * args[1] + 4 * args[2] + 8 * args[3] + 16 * args[4] + nr as u64) as i64
}

// One test so the process-wide page address is not raced by another test.
#[test]
fn hypercalls_pass_arguments_in_xen_registers_and_refuse_without_a_page() {
    assert_eq!(hypercall_page_address(), None);
    // SAFETY: no page is set, so nothing is called.
    assert_eq!(unsafe { hypercall0(3) }, NOT_AVAILABLE);

    let page = fake_hypercall_page();
    // SAFETY: `page` holds a stub in every slot and is never unmapped.
    unsafe { set_hypercall_page(page) };
    assert_eq!(hypercall_page_address(), Some(page));

    let a = [1u64, 1 << 8, 1 << 16, 1 << 24, 1 << 32];
    // SAFETY: the fake stubs only compute on registers.
    unsafe {
        assert_eq!(hypercall5(7, a[0], a[1], a[2], a[3], a[4]), expected(7, a));
        assert_eq!(hypercall4(9, a[0], a[1], a[2], a[3]), expected(9, [a[0], a[1], a[2], a[3], 0]));
        assert_eq!(hypercall3(11, a[0], a[1], a[2]), expected(11, [a[0], a[1], a[2], 0, 0]));
        assert_eq!(hypercall2(29, a[0], a[1]), expected(29, [a[0], a[1], 0, 0, 0]));
        assert_eq!(hypercall1(33, a[0]), expected(33, [a[0], 0, 0, 0, 0]));
        assert_eq!(hypercall0(127), 127);
        // Outside the page: refused rather than jumping past it.
        assert_eq!(hypercall0(HYPERCALL_PAGE_ENTRIES as u32), NOT_AVAILABLE);
        // Values survive a run of calls that clobber registers in between.
        let mut total = 0i64;
        for nr in 0..5u32 {
            total += hypercall2(nr, 1, 1);
        }
        assert_eq!(total, (0..5).map(|nr| 3 + nr as i64).sum());
        set_hypercall_page(0);
    }
    assert_eq!(hypercall_page_address(), None);
}

#[test]
fn responder_intercepts_and_records_calls() {
    let ((), calls) = testing::with_responder(
        |call| call.args[0] as i64 * 2,
        || {
            // SAFETY: intercepted; nothing is executed.
            assert_eq!(unsafe { hypercall2(18, 21, 5) }, 42);
        },
    );
    assert_eq!(calls, [testing::Call { nr: 18, args: [21, 5, 0, 0, 0] }]);
}
