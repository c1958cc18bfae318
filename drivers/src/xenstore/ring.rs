//! The xenstore ring page (`struct xenstore_domain_interface`) as atomics.
//!
//! `req` carries guest-to-server bytes, `rsp` server-to-guest bytes (see
//! `docs/misc/xenstore-ring.txt`). Messages may be larger than a ring, so
//! both sides move them in pieces and buffer partial messages themselves.

use core::sync::atomic::{AtomicU32, AtomicU8, Ordering};

use hypercalls::abi::io::xs_wire::{
    XenstoreDomainInterface, XENSTORE_CONNECTED, XENSTORE_ERROR_NONE, XENSTORE_RING_SIZE,
};

use crate::ring::{zeroed_bytes, ByteRing};

/// The xenstore page, with exactly [`XenstoreDomainInterface`]'s layout.
#[repr(C)]
pub struct XenstoreRingView {
    /// Guest to server.
    pub req: [AtomicU8; XENSTORE_RING_SIZE],
    /// Server to guest: replies and watch events.
    pub rsp: [AtomicU8; XENSTORE_RING_SIZE],
    pub req_cons: AtomicU32,
    pub req_prod: AtomicU32,
    pub rsp_cons: AtomicU32,
    pub rsp_prod: AtomicU32,
    /// `XENSTORE_SERVER_FEATURE_*` bits, written only by the server.
    pub server_features: AtomicU32,
    /// `XENSTORE_CONNECTED` or `XENSTORE_RECONNECT`.
    pub connection: AtomicU32,
    /// `XENSTORE_ERROR_*`, set by the server when it gives up on the guest.
    pub error: AtomicU32,
}

const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    type Abi = XenstoreDomainInterface;
    type View = XenstoreRingView;
    assert!(size_of::<View>() == size_of::<Abi>());
    assert!(align_of::<View>() == align_of::<Abi>());
    assert!(offset_of!(View, req) == offset_of!(Abi, req));
    assert!(offset_of!(View, rsp) == offset_of!(Abi, rsp));
    assert!(offset_of!(View, req_cons) == offset_of!(Abi, req_cons));
    assert!(offset_of!(View, req_prod) == offset_of!(Abi, req_prod));
    assert!(offset_of!(View, rsp_cons) == offset_of!(Abi, rsp_cons));
    assert!(offset_of!(View, rsp_prod) == offset_of!(Abi, rsp_prod));
    assert!(offset_of!(View, server_features) == offset_of!(Abi, server_features));
    assert!(offset_of!(View, connection) == offset_of!(Abi, connection));
    assert!(offset_of!(View, error) == offset_of!(Abi, error));
};

impl XenstoreRingView {
    /// An empty, connected ring with no features.
    pub const fn new() -> Self {
        Self {
            req: zeroed_bytes(),
            rsp: zeroed_bytes(),
            req_cons: AtomicU32::new(0),
            req_prod: AtomicU32::new(0),
            rsp_cons: AtomicU32::new(0),
            rsp_prod: AtomicU32::new(0),
            server_features: AtomicU32::new(0),
            connection: AtomicU32::new(XENSTORE_CONNECTED),
            error: AtomicU32::new(XENSTORE_ERROR_NONE),
        }
    }

    /// Guest-to-server bytes.
    pub fn requests(&self) -> ByteRing<'_, XENSTORE_RING_SIZE> {
        ByteRing::new(&self.req, &self.req_cons, &self.req_prod)
    }

    /// Server-to-guest bytes.
    pub fn responses(&self) -> ByteRing<'_, XENSTORE_RING_SIZE> {
        ByteRing::new(&self.rsp, &self.rsp_cons, &self.rsp_prod)
    }

    /// The server's error indicator (`XENSTORE_ERROR_*`; 0 is none).
    pub fn error_code(&self) -> u32 {
        self.error.load(Ordering::Acquire)
    }
}

impl Default for XenstoreRingView {
    fn default() -> Self {
        Self::new()
    }
}
