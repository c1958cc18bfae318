//! Decoding one request, running it, and encoding the reply and events.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use drivers::xenstore::wire::{self, Permission, WireError, HEADER_LEN};
use hypercalls::abi::io::xs_wire::*;
use hypercalls::abi::xen::{DomId, DOMID_SELF};

use super::errors::{E2BIG, EACCES, EAGAIN, EBUSY, EEXIST, EINVAL, ENOENT, ENOSPC, ENOSYS};
use super::ops;
use super::path;
use super::perms::{Caller, Want};
use super::tree::{CommitError, DirectStore, NodeStore, Transaction, TxStore};
use super::watch::{self, Trigger, Watch};
use super::{domain_path, reply, Limits, Xenstore};

/// What a successful request produces besides its reply.
#[derive(Default)]
struct Outcome {
    reply: Vec<u8>,
    /// Changes to announce now (before the reply, as xenstored does).
    triggers: Vec<Trigger>,
    /// A message to send after the reply (a new watch's first event).
    after_reply: Option<Vec<u8>>,
}

impl Outcome {
    fn reply(reply: Vec<u8>) -> Self {
        Self { reply, ..Self::default() }
    }

    fn ok() -> Self {
        Self::reply(b"OK\0".to_vec())
    }
}

fn einval<T>(_: T) -> hypercalls::abi::io::xs_wire::XsdError {
    EINVAL
}

