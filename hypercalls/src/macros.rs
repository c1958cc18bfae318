//! Declarative macros that define an ABI item and register it for the
//! conformance check in the same step, so nothing can be defined unchecked.
//!
//! Every ABI module ends with a `pub(crate) const CHECKS: &[&[Check]]` that
//! lists its constant tables and its types; `abi::CHECKS` lists the modules.
//! The completeness test in `conformance` fails if a `pub const`, `pub struct`
//! or `pub type` under `abi/` is missing from the resulting table.

/// Defines integer constants and a table checking each against C.
///
/// ```text
/// xen_consts! {
///     HYPERCALL_NUMBERS;
///     /// Doc comment.
///     pub const __HYPERVISOR_mmu_update: u32 = 1;
///     // When C has no macro of the same name, give the C expression to evaluate:
///     pub const SOME_NAME: u32 = 5 => "some_c_expression";
/// }
/// ```
macro_rules! xen_consts {
    (
        $table:ident;
        $(
            $(#[$meta:meta])*
            pub const $name:ident : $ty:ty = $value:expr $(=> $c_expr:literal)? ;
        )*
    ) => {
        $(
            $(#[$meta])*
            pub const $name: $ty = $value;
        )*

        pub(crate) const $table: &[$crate::conformance::Check] = &[
            $(
                $crate::conformance::Check::Const {
                    name: stringify!($name),
                    c_expr: xen_consts!(@c_expr $name $($c_expr)?),
                    value: $name as i128,
                },
            )*
        ];
    };
    (@c_expr $name:ident) => { stringify!($name) };
    (@c_expr $name:ident $c_expr:literal) => { $c_expr };
}

/// Defines string constants and a table checking each against C (the C
/// side prints them with `%s`).
///
/// ```text
/// xen_strs! {
///     WRITE_MODES;
///     pub const XS_WRITE_NONE: &str = "NONE";
/// }
/// ```
macro_rules! xen_strs {
    (
        $table:ident;
        $(
            $(#[$meta:meta])*
            pub const $name:ident : &str = $value:literal;
        )*
    ) => {
        $(
            $(#[$meta])*
            pub const $name: &str = $value;
        )*

        pub(crate) const $table: &[$crate::conformance::Check] = &[
            $(
                $crate::conformance::Check::Str {
                    name: stringify!($name),
                    c_expr: stringify!($name),
                    value: $name,
                },
            )*
        ];
    };
}

/// Defines a `#[repr(C)]` struct (deriving `Clone, Copy, Debug`; add more
/// derives as attributes) and implements [`Registered`] for it, checking its
/// size, alignment, and every field's offset and size against the C type.
///
/// The C type is any C type expression: `"struct start_info"`, or for an
/// anonymous member struct
/// `"__typeof__(((struct start_info *)0)->console.domU)"`. Fields must carry
/// the C field names (raw identifiers such as `r#type` are fine). A C union
/// is modelled as one field of its largest member's type; its accessors
/// live on the containing struct.
///
/// [`Registered`]: crate::conformance::Registered
macro_rules! xen_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident => $c_type:literal {
            $(
                $(#[$field_meta:meta])*
                pub $field:ident : $field_ty:ty
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug)]
        pub struct $name {
            $(
                $(#[$field_meta])*
                pub $field: $field_ty,
            )*
        }

        impl $crate::conformance::Registered for $name {
            const CHECKS: &'static [$crate::conformance::Check] = &[
                $crate::conformance::Check::Size {
                    rust_type: stringify!($name),
                    c_type: $c_type,
                    size: ::core::mem::size_of::<$name>(),
                },
                $crate::conformance::Check::Align {
                    rust_type: stringify!($name),
                    c_type: $c_type,
                    align: ::core::mem::align_of::<$name>(),
                },
                $(
                    $crate::conformance::Check::Offset {
                        rust_type: stringify!($name),
                        c_type: $c_type,
                        field: stringify!($field),
                        offset: ::core::mem::offset_of!($name, $field),
                    },
                    $crate::conformance::Check::FieldSize {
                        rust_type: stringify!($name),
                        c_type: $c_type,
                        field: stringify!($field),
                        size: $crate::conformance::field_size(|s: &$name| &s.$field),
                    },
                )*
            ];
        }
    };
}

/// Re-exports a struct from `xen-sys` under a CamelCase name and registers
/// it, listing the fields whose offsets and sizes are checked (list them
/// all: the completeness of the list is on the author).
///
/// ```text
/// xen_sys_struct! {
///     /// Doc comment.
///     pub type MmuUpdate = xen_sys::mmu_update => "struct mmu_update" { ptr, val }
/// }
/// ```
macro_rules! xen_sys_struct {
    (
        $(#[$meta:meta])*
        pub type $name:ident = $path:path => $c_type:literal { $($field:ident),* $(,)? }
    ) => {
        $(#[$meta])*
        pub type $name = $path;

        impl $crate::conformance::Registered for $path {
            const CHECKS: &'static [$crate::conformance::Check] = &[
                $crate::conformance::Check::Size {
                    rust_type: stringify!($name),
                    c_type: $c_type,
                    size: ::core::mem::size_of::<$name>(),
                },
                $crate::conformance::Check::Align {
                    rust_type: stringify!($name),
                    c_type: $c_type,
                    align: ::core::mem::align_of::<$name>(),
                },
                $(
                    $crate::conformance::Check::Offset {
                        rust_type: stringify!($name),
                        c_type: $c_type,
                        field: stringify!($field),
                        offset: ::core::mem::offset_of!($name, $field),
                    },
                    $crate::conformance::Check::FieldSize {
                        rust_type: stringify!($name),
                        c_type: $c_type,
                        field: stringify!($field),
                        size: $crate::conformance::field_size(|s: &$name| &s.$field),
                    },
                )*
            ];
        }
    };
}

/// Defines scalar type aliases for C typedefs and a table checking each
/// one's size and alignment.
///
/// ```text
/// xen_typedefs! {
///     SCALAR_TYPES;
///     /// Doc comment.
///     pub type DomId = u16 => "domid_t";
/// }
/// ```
macro_rules! xen_typedefs {
    (
        $table:ident;
        $(
            $(#[$meta:meta])*
            pub type $name:ident = $ty:ty => $c_type:literal;
        )*
    ) => {
        $(
            $(#[$meta])*
            pub type $name = $ty;
        )*

        pub(crate) const $table: &[$crate::conformance::Check] = &[
            $(
                $crate::conformance::Check::Size {
                    rust_type: stringify!($name),
                    c_type: $c_type,
                    size: ::core::mem::size_of::<$name>(),
                },
                $crate::conformance::Check::Align {
                    rust_type: stringify!($name),
                    c_type: $c_type,
                    align: ::core::mem::align_of::<$name>(),
                },
            )*
        ];
    };
}

/// Builds a module's `CHECKS` list from its constant tables and its types.
///
/// ```text
/// module_checks! { consts: [HYPERCALL_NUMBERS, SIF_FLAGS], types: [StartInfo, SharedInfo] }
/// ```
macro_rules! module_checks {
    (consts: [$($table:ident),* $(,)?], types: [$($ty:ty),* $(,)?] $(,)?) => {
        pub(crate) const CHECKS: &[&[$crate::conformance::Check]] = &[
            $($table,)*
            $(<$ty as $crate::conformance::Registered>::CHECKS,)*
        ];
    };
}
