//! A tiny in-process xenstore responder that plays the server's end of a
//! ring. It runs whenever the client waits, like a server woken by the
//! event channel, and writes replies in pieces as ring space allows.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use hypercalls::abi::io::xs_wire::*;

use crate::xenstore::client::{Doorbell, WaitTimedOut};
use crate::xenstore::ring::XenstoreRingView;
use crate::xenstore::wire::{self, HEADER_LEN};

#[derive(Default)]
pub struct ServerState {
    pub store: BTreeMap<String, Vec<u8>>,
    pub watches: Vec<(String, String)>,
    /// Send watch events before the reply that caused them.
    pub events_before_reply: bool,
    /// Messages to emit ahead of the next reply (stray replies, garbage).
    pub inject_before_next_reply: Vec<Vec<u8>>,
    /// Answer `TRANSACTION_END` commits with EAGAIN this many times.
    pub commit_conflicts: usize,
    /// Stop answering entirely.
    pub silent: bool,
    pub requests_seen: Vec<(u32, u32)>,
    /// How many more times the client may wait before giving up.
    pub waits_left: usize,
    pub notifications: usize,
    inbox: Vec<u8>,
    outbox: VecDeque<u8>,
}

/// The doorbell handed to the client; the test keeps another handle on the
/// shared state.
pub struct FakeServer<'r> {
    ring: &'r XenstoreRingView,
    pub state: Rc<RefCell<ServerState>>,
}

impl<'r> FakeServer<'r> {
    pub fn new(ring: &'r XenstoreRingView) -> (Self, Rc<RefCell<ServerState>>) {
        let state = Rc::new(RefCell::new(ServerState { waits_left: 1000, ..ServerState::default() }));
        (Self { ring, state: state.clone() }, state)
    }
}

impl Doorbell for FakeServer<'_> {
    fn notify(&mut self) {
        self.state.borrow_mut().notifications += 1;
    }

    fn wait(&mut self) -> Result<(), WaitTimedOut> {
        let mut state = self.state.borrow_mut();
        if state.waits_left == 0 {
            return Err(WaitTimedOut);
        }
        state.waits_left -= 1;
        state.step(self.ring);
        Ok(())
    }
}

fn ok() -> Vec<u8> {
    b"OK\0".to_vec()
}

fn error(name: &str) -> Result<Vec<u8>, &str> {
    Err(name)
}

impl ServerState {
    fn step(&mut self, ring: &XenstoreRingView) {
        if self.silent {
            return;
        }
        let mut buf = [0u8; XENSTORE_RING_SIZE];
        let got = ring.requests().read(&mut buf).unwrap();
        self.inbox.extend_from_slice(&buf[..got]);
        while let Ok(message) = wire::decode(&self.inbox) {
            let (header, payload) = (message.header, message.payload.to_vec());
            self.inbox.drain(..HEADER_LEN + payload.len());
            self.handle(header, &payload);
        }
        self.flush(ring);
    }

    fn flush(&mut self, ring: &XenstoreRingView) {
        let (front, _) = self.outbox.as_slices();
        let front = front.to_vec();
        let written = ring.responses().write(&front).unwrap();
        self.outbox.drain(..written);
    }

    fn push(&mut self, message: Vec<u8>) {
        self.outbox.extend(message);
    }

    fn handle(&mut self, header: XsdSockmsg, payload: &[u8]) {
        self.requests_seen.push((header.r#type, header.tx_id));
        let mut events = Vec::new();
        let result = self.execute(header.r#type, header.tx_id, payload, &mut events);
        for injected in std::mem::take(&mut self.inject_before_next_reply) {
            self.push(injected);
        }
        let reply = match result {
            Ok(body) => wire::encode_vec(header.r#type, header.req_id, header.tx_id, &body).unwrap(),
            Err(name) => wire::encode_vec(
                XS_ERROR,
                header.req_id,
                header.tx_id,
                &wire::nul_terminated(&[name.as_bytes()]),
            )
            .unwrap(),
        };
        let events: Vec<Vec<u8>> = events
            .into_iter()
            .map(|(path, token): (String, String)| {
                wire::encode_vec(
                    XS_WATCH_EVENT,
                    0,
                    0,
                    &wire::nul_terminated(&[path.as_bytes(), token.as_bytes()]),
                )
                .unwrap()
            })
            .collect();
        let events_first = self.events_before_reply && header.r#type != XS_WATCH;
        if events_first {
            events.into_iter().for_each(|e| self.push(e));
            self.push(reply);
        } else {
            self.push(reply);
            events.into_iter().for_each(|e| self.push(e));
        }
    }

    fn fire(&self, path: &str, events: &mut Vec<(String, String)>) {
        for (watched, token) in &self.watches {
            if path == watched || path.starts_with(&format!("{watched}/")) {
                events.push((path.to_string(), token.clone()));
            }
        }
    }

    fn execute(
        &mut self,
        msg_type: u32,
        _tx_id: u32,
        payload: &[u8],
        events: &mut Vec<(String, String)>,
    ) -> Result<Vec<u8>, &'static str> {
        let strings = || -> Vec<String> {
            payload.split(|&b| b == 0).map(|s| String::from_utf8_lossy(s).into_owned()).collect()
        };
        match msg_type {
            XS_READ => self.store.get(&strings()[0]).cloned().ok_or("ENOENT"),
            XS_WRITE => {
                let (path, value) = wire::split_write(payload).unwrap();
                let path = String::from_utf8(path.to_vec()).unwrap();
                self.store.insert(path.clone(), value.to_vec());
                self.fire(&path, events);
                Ok(ok())
            }
            XS_MKDIR => {
                let path = strings()[0].clone();
                self.store.entry(path.clone()).or_default();
                self.fire(&path, events);
                Ok(ok())
            }
            XS_RM => {
                let path = strings()[0].clone();
                if self.store.remove(&path).is_none() {
                    return error("ENOENT");
                }
                self.fire(&path, events);
                Ok(ok())
            }
            XS_DIRECTORY => {
                let prefix = format!("{}/", strings()[0]);
                let names: Vec<&[u8]> = self
                    .store
                    .keys()
                    .filter_map(|k| k.strip_prefix(&prefix))
                    .filter(|rest| !rest.contains('/'))
                    .map(str::as_bytes)
                    .collect();
                Ok(wire::nul_terminated(&names))
            }
            XS_GET_PERMS => Ok(b"n0\0r1\0".to_vec()),
            XS_SET_PERMS => Ok(ok()),
            XS_WATCH => {
                let args = strings();
                self.watches.push((args[0].clone(), args[1].clone()));
                events.push((args[0].clone(), args[1].clone()));
                Ok(ok())
            }
            XS_UNWATCH => {
                let args = strings();
                let before = self.watches.len();
                self.watches.retain(|(p, t)| (p, t) != (&args[0], &args[1]));
                if self.watches.len() == before {
                    return error("ENOENT");
                }
                Ok(ok())
            }
            XS_RESET_WATCHES => {
                self.watches.clear();
                Ok(ok())
            }
            XS_TRANSACTION_START => Ok(b"42\0".to_vec()),
            XS_TRANSACTION_END => {
                if payload == b"T\0" && self.commit_conflicts > 0 {
                    self.commit_conflicts -= 1;
                    return error("EAGAIN");
                }
                Ok(ok())
            }
            XS_GET_DOMAIN_PATH => Ok(format!("/local/domain/{}\0", strings()[0]).into_bytes()),
            _ => error("EINVAL"),
        }
    }
}
