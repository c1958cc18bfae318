//! Policy for the PVH-on-Xen platform, tested on the host: finding Xen
//! through the hypervisor CPUID leaves, choosing how events are delivered,
//! and holding console output until a console exists.
//!
//! A PVH kernel enters exactly as a native one does, so it must *discover*
//! Xen. Hypervisors publish a 12-byte signature in EBX, ECX, EDX of CPUID
//! leaf 0x4000_0000; a hypervisor that emulates several interfaces (Xen
//! with Viridian, QEMU's Xen emulation beside KVM's own) puts the others at
//! later bases in steps of 0x100. Xen's leaves at `base` are:
//!
//! | leaf       | what                                                   |
//! |------------|--------------------------------------------------------|
//! | base + 0   | EAX: the largest Xen leaf; EBX/ECX/EDX: `XenVMMXenVMM`  |
//! | base + 1   | EAX: version, major << 16 \| minor                      |
//! | base + 2   | EAX: hypercall pages; EBX: the MSR that installs them   |

/// `XenVMMXenVMM`, as EBX, ECX, EDX spell it.
pub const XEN_SIGNATURE: [u8; 12] = *b"XenVMMXenVMM";
/// The first base searched and the last one (inclusive), in steps of [`BASE_STEP`].
pub const FIRST_BASE: u32 = 0x4000_0000;
pub const LAST_BASE: u32 = 0x4001_0000;
pub const BASE_STEP: u32 = 0x100;

/// One CPUID result, in register order EAX, EBX, ECX, EDX.
pub type CpuidRegisters = [u32; 4];

/// Where Xen's CPUID leaves are and what they said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XenLeaves {
    pub base: u32,
    /// The largest leaf Xen answers (EAX of `base`).
    pub max_leaf: u32,
    /// `(major, minor)` from `base + 1`.
    pub version: (u16, u16),
    /// Pages the hypercall area takes (EAX of `base + 2`; 1 on every Xen so far).
    pub hypercall_pages: u32,
    /// The MSR whose write installs the hypercall page (EBX of `base + 2`).
    pub hypercall_msr: u32,
}

/// Why a Xen signature was found but cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DetectError {
    /// The signature is there but `base + 2` (the hypercall leaf) is not.
    TooFewLeaves { base: u32, max_leaf: u32 },
    /// `base + 2` names no hypercall page.
    NoHypercallPage { base: u32 },
}

/// The signature bytes of a hypervisor leaf.
pub fn signature(registers: CpuidRegisters) -> [u8; 12] {
    let mut bytes = [0u8; 12];
    for (chunk, register) in bytes.chunks_exact_mut(4).zip(&registers[1..]) {
        chunk.copy_from_slice(&register.to_le_bytes());
    }
    bytes
}

/// Searches the hypervisor leaves for Xen with `cpuid(leaf)`. `Ok(None)`
/// means no Xen (run native); an error means a Xen signature whose leaves
/// are unusable, which the caller should report rather than ignore.
pub fn find_xen(mut cpuid: impl FnMut(u32) -> CpuidRegisters) -> Result<Option<XenLeaves>, DetectError> {
    let mut base = FIRST_BASE;
    while base <= LAST_BASE {
        let leaf = cpuid(base);
        if signature(leaf) == XEN_SIGNATURE {
            let max_leaf = leaf[0];
            if max_leaf < base + 2 {
                return Err(DetectError::TooFewLeaves { base, max_leaf });
            }
            let version = cpuid(base + 1)[0];
            let [pages, msr, _, _] = cpuid(base + 2);
            if pages == 0 {
                return Err(DetectError::NoHypercallPage { base });
            }
            return Ok(Some(XenLeaves {
                base,
                max_leaf,
                version: ((version >> 16) as u16, version as u16),
                hypercall_pages: pages,
                hypercall_msr: msr,
            }));
        }
        base += BASE_STEP;
    }
    Ok(None)
}

