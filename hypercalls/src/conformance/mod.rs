//! The conformance table: every ABI constant and layout this crate defines,
//! with the C expression that must produce the same value from Xen's headers.
//!
//! The flow (driven by `tests/abi.rs` in the `system-tests` crate):
//! 1. [`c_probe_source`] writes a C program that evaluates each check's C
//!    expression against `/usr/include/xen` and prints one line per check.
//! 2. The test compiles and runs it.
//! 3. [`compare`] matches the output against [`all_checks`] and reports each
//!    mismatch.
//!
//! Rows are added by the macros in `macros.rs` (`xen_consts!`, `xen_struct!`,
//! `xen_sys_struct!`, `xen_typedefs!`), never by hand.

mod compare;
mod probe;

#[cfg(test)]
mod completeness;
#[cfg(test)]
mod tests;

pub use compare::{compare, CompareError, Counts, Mismatch};
pub use probe::c_probe_source;

/// One fact about the ABI that C and Rust must agree on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// An integer constant.
    Const { name: &'static str, c_expr: &'static str, value: i128 },
    /// A string constant (a whitespace-free token, e.g. an errno name).
    Str { name: &'static str, c_expr: &'static str, value: &'static str },
    /// `sizeof` of a type.
    Size { rust_type: &'static str, c_type: &'static str, size: usize },
    /// `_Alignof` of a type.
    Align { rust_type: &'static str, c_type: &'static str, align: usize },
    /// `offsetof` of a field.
    Offset { rust_type: &'static str, c_type: &'static str, field: &'static str, offset: usize },
    /// `sizeof` of a field (catches a wrong type hidden by padding).
    FieldSize { rust_type: &'static str, c_type: &'static str, field: &'static str, size: usize },
}

/// Which counter of [`Counts`] a check belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckKind {
    Constant,
    Size,
    Offset,
}

impl Check {
    pub fn kind(&self) -> CheckKind {
        match self {
            Check::Const { .. } | Check::Str { .. } => CheckKind::Constant,
            Check::Size { .. } | Check::Align { .. } | Check::FieldSize { .. } => CheckKind::Size,
            Check::Offset { .. } => CheckKind::Offset,
        }
    }

    /// The Rust-side item this check is about (constant or type name).
    pub fn rust_item(&self) -> &'static str {
        match *self {
            Check::Const { name, .. } | Check::Str { name, .. } => name,
            Check::Size { rust_type, .. }
            | Check::Align { rust_type, .. }
            | Check::Offset { rust_type, .. }
            | Check::FieldSize { rust_type, .. } => rust_type,
        }
    }
}

impl core::fmt::Display for Check {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Check::Const { name, c_expr, value } => write!(f, "{name} = {value} (C: {c_expr})"),
            Check::Str { name, c_expr, value } => write!(f, "{name} = {value:?} (C: {c_expr})"),
            Check::Size { rust_type, c_type, size } => {
                write!(f, "sizeof({rust_type}) = {size} (C: {c_type})")
            }
            Check::Align { rust_type, c_type, align } => {
                write!(f, "alignof({rust_type}) = {align} (C: {c_type})")
            }
            Check::Offset { rust_type, c_type, field, offset } => {
                write!(f, "offsetof({rust_type}, {field}) = {offset} (C: {c_type})")
            }
            Check::FieldSize { rust_type, c_type, field, size } => {
                write!(f, "sizeof({rust_type}.{field}) = {size} (C: {c_type})")
            }
        }
    }
}

/// Implemented (by `xen_struct!` / `xen_sys_struct!`) for every ABI struct.
pub trait Registered {
    const CHECKS: &'static [Check];
}

/// The size of a struct field, computed without an instance.
///
/// The closure is only used for its type, so this works in `const` context.
pub const fn field_size<S, F>(_field: fn(&S) -> &F) -> usize {
    core::mem::size_of::<F>()
}

/// Every check, in a fixed order (the probe's line numbers follow it).
pub fn all_checks() -> impl Iterator<Item = &'static Check> + Clone {
    crate::abi::CHECKS.iter().flat_map(|module| module.iter()).flat_map(|table| table.iter())
}

/// How many checks of each kind [`all_checks`] holds.
pub fn count_checks() -> Counts {
    let mut counts = Counts::default();
    for check in all_checks() {
        counts.add(check.kind());
    }
    counts
}
