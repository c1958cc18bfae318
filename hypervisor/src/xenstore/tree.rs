//! The node database and the transaction overlay on top of it.
//!
//! Nodes are kept in one map keyed by absolute path, so a node's children
//! are the keys that extend its path by one component. Each node carries a
//! generation number that changes whenever the node or its child list does;
//! transactions use those numbers to detect conflicts.
//!
//! Operations are written once against [`NodeStore`]: [`DirectStore`]
//! changes the tree in place, [`TxStore`] records changes in a
//! [`Transaction`] that is validated and applied on commit.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use drivers::xenstore::wire::Permission;

use super::path;
use super::watch::Trigger;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Node {
    pub value: Vec<u8>,
    /// Never empty: the first entry is the owner and the default access.
    pub perms: Vec<Permission>,
    pub generation: u64,
}

impl Node {
    pub fn new(value: Vec<u8>, perms: Vec<Permission>) -> Self {
        Self { value, perms, generation: 0 }
    }
}

/// The committed database.
pub(crate) struct Tree {
    nodes: BTreeMap<String, Node>,
    next_generation: u64,
}

/// The keys strictly below `parent`, as a half-open range start.
fn child_prefix(parent: &str) -> String {
    if parent == "/" {
        String::from("/")
    } else {
        let mut prefix = String::from(parent);
        prefix.push('/');
        prefix
    }
}

/// The direct-child name of `key` under `prefix`, if it is one.
fn direct_child<'k>(key: &'k str, prefix: &str) -> Option<&'k str> {
    let rest = key.strip_prefix(prefix)?;
    (!rest.is_empty() && !rest.contains('/')).then_some(rest)
}

impl Tree {
    /// A tree holding only the root node.
    pub fn new(root_perms: Vec<Permission>) -> Self {
        let mut tree = Self { nodes: BTreeMap::new(), next_generation: 1 };
        tree.insert("/", Node::new(Vec::new(), root_perms));
        tree
    }

    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    fn bump(&mut self) -> u64 {
        self.next_generation += 1;
        self.next_generation
    }

    /// Stores `node` with a fresh generation; a new node also changes its
    /// parent's child list, so the parent gets a fresh generation too.
    pub fn insert(&mut self, path: &str, mut node: Node) {
        node.generation = self.bump();
        let is_new = self.nodes.insert(path.to_string(), node).is_none();
        if is_new && path != "/" {
            self.touch(path::parent(path));
        }
    }

    pub fn remove(&mut self, path: &str) {
        if self.nodes.remove(path).is_some() && path != "/" {
            self.touch(path::parent(path));
        }
    }

    fn touch(&mut self, path: &str) {
        let generation = self.bump();
        if let Some(node) = self.nodes.get_mut(path) {
            node.generation = generation;
        }
    }

    /// Names of the direct children of `parent`, sorted.
    pub fn child_names(&self, parent: &str) -> Vec<String> {
        let prefix = child_prefix(parent);
        self.nodes
            .range::<str, _>((core::ops::Bound::Included(prefix.as_str()), core::ops::Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(&prefix))
            .filter_map(|(key, _)| direct_child(key, &prefix).map(str::to_string))
            .collect()
    }
}

/// Node access shared by direct and transactional operations.
pub(crate) trait NodeStore {
    fn get(&mut self, path: &str) -> Option<Node>;
    fn put(&mut self, path: &str, node: Node);
    fn remove(&mut self, path: &str);
    fn child_names(&mut self, path: &str) -> Vec<String>;
    fn node_count(&mut self) -> usize;
}

pub(crate) struct DirectStore<'t>(pub &'t mut Tree);

impl NodeStore for DirectStore<'_> {
    fn get(&mut self, path: &str) -> Option<Node> {
        self.0.get(path).cloned()
    }
    fn put(&mut self, path: &str, node: Node) {
        self.0.insert(path, node);
    }
    fn remove(&mut self, path: &str) {
        self.0.remove(path);
    }
    fn child_names(&mut self, path: &str) -> Vec<String> {
        self.0.child_names(path)
    }
    fn node_count(&mut self) -> usize {
        self.0.len()
    }
}

