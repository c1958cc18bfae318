//! The database operations, written once over [`NodeStore`] so they work
//! both directly and inside a transaction. Each returns the watch triggers
//! its change causes; the caller fires or defers them.

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use drivers::xenstore::wire::Permission;
use hypercalls::abi::io::xs_wire::XsdError;

use super::errors::{EACCES, EINVAL, ENOENT, ENOSPC, EPERM};
use super::path;
use super::perms::{allowed, Caller, Want};
use super::tree::{Node, NodeStore};
use super::watch::Trigger;
use super::Limits;

/// The nearest existing proper ancestor of `path` (the root always exists).
fn nearest_ancestor(store: &mut dyn NodeStore, path: &str) -> Node {
    let mut ancestor = path;
    while ancestor != "/" {
        ancestor = path::parent(ancestor);
        if let Some(node) = store.get(ancestor) {
            return node;
        }
    }
    // Unreachable while the root exists; refuse everyone but dom0 if not.
    Node::new(Vec::new(), Vec::new())
}

/// A missing node is reported as `ENOENT` only to callers the nearest
/// ancestor would allow `want`; others learn nothing (`EACCES`).
fn missing(store: &mut dyn NodeStore, caller: Caller, path: &str, want: Want) -> XsdError {
    if allowed(caller, &nearest_ancestor(store, path).perms, want) {
        ENOENT
    } else {
        EACCES
    }
}

pub(crate) fn get_node(
    store: &mut dyn NodeStore,
    caller: Caller,
    path: &str,
    want: Want,
) -> Result<Node, XsdError> {
    match store.get(path) {
        Some(node) if allowed(caller, &node.perms, want) => Ok(node),
        Some(_) => Err(EACCES),
        None => Err(missing(store, caller, path, want)),
    }
}

pub(crate) fn read(store: &mut dyn NodeStore, caller: Caller, path: &str) -> Result<Vec<u8>, XsdError> {
    get_node(store, caller, path, Want::Read).map(|node| node.value)
}

/// Creates `path` and any missing ancestors. Needs write access to the
/// nearest existing ancestor; new nodes inherit its permissions, with an
/// unprivileged creator as owner.
fn create(
    store: &mut dyn NodeStore,
    caller: Caller,
    limits: &Limits,
    path: &str,
    value: &[u8],
) -> Result<Node, XsdError> {
    let mut missing_paths = vec![path];
    let mut ancestor_path = path::parent(path);
    let ancestor = loop {
        if let Some(node) = store.get(ancestor_path) {
            break node;
        }
        if ancestor_path == "/" {
            return Err(EACCES);
        }
        missing_paths.push(ancestor_path);
        ancestor_path = path::parent(ancestor_path);
    };
    if !allowed(caller, &ancestor.perms, Want::Write) {
        return Err(EACCES);
    }
    if store.node_count() + missing_paths.len() > limits.max_nodes {
        return Err(ENOSPC);
    }
    let mut perms = ancestor.perms;
    if !caller.privileged {
        if let Some(owner) = perms.first_mut() {
            owner.domid = caller.domid;
        }
    }
    for &intermediate in missing_paths[1..].iter().rev() {
        store.put(intermediate, Node::new(Vec::new(), perms.clone()));
    }
    let node = Node::new(value.to_vec(), perms);
    store.put(path, node.clone());
    Ok(node)
}

pub(crate) fn write(
    store: &mut dyn NodeStore,
    caller: Caller,
    limits: &Limits,
    path: &str,
    value: &[u8],
) -> Result<Trigger, XsdError> {
    if value.len() > limits.max_value_len {
        return Err(ENOSPC);
    }
    let node = match store.get(path) {
        Some(mut node) => {
            if !allowed(caller, &node.perms, Want::Write) {
                return Err(EACCES);
            }
            node.value = value.to_vec();
            store.put(path, node.clone());
            node
        }
        None => create(store, caller, limits, path, value)?,
    };
    Ok(Trigger::Changed { path: path.to_string(), perms: node.perms })
}

/// Creates `path` if missing; an existing node is left alone (no event).
pub(crate) fn mkdir(
    store: &mut dyn NodeStore,
    caller: Caller,
    limits: &Limits,
    path: &str,
) -> Result<Option<Trigger>, XsdError> {
    match get_node(store, caller, path, Want::Write) {
        Ok(_) => Ok(None),
        Err(error) if error != ENOENT => Err(error),
        Err(_) => {
            let node = create(store, caller, limits, path, &[])?;
            Ok(Some(Trigger::Changed { path: path.to_string(), perms: node.perms }))
        }
    }
}

/// Removes `path` and its subtree. Removing a missing node is fine if its
/// parent exists (no event then).
pub(crate) fn rm(store: &mut dyn NodeStore, caller: Caller, path: &str) -> Result<Option<Trigger>, XsdError> {
    if path == "/" {
        return Err(EINVAL);
    }
    let node = match get_node(store, caller, path, Want::Write) {
        Ok(node) => node,
        Err(error) if error == ENOENT && store.get(path::parent(path)).is_some() => return Ok(None),
        Err(error) => return Err(error),
    };
    let mut descendants = Vec::new();
    let mut pending: Vec<String> =
        store.child_names(path).into_iter().map(|name| child_path(path, &name)).collect();
    while let Some(child) = pending.pop() {
        pending.extend(store.child_names(&child).into_iter().map(|name| child_path(&child, &name)));
        if let Some(removed) = store.get(&child) {
            descendants.push((child.clone(), removed.perms));
        }
        store.remove(&child);
    }
    store.remove(path);
    Ok(Some(Trigger::Removed { path: path.to_string(), perms: node.perms, descendants }))
}

pub(crate) fn child_path(parent: &str, name: &str) -> String {
    if parent == "/" {
        alloc::format!("/{name}")
    } else {
        alloc::format!("{parent}/{name}")
    }
}

pub(crate) fn directory(
    store: &mut dyn NodeStore,
    caller: Caller,
    path: &str,
) -> Result<Vec<String>, XsdError> {
    get_node(store, caller, path, Want::Read)?;
    Ok(store.child_names(path))
}

pub(crate) fn get_perms(
    store: &mut dyn NodeStore,
    caller: Caller,
    path: &str,
) -> Result<Vec<Permission>, XsdError> {
    get_node(store, caller, path, Want::Read).map(|node| node.perms)
}

/// Replaces a node's permissions. Only dom0 may change the owner.
pub(crate) fn set_perms(
    store: &mut dyn NodeStore,
    caller: Caller,
    limits: &Limits,
    path: &str,
    perms: Vec<Permission>,
) -> Result<Trigger, XsdError> {
    if perms.is_empty() {
        return Err(EINVAL);
    }
    if perms.len() > limits.max_perms {
        return Err(ENOSPC);
    }
    let mut node = get_node(store, caller, path, Want::Write)?;
    if !caller.privileged && node.perms.first().map(|p| p.domid) != Some(perms[0].domid) {
        return Err(EPERM);
    }
    node.perms = perms;
    store.put(path, node.clone());
    Ok(Trigger::Changed { path: path.to_string(), perms: node.perms })
}
