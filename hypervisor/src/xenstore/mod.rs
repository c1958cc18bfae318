//! The bundled hypervisor's xenstore server: the part of dom0's xenstored
//! a single PV guest needs.
//!
//! [`Xenstore`] holds the node tree, the guest's watches and transactions,
//! and the state of its ring connection. The guest talks to it through the
//! shared page ([`Xenstore::serve_ring`]) or, in tests, message by message
//! ([`Xenstore::handle_request`]); the hypervisor itself acts as the
//! privileged dom0 through the `*_as_dom0` methods.
//!
//! Behaviour follows `docs/misc/xenstore.txt` and C xenstored: errors are
//! `XS_ERROR` replies carrying Xen's errno names, limits follow xenstored's
//! default quotas, and nothing a guest sends can make the server panic.

mod connection;
mod dispatch;
mod errors;
mod ops;
mod path;
mod perms;
mod tree;
mod watch;

#[cfg(test)]
mod tests;

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use drivers::xenstore::wire::{self, Access, Permission};
use hypercalls::abi::io::xs_wire::XsdError;
use hypercalls::abi::xen::DomId;

pub use connection::{ConnectionError, ServeSummary};

use perms::Caller;
use tree::{DirectStore, Transaction, Tree};
use watch::{Trigger, Watch};

/// Per-guest limits, defaulting to C xenstored's default quotas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Nodes in the whole tree (`ENOSPC` beyond).
    pub max_nodes: usize,
    /// Bytes in one value (`ENOSPC` beyond).
    pub max_value_len: usize,
    /// Watches the guest may hold (`E2BIG` beyond).
    pub max_watches: usize,
    /// Transactions the guest may have open (`ENOSPC` beyond).
    pub max_transactions: usize,
    /// Entries in one permission list (`ENOSPC` beyond).
    pub max_perms: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_nodes: 1000, max_value_len: 2048, max_watches: 128, max_transactions: 10, max_perms: 5 }
    }
}

/// The xenstore of one guest domain.
pub struct Xenstore {
    domid: DomId,
    home: String,
    limits: Limits,
    tree: Tree,
    watches: Vec<Watch>,
    transactions: BTreeMap<u32, Transaction>,
    last_transaction_id: u32,
    /// Encoded messages waiting for room in the response ring.
    outbox: Vec<u8>,
    /// Request bytes read from the ring but not yet a complete message.
    inbox: Vec<u8>,
    broken: Option<ConnectionError>,
}

/// `/local/domain/<domid>`.
pub fn domain_path(domid: DomId) -> String {
    format!("/local/domain/{domid}")
}

impl Xenstore {
    /// A store populated as a toolstack would for guest `domid` named `name`
    /// (see `docs/misc/xenstore-paths.pandoc`). Console and store ring
    /// details are added with [`Xenstore::set_console`] / [`Xenstore::set_store`].
    pub fn new(domid: DomId, name: &str) -> Self {
        Self::with_limits(domid, name, Limits::default())
    }

    pub fn with_limits(domid: DomId, name: &str, limits: Limits) -> Self {
        let dom0_only = alloc::vec![Permission::new(0, Access::None)];
        let mut store = Self {
            domid,
            home: domain_path(domid),
            limits,
            tree: Tree::new(dom0_only),
            watches: Vec::new(),
            transactions: BTreeMap::new(),
            last_transaction_id: 0,
            outbox: Vec::new(),
            inbox: Vec::new(),
            broken: None,
        };
        store.populate(name);
        store
    }

    fn populate(&mut self, name: &str) {
        // The home is dom0's, readable by the guest; the subdirectories the
        // guest writes to are the guest's own (libxl's "roperm"/"rwperm").
        let read_only = [Permission::new(0, Access::None), Permission::new(self.domid, Access::Read)];
        let guest_owned = [Permission::new(self.domid, Access::None), Permission::new(0, Access::Read)];
        let domid = self.domid.to_string();
        let entries: &[(&str, &[u8], &[Permission])] = &[
            ("", b"", &read_only),
            ("name", name.as_bytes(), &read_only),
            ("domid", domid.as_bytes(), &read_only),
            ("control", b"", &read_only),
            ("control/shutdown", b"", &guest_owned),
            ("control/feature-poweroff", b"", &guest_owned),
            ("control/feature-reboot", b"", &guest_owned),
            ("control/feature-suspend", b"", &guest_owned),
            ("control/platform-feature-xs_reset_watches", b"1", &read_only),
            ("data", b"", &guest_owned),
            ("device", b"", &guest_owned),
            ("drivers", b"", &guest_owned),
            ("feature", b"", &guest_owned),
            ("attr", b"", &guest_owned),
            ("error", b"", &guest_owned),
            ("store", b"", &read_only),
            ("console", b"", &guest_owned),
            ("console/backend-id", b"0", &guest_owned),
            ("console/limit", b"1048576", &guest_owned),
            ("console/type", b"xenconsoled", &guest_owned),
            ("console/output", b"pty", &guest_owned),
            ("console/tty", b"", &guest_owned),
        ];
        for &(relative, value, perms) in entries {
            let path =
                if relative.is_empty() { self.home.clone() } else { format!("{}/{relative}", self.home) };
            let created =
                self.write_as_dom0(&path, value).and_then(|()| self.set_perms_as_dom0(&path, perms.to_vec()));
            debug_assert!(created.is_ok(), "populating {path}: {created:?}");
        }
    }