/// An open transaction: its private changes, what it has looked at, and
/// the watch triggers to fire if it commits.
#[derive(Default)]
pub(crate) struct Transaction {
    /// `None` marks a node the transaction removed.
    changes: BTreeMap<String, Option<Node>>,
    /// The committed generation of every node the transaction read or
    /// changed, when it first did (`None`: did not exist).
    observed: BTreeMap<String, Option<u64>>,
    pub triggers: Vec<Trigger>,
}

/// Why a commit was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CommitError {
    /// Something the transaction depended on changed meanwhile.
    Conflict,
    /// Applying it would exceed the node limit.
    TooManyNodes,
}

impl Transaction {
    /// Applies the transaction to `tree` if nothing it depended on has
    /// changed since, and returns its watch triggers.
    pub fn commit(self, tree: &mut Tree, max_nodes: usize) -> Result<Vec<Trigger>, CommitError> {
        let unchanged =
            self.observed.iter().all(|(path, seen)| tree.get(path).map(|n| n.generation) == *seen);
        if !unchanged {
            return Err(CommitError::Conflict);
        }
        let added = self.changes.iter().filter(|(p, c)| c.is_some() && tree.get(p).is_none()).count();
        let removed = self.changes.iter().filter(|(p, c)| c.is_none() && tree.get(p).is_some()).count();
        if tree.len() + added - removed > max_nodes {
            return Err(CommitError::TooManyNodes);
        }
        // Sorted order applies parents before their children.
        for (path, change) in self.changes {
            match change {
                Some(node) => tree.insert(&path, node),
                None => tree.remove(&path),
            }
        }
        Ok(self.triggers)
    }
}

pub(crate) struct TxStore<'a> {
    pub tree: &'a Tree,
    pub tx: &'a mut Transaction,
}

impl TxStore<'_> {
    fn observe(&mut self, path: &str) {
        if !self.tx.observed.contains_key(path) {
            let generation = self.tree.get(path).map(|n| n.generation);
            self.tx.observed.insert(path.to_string(), generation);
        }
    }

    fn exists(&self, path: &str) -> bool {
        match self.tx.changes.get(path) {
            Some(change) => change.is_some(),
            None => self.tree.get(path).is_some(),
        }
    }
}

impl NodeStore for TxStore<'_> {
    fn get(&mut self, path: &str) -> Option<Node> {
        self.observe(path);
        match self.tx.changes.get(path) {
            Some(change) => change.clone(),
            None => self.tree.get(path).cloned(),
        }
    }

    fn put(&mut self, path: &str, node: Node) {
        if !self.exists(path) && path != "/" {
            // A new child changes the parent's child list.
            self.observe(path::parent(path));
        }
        self.observe(path);
        self.tx.changes.insert(path.to_string(), Some(node));
    }

    fn remove(&mut self, path: &str) {
        if path != "/" {
            self.observe(path::parent(path));
        }
        self.observe(path);
        self.tx.changes.insert(path.to_string(), None);
    }

    fn child_names(&mut self, path: &str) -> Vec<String> {
        self.observe(path);
        let prefix = child_prefix(path);
        let mut names: BTreeSet<String> = self.tree.child_names(path).into_iter().collect();
        let overlay = self
            .tx
            .changes
            .range::<str, _>((core::ops::Bound::Included(prefix.as_str()), core::ops::Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(&prefix));
        for (key, change) in overlay {
            if let Some(name) = direct_child(key, &prefix) {
                if change.is_some() {
                    names.insert(name.to_string());
                } else {
                    names.remove(name);
                }
            }
        }
        names.into_iter().collect()
    }

    fn node_count(&mut self) -> usize {
        let tree = self.tree;
        let added = self.tx.changes.iter().filter(|(p, c)| c.is_some() && tree.get(p).is_none()).count();
        let removed = self.tx.changes.iter().filter(|(p, c)| c.is_none() && tree.get(p).is_some()).count();
        tree.len() + added - removed
    }
}
