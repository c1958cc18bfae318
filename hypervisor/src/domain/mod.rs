//! The one guest domain: its memory, its virtual CPU, and the state the
//! hypercalls change.

pub mod build;
pub mod memory;

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
    /// A virtual NMI waits for delivery (`VCPUOP_send_nmi`).
    pub nmi_pending: bool,
    /// The guest's NMI handler is running: further NMIs wait for its `iret`.
    pub nmi_masked: bool,
    /// The kernel stack for entries from guest user mode (`stack_switch`).
    pub kernel_sp: u64,
    pub kernel_ss: u64,
    pub in_kernel_mode: bool,
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
    fn new(vcpu_info: u64) -> Self {
        Self {
            traps: [TrapHandler::default(); 256],
            event_callback: 0,
            failsafe_callback: 0,
            syscall_callback: 0,
            nmi_pending: false,
            nmi_masked: false,
            kernel_sp: 0,
            kernel_ss: 0,
            in_kernel_mode: true,
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
    /// Set once the guest asked to stop (a SHUTDOWN_* reason).
    pub shutdown_reason: Option<u32>,
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
