//! Support code for the system tests in `system.rs`.
//!
//! The harness is our own (not libtest) because a system test has three
//! honest outcomes: it passed, it failed, or it could not run on this host
//! and says why. libtest can only report the first two.

pub mod abi;

/// The result of one system test.
#[derive(Debug)]
pub enum Outcome {
    Pass,
    /// What went wrong, in one line.
    Fail(String),
    /// Why the test cannot run on this host, in one line.
    Skip(String),
}
