//! The structures of `xen/xen.h` (split from [`super::xen`] for length).

use super::arch_x86::{ArchSharedInfo, ArchVcpuInfo};
use super::xen::{XenPfn, XenUlong, MAX_GUEST_CMDLINE, XEN_LEGACY_MAX_VCPUS};

xen_sys_struct! {
    /// One `mmu_update` request: `ptr` is the machine address of the PTE
    /// with the `MMU_*` command in its low 2 bits; `val` is the new value.
    pub type MmuUpdate = xen_sys::mmu_update => "struct mmu_update" { ptr, val }
}

xen_sys_struct! {
    /// One call of a `multicall` batch; Xen writes the return value to
    /// `result`.
    pub type MulticallEntry = xen_sys::multicall_entry => "struct multicall_entry" {
        op, result, args
    }
}

xen_struct! {
    /// One `mmuext_op` request. `arg1` is a C union of `mfn` and
    /// `linear_addr`; `arg2` of `nr_ents`, `vcpumask` (a guest handle) and
    /// `src_mfn`: all are 64-bit slots here, read per `cmd`.
    #[derive(Default, PartialEq, Eq)]
    pub struct MmuextOp => "struct mmuext_op" {
        pub cmd: u32,
        pub arg1: u64,
        pub arg2: u64,
    }
}

impl MmuextOp {
    /// An operation taking one frame number or linear address.
    pub const fn with_arg1(cmd: u32, arg1: u64) -> Self {
        Self { cmd, arg1, arg2: 0 }
    }
}

xen_struct! {
    /// Per-vCPU system time parameters, maintained by Xen. Readers retry
    /// while `version` is odd or changed across the read.
    #[derive(Default, PartialEq, Eq)]
    pub struct VcpuTimeInfo => "struct vcpu_time_info" {
        pub version: u32,
        pub pad0: u32,
        /// TSC at the last update.
        pub tsc_timestamp: u64,
        /// Nanoseconds since boot at `tsc_timestamp`.
        pub system_time: u64,
        /// ns = ((tsc - tsc_timestamp) << tsc_shift) * mul >> 32.
        pub tsc_to_system_mul: u32,
        pub tsc_shift: i8,
        /// `XEN_PVCLOCK_*` bits.
        pub flags: u8,
        pub pad1: [u8; 2],
    }
}

xen_struct! {
    /// Per-vCPU event and time state, in `shared_info` or registered with
    /// `VCPUOP_register_vcpu_info`.
    #[derive(Default)]
    pub struct VcpuInfo => "struct vcpu_info" {
        /// Xen sets this when an event is pending for the vCPU.
        pub evtchn_upcall_pending: u8,
        /// Non-zero blocks upcalls (the PV "interrupts disabled" flag).
        pub evtchn_upcall_mask: u8,
        /// Which words of `evtchn_pending` may have bits set.
        pub evtchn_pending_sel: XenUlong,
        pub arch: ArchVcpuInfo,
        pub time: VcpuTimeInfo,
    }
}

xen_struct! {
    /// The page Xen shares with every domain: event-channel bitmaps, wall
    /// clock and the first 32 vCPUs' `vcpu_info`.
    pub struct SharedInfo => "struct shared_info" {
        pub vcpu_info: [VcpuInfo; XEN_LEGACY_MAX_VCPUS as usize],
        /// One bit per event-channel port: set by Xen when the port fires.
        pub evtchn_pending: [XenUlong; 64],
        /// One bit per port: set by the guest to suppress upcalls for it.
        pub evtchn_mask: [XenUlong; 64],
        /// Wall-clock time at system time 0, under a version counter.
        pub wc_version: u32,
        pub wc_sec: u32,
        pub wc_nsec: u32,
        pub wc_sec_hi: u32,
        pub arch: ArchSharedInfo,
    }
}

impl Default for SharedInfo {
    fn default() -> Self {
        Self {
            vcpu_info: [VcpuInfo::default(); XEN_LEGACY_MAX_VCPUS as usize],
            evtchn_pending: [0; 64],
            evtchn_mask: [0; 64],
            wc_version: 0,
            wc_sec: 0,
            wc_nsec: 0,
            wc_sec_hi: 0,
            arch: ArchSharedInfo::default(),
        }
    }
}

xen_struct! {
    /// The console member of `start_info` as a domU sees it. For the
    /// initial domain the same 8 bytes at `mfn` are `dom0.info_off` (low
    /// half) and `dom0.info_size` (high half); see [`StartInfo::dom0_console_info`].
    #[derive(Default, PartialEq, Eq)]
    pub struct StartInfoConsole => "__typeof__(((struct start_info *)0)->console.domU)" {
        /// Machine frame of the console ring page.
        pub mfn: XenPfn,
        /// Event channel for the console ring.
        pub evtchn: u32,
    }
}

xen_struct! {
    /// What the domain builder hands a PV kernel in `%rsi` at entry.
    pub struct StartInfo => "struct start_info" {
        /// `"xen-<version>-<platform>"`, NUL-terminated.
        pub magic: [u8; 32],
        /// Pages allocated to the domain.
        pub nr_pages: u64,
        /// Machine address of the shared-info page.
        pub shared_info: u64,
        /// `SIF_*` bits.
        pub flags: u32,
        /// Machine frame of the xenstore ring page.
        pub store_mfn: XenPfn,
        pub store_evtchn: u32,
        pub console: StartInfoConsole,
        /// Virtual address of the top-level page table.
        pub pt_base: u64,
        /// Bootstrap page-table frames, starting at `pt_base`.
        pub nr_pt_frames: u64,
        /// Virtual address of the p2m list (one MFN per PFN).
        pub mfn_list: u64,
        /// Virtual address (or PFN with `SIF_MOD_START_PFN`) of the module.
        pub mod_start: u64,
        pub mod_len: u64,
        /// NUL-terminated command line.
        pub cmd_line: [u8; MAX_GUEST_CMDLINE],
        /// First PFN and count of the p2m frames (with `XEN_ELFNOTE_INIT_P2M`).
        pub first_p2m_pfn: u64,
        pub nr_p2m_frames: u64,
    }
}

impl Default for StartInfo {
    fn default() -> Self {
        Self {
            magic: [0; 32],
            nr_pages: 0,
            shared_info: 0,
            flags: 0,
            store_mfn: 0,
            store_evtchn: 0,
            console: StartInfoConsole::default(),
            pt_base: 0,
            nr_pt_frames: 0,
            mfn_list: 0,
            mod_start: 0,
            mod_len: 0,
            cmd_line: [0; MAX_GUEST_CMDLINE],
            first_p2m_pfn: 0,
            nr_p2m_frames: 0,
        }
    }
}

impl StartInfo {
    /// The magic string without its NUL padding, e.g. `b"xen-3.0-x86_64"`.
    pub fn magic_bytes(&self) -> &[u8] {
        until_nul(&self.magic)
    }

    /// The command line without its NUL terminator.
    pub fn cmd_line_bytes(&self) -> &[u8] {
        until_nul(&self.cmd_line)
    }

    /// The initial domain's view of `console`: `(info_off, info_size)`.
    pub fn dom0_console_info(&self) -> (u32, u32) {
        let raw = self.console.mfn;
        (raw as u32, (raw >> 32) as u32)
    }
}

fn until_nul(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

module_checks! {
    consts: [],
    types: [
        MmuUpdate,
        MulticallEntry,
        MmuextOp,
        VcpuTimeInfo,
        VcpuInfo,
        SharedInfo,
        StartInfoConsole,
        StartInfo,
    ],
}
