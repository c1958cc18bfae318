//! `callback_op` (`xen/callback.h`): where Xen enters the guest kernel.

use super::xen::XenCallback;

xen_consts! {
    CALLBACK_VALUES;
    /// Event upcall (the PV "interrupt" entry).
    pub const CALLBACKTYPE_event: u16 = 0;
    /// Entered when Xen fails to return to the guest (bad segment, ...).
    pub const CALLBACKTYPE_failsafe: u16 = 1;
    /// 64-bit `syscall` from guest user space.
    pub const CALLBACKTYPE_syscall: u16 = 2;
    pub const CALLBACKTYPE_sysenter_deprecated: u16 = 3;
    pub const CALLBACKTYPE_nmi: u16 = 4;
    pub const CALLBACKTYPE_sysenter: u16 = 5;
    pub const CALLBACKTYPE_syscall32: u16 = 7;
    /// `CallbackRegister::flags`: mask events on entry.
    pub const _CALLBACKF_mask_events: u16 = 0;
    pub const CALLBACKF_mask_events: u16 = 1 << _CALLBACKF_mask_events;
    pub const CALLBACKOP_register: u32 = 0;
    pub const CALLBACKOP_unregister: u32 = 1;
}

xen_struct! {
    /// `CALLBACKOP_register`.
    #[derive(Default, PartialEq, Eq)]
    pub struct CallbackRegister => "struct callback_register" {
        /// `CALLBACKTYPE_*`.
        pub r#type: u16,
        /// `CALLBACKF_*`.
        pub flags: u16,
        pub address: XenCallback,
    }
}

xen_struct! {
    /// `CALLBACKOP_unregister`.
    #[derive(Default, PartialEq, Eq)]
    pub struct CallbackUnregister => "struct callback_unregister" {
        pub r#type: u16,
        pub _unused: u16,
    }
}

module_checks! {
    consts: [CALLBACK_VALUES],
    types: [CallbackRegister, CallbackUnregister],
}