/// How Xen raises the event upcall in a PVH guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpcallRoute {
    /// `HVMOP_set_evtchn_upcall_vector`: a per-vCPU vector delivered
    /// through the local APIC, so the handler must write the APIC's EOI.
    LapicVector,
    /// `HVM_PARAM_CALLBACK_IRQ` of the vector type: one vector for the
    /// domain, injected directly (no APIC involved, no EOI), raised again
    /// on entry for as long as `evtchn_upcall_pending` is set.
    CallbackVector,
}

/// A `xen-upcall=` the kernel cannot follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteError<'a> {
    Unknown(&'a str),
    NeedsX2apic,
}

impl core::fmt::Display for RouteError<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RouteError::Unknown(word) => write!(f, "unknown xen-upcall={word} (use `lapic` or `callback`)"),
            RouteError::NeedsX2apic => f.write_str("xen-upcall=lapic needs an x2APIC, which this CPU lacks"),
        }
    }
}

impl UpcallRoute {
    /// The route the command line asks for (`xen-upcall=lapic|callback`),
    /// else the per-vCPU vector when the CPU has an x2APIC (whose EOI is an
    /// MSR write; the memory-mapped xAPIC would need a mapping of its own).
    pub fn choose(requested: Option<&str>, has_x2apic: bool) -> Result<Self, RouteError<'_>> {
        match requested {
            Some("lapic") if has_x2apic => Ok(UpcallRoute::LapicVector),
            Some("lapic") => Err(RouteError::NeedsX2apic),
            Some("callback") => Ok(UpcallRoute::CallbackVector),
            Some(other) => Err(RouteError::Unknown(other)),
            None => Ok(Self::default_for(has_x2apic)),
        }
    }

    pub fn default_for(has_x2apic: bool) -> Self {
        if has_x2apic {
            UpcallRoute::LapicVector
        } else {
            UpcallRoute::CallbackVector
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            UpcallRoute::LapicVector => "HVMOP_set_evtchn_upcall_vector (LAPIC, EOI)",
            UpcallRoute::CallbackVector => "HVM_PARAM_CALLBACK_IRQ vector",
        }
    }
}

/// Console output kept until the console is known: under QEMU's Xen
/// emulation `console_io` does not exist and the console ring is only found
/// once the kernel can map it, so the banner waits here. Output beyond the
/// capacity is counted, not kept.
pub struct EarlyLog<const N: usize> {
    bytes: [u8; N],
    len: usize,
    dropped: usize,
}

