mod fake_server;

use core::sync::atomic::Ordering;

use hypercalls::abi::errno::{XEN_EAGAIN, XEN_ENOENT};
use hypercalls::abi::io::xs_wire::{
    XENSTORE_ERROR_RINGIDX, XENSTORE_PAYLOAD_MAX, XENSTORE_RING_SIZE, XS_READ, XS_TRANSACTION_END, XS_WRITE,
};

use super::*;
use crate::xenstore::wire::Access;
use fake_server::FakeServer;

fn ring() -> Box<XenstoreRingView> {
    Box::new(XenstoreRingView::new())
}

const NONE: Transaction = Transaction::NONE;

#[test]
fn write_then_read_round_trips() {
    let ring = ring();
    let (server, state) = FakeServer::new(&ring);
    let mut client = XenstoreClient::new(&ring, server);
    client.write(NONE, "data/greeting", b"hello").unwrap();
    assert_eq!(client.read(NONE, "data/greeting").unwrap(), b"hello");
    assert_eq!(client.read_string(NONE, "data/greeting").unwrap(), "hello");
    assert_eq!(state.borrow().store.get("data/greeting").unwrap(), b"hello");
    assert!(state.borrow().notifications >= 2, "the client must ring the doorbell");
}

#[test]
fn server_errors_carry_the_errno_name() {
    let ring = ring();
    let (server, _state) = FakeServer::new(&ring);
    let mut client = XenstoreClient::new(&ring, server);
    let error = client.read(NONE, "missing").unwrap_err();
    assert_eq!(error.errno_name(), Some("ENOENT"));
    assert_eq!(error.errnum(), Some(XEN_ENOENT));
    assert!(matches!(error, XsError::Server(e) if e.errstring == "ENOENT"));
}

#[test]
fn mkdir_directory_and_rm() {
    let ring = ring();
    let (server, _state) = FakeServer::new(&ring);
    let mut client = XenstoreClient::new(&ring, server);
    client.mkdir(NONE, "/d").unwrap();
    client.write(NONE, "/d/b", b"2").unwrap();
    client.write(NONE, "/d/a", b"1").unwrap();
    client.write(NONE, "/d/a/deeper", b"x").unwrap();
    assert_eq!(client.directory(NONE, "/d").unwrap(), vec!["a".to_string(), "b".to_string()]);
    client.rm(NONE, "/d/b").unwrap();
    assert_eq!(client.directory(NONE, "/d").unwrap(), vec!["a".to_string()]);
    assert_eq!(client.rm(NONE, "/d/b").unwrap_err().errno_name(), Some("ENOENT"));
}

#[test]
fn permissions_are_parsed() {
    let ring = ring();
    let (server, _state) = FakeServer::new(&ring);
    let mut client = XenstoreClient::new(&ring, server);
    let perms = client.get_perms(NONE, "/x").unwrap();
    assert_eq!(perms, vec![Permission::new(0, Access::None), Permission::new(1, Access::Read)]);
    client.set_perms(NONE, "/x", &perms).unwrap();
    assert_eq!(client.set_perms(NONE, "/x", &[]), Err(XsError::InvalidRequest));
}

#[test]
fn values_larger_than_the_ring_go_through_in_pieces() {
    let ring = ring();
    let (server, state) = FakeServer::new(&ring);
    let mut client = XenstoreClient::new(&ring, server);
    let big: Vec<u8> = (0..3 * XENSTORE_RING_SIZE).map(|i| (i % 200) as u8 + 1).collect();
    client.write(NONE, "/big", &big).unwrap();
    assert_eq!(state.borrow().store.get("/big").unwrap(), &big);
    assert_eq!(client.read(NONE, "/big").unwrap(), big);
}

