//! The pure half of the hostile-guest suite (`hostile` on the command line)
//! and of the hypercall fuzzer (`fuzz=<seed>,<count>`): how attacks are
//! reported and judged, the seeded random-number generator, and the
//! fuzzer's policy (which hypercalls and arguments it may choose, and which
//! it must never issue because they would legitimately destroy the guest).
//! The attacks themselves run in the kernel binary (`src/hostile/`,
//! `src/fuzz.rs`); everything here is tested on the host.

// Xen's constants keep their C names (`EVTCHNOP_close`), also as patterns.
#![allow(non_upper_case_globals)]

pub mod expect;
pub mod fuzz;
pub mod report;
pub mod rng;

pub use expect::Expect;
pub use report::{run_attacks, Attack, Summary};
pub use rng::Rng;
