//! `sched_op` (`xen/sched.h`): yielding, blocking, polling and shutdown.

use super::xen::{DomId, GuestHandle};

xen_consts! {
    SCHED_COMMANDS;
    /// Give up the CPU; stay runnable.
    pub const SCHEDOP_yield: u32 = 0;
    /// Sleep until an event is pending (unmask events first).
    pub const SCHEDOP_block: u32 = 1;
    /// Stop the domain for a `SHUTDOWN_*` reason (`SchedShutdown`).
    pub const SCHEDOP_shutdown: u32 = 2;
    /// Sleep until one of some ports is pending or a timeout (`SchedPoll`).
    pub const SCHEDOP_poll: u32 = 3;
    pub const SCHEDOP_remote_shutdown: u32 = 4;
    /// Record a shutdown reason without shutting down.
    pub const SCHEDOP_shutdown_code: u32 = 5;
    pub const SCHEDOP_watchdog: u32 = 6;
    pub const SCHEDOP_pin_override: u32 = 7;
}

xen_consts! {
    SHUTDOWN_REASONS;
    /// Domain exited normally: clean up and kill.
    pub const SHUTDOWN_poweroff: u32 = 0;
    /// Clean up, kill, and then restart.
    pub const SHUTDOWN_reboot: u32 = 1;
    /// Clean up, save suspend info, kill.
    pub const SHUTDOWN_suspend: u32 = 2;
    /// Tell controller we've crashed.
    pub const SHUTDOWN_crash: u32 = 3;
    /// Restart because the watchdog timed out.
    pub const SHUTDOWN_watchdog: u32 = 4;
    /// Reset the domain's state, keeping its memory.
    pub const SHUTDOWN_soft_reset: u32 = 5;
    pub const SHUTDOWN_MAX: u32 = 5;
}

xen_sys_struct! {
    /// Argument of `SCHEDOP_shutdown` and `SCHEDOP_shutdown_code`.
    pub type SchedShutdown = xen_sys::sched_shutdown => "struct sched_shutdown" { reason }
}

xen_struct! {
    /// Argument of `SCHEDOP_poll`.
    #[derive(Default, PartialEq, Eq)]
    pub struct SchedPoll => "struct sched_poll" {
        /// Guest address of an array of `nr_ports` ports.
        pub ports: GuestHandle,
        pub nr_ports: u32,
        /// Absolute system time (ns) to give up at; 0 waits forever.
        pub timeout: u64,
    }
}

xen_struct! {
    /// Argument of `SCHEDOP_remote_shutdown`.
    #[derive(Default, PartialEq, Eq)]
    pub struct SchedRemoteShutdown => "struct sched_remote_shutdown" {
        pub domain_id: DomId,
        pub reason: u32,
    }
}

xen_struct! {
    /// Argument of `SCHEDOP_watchdog`.
    #[derive(Default, PartialEq, Eq)]
    pub struct SchedWatchdog => "struct sched_watchdog" {
        pub id: u32,
        pub timeout: u32,
    }
}

xen_struct! {
    /// Argument of `SCHEDOP_pin_override`.
    #[derive(Default, PartialEq, Eq)]
    pub struct SchedPinOverride => "struct sched_pin_override" {
        pub pcpu: i32,
    }
}

module_checks! {
    consts: [SCHED_COMMANDS, SHUTDOWN_REASONS],
    types: [SchedShutdown, SchedPoll, SchedRemoteShutdown, SchedWatchdog, SchedPinOverride],
}