impl Xenstore {
    /// Handles one complete message from the guest and returns what to send
    /// back, in order: events the request caused, its reply (or `XS_ERROR`),
    /// and for `WATCH` the watch's first event. Malformed input gets an
    /// error reply (`EINVAL`, or `E2BIG` for an oversized payload).
    pub fn handle_request(&mut self, message: &[u8]) -> Vec<Vec<u8>> {
        let header = match wire::decode_header(message) {
            Ok(header) => header,
            Err(WireError::PayloadTooLarge { .. }) => {
                let raw = wire::read_header(message[..HEADER_LEN].try_into().unwrap_or(&[0; HEADER_LEN]));
                return vec![wire::error_reply(raw.req_id, raw.tx_id, E2BIG)];
            }
            Err(_) => return vec![wire::error_reply(0, 0, EINVAL)],
        };
        let payload = &message[HEADER_LEN..];
        if payload.len() != header.len as usize {
            return vec![wire::error_reply(header.req_id, header.tx_id, EINVAL)];
        }
        match self.execute(header, payload) {
            Ok(outcome) if outcome.reply.len() <= XENSTORE_PAYLOAD_MAX => {
                let mut out = self.events_for(&outcome.triggers);
                out.push(reply(header.r#type, header.req_id, header.tx_id, &outcome.reply));
                out.extend(outcome.after_reply);
                out
            }
            Ok(_) => vec![wire::error_reply(header.req_id, header.tx_id, E2BIG)],
            Err(error) => vec![wire::error_reply(header.req_id, header.tx_id, error)],
        }
    }

    fn execute(&mut self, header: XsdSockmsg, payload: &[u8]) -> Result<Outcome, XsdError> {
        let tx_id = header.tx_id;
        match header.r#type {
            XS_READ => {
                let path = self.one_path(payload)?;
                self.in_store(tx_id, |store, caller, _| ops::read(store, caller, &path)).map(Outcome::reply)
            }
            XS_WRITE => {
                let (raw, value) = wire::split_write(payload).map_err(einval)?;
                let path = path::resolve(&self.home, raw)?.absolute;
                let trigger = self.in_store(tx_id, |store, caller, limits| {
                    ops::write(store, caller, limits, &path, value)
                })?;
                Ok(self.changed(tx_id, vec![trigger]))
            }
            XS_MKDIR => {
                let path = self.one_path(payload)?;
                let trigger =
                    self.in_store(tx_id, |store, caller, limits| ops::mkdir(store, caller, limits, &path))?;
                Ok(self.changed(tx_id, trigger.into_iter().collect()))
            }
            XS_RM => {
                let path = self.one_path(payload)?;
                let trigger = self.in_store(tx_id, |store, caller, _| ops::rm(store, caller, &path))?;
                Ok(self.changed(tx_id, trigger.into_iter().collect()))
            }
            XS_DIRECTORY => {
                let path = self.one_path(payload)?;
                let names = self.in_store(tx_id, |store, caller, _| ops::directory(store, caller, &path))?;
                let names: Vec<&[u8]> = names.iter().map(|n| n.as_bytes()).collect();
                Ok(Outcome::reply(wire::nul_terminated(&names)))
            }
            XS_DIRECTORY_PART => self.directory_part(tx_id, payload),
            XS_GET_PERMS => {
                let path = self.one_path(payload)?;
                let perms = self.in_store(tx_id, |store, caller, _| ops::get_perms(store, caller, &path))?;
                Ok(Outcome::reply(wire::permissions_payload(&perms)))
            }
            XS_SET_PERMS => {
                let strings = wire::split_strings(payload).map_err(einval)?;
                let (raw, perms) = strings.split_first().ok_or(EINVAL)?;
                let perms: Vec<Permission> =
                    perms.iter().map(|p| Permission::parse(p)).collect::<Result<_, _>>().map_err(einval)?;
                let path = path::resolve(&self.home, raw)?.absolute;
                let trigger = self.in_store(tx_id, |store, caller, limits| {
                    ops::set_perms(store, caller, limits, &path, perms)
                })?;
                Ok(self.changed(tx_id, vec![trigger]))
            }
            XS_WATCH => self.watch(payload),
            XS_UNWATCH => self.unwatch(payload),
            XS_RESET_WATCHES => {
                self.watches.clear();
                self.transactions.clear();
                Ok(Outcome::ok())
            }
            XS_TRANSACTION_START => self.transaction_start(tx_id),
            XS_TRANSACTION_END => self.transaction_end(tx_id, payload),
            XS_GET_DOMAIN_PATH => {
                let domid = self.one_domid(payload)?;
                let mut path = domain_path(domid).into_bytes();
                path.push(0);
                Ok(Outcome::reply(path))
            }
            XS_IS_DOMAIN_INTRODUCED => {
                let domid = self.one_domid(payload)?;
                let known = domid == self.domid || domid == 0 || domid == DOMID_SELF;
                Ok(Outcome::reply(if known { b"T\0".to_vec() } else { b"F\0".to_vec() }))
            }
            // Toolstack-only operations.
            XS_CONTROL | XS_INTRODUCE | XS_RELEASE | XS_RESUME | XS_SET_TARGET => Err(EACCES),
            // Types a client never sends (XS_WATCH_EVENT, XS_ERROR) and
            // numbers that are no type at all: xenstored has no handler.
            _ => Err(ENOSYS),
        }
    }

    fn one_path(&self, payload: &[u8]) -> Result<String, XsdError> {
        let raw = wire::single_string(payload).map_err(einval)?;
        Ok(path::resolve(&self.home, raw)?.absolute)
    }

    fn one_domid(&self, payload: &[u8]) -> Result<DomId, XsdError> {
        let text = wire::single_string(payload).map_err(einval)?;
        wire::parse_decimal(text).and_then(|d| DomId::try_from(d).ok()).ok_or(EINVAL)
    }

    /// Runs `op` on the committed tree, or inside transaction `tx_id`.
    fn in_store<R>(
        &mut self,
        tx_id: u32,
        op: impl FnOnce(&mut dyn NodeStore, Caller, &Limits) -> Result<R, XsdError>,
    ) -> Result<R, XsdError> {
        let caller = self.guest();
        if tx_id == 0 {
            return op(&mut DirectStore(&mut self.tree), caller, &self.limits);
        }
        let tx = self.transactions.get_mut(&tx_id).ok_or(ENOENT)?;
        op(&mut TxStore { tree: &self.tree, tx }, caller, &self.limits)
    }

    /// Announces `triggers` now, or at commit inside a transaction.
    fn changed(&mut self, tx_id: u32, triggers: Vec<Trigger>) -> Outcome {
        if let Some(tx) = self.transactions.get_mut(&tx_id) {
            tx.triggers.extend(triggers);
            return Outcome::ok();
        }
        Outcome { triggers, ..Outcome::ok() }
    }

    /// `DIRECTORY_PART <path>|<offset>|`: the node's generation in hex, then
    /// the child list from byte `offset`, as much as fits; an extra empty
    /// string marks the end of the list.
    fn directory_part(&mut self, tx_id: u32, payload: &[u8]) -> Result<Outcome, XsdError> {
        let strings = wire::split_strings(payload).map_err(einval)?;
        let [raw, offset, ..] = strings[..] else { return Err(EINVAL) };
        let offset = wire::parse_decimal(offset).ok_or(EINVAL)? as usize;
        let path = path::resolve(&self.home, raw)?.absolute;
        let (generation, names) = self.in_store(tx_id, |store, caller, _| {
            let node = ops::get_node(store, caller, &path, Want::Read)?;
            Ok((node.generation, store.child_names(&path)))
        })?;
        let names: Vec<&[u8]> = names.iter().map(|n| n.as_bytes()).collect();
        let list = wire::nul_terminated(&names);
        let mut out = format!("{generation:x}\0").into_bytes();
        let budget = XENSTORE_PAYLOAD_MAX - out.len() - 1;
        let mut end = offset.min(list.len());
        while end < list.len() {
            let next = end + list[end..].iter().position(|&b| b == 0).map_or(list.len() - end, |nul| nul + 1);
            if next - offset > budget {
                break;
            }
            end = next;
        }
        out.extend_from_slice(&list[offset.min(end)..end]);
        if end == list.len() {
            out.push(0);
        }
        Ok(Outcome::reply(out))
    }

    /// `WATCH <path>|<token>|`: registers the watch and fires it once.
    fn watch(&mut self, payload: &[u8]) -> Result<Outcome, XsdError> {
        let (path, relative, token) = self.watch_args(payload)?;
        if self.watches.iter().any(|w| w.path == path && w.token == token) {
            return Err(EEXIST);
        }
        if self.watches.len() >= self.limits.max_watches {
            return Err(E2BIG);
        }
        let first_event = watch::event_message(path::display(&path, relative, &self.home), &token);
        self.watches.push(Watch { path, token, relative });
        Ok(Outcome { after_reply: Some(first_event), ..Outcome::ok() })
    }

    fn unwatch(&mut self, payload: &[u8]) -> Result<Outcome, XsdError> {
        let (path, _, token) = self.watch_args(payload)?;
        let index = self.watches.iter().position(|w| w.path == path && w.token == token).ok_or(ENOENT)?;
        self.watches.remove(index);
        Ok(Outcome::ok())
    }

    /// The watch path (absolute or special), whether it was relative, and
    /// the token. Extra strings after the token are ignored, as xenstored
    /// does.
    fn watch_args(&self, payload: &[u8]) -> Result<(String, bool, Vec<u8>), XsdError> {
        let strings = wire::split_strings(payload).map_err(einval)?;
        let [raw, token, ..] = strings[..] else { return Err(EINVAL) };
        if path::is_special(raw) {
            let name = core::str::from_utf8(raw).map_err(einval)?;
            return Ok((String::from(name), false, token.to_vec()));
        }
        let resolved = path::resolve(&self.home, raw)?;
        Ok((resolved.absolute, resolved.relative, token.to_vec()))
    }

    fn transaction_start(&mut self, tx_id: u32) -> Result<Outcome, XsdError> {
        if tx_id != 0 {
            return Err(EBUSY);
        }
        if self.transactions.len() >= self.limits.max_transactions {
            return Err(ENOSPC);
        }
        let mut id = self.last_transaction_id;
        loop {
            id = id.wrapping_add(1);
            if id != 0 && !self.transactions.contains_key(&id) {
                break;
            }
        }
        self.last_transaction_id = id;
        self.transactions.insert(id, Transaction::default());
        Ok(Outcome::reply(format!("{id}\0").into_bytes()))
    }

    fn transaction_end(&mut self, tx_id: u32, payload: &[u8]) -> Result<Outcome, XsdError> {
        let commit = match wire::single_string(payload).map_err(einval)? {
            b"T" => true,
            b"F" => false,
            _ => return Err(EINVAL),
        };
        let tx = self.transactions.remove(&tx_id).ok_or(ENOENT)?;
        if !commit {
            return Ok(Outcome::ok());
        }
        match tx.commit(&mut self.tree, self.limits.max_nodes) {
            Ok(triggers) => Ok(Outcome { triggers, ..Outcome::ok() }),
            Err(CommitError::Conflict) => Err(EAGAIN),
            Err(CommitError::TooManyNodes) => Err(ENOSPC),
        }
    }
}
