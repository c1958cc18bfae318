//! Xen's event upcall as an interrupt: the PVH replacement for the PV event
//! callback (`arch/pv_entry.rs`). Xen (or QEMU's emulation) raises
//! [`UPCALL_VECTOR`] when `evtchn_upcall_pending` goes up; the handler runs
//! the same dispatch as under PV (`xen::events::handle_upcall`).
//!
//! Two ways to ask for the vector ([`UpcallRoute`]):
//! - `HVMOP_set_evtchn_upcall_vector`, per vCPU, delivered through the
//!   local APIC: the handler must end with an EOI, or the APIC never
//!   delivers that vector again;
//! - `HVM_PARAM_CALLBACK_IRQ` with the vector type, for the whole domain,
//!   injected directly while `evtchn_upcall_pending` is set: no EOI.

use core::arch::global_asm;
use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use hypercalls::abi::hvm::{hvm_callback_via_vector, HVM_PARAM_CALLBACK_IRQ};
use hypercalls::ops::hvm;
use hypercalls::XenError;
use kernel::pvh::UpcallRoute;

use super::lapic;
use crate::arch::traps;
use crate::platform::xen;

/// The event upcall's vector: high priority, clear of the exceptions and
/// of the vectors firmware gives the legacy PIC.
pub const UPCALL_VECTOR: u8 = 0xf3;
/// Where the local APIC sends a spurious interrupt (which needs no EOI).
pub const SPURIOUS_VECTOR: u8 = 0xff;

global_asm!(
    r#"
    .pushsection .text.pvh_upcall, "ax", @progbits
    /* The CPU pushed ss, rsp, rflags, cs, rip (40 bytes, after aligning
       rsp to 16). Nine caller-saved registers make 112 bytes: the call
       below is made with rsp 16-byte aligned, as the ABI wants. */
    .balign 16
    .global pvh_upcall_stub
    pvh_upcall_stub:
        cld
        push %rax
        push %rcx
        push %rdx
        push %rsi
        push %rdi
        push %r8
        push %r9
        push %r10
        push %r11
        call {handler}
        pop %r11
        pop %r10
        pop %r9
        pop %r8
        pop %rdi
        pop %rsi
        pop %rdx
        pop %rcx
        pop %rax
        iretq

    .balign 16
    .global pvh_spurious_stub
    pvh_spurious_stub:
        iretq
    .popsection
    "#,
    handler = sym upcall_interrupt,
    options(att_syntax)
);

extern "C" {
    fn pvh_upcall_stub();
    fn pvh_spurious_stub();
}

const ROUTE_NONE: u8 = 0;
const ROUTE_LAPIC: u8 = 1;
const ROUTE_CALLBACK: u8 = 2;

static ROUTE: AtomicU8 = AtomicU8::new(ROUTE_NONE);
static INTERRUPTS: AtomicU64 = AtomicU64::new(0);

extern "C" fn upcall_interrupt() {
    INTERRUPTS.fetch_add(1, Ordering::SeqCst);
    xen::events::handle_upcall();
    if ROUTE.load(Ordering::Relaxed) == ROUTE_LAPIC {
        lapic::eoi();
    }
}

/// Points the upcall and spurious vectors at their stubs.
pub fn install_gates(code_selector: u16) {
    // SAFETY: both stubs above save what they clobber and return with
    // iretq; the caller has just loaded the IDT.
    unsafe {
        traps::set_interrupt_gate(UPCALL_VECTOR, pvh_upcall_stub as *const () as u64, code_selector);
        traps::set_interrupt_gate(SPURIOUS_VECTOR, pvh_spurious_stub as *const () as u64, code_selector);
    }
}

/// Keeps every interrupt but the upcall out. Under QEMU the firmware
/// leaves the 8259 PIC wired to the CPU (LINT0 in virtual-wire mode) with
/// its timer running, and that IRQ would arrive on vector 8, which is the
/// double fault's. Masking LINT0 in the APIC shuts it out; without an
/// x2APIC the PIC itself is masked, except as the initial domain, whose
/// PIC belongs to Xen.
pub fn quiet_other_interrupts(initial_domain: bool) {
    if lapic::has_x2apic() {
        lapic::enable_x2apic(SPURIOUS_VECTOR);
    } else if !initial_domain {
        use drivers::PortIo as _;
        const PIC_MASTER_DATA: u16 = 0x21;
        const PIC_SLAVE_DATA: u16 = 0xa1;
        crate::arch::cpu::PortIo.write8(PIC_SLAVE_DATA, 0xff);
        crate::arch::cpu::PortIo.write8(PIC_MASTER_DATA, 0xff);
    }
}

/// Asks Xen to deliver events on [`UPCALL_VECTOR`] by `route`. The gates
/// must be installed and [`quiet_other_interrupts`] done; interrupts may
/// stay off until the caller is ready.
pub fn connect(route: UpcallRoute) -> Result<(), XenError> {
    match route {
        UpcallRoute::LapicVector => {
            if !lapic::is_enabled() {
                lapic::enable_x2apic(SPURIOUS_VECTOR);
            }
            // Recorded first: an upcall may arrive as soon as Xen knows the
            // vector, and it must find the EOI switched on.
            ROUTE.store(ROUTE_LAPIC, Ordering::SeqCst);
            // SAFETY: the gate for UPCALL_VECTOR is installed (install_gates).
            let result = unsafe { hvm::set_evtchn_upcall_vector(0, UPCALL_VECTOR) };
            if result.is_err() {
                ROUTE.store(ROUTE_NONE, Ordering::SeqCst);
            }
            result
        }
        UpcallRoute::CallbackVector => {
            ROUTE.store(ROUTE_CALLBACK, Ordering::SeqCst);
            // SAFETY: as above.
            let result =
                unsafe { hvm::set_param(HVM_PARAM_CALLBACK_IRQ, hvm_callback_via_vector(UPCALL_VECTOR)) };
            if result.is_err() {
                ROUTE.store(ROUTE_NONE, Ordering::SeqCst);
            }
            result
        }
    }
}

/// The route in use, once [`connect`] succeeded.
pub fn route() -> Option<UpcallRoute> {
    match ROUTE.load(Ordering::SeqCst) {
        ROUTE_LAPIC => Some(UpcallRoute::LapicVector),
        ROUTE_CALLBACK => Some(UpcallRoute::CallbackVector),
        _ => None,
    }
}

/// Upcall interrupts taken so far.
pub fn interrupts_taken() -> u64 {
    INTERRUPTS.load(Ordering::SeqCst)
}
