//! A synchronous xenstore client over the shared ring (the guest's side).
//!
//! One request is in flight at a time. While waiting for its reply, any
//! `XS_WATCH_EVENT` that arrives first is queued for
//! [`XenstoreClient::take_watch_event`], and replies to other request ids
//! (late answers to a request that timed out) are dropped.
//!
//! How to signal the server and how to sleep are the caller's: the guest
//! implements [`Doorbell`] with its xenstore event channel.

use alloc::collections::VecDeque;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use hypercalls::abi::io::xs_wire::{
    XsdError, XENSTORE_PAYLOAD_MAX, XS_DIRECTORY, XS_ERROR, XS_GET_DOMAIN_PATH, XS_GET_PERMS, XS_MKDIR,
    XS_READ, XS_RESET_WATCHES, XS_RM, XS_SET_PERMS, XS_TRANSACTION_END, XS_TRANSACTION_START, XS_UNWATCH,
    XS_WATCH, XS_WATCH_EVENT, XS_WRITE,
};
use hypercalls::abi::xen::DomId;

use super::ring::XenstoreRingView;
use super::wire::{self, Permission, WireError, HEADER_LEN};
use crate::ring::RingError;

/// The caller's way to signal the server and to wait for it.
pub trait Doorbell {
    /// Tells the server the ring changed (the guest: `EVTCHNOP_send`).
    fn notify(&mut self);
    /// Sleeps until the server may have done something. An error gives up
    /// the current operation with [`XsError::TimedOut`].
    fn wait(&mut self) -> Result<(), WaitTimedOut>;
}

/// [`Doorbell::wait`] gave up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitTimedOut;

/// Why a xenstore operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XsError {
    /// The server answered `XS_ERROR` with this errno (e.g. `ENOENT`).
    Server(XsdError),
    /// The server answered `XS_ERROR` with a name not in `xsd_errors`.
    UnknownServerError(String),
    /// The request cannot be sent: a path or token holds a NUL, or the
    /// payload exceeds `XENSTORE_PAYLOAD_MAX`.
    InvalidRequest,
    /// The server sent something malformed.
    Wire(WireError),
    /// The ring indices are corrupt.
    Ring(RingError),
    /// The reply to our request had another type.
    UnexpectedReply { expected: u32, got: u32 },
    /// The server flagged the connection as failed (`XENSTORE_ERROR_*`).
    ConnectionFailed(u32),
    /// The doorbell gave up waiting.
    TimedOut,
    /// An earlier failure left the byte stream out of step (a request only
    /// partly sent, or a malformed reply); the connection is unusable.
    Desynchronized,
}

impl XsError {
    /// The errno name the server sent, e.g. `"ENOENT"`.
    pub fn errno_name(&self) -> Option<&str> {
        match self {
            XsError::Server(error) => Some(error.errstring),
            XsError::UnknownServerError(name) => Some(name),
            _ => None,
        }
    }

    /// The errno value the server sent, if it is a known name.
    pub fn errnum(&self) -> Option<i32> {
        match self {
            XsError::Server(error) => Some(error.errnum),
            _ => None,
        }
    }
}

impl From<WireError> for XsError {
    fn from(error: WireError) -> Self {
        XsError::Wire(error)
    }
}

impl From<RingError> for XsError {
    fn from(error: RingError) -> Self {
        XsError::Ring(error)
    }
}

/// A transaction id; [`Transaction::NONE`] means "not in a transaction".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transaction(pub u32);

impl Transaction {
    pub const NONE: Transaction = Transaction(0);
}

/// A fired watch: the path that changed and the watch's token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    pub path: String,
    pub token: String,
}

/// A xenstore connection over one ring page.
pub struct XenstoreClient<'r, D: Doorbell> {
    ring: &'r XenstoreRingView,
    doorbell: D,
    next_req_id: u32,
    /// Received bytes not yet parsed into messages.
    inbox: Vec<u8>,
    watch_events: VecDeque<WatchEvent>,
    desynchronized: bool,
}

fn path_bytes(path: &str) -> Result<&[u8], XsError> {
    if path.is_empty() || path.contains('\0') {
        return Err(XsError::InvalidRequest);
    }
    Ok(path.as_bytes())
}

fn utf8(bytes: Vec<u8>) -> Result<String, XsError> {
    String::from_utf8(bytes).map_err(|_| XsError::Wire(WireError::Malformed))
}

impl<'r, D: Doorbell> XenstoreClient<'r, D> {
    pub fn new(ring: &'r XenstoreRingView, doorbell: D) -> Self {
        Self {
            ring,
            doorbell,
            next_req_id: 1,
            inbox: Vec::new(),
            watch_events: VecDeque::new(),
            desynchronized: false,
        }
    }

    pub fn doorbell(&mut self) -> &mut D {
        &mut self.doorbell
    }

