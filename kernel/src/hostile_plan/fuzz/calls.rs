//! One generator per hypercall: which sub-operations the fuzzer issues and
//! how their arguments are built. The exclusions are listed in the parent
//! module's documentation; each is enforced here, next to the operation.

use hypercalls::abi::callback::{CALLBACKOP_register, CALLBACKOP_unregister};
use hypercalls::abi::event_channel::*;
use hypercalls::abi::physdev::{PHYSDEVOP_irq_status_query, PHYSDEVOP_set_iopl};
use hypercalls::abi::sched::*;
use hypercalls::abi::vcpu::*;
use hypercalls::abi::xen::*;

use super::{Planner, Repairs, HYPERVISOR_ADDRESSES, STRADDLE_ZONE};

/// Hypercalls only a privileged domain may issue to any effect; the
/// fuzzer issues them only when it is not one.
pub const PRIVILEGED_ONLY: [u32; 11] = [
    __HYPERVISOR_platform_op,
    __HYPERVISOR_xenoprof_op,
    __HYPERVISOR_sysctl,
    __HYPERVISOR_domctl,
    __HYPERVISOR_kexec_op,
    __HYPERVISOR_xenpmu_op,
    __HYPERVISOR_dm_op,
    __HYPERVISOR_hypfs_op,
    __HYPERVISOR_arch_0, // mca
    __HYPERVISOR_arch_1, // paging_domctl_cont
    __HYPERVISOR_physdev_op_compat,
];

/// `nmi_op` sub-operations (`public/nmi.h`).
const XENNMI_REGISTER_CALLBACK: u64 = 0;

/// How often each hypercall is chosen (weights out of their sum).
const WEIGHTS: &[(u32, u64)] = &[
    (__HYPERVISOR_set_trap_table, 2),
    (__HYPERVISOR_mmu_update, 12),
    (__HYPERVISOR_set_gdt, 3),
    (__HYPERVISOR_stack_switch, 1),
    (__HYPERVISOR_set_callbacks, 2),
    (__HYPERVISOR_fpu_taskswitch, 1),
    (__HYPERVISOR_sched_op_compat, 1),
    (__HYPERVISOR_set_debugreg, 2),
    (__HYPERVISOR_get_debugreg, 1),
    (__HYPERVISOR_update_descriptor, 3),
    (__HYPERVISOR_memory_op, 10),
    (__HYPERVISOR_multicall, 6),
    (__HYPERVISOR_update_va_mapping, 8),
    (__HYPERVISOR_set_timer_op, 2),
    (__HYPERVISOR_event_channel_op_compat, 2),
    (__HYPERVISOR_xen_version, 3),
    (__HYPERVISOR_console_io, 2),
    (__HYPERVISOR_grant_table_op, 6),
    (__HYPERVISOR_vm_assist, 1),
    (__HYPERVISOR_update_va_mapping_otherdomain, 2),
    (__HYPERVISOR_vcpu_op, 4),
    (__HYPERVISOR_set_segment_base, 1),
    (__HYPERVISOR_mmuext_op, 12),
    (__HYPERVISOR_xsm_op, 1),
    (__HYPERVISOR_nmi_op, 1),
    (__HYPERVISOR_sched_op, 4),
    (__HYPERVISOR_callback_op, 2),
    (__HYPERVISOR_event_channel_op, 10),
    (__HYPERVISOR_physdev_op, 2),
    (__HYPERVISOR_hvm_op, 1),
    (__HYPERVISOR_tmem_op, 1),
    (__HYPERVISOR_argo_op, 1),
    // Privileged-only (skipped as dom0).
    (__HYPERVISOR_platform_op, 1),
    (__HYPERVISOR_sysctl, 1),
    (__HYPERVISOR_domctl, 1),
    (__HYPERVISOR_kexec_op, 1),
    (__HYPERVISOR_xenoprof_op, 1),
    (__HYPERVISOR_xenpmu_op, 1),
    (__HYPERVISOR_dm_op, 1),
    (__HYPERVISOR_hypfs_op, 1),
    (__HYPERVISOR_arch_0, 1),
    (__HYPERVISOR_arch_1, 1),
    (__HYPERVISOR_physdev_op_compat, 1),
    // Numbers no hypercall has.
    (11, 1),
    (43, 1),
    (60, 1),
    (64, 1),
    (127, 1),
    (u32::MAX, 1),
];

