//! The policy half of the services a running PV guest gets from the
//! hypervisor besides memory management: event channels, virtual timers,
//! the wallclock, runstate accounting and grant-table sizing.
//!
//! Everything here follows Xen's documented behaviour (facts taken from
//! `xen/common/event_channel.c`, `sched/core.c`, `domain.c` and
//! `grant_table.c`; the code is our own) and is tested on the host. The
//! bare-metal glue lives in the binary: `src/events.rs` owns the state,
//! `src/hypercall/{event_channel,vcpu,timer,sched,grant_table}.rs` decode
//! the guest's arguments, and `src/backends/` plays domain 0.

pub mod fifo;
pub mod grants;
pub mod ports;
pub mod runstate;
pub mod shutdown;
pub mod timers;
pub mod wallclock;
