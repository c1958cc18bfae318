//! Decoding the few guest instructions the hypervisor emulates, as pure
//! functions over the instruction bytes (tested on the host):
//!
//! * privileged instructions a ring-3 PV kernel may still execute, which
//!   fault with #GP (RDMSR, WRMSR, MOV from/to CR, CLTS), and Xen's
//!   forced-emulation CPUID (`ud2; .ascii "xen"; cpuid`), which faults with #UD;
//! * the 64-bit stores a guest makes to its own (read-only) page tables
//!   under `vm_assist(writable_pagetables)`, which fault with #PF.

/// A privileged instruction to emulate, and how long it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Privileged {
    Rdmsr,
    Wrmsr,
    /// `mov %crN, %reg` (reg is the GPR number, 0 = rax).
    MovFromCr {
        cr: u8,
        reg: u8,
    },
    /// `mov %reg, %crN`.
    MovToCr {
        cr: u8,
        reg: u8,
    },
    Clts,
    /// `ud2; .ascii "xen"; cpuid`: CPUID as the hypervisor's policy says.
    ForcedCpuid,
    /// `cli` / `sti`.
    InterruptFlag,
    /// `in` of `size` bytes (1, 2 or 4), from an immediate port or from %dx.
    PortIn {
        size: u8,
        port: Option<u8>,
    },
    /// `out` of `size` bytes, to an immediate port or to %dx.
    PortOut {
        size: u8,
        port: Option<u8>,
    },
}

/// Xen's forced-emulation prefix.
pub const FORCED_EMULATION_PREFIX: [u8; 5] = [0x0f, 0x0b, b'x', b'e', b'n'];

/// Decodes a privileged instruction at the start of `code`. Returns it and
/// its length, or `None` for anything the hypervisor does not emulate.
pub fn privileged(code: &[u8]) -> Option<(Privileged, usize)> {
    if code.starts_with(&FORCED_EMULATION_PREFIX) && code.get(5..7) == Some(&[0x0f, 0xa2]) {
        return Some((Privileged::ForcedCpuid, 7));
    }
    if let Some(port_io) = port_io(code) {
        return Some(port_io);
    }
    if matches!(code.first(), Some(0xfa | 0xfb)) {
        return Some((Privileged::InterruptFlag, 1));
    }
    // An optional REX prefix matters only for MOV CR (it extends the GPR).
    let (rex, rest) = match code.first() {
        Some(&byte) if byte & 0xf0 == 0x40 => (byte, &code[1..]),
        _ => (0, code),
    };
    let prefix = usize::from(rex != 0);
    match rest {
        [0x0f, 0x32, ..] => Some((Privileged::Rdmsr, prefix + 2)),
        [0x0f, 0x30, ..] => Some((Privileged::Wrmsr, prefix + 2)),
        [0x0f, 0x06, ..] => Some((Privileged::Clts, prefix + 2)),
        [0x0f, opcode @ (0x20 | 0x22), modrm, ..] if modrm >> 6 == 3 => {
            let cr = ((modrm >> 3) & 7) | if rex & 4 != 0 { 8 } else { 0 };
            let reg = (modrm & 7) | if rex & 1 != 0 { 8 } else { 0 };
            let instruction = if *opcode == 0x20 {
                Privileged::MovFromCr { cr, reg }
            } else {
                Privileged::MovToCr { cr, reg }
            };
            Some((instruction, prefix + 3))
        }
        _ => None,
    }
}

/// `in`/`out` with an optional operand-size prefix (0x66).
fn port_io(code: &[u8]) -> Option<(Privileged, usize)> {
    let (wide_size, prefix, rest) = match code.first() {
        Some(0x66) => (2, 1, &code[1..]),
        _ => (4, 0, code),
    };
    let opcode = *rest.first()?;
    let size = if opcode & 1 == 0 { 1 } else { wide_size };
    let immediate = || rest.get(1).copied();
    let instruction = match opcode {
        0xe4 | 0xe5 => (Privileged::PortIn { size, port: Some(immediate()?) }, 2),
        0xe6 | 0xe7 => (Privileged::PortOut { size, port: Some(immediate()?) }, 2),
        0xec | 0xed => (Privileged::PortIn { size, port: None }, 1),
        0xee | 0xef => (Privileged::PortOut { size, port: None }, 1),
        _ => return None,
    };
    Some((instruction.0, prefix + instruction.1))
}