    /// The value at `path`.
    pub fn read(&mut self, tx: Transaction, path: &str) -> Result<Vec<u8>, XsError> {
        let payload = wire::nul_terminated(&[path_bytes(path)?]);
        self.request(XS_READ, tx, &payload)
    }

    /// The value at `path` as text.
    pub fn read_string(&mut self, tx: Transaction, path: &str) -> Result<String, XsError> {
        utf8(self.read(tx, path)?)
    }

    /// Stores `value` at `path`, creating missing parents.
    pub fn write(&mut self, tx: Transaction, path: &str, value: &[u8]) -> Result<(), XsError> {
        let mut payload = wire::nul_terminated(&[path_bytes(path)?]);
        payload.extend_from_slice(value);
        self.request(XS_WRITE, tx, &payload).map(drop)
    }

    /// Creates `path` (and its parents) if missing.
    pub fn mkdir(&mut self, tx: Transaction, path: &str) -> Result<(), XsError> {
        self.request(XS_MKDIR, tx, &wire::nul_terminated(&[path_bytes(path)?])).map(drop)
    }

    /// Removes `path` and everything below it.
    pub fn rm(&mut self, tx: Transaction, path: &str) -> Result<(), XsError> {
        self.request(XS_RM, tx, &wire::nul_terminated(&[path_bytes(path)?])).map(drop)
    }

    /// The names of `path`'s children.
    pub fn directory(&mut self, tx: Transaction, path: &str) -> Result<Vec<String>, XsError> {
        let reply = self.request(XS_DIRECTORY, tx, &wire::nul_terminated(&[path_bytes(path)?]))?;
        wire::split_strings(&reply)?.into_iter().map(|name| utf8(name.to_vec())).collect()
    }

    /// `path`'s permission list; the first entry is the owner.
    pub fn get_perms(&mut self, tx: Transaction, path: &str) -> Result<Vec<Permission>, XsError> {
        let reply = self.request(XS_GET_PERMS, tx, &wire::nul_terminated(&[path_bytes(path)?]))?;
        let perms = wire::split_strings(&reply)?;
        Ok(perms.into_iter().map(Permission::parse).collect::<Result<_, _>>()?)
    }

    /// Replaces `path`'s permission list.
    pub fn set_perms(&mut self, tx: Transaction, path: &str, perms: &[Permission]) -> Result<(), XsError> {
        if perms.is_empty() {
            return Err(XsError::InvalidRequest);
        }
        let mut payload = wire::nul_terminated(&[path_bytes(path)?]);
        payload.extend(wire::permissions_payload(perms));
        self.request(XS_SET_PERMS, tx, &payload).map(drop)
    }

    /// Watches `path` and everything below it. The server fires the watch
    /// once straight away.
    pub fn watch(&mut self, path: &str, token: &str) -> Result<(), XsError> {
        let payload = wire::nul_terminated(&[path_bytes(path)?, path_bytes(token)?]);
        self.request(XS_WATCH, Transaction::NONE, &payload).map(drop)
    }

    /// Removes a watch set with the same path and token.
    pub fn unwatch(&mut self, path: &str, token: &str) -> Result<(), XsError> {
        let payload = wire::nul_terminated(&[path_bytes(path)?, path_bytes(token)?]);
        self.request(XS_UNWATCH, Transaction::NONE, &payload).map(drop)
    }

    /// Drops all of this connection's watches and transactions on the
    /// server, and any queued events here.
    pub fn reset_watches(&mut self) -> Result<(), XsError> {
        self.request(XS_RESET_WATCHES, Transaction::NONE, b"\0")?;
        self.watch_events.clear();
        Ok(())
    }

    /// Starts a transaction.
    pub fn transaction_start(&mut self) -> Result<Transaction, XsError> {
        let reply = self.request(XS_TRANSACTION_START, Transaction::NONE, b"\0")?;
        let id = wire::single_string(&reply).ok().and_then(wire::parse_decimal);
        match id {
            Some(id) if id != 0 => Ok(Transaction(id)),
            _ => Err(XsError::Wire(WireError::Malformed)),
        }
    }

    /// Commits (`commit`) or abandons a transaction. A commit that lost a
    /// race fails with `EAGAIN`: start over.
    pub fn transaction_end(&mut self, tx: Transaction, commit: bool) -> Result<(), XsError> {
        let payload: &[u8] = if commit { b"T\0" } else { b"F\0" };
        self.request(XS_TRANSACTION_END, tx, payload).map(drop)
    }

    /// The home path of domain `domid`, e.g. `/local/domain/1`.
    pub fn get_domain_path(&mut self, domid: DomId) -> Result<String, XsError> {
        let mut arg = Vec::new();
        wire::push_decimal(&mut arg, u32::from(domid));
        arg.push(0);
        let reply = self.request(XS_GET_DOMAIN_PATH, Transaction::NONE, &arg)?;
        utf8(wire::single_string(&reply)?.to_vec())
    }

    /// The oldest queued watch event, without touching the ring.
    pub fn take_watch_event(&mut self) -> Option<WatchEvent> {
        self.watch_events.pop_front()
    }

