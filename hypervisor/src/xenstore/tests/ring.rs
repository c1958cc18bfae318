use alloc::boxed::Box;
use core::sync::atomic::Ordering;

use drivers::ring::RingError;
use drivers::xenstore::client::{Doorbell, Transaction, WaitTimedOut, XenstoreClient, XsError};
use drivers::xenstore::ring::XenstoreRingView;
use drivers::xenstore::wire::{self, WireError};
use hypercalls::abi::io::xs_wire::*;

use super::*;
use crate::xenstore::{ConnectionError, ServeSummary};

fn ring() -> Box<XenstoreRingView> {
    Box::new(XenstoreRingView::new())
}

/// The guest's side, by hand: put bytes into the request ring.
fn guest_send(ring: &XenstoreRingView, bytes: &[u8]) -> usize {
    ring.requests().write(bytes).unwrap()
}

fn guest_receive(ring: &XenstoreRingView) -> Vec<u8> {
    let mut out = Vec::new();
    ring.responses().consume_with(usize::MAX, |chunk| out.extend_from_slice(chunk)).unwrap();
    out
}

fn read_request(req_id: u32, path: &str) -> Vec<u8> {
    wire::encode_vec(XS_READ, req_id, 0, &arg(path)).unwrap()
}

#[test]
fn requests_in_the_ring_are_answered_in_order() {
    let ring = ring();
    let mut xs = store();
    guest_send(&ring, &read_request(1, "name"));
    guest_send(&ring, &read_request(2, "domid"));
    let summary = xs.serve_ring(&ring).unwrap();
    assert_eq!(summary.requests, 2);
    assert!(summary.should_notify());
    let replies = split_stream(&guest_receive(&ring));
    assert_eq!(replies.len(), 2);
    assert_eq!((replies[0].header.req_id, replies[0].payload.as_slice()), (1, &b"guest-one"[..]));
    assert_eq!((replies[1].header.req_id, replies[1].payload.as_slice()), (2, &b"3"[..]));
    let features = ring.server_features.load(Ordering::Relaxed);
    assert_eq!(features, XENSTORE_SERVER_FEATURE_RECONNECTION | XENSTORE_SERVER_FEATURE_ERROR);
    assert_eq!(xs.serve_ring(&ring).unwrap(), ServeSummary::default(), "nothing more to do");
}

#[test]
fn a_request_split_across_calls_is_answered_once_complete() {
    let ring = ring();
    let mut xs = store();
    let request = read_request(9, "name");
    guest_send(&ring, &request[..10]);
    let summary = xs.serve_ring(&ring).unwrap();
    assert_eq!((summary.requests, summary.consumed), (0, 10));
    guest_send(&ring, &request[10..]);
    assert_eq!(xs.serve_ring(&ring).unwrap().requests, 1);
    assert_eq!(split_stream(&guest_receive(&ring))[0].payload, b"guest-one");
}

