//! `vcpu_op` (`xen/vcpu.h`): per-vCPU state, timers and shared areas.

use super::xen::GuestHandle;

xen_consts! {
    VCPU_COMMANDS;
    /// Set the initial register state of an offline vCPU.
    pub const VCPUOP_initialise: u32 = 0;
    pub const VCPUOP_up: u32 = 1;
    pub const VCPUOP_down: u32 = 2;
    /// Returns 1 if the vCPU is up, 0 if not.
    pub const VCPUOP_is_up: u32 = 3;
    pub const VCPUOP_get_runstate_info: u32 = 4;
    pub const VCPUOP_register_runstate_memory_area: u32 = 5;
    pub const VCPUOP_set_periodic_timer: u32 = 6;
    pub const VCPUOP_stop_periodic_timer: u32 = 7;
    pub const VCPUOP_set_singleshot_timer: u32 = 8;
    pub const VCPUOP_stop_singleshot_timer: u32 = 9;
    /// Move the vCPU's `vcpu_info` out of `shared_info` to a guest page.
    pub const VCPUOP_register_vcpu_info: u32 = 10;
    pub const VCPUOP_send_nmi: u32 = 11;
    pub const VCPUOP_get_physid: u32 = 12;
    pub const VCPUOP_register_vcpu_time_memory_area: u32 = 13;
}

xen_consts! {
    VCPU_VALUES;
    /// `VcpuRunstateInfo::state` values.
    pub const RUNSTATE_running: i32 = 0;
    pub const RUNSTATE_runnable: i32 = 1;
    pub const RUNSTATE_blocked: i32 = 2;
    pub const RUNSTATE_offline: i32 = 3;
    /// Set in `state_entry_time` while Xen updates the runstate area.
    pub const XEN_RUNSTATE_UPDATE: u64 = 1 << 63;
    /// `VcpuSetSingleshotTimer::flags`: fail with -ETIME if the timeout is
    /// already in the past.
    pub const _VCPU_SSHOTTMR_future: u32 = 0;
    pub const VCPU_SSHOTTMR_future: u32 = 1 << _VCPU_SSHOTTMR_future;
}

xen_struct! {
    /// Time a vCPU spent in each `RUNSTATE_*`.
    #[derive(Default, PartialEq, Eq)]
    pub struct VcpuRunstateInfo => "struct vcpu_runstate_info" {
        pub state: i32,
        /// System time of the last state change.
        pub state_entry_time: u64,
        /// Nanoseconds spent in each state, indexed by `RUNSTATE_*`.
        pub time: [u64; 4],
    }
}

xen_struct! {
    /// `VCPUOP_register_runstate_memory_area`: the guest-virtual address
    /// Xen keeps a `VcpuRunstateInfo` updated at.
    #[derive(Default, PartialEq, Eq)]
    pub struct VcpuRegisterRunstateMemoryArea => "struct vcpu_register_runstate_memory_area" {
        pub addr: GuestHandle,
    }
}

xen_struct! {
    /// `VCPUOP_register_vcpu_time_memory_area`: likewise for a
    /// `VcpuTimeInfo`.
    #[derive(Default, PartialEq, Eq)]
    pub struct VcpuRegisterTimeMemoryArea => "struct vcpu_register_time_memory_area" {
        pub addr: GuestHandle,
    }
}

xen_struct! {
    /// `VCPUOP_set_periodic_timer`.
    #[derive(Default, PartialEq, Eq)]
    pub struct VcpuSetPeriodicTimer => "struct vcpu_set_periodic_timer" {
        pub period_ns: u64,
    }
}

xen_struct! {
    /// `VCPUOP_set_singleshot_timer`: fire `VIRQ_TIMER` at an absolute
    /// system time.
    #[derive(Default, PartialEq, Eq)]
    pub struct VcpuSetSingleshotTimer => "struct vcpu_set_singleshot_timer" {
        pub timeout_abs_ns: u64,
        /// `VCPU_SSHOTTMR_*`.
        pub flags: u32,
    }
}

xen_struct! {
    /// `VCPUOP_register_vcpu_info`: place the `VcpuInfo` at byte `offset`
    /// of frame `mfn` (a GFN for translated guests). It must not cross a
    /// page boundary.
    #[derive(Default, PartialEq, Eq)]
    pub struct VcpuRegisterVcpuInfo => "struct vcpu_register_vcpu_info" {
        pub mfn: u64,
        pub offset: u32,
        pub rsvd: u32,
    }
}

xen_struct! {
    /// `VCPUOP_get_physid`.
    #[derive(Default, PartialEq, Eq)]
    pub struct VcpuGetPhysid => "struct vcpu_get_physid" {
        pub phys_id: u64,
    }
}

module_checks! {
    consts: [VCPU_COMMANDS, VCPU_VALUES],
    types: [
        VcpuRunstateInfo,
        VcpuRegisterRunstateMemoryArea,
        VcpuRegisterTimeMemoryArea,
        VcpuSetPeriodicTimer,
        VcpuSetSingleshotTimer,
        VcpuRegisterVcpuInfo,
        VcpuGetPhysid,
    ],
}
