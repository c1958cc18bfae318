//! What a guest on Xen uses whichever way it booted (PV or PVH):
//! the `shared_info` page, event channels, pvclock time and the timer, the
//! console ring, xenstore and grant tables. The protocols themselves are in
//! the `drivers` crate; this module connects them to hypercalls and to the
//! pages Xen shares with us.
//!
//! The boot-specific parts (how `shared_info` gets mapped, how a machine
//! frame is mapped at a virtual address) come from the platform: PV maps
//! frames with page-table hypercalls, PVH places them in its own physical
//! address space with `XENMEM_add_to_physmap` (`platform/pvh/`).

pub mod console;
pub mod events;
pub mod grants;
pub mod store;
pub mod time;

use core::sync::atomic::{AtomicBool, Ordering};

use drivers::shared_info::{SharedInfoView, VcpuInfoView};
use hypercalls::XenError;

/// The kernel's window onto `shared_info`: a page of its own image whose
/// mapping the platform points at Xen's shared-info frame. Until then it is
/// an ordinary zeroed page, which reads as "no events, no time".
#[repr(C, align(4096))]
pub struct SharedInfoPage(pub SharedInfoView);

pub static SHARED_INFO: SharedInfoPage = SharedInfoPage(SharedInfoView::new());

/// Set once the page really is Xen's.
static SHARED_INFO_LIVE: AtomicBool = AtomicBool::new(false);

/// The virtual address the platform must map to the shared-info frame.
pub fn shared_info_address() -> u64 {
    &SHARED_INFO as *const SharedInfoPage as u64
}

/// Records that [`SHARED_INFO`] now shows Xen's page.
pub fn shared_info_mapped() {
    SHARED_INFO_LIVE.store(true, Ordering::Release);
}

/// `shared_info`, once it is mapped.
pub fn shared_info() -> Option<&'static SharedInfoView> {
    SHARED_INFO_LIVE.load(Ordering::Acquire).then_some(&SHARED_INFO.0)
}

/// vCPU 0's `vcpu_info` (the kernel runs on one vCPU).
pub fn vcpu0() -> Option<&'static VcpuInfoView> {
    shared_info().and_then(|shared| shared.vcpu(0))
}

/// Calls hypercall `number` with no arguments and returns Xen's raw result.
/// Only numbers Xen leaves unassigned are allowed (43..=47 and 56..=63), so
/// nothing can happen but an error.
pub fn unassigned_hypercall(number: u32) -> Option<i64> {
    if !(43..=47).contains(&number) && !(56..=63).contains(&number) {
        return None;
    }
    // SAFETY: an unassigned hypercall number has no effect but its error.
    Some(unsafe { hypercalls::transport::hypercall0(number) })
}

/// How the platform maps a machine frame (a grant-table frame) at a
/// virtual address of the kernel's own.
pub type MapFrame = fn(virt: u64, machine_frame: u64) -> Result<(), XenError>;

/// Facts about the Xen we run on, gathered at boot.
pub struct Xen {
    /// `(major, minor)` and the extra version string, e.g. `(4, 17)`, `".7"`.
    pub version: (u16, u16),
    pub extra_version: heapless_str::Small,
    /// The capabilities string, e.g. `"xen-3.0-x86_64 hvm-3.0-x86_64"`.
    pub capabilities: heapless_str::Small,
    /// `XENFEAT_*` bits of submap 0.
    pub features: u32,
    /// The initial domain (dom0): console through `console_io`, no
    /// xenstore or console ring of its own.
    pub initial_domain: bool,
}

static XEN: spin::Once<Xen> = spin::Once::new();

/// Records the facts; the first call wins.
/// Switches to the FIFO event-channel ABI if the command line asks for
/// it (`evtchn=fifo`), before any port is bound; says which ABI is in use.
/// `frame_of` names a page of the kernel as Xen knows it.
pub fn choose_event_abi(frame_of: fn(u64) -> Option<u64>) {
    let cmdline = crate::boot::boot_info().map_or("", |boot| boot.cmdline());
    if kernel::cmdline::Cmdline::parse(cmdline).value("evtchn") != Some("fifo") {
        return;
    }
    match events::use_fifo(frame_of) {
        Ok(()) => crate::println!("xen: event channels use the FIFO ABI"),
        Err(error) => crate::println!("xen: no FIFO event channels ({error}); using the 2-level ABI"),
    }
}

pub fn init(xen: Xen) -> &'static Xen {
    XEN.call_once(|| xen)
}

pub fn get() -> Option<&'static Xen> {
    XEN.get()
}

impl Xen {
    /// Asks Xen for its version, capabilities and features.
    pub fn query(initial_domain: bool) -> Self {
        use hypercalls::ops::version;
        let extra =
            version::extraversion().map(|v| heapless_str::Small::from_bytes(version::until_nul(&v))).ok();
        let capabilities =
            version::capabilities().map(|c| heapless_str::Small::from_bytes(version::until_nul(&c))).ok();
        Self {
            version: version::version().unwrap_or((0, 0)),
            extra_version: extra.unwrap_or_default(),
            capabilities: capabilities.unwrap_or_default(),
            features: version::get_features(0).unwrap_or(0),
            initial_domain,
        }
    }
}

/// A short string kept without the heap (Xen's strings are NUL-padded
/// arrays of up to 1 KiB; the kernel keeps the first 64 bytes).
pub mod heapless_str {
    #[derive(Clone, Copy)]
    pub struct Small {
        bytes: [u8; 64],
        len: usize,
    }

    impl Default for Small {
        fn default() -> Self {
            Self { bytes: [0; 64], len: 0 }
        }
    }

    impl Small {
        pub fn from_bytes(bytes: &[u8]) -> Self {
            let mut small = Self::default();
            let text = core::str::from_utf8(bytes).unwrap_or("?");
            let mut len = text.len().min(small.bytes.len());
            while !text.is_char_boundary(len) {
                len -= 1;
            }
            small.bytes[..len].copy_from_slice(&text.as_bytes()[..len]);
            small.len = len;
            small
        }

        pub fn as_str(&self) -> &str {
            core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
        }
    }

    impl core::fmt::Display for Small {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.write_str(self.as_str())
        }
    }
}

/// A `multicall` whose entries are all `xen_version(XENVER_version)`, which
/// only reads: the cost of a batch of hypercalls, per entry, with no work
/// in any of them. The entries are private, so nothing else can be issued.
pub struct NullMulticall {
    calls: alloc::vec::Vec<hypercalls::abi::xen::MulticallEntry>,
}

impl NullMulticall {
    pub fn new(entries: usize) -> Self {
        use hypercalls::abi::{version::XENVER_version, xen::__HYPERVISOR_xen_version};
        let call = hypercalls::abi::xen::MulticallEntry {
            op: __HYPERVISOR_xen_version.into(),
            result: 0,
            args: [XENVER_version.into(), 0, 0, 0, 0, 0],
        };
        Self { calls: alloc::vec![call; entries] }
    }

    /// Issues the batch; an entry's own failure is reported as the batch's.
    pub fn issue(&mut self) -> Result<(), XenError> {
        // SAFETY: every entry is xen_version(XENVER_version, NULL), which
        // reads nothing from the guest and writes only its result.
        unsafe { hypercalls::ops::pv_mm::multicall(&mut self.calls) }?;
        match self.calls.iter().find(|call| (call.result as i64) < 0) {
            Some(call) => XenError::from_return(call.result as i64).map(drop),
            None => Ok(()),
        }
    }
}