/// How a store computes the new 64-bit value of the memory it writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreValue {
    /// The value of a general-purpose register (0 = rax .. 15 = r15).
    Register(u8),
    /// A sign-extended 32-bit immediate.
    Immediate(u64),
}

/// What a decoded write to a page-table entry does with the entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// `mov`: the entry becomes the value.
    Write,
    /// `xchg`: as `Write`, and the register gets the old entry.
    Exchange,
    /// `cmpxchg`: if the entry equals %rax it becomes the value (ZF set);
    /// otherwise %rax gets the entry (ZF clear).
    CompareExchange,
    /// `btr $bit`: the bit is cleared; CF gets its old value.
    BitTestReset(u8),
}

/// A decoded 64-bit write to memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Store {
    pub kind: StoreKind,
    /// The value written (for `BitTestReset`, unused).
    pub value: StoreValue,
    pub len: usize,
}

/// Prefixes that do not change what a page-table write does: LOCK (Linux
/// patches it into a DS override on one CPU) and the segment overrides.
/// The address is not computed from the operand (the fault's CR2 gives
/// it), so an FS or GS base is already accounted for.
const IGNORED_PREFIXES: [u8; 7] = [0xf0, 0x2e, 0x36, 0x3e, 0x26, 0x64, 0x65];

/// Decodes the instruction forms guests use to write page-table entries:
/// `mov r64, m64` (REX.W 89 /r), `mov imm32, m64` (REX.W C7 /0),
/// `xchg r64, m64` (REX.W 87 /r), `cmpxchg r64, m64` (REX.W 0F B1 /r,
/// Linux's `try_cmpxchg` on a PTE) and `btr $imm8, m64` (REX.W 0F BA /6,
/// `test_and_clear_bit`), each with or without LOCK or a segment override.
/// Anything else (including 32-bit stores, which cannot write a whole
/// entry) is `None`, and the fault goes to the guest.
pub fn pte_store(code: &[u8]) -> Option<Store> {
    let mut index = 0;
    while code.get(index).is_some_and(|byte| IGNORED_PREFIXES.contains(byte)) && index < 4 {
        index += 1;
    }
    let rex = *code.get(index)?;
    if rex & 0xf8 != 0x48 {
        return None;
    }
    index += 1;
    let mut opcode = u16::from(*code.get(index)?);
    index += 1;
    if opcode == 0x0f {
        opcode = 0x0f00 | u16::from(*code.get(index)?);
        index += 1;
    }
    let modrm = *code.get(index)?;
    if modrm >> 6 == 3 {
        return None;
    }
    let reg_field = (modrm >> 3) & 7;
    let reg = reg_field | if rex & 4 != 0 { 8 } else { 0 };
    let after_modrm = index + modrm_operand_len(&code[index..])?;
    let register = StoreValue::Register(reg);
    match opcode {
        0x89 => Some(Store { kind: StoreKind::Write, value: register, len: after_modrm }),
        0x87 => Some(Store { kind: StoreKind::Exchange, value: register, len: after_modrm }),
        0x0fb1 => Some(Store { kind: StoreKind::CompareExchange, value: register, len: after_modrm }),
        0x0fba if reg_field == 6 => {
            let bit = *code.get(after_modrm)? & 63;
            Some(Store {
                kind: StoreKind::BitTestReset(bit),
                value: StoreValue::Immediate(0),
                len: after_modrm + 1,
            })
        }
        0xc7 if reg_field == 0 => {
            let imm = code.get(after_modrm..after_modrm + 4)?;
            let value = i32::from_le_bytes(imm.try_into().ok()?) as i64 as u64;
            Some(Store { kind: StoreKind::Write, value: StoreValue::Immediate(value), len: after_modrm + 4 })
        }
        _ => None,
    }
}