    /// Moves whatever the server has sent into the queues, without waiting.
    pub fn poll(&mut self) -> Result<(), XsError> {
        self.pump()?;
        while self.next_message()?.is_some() {}
        Ok(())
    }

    /// The next watch event, waiting for one if none is queued.
    pub fn wait_watch_event(&mut self) -> Result<WatchEvent, XsError> {
        loop {
            self.poll()?;
            if let Some(event) = self.watch_events.pop_front() {
                return Ok(event);
            }
            self.doorbell.wait().map_err(|_| XsError::TimedOut)?;
        }
    }

    /// Sends a raw request and returns the payload of its reply, turning
    /// `XS_ERROR` into [`XsError::Server`].
    pub fn request(&mut self, msg_type: u32, tx: Transaction, payload: &[u8]) -> Result<Vec<u8>, XsError> {
        if self.desynchronized {
            return Err(XsError::Desynchronized);
        }
        if payload.len() > XENSTORE_PAYLOAD_MAX {
            return Err(XsError::InvalidRequest);
        }
        let req_id = self.next_req_id;
        self.next_req_id = self.next_req_id.wrapping_add(1);
        let message = wire::encode_vec(msg_type, req_id, tx.0, payload)?;
        self.send(&message)?;
        loop {
            while let Some((header, reply)) = self.next_message()? {
                if header.req_id != req_id {
                    continue;
                }
                return match header.r#type {
                    t if t == msg_type => Ok(reply),
                    XS_ERROR => Err(match wire::parse_error_payload(&reply) {
                        Some(error) => XsError::Server(error),
                        None => XsError::UnknownServerError(
                            String::from_utf8_lossy(reply.split(|&b| b == 0).next().unwrap_or(&[]))
                                .to_string(),
                        ),
                    }),
                    got => Err(XsError::UnexpectedReply { expected: msg_type, got }),
                };
            }
            if self.pump()? == 0 {
                self.doorbell.wait().map_err(|_| XsError::TimedOut)?;
            }
        }
    }

    fn check_connection(&self) -> Result<(), XsError> {
        match self.ring.error_code() {
            0 => Ok(()),
            code => Err(XsError::ConnectionFailed(code)),
        }
    }

    /// Writes `message` into the request ring, waiting for room as needed.
    /// While the ring is full, replies are drained so the server never
    /// stalls on a full response ring.
    fn send(&mut self, message: &[u8]) -> Result<(), XsError> {
        let mut sent = 0;
        while sent < message.len() {
            let progress =
                self.check_connection().and_then(|()| Ok(self.ring.requests().write(&message[sent..])?));
            let written = match progress {
                Ok(written) => written,
                Err(error) => return Err(self.fail_mid_message(sent, error)),
            };
            sent += written;
            if written > 0 {
                self.doorbell.notify();
            }
            if sent < message.len() {
                let drained = match self.pump() {
                    Ok(drained) => drained,
                    Err(error) => return Err(self.fail_mid_message(sent, error)),
                };
                if written == 0 && drained == 0 && self.doorbell.wait().is_err() {
                    return Err(self.fail_mid_message(sent, XsError::TimedOut));
                }
            }
        }
        Ok(())
    }

    fn fail_mid_message(&mut self, sent: usize, error: XsError) -> XsError {
        if sent > 0 {
            self.desynchronized = true;
        }
        error
    }

    /// Moves available reply bytes into the inbox; returns how many.
    fn pump(&mut self) -> Result<usize, XsError> {
        self.check_connection()?;
        let inbox = &mut self.inbox;
        let moved = self.ring.responses().consume_with(usize::MAX, |chunk| inbox.extend_from_slice(chunk))?;
        if moved > 0 {
            // The server may be waiting for room to write more.
            self.doorbell.notify();
        }
        Ok(moved)
    }

    /// The next complete non-event message in the inbox; watch events met
    /// on the way are queued.
    fn next_message(
        &mut self,
    ) -> Result<Option<(hypercalls::abi::io::xs_wire::XsdSockmsg, Vec<u8>)>, XsError> {
        loop {
            if self.inbox.len() < HEADER_LEN {
                return Ok(None);
            }
            let header = wire::decode_header(&self.inbox).inspect_err(|_| self.desynchronized = true)?;
            let total = HEADER_LEN + header.len as usize;
            if self.inbox.len() < total {
                return Ok(None);
            }
            let payload = self.inbox[HEADER_LEN..total].to_vec();
            self.inbox.drain(..total);
            if header.r#type != XS_WATCH_EVENT {
                return Ok(Some((header, payload)));
            }
            let mut fields = payload.split(|&b| b == 0);
            if let (Some(path), Some(token)) = (fields.next(), fields.next()) {
                self.watch_events.push_back(WatchEvent {
                    path: String::from_utf8_lossy(path).to_string(),
                    token: String::from_utf8_lossy(token).to_string(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests;
