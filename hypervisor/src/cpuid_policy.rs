//! What CPUID tells a PV guest when it asks through Xen's forced-emulation
//! prefix: the real CPU, minus what a ring-3 guest cannot use, plus the
//! hypervisor leaves at 0x40000000 where guests look for Xen.

/// The hypervisor leaves' base (Xen's default; viridian moves it, not here).
pub const XEN_CPUID_BASE: u32 = 0x4000_0000;
/// The hypercall-page MSR an HVM guest writes (leaf base + 2, EBX).
pub const HYPERCALL_MSR: u32 = 0x4000_0000;

/// The Xen version the leaves report: 4.17.
const XEN_VERSION: u32 = (4 << 16) | 17;

// CPUID.1 bits.
const ECX_MONITOR: u32 = 1 << 3;
const ECX_VMX: u32 = 1 << 5;
const ECX_SMX: u32 = 1 << 6;
const ECX_PCID: u32 = 1 << 17;
const ECX_X2APIC: u32 = 1 << 21;
const ECX_TSC_DEADLINE: u32 = 1 << 24;
const ECX_XSAVE: u32 = 1 << 26;
const ECX_OSXSAVE: u32 = 1 << 27;
const ECX_AVX: u32 = 1 << 28;
const ECX_HYPERVISOR: u32 = 1 << 31;
const EDX_PSE: u32 = 1 << 3;
const EDX_MCE: u32 = 1 << 7;
const EDX_MCA: u32 = 1 << 14;
const EDX_MTRR: u32 = 1 << 12;
const EDX_PSE36: u32 = 1 << 17;
// CPUID.7.0 bits a ring-3 kernel cannot use: their instructions (or the
// CR4 bits enabling them) are privileged, and CLAC/STAC even raise #UD.
const EBX7_FSGSBASE: u32 = 1 << 0;
const EBX7_SMEP: u32 = 1 << 7;
const EBX7_INVPCID: u32 = 1 << 10;
const EBX7_SMAP: u32 = 1 << 20;
const ECX7_UMIP: u32 = 1 << 2;
const ECX7_PKU: u32 = 1 << 3;
const ECX7_OSPKE: u32 = 1 << 4;
// CPUID.0x80000001 ECX: SVM.
const ECX_EXT_SVM: u32 = 1 << 2;
// CPUID.0x80000001 EDX: 1 GiB pages.
const EDX_EXT_PAGE1GB: u32 = 1 << 26;

/// The guest's view of leaf `leaf`/`subleaf`, given what the CPU returned.
pub fn guest_view(leaf: u32, _subleaf: u32, native: [u32; 4]) -> [u32; 4] {
    let [eax, ebx, ecx, edx] = native;
    match leaf {
        // Virtualization extensions, MONITOR/MWAIT, superpages, MTRRs,
        // machine checks (no virtual MCA here), PCID, the x2APIC and its
        // deadline timer, and XSAVE (XSETBV is privileged and not emulated:
        // guests use FXSAVE) are not the guest's to use; the hypervisor bit
        // says who is in charge.
        1 => [
            eax,
            ebx,
            (ecx & !(ECX_MONITOR
                | ECX_VMX
                | ECX_SMX
                | ECX_PCID
                | ECX_X2APIC
                | ECX_TSC_DEADLINE
                | ECX_XSAVE
                | ECX_OSXSAVE
                | ECX_AVX))
                | ECX_HYPERVISOR,
            edx & !(EDX_PSE | EDX_PSE36 | EDX_MTRR | EDX_MCE | EDX_MCA),
        ],
        7 => [
            eax,
            ebx & !(EBX7_FSGSBASE | EBX7_SMEP | EBX7_INVPCID | EBX7_SMAP),
            ecx & !(ECX7_UMIP | ECX7_PKU | ECX7_OSPKE),
            edx,
        ],
        0x8000_0001 => [eax, ebx, ecx & !ECX_EXT_SVM, edx & !EDX_EXT_PAGE1GB],
        XEN_CPUID_BASE => {
            let signature = *b"XenVMMXenVMM";
            let word = |i: usize| u32::from_le_bytes(signature[i..i + 4].try_into().unwrap_or_default());
            [XEN_CPUID_BASE + 2, word(0), word(4), word(8)]
        }
        0x4000_0001 => [XEN_VERSION, 0, 0, 0],
        // One hypercall page, installed through HYPERCALL_MSR.
        0x4000_0002 => [1, HYPERCALL_MSR, 0, 0],
        0x4000_0003..=0x4000_00ff => [0; 4],
        _ => native,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xen_signature_and_leaves() {
        let [max, ebx, ecx, edx] = guest_view(XEN_CPUID_BASE, 0, [0; 4]);
        assert_eq!(max, XEN_CPUID_BASE + 2);
        let mut name = [0u8; 12];
        name[..4].copy_from_slice(&ebx.to_le_bytes());
        name[4..8].copy_from_slice(&ecx.to_le_bytes());
        name[8..].copy_from_slice(&edx.to_le_bytes());
        assert_eq!(&name, b"XenVMMXenVMM");
        assert_eq!(guest_view(0x4000_0001, 0, [0; 4])[0], 0x0004_0011);
        assert_eq!(guest_view(0x4000_0002, 0, [0; 4]), [1, HYPERCALL_MSR, 0, 0]);
    }

    #[test]
    fn leaf_one_hides_virtualization_and_sets_the_hypervisor_bit() {
        let [_, _, ecx, edx] =
            guest_view(1, 0, [0, 0, ECX_VMX | ECX_MONITOR | 1, EDX_PSE | EDX_MCE | EDX_MCA | 1]);
        assert_eq!(ecx, ECX_HYPERVISOR | 1);
        assert_eq!(edx, 1);
    }

    #[test]
    fn other_leaves_pass_through() {
        assert_eq!(guest_view(0, 0, [13, 1, 2, 3]), [13, 1, 2, 3]);
        assert_eq!(guest_view(0x8000_0001, 0, [0, 0, ECX_EXT_SVM, EDX_EXT_PAGE1GB]), [0; 4]);
    }
}
