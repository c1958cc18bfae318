//! Who may do what to a node (xenstored's rules).
//!
//! A privileged caller (the hypervisor acting as dom0) and a node's owner
//! (first permission entry) may do anything. Anyone else gets the access of
//! the entry naming their domid, or the first entry's default access.

use drivers::xenstore::wire::{Access, Permission};
use hypercalls::abi::xen::DomId;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Caller {
    pub domid: DomId,
    pub privileged: bool,
}

impl Caller {
    pub const DOM0: Caller = Caller { domid: 0, privileged: true };

    pub fn guest(domid: DomId) -> Self {
        Self { domid, privileged: false }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Want {
    Read,
    Write,
}

fn access_of(caller: Caller, perms: &[Permission]) -> Access {
    let Some((owner, others)) = perms.split_first() else {
        return if caller.privileged { Access::Both } else { Access::None };
    };
    if caller.privileged || caller.domid == owner.domid {
        return Access::Both;
    }
    others.iter().find(|p| p.domid == caller.domid).map_or(owner.access, |p| p.access)
}

pub(crate) fn allowed(caller: Caller, perms: &[Permission], want: Want) -> bool {
    let access = access_of(caller, perms);
    match want {
        Want::Read => access.can_read(),
        Want::Write => access.can_write(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUEST: DomId = 5;

    #[test]
    fn owner_and_privileged_callers_may_do_anything() {
        let perms = [Permission::new(GUEST, Access::None)];
        assert!(allowed(Caller::guest(GUEST), &perms, Want::Write));
        assert!(allowed(Caller::DOM0, &perms, Want::Read));
        assert!(!allowed(Caller::guest(6), &perms, Want::Read));
    }

    #[test]
    fn specific_entries_override_the_default() {
        let perms = [Permission::new(0, Access::Read), Permission::new(GUEST, Access::Write)];
        assert!(allowed(Caller::guest(GUEST), &perms, Want::Write));
        assert!(!allowed(Caller::guest(GUEST), &perms, Want::Read));
        assert!(allowed(Caller::guest(9), &perms, Want::Read));
        assert!(!allowed(Caller::guest(9), &perms, Want::Write));
    }
}