/// Hypercalls a multicall entry may carry: those that need no repair and
/// allocate nothing.
pub(super) const IN_MULTICALL: &[u32] = &[
    __HYPERVISOR_xen_version,
    __HYPERVISOR_mmu_update,
    __HYPERVISOR_mmuext_op,
    __HYPERVISOR_update_va_mapping,
    __HYPERVISOR_memory_op,
    __HYPERVISOR_console_io,
    __HYPERVISOR_get_debugreg,
    __HYPERVISOR_vm_assist,
    __HYPERVISOR_set_timer_op,
    __HYPERVISOR_multicall,
    __HYPERVISOR_update_descriptor,
    60,
];

/// Where a port-allocating event-channel operation writes its port.
fn port_offset(command: u32) -> u64 {
    match command {
        EVTCHNOP_alloc_unbound | EVTCHNOP_bind_ipi => 4,
        _ => 8,
    }
}

impl Planner<'_> {
    pub(super) fn plan_top_level(&mut self) -> (u64, [u64; 5]) {
        let total: u64 = WEIGHTS.iter().map(|&(_, weight)| weight).sum();
        loop {
            let mut ticket = self.rng.below(total);
            let number = WEIGHTS
                .iter()
                .find(|&&(_, weight)| {
                    let hit = ticket < weight;
                    ticket = ticket.saturating_sub(weight);
                    hit
                })
                .map_or(__HYPERVISOR_xen_version, |&(number, _)| number);
            if self.env.privileged && PRIVILEGED_ONLY.contains(&number) {
                continue;
            }
            if number == u32::MAX {
                // Beyond any table, including the upper half of %rax.
                let number = self.rng.pick(&[u64::from(u32::MAX), 1 << 32 | 17, u64::MAX]);
                return (number, self.random_args());
            }
            return (number.into(), self.plan(number, 0));
        }
    }

    fn random_args(&mut self) -> [u64; 5] {
        let mut args = [0; 5];
        for arg in &mut args {
            *arg = self.random_word();
        }
        args
    }

    /// Arguments for hypercall `number`; `depth` > 0 inside a multicall.
    pub(super) fn plan(&mut self, number: u32, depth: u32) -> [u64; 5] {
        let p = self;
        match number {
            __HYPERVISOR_set_trap_table => {
                p.call.repairs.0 |= Repairs::TRAPS;
                let mut entries = [0u64; 8];
                for pair in entries.chunks_exact_mut(2).take(3) {
                    pair[0] = p.rng.next_u64() & 0xffff_ffff;
                    pair[1] = p.code_address();
                }
                let list = if p.rng.chance(1, 6) { 0 } else { p.pointer_to(&entries) };
                [list, 0, 0, 0, 0]
            }
            __HYPERVISOR_mmu_update => {
                let mut requests = [0u64; 8];
                for pair in requests.chunks_exact_mut(2) {
                    pair[0] = p.update_pointer();
                    pair[1] = p.pte();
                }
                let list = p.pointer_to(&requests);
                let count = p.count(list, 4);
                let done = if p.rng.chance(1, 2) { 0 } else { p.pointer_to(&[u64::MAX]) };
                let foreign = p.domid() | if p.rng.chance(1, 8) { p.rng.below(4) << 16 } else { 0 };
                [list, count, done, foreign, 0]
            }
            __HYPERVISOR_set_gdt => {
                let frames = [p.mfn(), p.mfn(), p.mfn()];
                let list = p.pointer_to(&frames);
                let entries = p.rng.pick(&[0, 1, 512, 513, 1024, 7168, 7169, 8192, 0xffff_ffff]);
                [list, entries, 0, 0, 0]
            }
            __HYPERVISOR_stack_switch => [p.rng.next_u64() & 0xffff, p.code_address(), 0, 0, 0],
            __HYPERVISOR_set_callbacks => {
                p.call.repairs.0 |= Repairs::CALLBACKS;
                [p.code_address(), p.code_address(), p.code_address(), 0, 0]
            }
            __HYPERVISOR_fpu_taskswitch => {
                p.call.repairs.0 |= Repairs::FPU;
                [p.rng.below(3), 0, 0, 0, 0]
            }
            __HYPERVISOR_sched_op_compat => {
                // Never block (1) or shut down (2).
                let command = p.rng.pick(&[u64::from(SCHEDOP_yield), 3, 8, 0xffff_ffff]);
                [command, p.random_word(), 0, 0, 0]
            }
            __HYPERVISOR_set_debugreg => {
                p.call.repairs.0 |= Repairs::DEBUG_REGISTERS;
                let register = p.rng.below(10);
                let value = if register == 7 || register == 5 {
                    // Never enable a breakpoint: bits 0-7 stay clear.
                    (p.rng.next_u64() & !0xff) & p.rng.pick(&[u64::MAX, 0xffff_ffff, 0x2000])
                } else {
                    p.code_address()
                };
                [register, value, 0, 0, 0]
            }
            __HYPERVISOR_get_debugreg => [p.rng.below(10), 0, 0, 0, 0],
            __HYPERVISOR_update_descriptor => {
                let offset = 8 * p.rng.below(512) + if p.rng.chance(1, 8) { 4 } else { 0 };
                let address = (p.mfn() & 0xff_ffff_ffff) * 4096 + offset;
                let descriptor = p.rng.pick(&[
                    0x00af_9a00_0000_ffff, // 64-bit code, DPL 0
                    0x00cf_9200_0000_ffff, // data, DPL 0
                    0x0000_8900_0000_0067, // available TSS
                    0xe033_0000_0000_8c00, // call gate
                    0,
                ]) ^ if p.rng.chance(1, 2) { p.rng.next_u64() } else { 0 };
                [address, descriptor, 0, 0, 0]
            }
            __HYPERVISOR_memory_op => p.memory_op(depth),
            __HYPERVISOR_multicall => p.multicall(depth),
            __HYPERVISOR_update_va_mapping => [p.mapping_address(), p.pte(), p.flush_flags(), 0, 0],
            __HYPERVISOR_update_va_mapping_otherdomain => {
                [p.mapping_address(), p.pte(), p.flush_flags(), p.domid(), 0]
            }
            __HYPERVISOR_set_timer_op => {
                let timeout = p.rng.pick(&[0, 1, u64::MAX, 1 << 63]) ^ p.rng.below(1 << 30);
                [timeout, 0, 0, 0, 0]
            }
            __HYPERVISOR_event_channel_op_compat => {
                // `struct evtchn_op`: the command, then the argument at offset 4.
                let (command, words, allocates) = p.event_channel_request();
                let inline = [
                    u64::from(command) | words[0] << 32,
                    words[0] >> 32 | words[1] << 32,
                    words[1] >> 32 | words[2] << 32,
                    words[2] >> 32,
                ];
                let address = p.pointer_to(&inline);
                if allocates && p.in_buffers(address) {
                    p.call.close_port_at = Some(address + 4 + port_offset(command));
                }
                [address, 0, 0, 0, 0]
            }
            __HYPERVISOR_xen_version => {
                let command = p.rng.below(13);
                [command, p.random_buffer(16), 0, 0, 0]
            }
            __HYPERVISOR_console_io => {
                // Output goes to the test log: only pointers that must fault.
                let command = p.rng.pick(&[u64::from(CONSOLEIO_write), u64::from(CONSOLEIO_read), 2]);
                let count = p.rng.pick(&[1, 16, 4096, 1 << 32 | 4]);
                let buffer = if command == u64::from(CONSOLEIO_write) {
                    p.refused_pointer()
                } else {
                    p.random_buffer(4)
                };
                [command, count.min(if command == 1 { 32 } else { u64::MAX }), buffer, 0, 0]
            }
            __HYPERVISOR_grant_table_op => p.grant_table_op(),
            __HYPERVISOR_vm_assist => [p.rng.below(3), p.rng.below(40), 0, 0, 0],
            __HYPERVISOR_vcpu_op => p.vcpu_op(),
            __HYPERVISOR_set_segment_base => {
                p.call.repairs.0 |= Repairs::SEGMENT_BASES;
                let which = p.rng.below(5);
                let value = if which == 3 {
                    // A GDT selector (never the LDT, whose pages would be typed).
                    p.rng.pick(&[0, 3, 0xe02b, 0xe033, 0xe008, 0x10]) & !4
                } else {
                    p.code_address()
                };
                [which, value, 0, 0, 0]
            }
            __HYPERVISOR_mmuext_op => p.mmuext_op(),
            __HYPERVISOR_nmi_op => {
                p.call.repairs.0 |= Repairs::NMI_CALLBACK;
                let address = p.code_address();
                let command = p.rng.pick(&[XENNMI_REGISTER_CALLBACK, 1, 2]);
                [command, p.pointer_to(&[address, 0]), 0, 0, 0]
            }
            __HYPERVISOR_sched_op => p.sched_op(),
            __HYPERVISOR_callback_op => {
                p.call.repairs.0 |= Repairs::CALLBACKS | Repairs::NMI_CALLBACK;
                let kind = p.rng.below(9);
                let flags = p.rng.below(4);
                let address = p.code_address();
                let command = p.rng.pick(&[CALLBACKOP_register, CALLBACKOP_unregister, 2]);
                [command.into(), p.pointer_to(&[kind | flags << 16, address]), 0, 0, 0]
            }
            __HYPERVISOR_event_channel_op => {
                let (command, argument) = p.event_channel_op();
                [command, argument, 0, 0, 0]
            }
            __HYPERVISOR_physdev_op => {
                let command = if p.env.privileged {
                    p.rng.pick(&[PHYSDEVOP_set_iopl, PHYSDEVOP_irq_status_query]).into()
                } else {
                    p.rng.below(32)
                };
                let argument = if command == u64::from(PHYSDEVOP_set_iopl) {
                    let iopl = p.rng.pick(&[0, 1, 3, 4, u64::MAX]);
                    p.pointer_to(&[iopl])
                } else {
                    p.random_buffer(4)
                };
                [command, argument, 0, 0, 0]
            }
            // Privileged-only hypercalls (planned only for an unprivileged
            // guest), the ones a PV guest has no use for, and invalid numbers.
            _ => {
                let command = p.rng.below(64);
                [command, p.random_buffer(8), p.random_word(), p.random_word(), p.random_word()]
            }
        }
    }

    /// An address a guest might register as code: its own buffers, the
    /// hypervisor's range, non-canonical, or zero.
    fn code_address(&mut self) -> u64 {
        match self.rng.below(5) {
            0 => 0,
            1 => self.rng.pick(&HYPERVISOR_ADDRESSES),
            2 => 0x0000_8000_0000_0000 | self.rng.next_u64() & 0x0000_7fff_ffff_ffff,
            3 => self.env.buffer_base + self.rng.below(self.env.buffer_bytes),
            _ => self.rng.next_u64(),
        }
    }

    /// `update_va_mapping` flags: flush type, local/all, or a vCPU mask pointer.
    fn flush_flags(&mut self) -> u64 {
        let kind = self.rng.below(4);
        match self.rng.below(4) {
            0 => kind,
            1 => kind | UVMF_ALL,
            2 => kind | (self.pointer_to(&[1]) & !7),
            _ => kind | (self.bad_pointer() & !7),
        }
    }

    fn event_channel_op(&mut self) -> (u64, u64) {
        let (command, words, allocates) = self.event_channel_request();
        let argument = self.pointer_to(&words);
        if allocates && self.in_buffers(argument) {
            self.call.close_port_at = Some(argument + port_offset(command));
        }
        (command.into(), argument)
    }

    /// An event-channel command, its argument structure and whether it
    /// allocates a port when it succeeds.
    fn event_channel_request(&mut self) -> (u32, [u64; 3], bool) {
        let p = self;
        let command = p.rng.below(15) as u32;
        let (words, allocates) = match command {
            EVTCHNOP_alloc_unbound => {
                let (dom, remote) = (p.domid(), p.domid());
                ([dom | remote << 16, 0, 0], true)
            }
            EVTCHNOP_bind_interdomain => {
                let (dom, port) = (p.domid(), p.any_port());
                ([dom | (port & 0xffff_ffff) << 32, 0, 0], true)
            }
            EVTCHNOP_bind_virq => {
                let (virq, vcpu) = (p.rng.below(32), p.rng.pick(&[0, 0, 1, 4096]));
                ([virq | vcpu << 32, 0, 0], true)
            }
            EVTCHNOP_bind_ipi => ([p.rng.pick(&[0, 1, 4096]), 0, 0], true),
            EVTCHNOP_bind_pirq if p.env.privileged => ([u64::from(u32::MAX), 0, 0], false),
            EVTCHNOP_bind_pirq => ([p.rng.below(300), 0, 0], true),
            EVTCHNOP_close | EVTCHNOP_bind_vcpu => {
                let (port, vcpu) = (p.owned_port(), p.rng.pick(&[0, 1, 4096]));
                ([port & 0xffff_ffff | vcpu << 32, 0, 0], false)
            }
            EVTCHNOP_send | EVTCHNOP_unmask | EVTCHNOP_set_priority => {
                let (port, priority) = (p.any_port(), p.rng.below(20));
                ([port & 0xffff_ffff | priority << 32, 0, 0], false)
            }
            EVTCHNOP_status => {
                let (dom, port) = (p.domid(), p.any_port());
                ([dom | (port & 0xffff_ffff) << 32, 0, 0], false)
            }
            EVTCHNOP_reset => ([p.other_domid(), 0, 0], false),
            EVTCHNOP_init_control | EVTCHNOP_expand_array => {
                // Never a guest frame: that would switch the guest to FIFO events.
                let frame = match p.rng.below(3) {
                    0 if !p.env.foreign_mfns.is_empty() => p.env.foreign_mfns[0],
                    1 => (1 << 39) | p.rng.below(1 << 20),
                    _ => u64::MAX,
                };
                let (offset, vcpu) = (p.rng.below(8192), p.rng.below(4));
                ([frame, offset | vcpu << 32, 0], false)
            }
            _ => ([p.random_word(), p.random_word(), p.random_word()], false),
        };
        (command, words, allocates)
    }

    /// Whether `address` is a buffer the planner handed out (not a bad
    /// pointer, and not the straddle zone at the end).
    pub(super) fn in_buffers(&self, address: u64) -> bool {
        (self.env.buffer_base..self.env.buffer_base + self.env.buffer_bytes - STRADDLE_ZONE)
            .contains(&address)
    }

    fn sched_op(&mut self) -> [u64; 5] {
        let p = self;
        match p.rng.below(8) {
            0 => [SCHEDOP_yield.into(), 0, 0, 0, 0],
            1 | 2 => {
                // A timeout already in the past: never sleeps for long.
                let ports = [p.any_port() | p.owned_port() << 32, p.out_of_range_port()];
                let list = p.pointer_to(&ports);
                let count = p.rng.pick(&[0, 1, 2, 3, 128, 129, 0xffff_ffff]);
                let timeout = 1 + p.rng.below(1000);
                [SCHEDOP_poll.into(), p.pointer_to(&[list, count, timeout]), 0, 0, 0]
            }
            3 => {
                let command = p.rng.pick(&[SCHEDOP_shutdown, SCHEDOP_shutdown_code, SCHEDOP_watchdog]);
                [command.into(), p.refused_pointer(), 0, 0, 0]
            }
            4 => {
                let request = p.other_domid() | p.rng.below(6) << 32;
                [SCHEDOP_remote_shutdown.into(), p.pointer_to(&[request]), 0, 0, 0]
            }
            5 if !p.env.privileged => [SCHEDOP_pin_override.into(), p.random_buffer(1), 0, 0, 0],
            _ => [8 + p.rng.below(100), p.random_buffer(2), 0, 0, 0],
        }
    }

    fn vcpu_op(&mut self) -> [u64; 5] {
        let p = self;
        let vcpu = p.rng.pick(&[0, 0, 0, 1, 31, 4096, 1 << 32]);
        let (command, argument) = match p.rng.below(10) {
            0 => (VCPUOP_is_up, 0),
            1 => (VCPUOP_get_runstate_info, p.random_buffer(6)),
            2 | 3 => {
                // Never the straddling pointer: the hypervisor keeps writing
                // there, and the poison there must stay poison.
                let area = if p.rng.chance(1, 2) { p.env.sink } else { p.refused_pointer() };
                let command = p
                    .rng
                    .pick(&[VCPUOP_register_runstate_memory_area, VCPUOP_register_vcpu_time_memory_area]);
                (command, p.pointer_to(&[area]))
            }
            4 => {
                p.call.repairs.0 |= Repairs::PERIODIC_TIMER;
                let period = p.rng.pick(&[0, 1, 999_999, 1_000_000, 50_000_000, u64::MAX]);
                (VCPUOP_set_periodic_timer, p.pointer_to(&[period]))
            }
            5 => (p.rng.pick(&[VCPUOP_stop_periodic_timer, VCPUOP_stop_singleshot_timer]), 0),
            6 => {
                let timeout = p.rng.pick(&[0, 1, u64::MAX]);
                {
                    let flags = p.rng.below(3);
                    (VCPUOP_set_singleshot_timer, p.pointer_to(&[timeout, flags]))
                }
            }
            7 => (VCPUOP_get_physid, p.random_buffer(1)),
            // vCPU 0 is running; bringing up another (never initialised) one fails.
            8 => return [VCPUOP_up.into(), 1 + p.rng.below(3), 0, 0, 0],
            _ => (14 + p.rng.below(20) as u32, p.random_buffer(4)),
        };
        [command.into(), vcpu, argument, 0, 0]
    }
}
