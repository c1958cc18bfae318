//! Watches and the events they fire.
//!
//! A change to node `N` fires every watch whose path is `N` or an ancestor
//! of `N`, reporting `N`. Removing a subtree additionally fires watches set
//! exactly on the removed descendants, reporting the descendant (so the
//! event path is always at or below the watched path). Events go only to
//! a guest that can read the node, as in xenstored.

use alloc::string::String;
use alloc::vec::Vec;

use drivers::xenstore::wire::{self, Permission};
use hypercalls::abi::io::xs_wire::XS_WATCH_EVENT;

use super::path;
use super::perms::{allowed, Caller, Want};

pub(crate) struct Watch {
    /// Absolute path, or a special name such as `@releaseDomain`.
    pub path: String,
    pub token: Vec<u8>,
    /// Set with a relative path: events are reported relative too.
    pub relative: bool,
}

/// A change that may fire watches, with the permissions the node had.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Trigger {
    Changed { path: String, perms: Vec<Permission> },
    Removed { path: String, perms: Vec<Permission>, descendants: Vec<(String, Vec<Permission>)> },
}

/// The `XS_WATCH_EVENT` message for one firing.
pub(crate) fn event_message(path: &str, token: &[u8]) -> Vec<u8> {
    let payload = wire::nul_terminated(&[path.as_bytes(), token]);
    // Paths and tokens are bounded far below the payload limit.
    wire::encode_vec(XS_WATCH_EVENT, 0, 0, &payload).unwrap_or_default()
}

/// Appends the events `trigger` causes for `guest`'s watches to `out`.
pub(crate) fn fire(trigger: &Trigger, watches: &[Watch], guest: Caller, home: &str, out: &mut Vec<Vec<u8>>) {
    let (changed, perms) = match trigger {
        Trigger::Changed { path, perms } | Trigger::Removed { path, perms, .. } => (path, perms),
    };
    if allowed(guest, perms, Want::Read) {
        for watch in watches.iter().filter(|w| path::is_child(changed, &w.path)) {
            out.push(event_message(path::display(changed, watch.relative, home), &watch.token));
        }
    }
    if let Trigger::Removed { descendants, .. } = trigger {
        for (removed, perms) in descendants {
            if !allowed(guest, perms, Want::Read) {
                continue;
            }
            for watch in watches.iter().filter(|w| &w.path == removed) {
                out.push(event_message(path::display(removed, watch.relative, home), &watch.token));
            }
        }
    }
}