/// RFLAGS arithmetic bits (CF, PF, AF, ZF, SF, OF).
pub const ARITHMETIC_FLAGS: u64 = 0x8d5;

/// The arithmetic flags `cmp %a, %b`-style subtraction `a - b` produces,
/// as `cmpxchg` sets them (accumulator minus the memory operand).
pub fn subtraction_flags(a: u64, b: u64) -> u64 {
    let difference = a.wrapping_sub(b);
    let carry = u64::from(a < b);
    let parity = u64::from((difference as u8).count_ones().is_multiple_of(2)) << 2;
    let adjust = (a ^ b ^ difference) & 0x10;
    let zero = u64::from(difference == 0) << 6;
    let sign = (difference >> 63) << 7;
    let overflow = (((a ^ b) & (a ^ difference)) >> 63) << 11;
    carry | parity | adjust | zero | sign | overflow
}

/// Bytes taken by a ModRM byte and what follows it (SIB, displacement),
/// for a memory operand in 64-bit mode.
fn modrm_operand_len(bytes: &[u8]) -> Option<usize> {
    let modrm = *bytes.first()?;
    let (mode, rm) = (modrm >> 6, modrm & 7);
    let mut len = 1;
    let mut base_is_none = false;
    if rm == 4 {
        let sib = *bytes.get(1)?;
        len += 1;
        base_is_none = sib & 7 == 5 && mode == 0;
    }
    len += match mode {
        0 if rm == 5 || base_is_none => 4,
        0 => 0,
        1 => 1,
        2 => 4,
        _ => return None,
    };
    (bytes.len() >= len).then_some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privileged_instructions() {
        assert_eq!(privileged(&[0x0f, 0x32]), Some((Privileged::Rdmsr, 2)));
        assert_eq!(privileged(&[0x0f, 0x30, 0x90]), Some((Privileged::Wrmsr, 2)));
        assert_eq!(privileged(&[0x0f, 0x06]), Some((Privileged::Clts, 2)));
        // mov %cr4, %rax ; mov %cr0, %r9 ; mov %rbx, %cr3
        assert_eq!(privileged(&[0x0f, 0x20, 0xe0]), Some((Privileged::MovFromCr { cr: 4, reg: 0 }, 3)));
        assert_eq!(privileged(&[0x41, 0x0f, 0x20, 0xc1]), Some((Privileged::MovFromCr { cr: 0, reg: 9 }, 4)));
        assert_eq!(privileged(&[0x0f, 0x22, 0xdb]), Some((Privileged::MovToCr { cr: 3, reg: 3 }, 3)));
        assert_eq!(privileged(&[0xfa]), Some((Privileged::InterruptFlag, 1)));
        assert_eq!(privileged(&[0xfb, 0x90]), Some((Privileged::InterruptFlag, 1)));
        assert_eq!(privileged(&[]), None);
    }

    #[test]
    fn port_io() {
        assert_eq!(privileged(&[0xe4, 0x60]), Some((Privileged::PortIn { size: 1, port: Some(0x60) }, 2)));
        assert_eq!(privileged(&[0xef]), Some((Privileged::PortOut { size: 4, port: None }, 1)));
        assert_eq!(privileged(&[0x66, 0xed]), Some((Privileged::PortIn { size: 2, port: None }, 2)));
        assert_eq!(privileged(&[0xe6]), None, "truncated immediate");
        assert_eq!(privileged(&[0x6c]), None, "string I/O is not emulated");
    }

    #[test]
    fn forced_cpuid_needs_the_whole_sequence() {
        let forced = [0x0f, 0x0b, b'x', b'e', b'n', 0x0f, 0xa2];
        assert_eq!(privileged(&forced), Some((Privileged::ForcedCpuid, 7)));
        assert_eq!(privileged(&forced[..6]), None);
        assert_eq!(privileged(&[0x0f, 0x0b, b'x', b'e', b'm', 0x0f, 0xa2]), None);
    }

    #[test]
    fn page_table_stores() {
        // mov %rsi, (%rdi)
        assert_eq!(
            pte_store(&[0x48, 0x89, 0x37]),
            Some(Store { kind: StoreKind::Write, value: StoreValue::Register(6), len: 3 })
        );
        // mov %r8, 0x10(%rax,%rcx,8)
        assert_eq!(
            pte_store(&[0x4c, 0x89, 0x44, 0xc8, 0x10]),
            Some(Store { kind: StoreKind::Write, value: StoreValue::Register(8), len: 5 })
        );
        // movq $0, (%rdi)
        assert_eq!(
            pte_store(&[0x48, 0xc7, 0x07, 0, 0, 0, 0]),
            Some(Store { kind: StoreKind::Write, value: StoreValue::Immediate(0), len: 7 })
        );
        // movq $-1, 0x12345678(%rip)
        assert_eq!(
            pte_store(&[0x48, 0xc7, 0x05, 0x78, 0x56, 0x34, 0x12, 0xff, 0xff, 0xff, 0xff]),
            Some(Store { kind: StoreKind::Write, value: StoreValue::Immediate(u64::MAX), len: 11 })
        );
        // lock xchg %rax, (%rdx)
        assert_eq!(
            pte_store(&[0xf0, 0x48, 0x87, 0x02]),
            Some(Store { kind: StoreKind::Exchange, value: StoreValue::Register(0), len: 4 })
        );
        // Linux's try_cmpxchg on a PTE, LOCK patched to DS: cmpxchg %rdx, 0x0(%r13)
        assert_eq!(
            pte_store(&[0x3e, 0x49, 0x0f, 0xb1, 0x55, 0x00]),
            Some(Store { kind: StoreKind::CompareExchange, value: StoreValue::Register(2), len: 6 })
        );
        // lock btrq $5, (%rdi): test_and_clear_bit(_PAGE_BIT_ACCESSED)
        assert_eq!(
            pte_store(&[0xf0, 0x48, 0x0f, 0xba, 0x37, 0x05]),
            Some(Store { kind: StoreKind::BitTestReset(5), value: StoreValue::Immediate(0), len: 6 })
        );
    }

    #[test]
    fn cmpxchg_flags_are_those_of_a_subtraction() {
        const CF: u64 = 1;
        const PF: u64 = 1 << 2;
        const AF: u64 = 1 << 4;
        const ZF: u64 = 1 << 6;
        const SF: u64 = 1 << 7;
        const OF: u64 = 1 << 11;
        assert_eq!(subtraction_flags(5, 5), ZF | PF);
        assert_eq!(subtraction_flags(0, 1), CF | PF | AF | SF);
        assert_eq!(subtraction_flags(3, 1), 0);
        assert_eq!(subtraction_flags(i64::MIN as u64, 1), OF | PF | AF);
        assert_eq!(subtraction_flags(u64::MAX, 0) & ARITHMETIC_FLAGS, SF | PF);
    }

    #[test]
    fn stores_that_cannot_write_an_entry_are_refused() {
        assert_eq!(pte_store(&[0x89, 0x37]), None, "a 32-bit store");
        assert_eq!(pte_store(&[0x48, 0x89, 0xf7]), None, "register to register");
        assert_eq!(pte_store(&[0x48, 0x01, 0x37]), None, "add, not a store");
        assert_eq!(pte_store(&[0x48, 0x89, 0x44]), None, "truncated SIB");
        assert_eq!(pte_store(&[0x48, 0xc7, 0x07, 0, 0]), None, "truncated immediate");
        assert_eq!(pte_store(&[0x48, 0x0f, 0xba, 0x2f, 0x05]), None, "bts, not btr");
        assert_eq!(pte_store(&[0x48, 0x0f, 0xba, 0x37]), None, "btr without its bit number");
        assert_eq!(pte_store(&[0x0f, 0xb1, 0x17]), None, "a 32-bit cmpxchg");
        assert_eq!(pte_store(&[0xf0, 0xf0, 0xf0, 0xf0, 0xf0, 0x48, 0x89, 0x37]), None, "too many prefixes");
    }
}