#[test]
fn requests_that_cannot_be_framed_are_refused_locally() {
    let ring = ring();
    let (server, state) = FakeServer::new(&ring);
    let mut client = XenstoreClient::new(&ring, server);
    let too_big = vec![b'v'; XENSTORE_PAYLOAD_MAX];
    assert_eq!(client.write(NONE, "/k", &too_big), Err(XsError::InvalidRequest));
    assert_eq!(client.read(NONE, "bad\0path"), Err(XsError::InvalidRequest));
    assert_eq!(client.read(NONE, ""), Err(XsError::InvalidRequest));
    assert!(state.borrow().requests_seen.is_empty());
    assert_eq!(ring.req_prod.load(Ordering::Relaxed), 0);
}

#[test]
fn watch_events_before_the_reply_are_queued_not_mistaken_for_it() {
    let ring = ring();
    let (server, state) = FakeServer::new(&ring);
    state.borrow_mut().events_before_reply = true;
    let mut client = XenstoreClient::new(&ring, server);
    client.watch("/w", "tok").unwrap();
    client.write(NONE, "/w/child", b"v").unwrap();
    client.write(NONE, "/elsewhere", b"v").unwrap();
    assert_eq!(client.read(NONE, "/w/child").unwrap(), b"v");
    let first = client.take_watch_event().unwrap();
    assert_eq!((first.path.as_str(), first.token.as_str()), ("/w", "tok"), "initial event");
    let second = client.take_watch_event().unwrap();
    assert_eq!((second.path.as_str(), second.token.as_str()), ("/w/child", "tok"));
    assert_eq!(client.take_watch_event(), None);
    client.unwatch("/w", "tok").unwrap();
    assert_eq!(client.unwatch("/w", "tok").unwrap_err().errno_name(), Some("ENOENT"));
}

#[test]
fn wait_watch_event_blocks_until_one_arrives() {
    let ring = ring();
    let (server, state) = FakeServer::new(&ring);
    let mut client = XenstoreClient::new(&ring, server);
    client.watch("/w", "t").unwrap();
    // The initial event follows the reply; it may still be in the ring.
    let initial = client.wait_watch_event().unwrap();
    assert_eq!(initial.path, "/w");
    state.borrow_mut().waits_left = 5;
    assert_eq!(client.wait_watch_event(), Err(XsError::TimedOut), "nothing else will come");
    state.borrow_mut().waits_left = 100;
    state.borrow_mut().watches.push(("/v".into(), "t2".into()));
    client.write(NONE, "/v", b"1").unwrap();
    assert_eq!(client.wait_watch_event().unwrap().token, "t2");
}

#[test]
fn stray_replies_to_other_requests_are_ignored() {
    let ring = ring();
    let (server, state) = FakeServer::new(&ring);
    let mut client = XenstoreClient::new(&ring, server);
    client.write(NONE, "/k", b"real").unwrap();
    let stray = wire::encode_vec(XS_READ, 9999, 0, b"stale").unwrap();
    state.borrow_mut().inject_before_next_reply.push(stray);
    assert_eq!(client.read(NONE, "/k").unwrap(), b"real");
}

#[test]
fn a_reply_of_the_wrong_type_is_an_error() {
    let ring = ring();
    let (server, state) = FakeServer::new(&ring);
    let mut client = XenstoreClient::new(&ring, server);
    // Request ids start at 1; make the server answer request 1 with a WRITE.
    let wrong = wire::encode_vec(XS_WRITE, 1, 0, b"OK\0").unwrap();
    state.borrow_mut().inject_before_next_reply.push(wrong);
    assert_eq!(client.read(NONE, "/k"), Err(XsError::UnexpectedReply { expected: XS_READ, got: XS_WRITE }));
}

