//! The PV console ring page (`xen/io/console.h`).
//!
//! `in` carries bytes from the backend to the guest, `out` from the guest to
//! the backend. Each side only advances its own producer or consumer index
//! and signals the console event channel after doing so.

xen_consts! {
    CONSOLE_RING_SIZES;
    /// Bytes in the `in` ring (backend to guest).
    pub const XENCONS_IN_SIZE: usize = 1024 => "sizeof(((struct xencons_interface *)0)->in)";
    /// Bytes in the `out` ring (guest to backend).
    pub const XENCONS_OUT_SIZE: usize = 2048 => "sizeof(((struct xencons_interface *)0)->out)";
}

xen_typedefs! {
    CONSOLE_TYPES;
    /// A free-running console ring index.
    pub type XenconsRingIdx = u32 => "XENCONS_RING_IDX";
}

xen_struct! {
    /// The console ring page.
    pub struct XenconsInterface => "struct xencons_interface" {
        pub r#in: [u8; XENCONS_IN_SIZE],
        pub out: [u8; XENCONS_OUT_SIZE],
        pub in_cons: XenconsRingIdx,
        pub in_prod: XenconsRingIdx,
        pub out_cons: XenconsRingIdx,
        pub out_prod: XenconsRingIdx,
    }
}

impl Default for XenconsInterface {
    fn default() -> Self {
        Self {
            r#in: [0; XENCONS_IN_SIZE],
            out: [0; XENCONS_OUT_SIZE],
            in_cons: 0,
            in_prod: 0,
            out_cons: 0,
            out_prod: 0,
        }
    }
}

/// The slot of a free-running index in a console ring of `ring_len` bytes
/// (`MASK_XENCONS_IDX`).
pub const fn mask_xencons_idx(index: XenconsRingIdx, ring_len: usize) -> usize {
    (index as usize) & (ring_len - 1)
}

module_checks! {
    consts: [CONSOLE_RING_SIZES, CONSOLE_TYPES],
    types: [XenconsInterface],
}