    /// The guest's domain id.
    pub fn domid(&self) -> DomId {
        self.domid
    }

    /// `/local/domain/<domid>` of the guest.
    pub fn home_path(&self) -> &str {
        &self.home
    }

    /// Nodes in the tree, including the root.
    pub fn node_count(&self) -> usize {
        self.tree.len()
    }

    /// Watches the guest holds.
    pub fn watch_count(&self) -> usize {
        self.watches.len()
    }

    /// Transactions the guest has open.
    pub fn transaction_count(&self) -> usize {
        self.transactions.len()
    }

    /// Records the primary console ring (its frame number) and event channel.
    pub fn set_console(&mut self, ring_ref: u64, port: u32) -> Result<(), XsdError> {
        self.write_as_dom0("console/ring-ref", ring_ref.to_string().as_bytes())?;
        self.write_as_dom0("console/port", port.to_string().as_bytes())
    }

    /// Records the xenstore ring (its frame number) and event channel.
    pub fn set_store(&mut self, ring_ref: u64, port: u32) -> Result<(), XsdError> {
        self.write_as_dom0("store/ring-ref", ring_ref.to_string().as_bytes())?;
        self.write_as_dom0("store/port", port.to_string().as_bytes())
    }

    fn resolve_for_dom0(&self, path: &str) -> Result<String, XsdError> {
        path::resolve(&self.home, path.as_bytes()).map(|p| p.absolute)
    }

    /// Reads a node with dom0's privileges. Relative paths are taken from
    /// the guest's home.
    pub fn read_as_dom0(&mut self, path: &str) -> Result<Vec<u8>, XsdError> {
        let path = self.resolve_for_dom0(path)?;
        ops::read(&mut DirectStore(&mut self.tree), Caller::DOM0, &path)
    }

    /// Writes a node with dom0's privileges, firing the guest's watches
    /// (their events wait in the outbox for [`Xenstore::serve_ring`]).
    pub fn write_as_dom0(&mut self, path: &str, value: &[u8]) -> Result<(), XsdError> {
        let path = self.resolve_for_dom0(path)?;
        let trigger = ops::write(&mut DirectStore(&mut self.tree), Caller::DOM0, &self.limits, &path, value)?;
        self.queue_events(&[trigger]);
        Ok(())
    }

    /// Removes a subtree with dom0's privileges, firing the guest's watches.
    pub fn rm_as_dom0(&mut self, path: &str) -> Result<(), XsdError> {
        let path = self.resolve_for_dom0(path)?;
        let trigger = ops::rm(&mut DirectStore(&mut self.tree), Caller::DOM0, &path)?;
        self.queue_events(trigger.as_slice());
        Ok(())
    }

    /// Sets a node's permissions with dom0's privileges.
    pub fn set_perms_as_dom0(&mut self, path: &str, perms: Vec<Permission>) -> Result<(), XsdError> {
        let path = self.resolve_for_dom0(path)?;
        let store = &mut DirectStore(&mut self.tree);
        let trigger = ops::set_perms(store, Caller::DOM0, &self.limits, &path, perms)?;
        self.queue_events(&[trigger]);
        Ok(())
    }

    /// The children of a node, read with dom0's privileges.
    pub fn directory_as_dom0(&mut self, path: &str) -> Result<Vec<String>, XsdError> {
        let path = self.resolve_for_dom0(path)?;
        ops::directory(&mut DirectStore(&mut self.tree), Caller::DOM0, &path)
    }

    /// Takes the bytes queued for the guest (watch events from dom0's
    /// changes, and replies the ring had no room for), for callers that do
    /// not use [`Xenstore::serve_ring`].
    pub fn take_pending_output(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.outbox)
    }

    fn guest(&self) -> Caller {
        Caller::guest(self.domid)
    }

    /// The encoded events `triggers` cause for the guest's watches.
    fn events_for(&self, triggers: &[Trigger]) -> Vec<Vec<u8>> {
        let mut events = Vec::new();
        for trigger in triggers {
            watch::fire(trigger, &self.watches, self.guest(), &self.home, &mut events);
        }
        events
    }

    fn queue_events(&mut self, triggers: &[Trigger]) {
        for event in self.events_for(triggers) {
            self.outbox.extend_from_slice(&event);
        }
    }

    /// Forgets the guest's watches, transactions and buffered messages:
    /// what a ring reconnect or connection error requires. The tree stays.
    pub fn reset_connection(&mut self) {
        self.watches.clear();
        self.transactions.clear();
        self.inbox.clear();
        self.outbox.clear();
        self.broken = None;
    }
}

/// Encodes a reply; payloads here are bounded, so this cannot fail.
fn reply(msg_type: u32, req_id: u32, tx_id: u32, payload: &[u8]) -> Vec<u8> {
    wire::encode_vec(msg_type, req_id, tx_id, payload).unwrap_or_default()
}
