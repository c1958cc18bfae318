//! Xenstore: the wire format, the shared ring page and a guest client.
//!
//! The same [`wire`] code is used by the bundled hypervisor's server, so
//! both ends agree on framing by construction.

pub mod client;
pub mod ring;
pub mod wire;

pub use client::{Doorbell, Transaction, WaitTimedOut, WatchEvent, XenstoreClient, XsError};
pub use ring::XenstoreRingView;
pub use wire::{Access, Permission, WireError};
