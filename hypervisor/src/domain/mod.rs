//! The one guest domain: its memory, its virtual CPU, and the state the
//! hypercalls change.

pub mod build;
pub mod memory;

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use alloc::vec::Vec;

use hypercalls::abi::xen::DomId;
use spin::Mutex;

/// The guest's domain id. Xen's first unprivileged domain is 1; the
/// hypervisor's built-in backends play domain 0.
pub const GUEST_DOMID: DomId = 1;
pub const BACKEND_DOMID: DomId = 0;

/// The guest's NMI handler is its trap table's entry for vector 2.
pub const NMI_VECTOR: u8 = 2;

/// One entry of the guest's virtual IDT (`set_trap_table`).
#[derive(Clone, Copy, Default, Debug)]
pub struct TrapHandler {
    pub address: u64,
    /// Events stay masked while the handler runs (Xen's TI_GET_IF).
    pub mask_events: bool,
    /// The gate's DPL: which ring may raise it with `int $n`.
    pub privilege: u8,
}

/// The guest's virtual CPU, as PV defines it.
pub struct Vcpu {
    pub traps: [TrapHandler; 256],
    pub event_callback: u64,
    pub failsafe_callback: u64,
    pub syscall_callback: u64,
    /// The guest's NMI handler is running: further NMIs wait for its `iret`.
    pub nmi_masked: bool,
    /// The kernel stack for entries from guest user mode (`stack_switch`).
    pub kernel_sp: u64,
    pub kernel_ss: u64,
    /// Machine addresses of the kernel's and user's L4 (0: none).
    pub kernel_root: u64,
    pub user_root: u64,
    /// Machine address of this vCPU's `vcpu_info`.
    pub vcpu_info: u64,
    /// `fpu_taskswitch`: CR0.TS as the guest sees it.
    pub fpu_task_switched: bool,
    /// The guest's own view of CR4 (emulated `mov to/from %cr4`).
    pub cr4: u64,
    /// The virtual IOPL (`PHYSDEVOP_set_iopl`), which only decides whether
    /// port I/O is emulated (as a no-op) or refused with #GP.
    pub iopl: u8,
}

impl Vcpu {
    /// The kernel's or the user's L4 (machine address; 0 if none).
    pub fn root(&self, kernel: bool) -> u64 {
        if kernel {
            self.kernel_root
        } else {
            self.user_root
        }
    }

    fn new(vcpu_info: u64) -> Self {
        Self {
            traps: [TrapHandler::default(); 256],
            event_callback: 0,
            failsafe_callback: 0,
            syscall_callback: 0,
            nmi_masked: false,
            kernel_sp: 0,
            kernel_ss: 0,
            kernel_root: 0,
            user_root: 0,
            vcpu_info,
            fpu_task_switched: false,
            iopl: 0,
            cr4: crate::emulate::initial_guest_cr4(),
        }
    }
}

pub struct Domain {
    /// Pseudo-physical frame number -> machine frame number.
    pub p2m: Vec<u64>,
    /// Pages the domain holds now, and may hold at most (ballooning).
    pub tot_pages: u64,
    pub max_pages: u64,
    /// Machine address of the shared_info page (a hypervisor frame the
    /// guest may map).
    pub shared_info: u64,
    pub vcpu: Vcpu,
    /// `vm_assist` bits the guest turned on.
    pub vm_assist: u64,
    pub console_port: u32,
    pub store_port: u32,
    /// Machine addresses of the console and xenstore ring pages.
    pub console_ring: u64,
    pub store_ring: u64,
}

impl Domain {
    pub fn nr_pages(&self) -> u64 {
        self.p2m.len() as u64
    }
}

static DOMAIN: Mutex<Option<Domain>> = Mutex::new(None);

/// Whether the vCPU runs the guest kernel (else guest user mode), which
/// every SYSCALL entry asks: kept outside the lock. The vCPU starts in
/// kernel mode; `exceptions::toggle_guest_mode` is the only writer.
static KERNEL_MODE: AtomicBool = AtomicBool::new(true);

pub fn in_kernel_mode() -> bool {
    KERNEL_MODE.load(Ordering::SeqCst)
}

pub fn set_kernel_mode(kernel: bool) {
    KERNEL_MODE.store(kernel, Ordering::SeqCst);
}

/// The guest's current L4 (machine address): its kernel's or its user's,
/// by the mode the vCPU is in; what the guest sees as CR3.
pub fn current_root() -> u64 {
    let kernel = in_kernel_mode();
    with(|d| d.vcpu.root(kernel))
}

/// The SHUTDOWN_* reason the guest stopped with, once it has (checked on
/// every way back to the guest, so kept outside the lock).
static SHUTDOWN_REASON: AtomicU32 = AtomicU32::new(NOT_SHUT_DOWN);
const NOT_SHUT_DOWN: u32 = u32::MAX;

/// Records that the domain stopped for `reason`; the first reason stands.
pub fn record_shutdown(reason: u32) {
    let _ = SHUTDOWN_REASON.compare_exchange(NOT_SHUT_DOWN, reason, Ordering::SeqCst, Ordering::SeqCst);
}

/// The reason the domain stopped, if it has.
pub fn shutdown_reason() -> Option<u32> {
    let reason = SHUTDOWN_REASON.load(Ordering::SeqCst);
    (reason != NOT_SHUT_DOWN).then_some(reason)
}

pub fn install(domain: Domain) {
    *DOMAIN.lock() = Some(domain);
}

/// Runs `f` on the domain. The hypervisor runs with interrupts off, so the
/// lock is never contended; a re-entrant call would be a bug and deadlocks
/// loudly in testing rather than corrupting state.
pub fn with<R>(f: impl FnOnce(&mut Domain) -> R) -> R {
    let mut guard = DOMAIN.lock();
    f(guard.as_mut().expect("no domain built"))
}