#[test]
fn output_waits_for_room_and_requests_wait_for_output() {
    let ring = ring();
    let mut xs = store();
    write(&mut xs, "data/v", &[b'x'; 2000]).unwrap();
    // Each reply is 2016 bytes, about two rings' worth.
    for id in 1..=3 {
        guest_send(&ring, &read_request(id, "data/v"));
    }
    let summary = xs.serve_ring(&ring).unwrap();
    assert_eq!(summary.produced, XENSTORE_RING_SIZE);
    assert!(summary.requests < 3, "stops answering while output is queued");
    assert!(xs.pending_output_len() > 0);
    let mut stream = Vec::new();
    for _ in 0..10 {
        stream.extend(guest_receive(&ring));
        xs.serve_ring(&ring).unwrap();
    }
    stream.extend(guest_receive(&ring));
    let replies = split_stream(&stream);
    assert_eq!(replies.iter().map(|m| m.header.req_id).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert!(replies.iter().all(|m| m.payload == [b'x'; 2000]));
    assert_eq!(xs.pending_output_len(), 0);
}

#[test]
fn a_lying_producer_index_breaks_the_connection_safely() {
    let ring = ring();
    let mut xs = store();
    watch(&mut xs, "data", "t");
    ring.req_cons.store(40, Ordering::Relaxed);
    ring.req_prod.store(40 + XENSTORE_RING_SIZE as u32 + 1, Ordering::Relaxed);
    let expected = ConnectionError::Ring(RingError::IndexOverrun {
        prod: 40 + XENSTORE_RING_SIZE as u32 + 1,
        cons: 40,
        size: XENSTORE_RING_SIZE,
    });
    assert_eq!(xs.serve_ring(&ring), Err(expected));
    assert_eq!(ring.req_cons.load(Ordering::Relaxed), 40, "nothing consumed");
    assert_eq!(ring.rsp_prod.load(Ordering::Relaxed), 0, "nothing produced");
    assert_eq!(ring.error.load(Ordering::Relaxed), XENSTORE_ERROR_RINGIDX);
    assert_eq!(xs.watch_count(), 0, "the connection's watches are dropped");
    // Fixing the index does not revive a broken connection...
    ring.req_prod.store(40, Ordering::Relaxed);
    assert_eq!(xs.serve_ring(&ring), Err(expected));
    assert_eq!(xs.connection_error(), Some(expected));
    // ...but a reconnect request does.
    ring.connection.store(XENSTORE_RECONNECT, Ordering::Relaxed);
    let summary = xs.serve_ring(&ring).unwrap();
    assert!(summary.reconnected && summary.should_notify());
    assert_eq!(ring.connection.load(Ordering::Relaxed), XENSTORE_CONNECTED);
    assert_eq!(ring.error.load(Ordering::Relaxed), XENSTORE_ERROR_NONE);
    assert_eq!(ring.req_prod.load(Ordering::Relaxed), 0);
    guest_send(&ring, &read_request(1, "name"));
    assert_eq!(xs.serve_ring(&ring).unwrap().requests, 1);
}

#[test]
fn a_lying_response_consumer_index_breaks_the_connection() {
    let ring = ring();
    let mut xs = store();
    ring.rsp_cons.store(5000, Ordering::Relaxed);
    guest_send(&ring, &read_request(1, "name"));
    assert!(matches!(xs.serve_ring(&ring), Err(ConnectionError::Ring(_))));
    assert_eq!(ring.error.load(Ordering::Relaxed), XENSTORE_ERROR_RINGIDX);
}

#[test]
fn an_oversized_message_is_a_protocol_error() {
    let ring = ring();
    let mut xs = store();
    let mut request = read_request(1, "name");
    request[12..16].copy_from_slice(&(XENSTORE_PAYLOAD_MAX as u32 + 1).to_ne_bytes());
    guest_send(&ring, &request);
    assert_eq!(
        xs.serve_ring(&ring),
        Err(ConnectionError::Protocol(WireError::PayloadTooLarge { len: XENSTORE_PAYLOAD_MAX as u32 + 1 }))
    );
    assert_eq!(ring.error.load(Ordering::Relaxed), XENSTORE_ERROR_PROTO);
}

#[test]
fn unknown_types_over_the_ring_get_an_error_and_the_stream_continues() {
    let ring = ring();
    let mut xs = store();
    guest_send(&ring, &wire::encode_vec(99, 1, 0, b"junk").unwrap());
    guest_send(&ring, &read_request(2, "name"));
    xs.serve_ring(&ring).unwrap();
    let replies = split_stream(&guest_receive(&ring));
    assert_eq!((replies[0].header.r#type, replies[0].payload.as_slice()), (XS_ERROR, &b"ENOSYS\0"[..]));
    assert_eq!(replies[1].payload, b"guest-one");
}

#[test]
fn dom0_events_are_delivered_by_the_next_serve() {
    let ring = ring();
    let mut xs = store();
    guest_send(&ring, &wire::encode_vec(XS_WATCH, 1, 0, b"control/shutdown\0sd\0").unwrap());
    xs.serve_ring(&ring).unwrap();
    guest_receive(&ring);
    xs.write_as_dom0("control/shutdown", b"poweroff").unwrap();
    assert!(xs.serve_ring(&ring).unwrap().produced > 0);
    let events: Vec<_> = split_stream(&guest_receive(&ring)).iter().map(Msg::event).collect();
    assert_eq!(events, vec![("control/shutdown".into(), "sd".into())]);
}

/// The drivers crate's client, wired to this server through a ring: the
/// doorbell runs the server whenever the client waits.
struct Loopback<'r> {
    server: Xenstore,
    ring: &'r XenstoreRingView,
    waits: usize,
}

impl Doorbell for Loopback<'_> {
    fn notify(&mut self) {}

    fn wait(&mut self) -> Result<(), WaitTimedOut> {
        self.waits += 1;
        if self.waits > 10_000 {
            return Err(WaitTimedOut);
        }
        self.server.serve_ring(self.ring).map(drop).map_err(|_| WaitTimedOut)
    }
}

#[test]
fn the_guest_client_and_this_server_interoperate() {
    let ring = ring();
    for index in [&ring.req_cons, &ring.req_prod, &ring.rsp_cons, &ring.rsp_prod] {
        index.store(u32::MAX - 500, Ordering::Relaxed);
    }
    let loopback = Loopback { server: store(), ring: &ring, waits: 0 };
    let mut client = XenstoreClient::new(&ring, loopback);
    let none = Transaction::NONE;
    assert_eq!(client.read_string(none, "name").unwrap(), "guest-one");
    assert_eq!(client.get_domain_path(GUEST).unwrap(), HOME);
    client.watch("device", "dev").unwrap();
    let big = vec![b'b'; 2000];
    client.write(none, "device/vbd/0/blob", &big).unwrap();
    assert_eq!(client.read(none, "device/vbd/0/blob").unwrap(), big);
    assert_eq!(client.take_watch_event().unwrap().path, "device");
    assert_eq!(client.take_watch_event().unwrap().path, "device/vbd/0/blob");
    assert_eq!(client.directory(none, "device/vbd/0").unwrap(), vec!["blob"]);
    let error = client.write(none, "name", b"x").unwrap_err();
    assert_eq!(error.errno_name(), Some("EACCES"));
    assert!(matches!(client.read(none, "missing"), Err(XsError::Server(e)) if e.errstring == "ENOENT"));
    let tx = client.transaction_start().unwrap();
    client.write(tx, "data/in-tx", b"1").unwrap();
    assert!(client.read(none, "data/in-tx").is_err());
    client.transaction_end(tx, true).unwrap();
    assert_eq!(client.read(none, "data/in-tx").unwrap(), b"1");
    let perms = client.get_perms(none, "data/in-tx").unwrap();
    assert_eq!(perms[0].domid, GUEST);
    client.rm(none, "device/vbd").unwrap();
    assert_eq!(client.wait_watch_event().unwrap().path, "device/vbd");
}
