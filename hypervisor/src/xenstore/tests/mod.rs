//! Host tests of the xenstore server, speaking the wire protocol as a guest
//! would.

mod malformed;
mod ops;
mod ring;
mod transactions;
mod watches;

use alloc::string::String;
use alloc::vec::Vec;

use drivers::xenstore::wire;
use hypercalls::abi::io::xs_wire::*;
use hypercalls::abi::xen::DomId;

use super::Xenstore;

pub(super) const GUEST: DomId = 3;
pub(super) const HOME: &str = "/local/domain/3";
const REQ_ID: u32 = 77;

pub(super) fn store() -> Xenstore {
    Xenstore::new(GUEST, "guest-one")
}

/// One decoded message from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Msg {
    pub header: XsdSockmsg,
    pub payload: Vec<u8>,
}

impl Msg {
    pub fn is_event(&self) -> bool {
        self.header.r#type == XS_WATCH_EVENT
    }

    /// `(path, token)` of a watch event.
    pub fn event(&self) -> (String, String) {
        assert!(self.is_event(), "{self:?}");
        let fields: Vec<&[u8]> = wire::split_strings(&self.payload).unwrap();
        assert_eq!(fields.len(), 2, "{self:?}");
        (text(fields[0]), text(fields[1]))
    }
}

pub(super) fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

pub(super) fn decode_all(messages: Vec<Vec<u8>>) -> Vec<Msg> {
    messages
        .into_iter()
        .map(|bytes| {
            let message = wire::decode(&bytes).unwrap();
            assert_eq!(message.wire_len(), bytes.len(), "one message per output");
            Msg { header: message.header, payload: message.payload.to_vec() }
        })
        .collect()
}

/// Sends one request and returns everything the server sent back.
pub(super) fn exchange(xs: &mut Xenstore, msg_type: u32, tx_id: u32, payload: &[u8]) -> Vec<Msg> {
    let request = wire::encode_vec(msg_type, REQ_ID, tx_id, payload).unwrap();
    decode_all(xs.handle_request(&request))
}

/// The reply among `messages`: `Ok(payload)` or `Err(errno name)`.
pub(super) fn reply_of(messages: &[Msg], msg_type: u32) -> Result<Vec<u8>, String> {
    let replies: Vec<&Msg> = messages.iter().filter(|m| !m.is_event()).collect();
    assert_eq!(replies.len(), 1, "exactly one reply: {messages:?}");
    let reply = replies[0];
    assert_eq!(reply.header.req_id, REQ_ID);
    match reply.header.r#type {
        XS_ERROR => Err(text(wire::split_strings(&reply.payload).unwrap()[0])),
        t => {
            assert_eq!(t, msg_type, "{reply:?}");
            Ok(reply.payload.clone())
        }
    }
}

pub(super) fn call(xs: &mut Xenstore, msg_type: u32, tx_id: u32, payload: &[u8]) -> Result<Vec<u8>, String> {
    reply_of(&exchange(xs, msg_type, tx_id, payload), msg_type)
}

pub(super) fn arg(path: &str) -> Vec<u8> {
    wire::nul_terminated(&[path.as_bytes()])
}

pub(super) fn read(xs: &mut Xenstore, path: &str) -> Result<Vec<u8>, String> {
    call(xs, XS_READ, 0, &arg(path))
}

pub(super) fn read_in(xs: &mut Xenstore, tx: u32, path: &str) -> Result<Vec<u8>, String> {
    call(xs, XS_READ, tx, &arg(path))
}

pub(super) fn write_payload(path: &str, value: &[u8]) -> Vec<u8> {
    let mut payload = arg(path);
    payload.extend_from_slice(value);
    payload
}

pub(super) fn write(xs: &mut Xenstore, path: &str, value: &[u8]) -> Result<(), String> {
    write_in(xs, 0, path, value)
}

pub(super) fn write_in(xs: &mut Xenstore, tx: u32, path: &str, value: &[u8]) -> Result<(), String> {
    call(xs, XS_WRITE, tx, &write_payload(path, value)).map(|ok| assert_eq!(ok, b"OK\0"))
}

pub(super) fn directory(xs: &mut Xenstore, tx: u32, path: &str) -> Result<Vec<String>, String> {
    let reply = call(xs, XS_DIRECTORY, tx, &arg(path))?;
    Ok(wire::split_strings(&reply).unwrap().into_iter().map(text).collect())
}

pub(super) fn watch(xs: &mut Xenstore, path: &str, token: &str) -> Vec<Msg> {
    exchange(xs, XS_WATCH, 0, &wire::nul_terminated(&[path.as_bytes(), token.as_bytes()]))
}

pub(super) fn tx_start(xs: &mut Xenstore) -> u32 {
    let reply = call(xs, XS_TRANSACTION_START, 0, b"\0").unwrap();
    let id = wire::parse_decimal(wire::single_string(&reply).unwrap()).unwrap();
    assert_ne!(id, 0);
    id
}

pub(super) fn tx_end(xs: &mut Xenstore, tx: u32, commit: bool) -> Result<(), String> {
    call(xs, XS_TRANSACTION_END, tx, if commit { b"T\0" } else { b"F\0" }).map(drop)
}

pub(super) fn events(messages: &[Msg]) -> Vec<(String, String)> {
    messages.iter().filter(|m| m.is_event()).map(Msg::event).collect()
}

/// Decodes a byte stream of several messages (e.g. pending output).
pub(super) fn split_stream(mut bytes: &[u8]) -> Vec<Msg> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let message = wire::decode(bytes).unwrap();
        out.push(Msg { header: message.header, payload: message.payload.to_vec() });
        bytes = &bytes[message.wire_len()..];
    }
    out
}