#[test]
fn an_oversized_reply_header_desynchronizes_the_connection() {
    let ring = ring();
    let (server, state) = FakeServer::new(&ring);
    let mut client = XenstoreClient::new(&ring, server);
    let mut garbage = wire::encode_vec(XS_READ, 1, 0, b"").unwrap();
    garbage[12..16].copy_from_slice(&(XENSTORE_PAYLOAD_MAX as u32 + 1).to_ne_bytes());
    state.borrow_mut().inject_before_next_reply.push(garbage);
    assert!(matches!(client.read(NONE, "/k"), Err(XsError::Wire(WireError::PayloadTooLarge { .. }))));
    assert_eq!(client.read(NONE, "/k"), Err(XsError::Desynchronized));
}

#[test]
fn transactions_pass_their_id_and_report_conflicts() {
    let ring = ring();
    let (server, state) = FakeServer::new(&ring);
    state.borrow_mut().commit_conflicts = 1;
    let mut client = XenstoreClient::new(&ring, server);
    let tx = client.transaction_start().unwrap();
    assert_eq!(tx, Transaction(42));
    client.write(tx, "/t", b"1").unwrap();
    let conflict = client.transaction_end(tx, true).unwrap_err();
    assert_eq!(conflict.errnum(), Some(XEN_EAGAIN));
    let tx = client.transaction_start().unwrap();
    client.transaction_end(tx, true).unwrap();
    client.transaction_end(tx, false).unwrap();
    let seen = state.borrow().requests_seen.clone();
    assert!(seen.contains(&(XS_WRITE, 42)));
    assert_eq!(seen.iter().filter(|&&(t, id)| t == XS_TRANSACTION_END && id == 42).count(), 3);
}

#[test]
fn domain_path_and_reset_watches() {
    let ring = ring();
    let (server, state) = FakeServer::new(&ring);
    let mut client = XenstoreClient::new(&ring, server);
    assert_eq!(client.get_domain_path(7).unwrap(), "/local/domain/7");
    client.watch("/a", "x").unwrap();
    client.reset_watches().unwrap();
    assert!(state.borrow().watches.is_empty());
    assert_eq!(client.take_watch_event(), None);
}

#[test]
fn a_silent_server_times_out_instead_of_hanging() {
    let ring = ring();
    let (server, state) = FakeServer::new(&ring);
    state.borrow_mut().silent = true;
    let mut client = XenstoreClient::new(&ring, server);
    assert_eq!(client.read(NONE, "/k"), Err(XsError::TimedOut));
    // A big write that cannot even be fully sent leaves the stream unusable.
    assert_eq!(client.write(NONE, "/k", &[b'x'; 2000]), Err(XsError::TimedOut));
    assert_eq!(client.read(NONE, "/k"), Err(XsError::Desynchronized));
}

#[test]
fn a_server_error_flag_or_corrupt_ring_fails_fast() {
    let ring = ring();
    let (server, _state) = FakeServer::new(&ring);
    let mut client = XenstoreClient::new(&ring, server);
    ring.error.store(XENSTORE_ERROR_RINGIDX, Ordering::Relaxed);
    assert_eq!(client.read(NONE, "/k"), Err(XsError::ConnectionFailed(XENSTORE_ERROR_RINGIDX)));
    ring.error.store(0, Ordering::Relaxed);
    ring.req_cons.store(5000, Ordering::Relaxed);
    assert!(matches!(client.read(NONE, "/k"), Err(XsError::Ring(_))));
}

#[test]
fn ring_indices_may_start_anywhere() {
    let ring = ring();
    for index in [&ring.req_cons, &ring.req_prod, &ring.rsp_cons, &ring.rsp_prod] {
        index.store(u32::MAX - 100, Ordering::Relaxed);
    }
    let (server, _state) = FakeServer::new(&ring);
    let mut client = XenstoreClient::new(&ring, server);
    for i in 0..20u8 {
        client.write(NONE, "/wrap", &[i; 300]).unwrap();
        assert_eq!(client.read(NONE, "/wrap").unwrap(), vec![i; 300]);
    }
    assert!(ring.req_prod.load(Ordering::Relaxed) < 100_000, "indices wrapped");
}
