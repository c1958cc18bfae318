//! Shared-memory device protocols (`xen/io/*.h`).

pub mod console;
pub mod ring;
pub mod xs_wire;