impl<const N: usize> Default for EarlyLog<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> EarlyLog<N> {
    pub const fn new() -> Self {
        Self { bytes: [0; N], len: 0, dropped: 0 }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        let room = N - self.len;
        let kept = bytes.len().min(room);
        self.bytes[self.len..self.len + kept].copy_from_slice(&bytes[..kept]);
        self.len += kept;
        self.dropped += bytes.len() - kept;
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Bytes that did not fit.
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// Hands the kept bytes to `sink` and empties the log.
    pub fn drain(&mut self, sink: impl FnOnce(&[u8])) {
        sink(&self.bytes[..self.len]);
        self.len = 0;
        self.dropped = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registers_for(signature: &[u8; 12], eax: u32) -> CpuidRegisters {
        let word = |at: usize| u32::from_le_bytes(signature[at..at + 4].try_into().unwrap());
        [eax, word(0), word(4), word(8)]
    }

    /// A CPU with `signatures` at the given bases and Xen's leaves after
    /// the Xen one; every other leaf reads as zeros.
    fn cpu(signatures: &[(u32, [u8; 12])]) -> impl FnMut(u32) -> CpuidRegisters + '_ {
        move |leaf| {
            for &(base, name) in signatures {
                if leaf == base {
                    return registers_for(&name, base + 5);
                }
                if name == XEN_SIGNATURE && leaf == base + 1 {
                    return [0x0004_0011, 0, 0, 0];
                }
                if name == XEN_SIGNATURE && leaf == base + 2 {
                    return [1, 0x4000_0000, 0, 0];
                }
            }
            [0; 4]
        }
    }

    #[test]
    fn xen_at_the_first_base() {
        let found = find_xen(cpu(&[(FIRST_BASE, XEN_SIGNATURE)])).unwrap().unwrap();
        assert_eq!(found.base, FIRST_BASE);
        assert_eq!(found.version, (4, 17));
        assert_eq!((found.hypercall_pages, found.hypercall_msr), (1, 0x4000_0000));
    }

    #[test]
    fn xen_behind_another_hypervisor() {
        let leaves = [(FIRST_BASE, *b"KVMKVMKVM\0\0\0"), (FIRST_BASE + 0x100, XEN_SIGNATURE)];
        assert_eq!(find_xen(cpu(&leaves)).unwrap().map(|x| x.base), Some(0x4000_0100));
    }

    #[test]
    fn the_search_ends_at_the_last_base_inclusive() {
        assert_eq!(find_xen(cpu(&[(LAST_BASE, XEN_SIGNATURE)])).unwrap().map(|x| x.base), Some(LAST_BASE));
        assert_eq!(find_xen(cpu(&[(LAST_BASE + BASE_STEP, XEN_SIGNATURE)])), Ok(None));
        // Bases are whole steps: a signature between them is not Xen's.
        assert_eq!(find_xen(cpu(&[(FIRST_BASE + 0x80, XEN_SIGNATURE)])), Ok(None));
    }

    #[test]
    fn no_hypervisor_means_native() {
        assert_eq!(find_xen(|_| [0; 4]), Ok(None));
        assert_eq!(find_xen(cpu(&[(FIRST_BASE, *b"TCGTCGTCGTCG")])), Ok(None));
    }

    #[test]
    fn unusable_xen_leaves_are_errors() {
        let short =
            |leaf| if leaf == FIRST_BASE { registers_for(&XEN_SIGNATURE, FIRST_BASE + 1) } else { [0; 4] };
        assert_eq!(
            find_xen(short),
            Err(DetectError::TooFewLeaves { base: FIRST_BASE, max_leaf: FIRST_BASE + 1 })
        );
        let no_page =
            |leaf| if leaf == FIRST_BASE { registers_for(&XEN_SIGNATURE, FIRST_BASE + 2) } else { [0; 4] };
        assert_eq!(find_xen(no_page), Err(DetectError::NoHypercallPage { base: FIRST_BASE }));
    }

    #[test]
    fn upcall_route_follows_the_command_line_then_the_cpu() {
        assert_eq!(UpcallRoute::choose(None, true), Ok(UpcallRoute::LapicVector));
        assert_eq!(UpcallRoute::choose(None, false), Ok(UpcallRoute::CallbackVector));
        assert_eq!(UpcallRoute::choose(Some("callback"), true), Ok(UpcallRoute::CallbackVector));
        assert_eq!(UpcallRoute::choose(Some("lapic"), true), Ok(UpcallRoute::LapicVector));
        assert_eq!(UpcallRoute::choose(Some("lapic"), false), Err(RouteError::NeedsX2apic));
        assert_eq!(UpcallRoute::choose(Some("gsi"), true), Err(RouteError::Unknown("gsi")));
        assert!(RouteError::Unknown("gsi").to_string().contains("xen-upcall=gsi"));
    }

    #[test]
    fn early_log_keeps_what_fits_and_counts_the_rest() {
        let mut log = EarlyLog::<8>::new();
        log.push(b"hello");
        log.push(b" world");
        assert_eq!(log.as_bytes(), b"hello wo");
        assert_eq!(log.dropped(), 3);
        let mut seen = Vec::new();
        log.drain(|bytes| seen.extend_from_slice(bytes));
        assert_eq!(seen, b"hello wo");
        assert_eq!((log.as_bytes().len(), log.dropped()), (0, 0));
        log.push(b"");
        assert!(log.as_bytes().is_empty());
    }
}
