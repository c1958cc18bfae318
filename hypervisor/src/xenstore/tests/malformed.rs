use drivers::xenstore::wire::{self, HEADER_LEN};
use hypercalls::abi::io::xs_wire::*;
use proptest::prelude::*;

use super::*;

fn only_error(messages: Vec<Vec<u8>>) -> (XsdSockmsg, String) {
    let messages = decode_all(messages);
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0].header.r#type, XS_ERROR);
    (messages[0].header, text(wire::split_strings(&messages[0].payload).unwrap()[0]))
}

#[test]
fn a_truncated_header_gets_einval() {
    let mut xs = store();
    let (header, error) = only_error(xs.handle_request(&[1, 0, 0]));
    assert_eq!((header.req_id, error.as_str()), (0, "EINVAL"));
    let (_, error) = only_error(xs.handle_request(&[]));
    assert_eq!(error, "EINVAL");
}

#[test]
fn a_type_with_no_handler_gets_enosys() {
    let mut xs = store();
    for (req_id, msg_type) in [(7, 9999), (8, XS_WATCH_EVENT), (9, XS_ERROR)] {
        let request = wire::encode_vec(msg_type, req_id, 0, b"").unwrap();
        let (header, error) = only_error(xs.handle_request(&request));
        assert_eq!((header.req_id, error.as_str()), (req_id, "ENOSYS"), "type {msg_type}");
    }
}

#[test]
fn a_length_that_disagrees_with_the_payload_gets_einval() {
    let mut xs = store();
    let mut request = wire::encode_vec(XS_READ, 5, 0, b"name\0").unwrap();
    request.pop();
    let (header, error) = only_error(xs.handle_request(&request));
    assert_eq!((header.req_id, error.as_str()), (5, "EINVAL"));
    let mut request = wire::encode_vec(XS_READ, 6, 0, b"name\0").unwrap();
    request.push(0);
    let (header, error) = only_error(xs.handle_request(&request));
    assert_eq!((header.req_id, error.as_str()), (6, "EINVAL"));
}

#[test]
fn an_oversized_length_gets_e2big_without_reading_on() {
    let mut xs = store();
    let mut request = wire::encode_vec(XS_READ, 8, 2, b"").unwrap();
    request[12..16].copy_from_slice(&u32::MAX.to_ne_bytes());
    let (header, error) = only_error(xs.handle_request(&request));
    assert_eq!((header.req_id, header.tx_id, error.as_str()), (8, 2, "E2BIG"));
    request[12..16].copy_from_slice(&(XENSTORE_PAYLOAD_MAX as u32 + 1).to_ne_bytes());
    assert_eq!(only_error(xs.handle_request(&request)).1, "E2BIG");
}

#[test]
fn single_argument_requests_need_exactly_one_terminated_string() {
    let mut xs = store();
    for msg_type in [XS_READ, XS_MKDIR, XS_RM, XS_DIRECTORY, XS_GET_PERMS, XS_GET_DOMAIN_PATH] {
        for bad in [&b"name"[..], b"", b"name\0extra\0", b"name\0x"] {
            assert_eq!(call(&mut xs, msg_type, 0, bad).unwrap_err(), "EINVAL", "type {msg_type} {bad:?}");
        }
    }
    assert_eq!(call(&mut xs, XS_WRITE, 0, b"no-nul-at-all").unwrap_err(), "EINVAL");
}

#[test]
fn invalid_paths_are_einval() {
    let mut xs = store();
    for bad in ["data//x", "data/", "/", "da ta", "data/x.y", "\u{e9}"] {
        let expected = if bad == "/" { "EACCES" } else { "EINVAL" };
        assert_eq!(write(&mut xs, bad, b"").unwrap_err(), expected, "{bad:?}");
    }
    assert_eq!(call(&mut xs, XS_READ, 0, b"\xff\xfe\0").unwrap_err(), "EINVAL");
    let long = format!("data/{}", "x".repeat(XENSTORE_ABS_PATH_MAX));
    assert_eq!(write(&mut xs, &long, b"").unwrap_err(), "EINVAL");
}

#[test]
fn a_maximum_size_payload_is_parsed_not_rejected() {
    let mut xs = store();
    let value = vec![b'v'; 2048];
    write(&mut xs, "data/big", &value).unwrap();
    let payload = vec![b'a'; XENSTORE_PAYLOAD_MAX];
    let messages = exchange(&mut xs, XS_WRITE, 0, &payload);
    assert_eq!(reply_of(&messages, XS_WRITE).unwrap_err(), "EINVAL", "no NUL: no path");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever the bytes, the server answers with well-formed messages and
    /// exactly one reply or error.
    #[test]
    fn arbitrary_messages_never_panic(
        msg_type in prop_oneof![0u32..24, any::<u32>()],
        tx_id in prop_oneof![Just(0u32), 1u32..3, any::<u32>()],
        payload in proptest::collection::vec(prop_oneof![Just(0u8), Just(b'/'), any::<u8>(), 97u8..123], 0..64),
        truncate in proptest::option::of(0usize..80),
    ) {
        let mut xs = store();
        tx_start(&mut xs);
        let mut request = wire::encode_vec(msg_type, 1, tx_id, &payload).unwrap();
        if let Some(len) = truncate {
            request.truncate(len);
        }
        let messages = decode_all(xs.handle_request(&request));
        let replies = messages.iter().filter(|m| !m.is_event()).count();
        prop_assert_eq!(replies, 1);
        prop_assert!(messages.iter().all(|m| m.payload.len() <= XENSTORE_PAYLOAD_MAX));
        if request.len() >= HEADER_LEN {
            prop_assert!(messages.iter().filter(|m| !m.is_event()).all(|m| m.header.req_id == 1));
        }
    }

    /// A stream of random valid-looking operations keeps the tree consistent
    /// enough that dom0 can still read the guest's name.
    #[test]
    fn random_operation_sequences_keep_the_store_usable(
        ops in proptest::collection::vec((0u32..23, 0usize..6, 0usize..4, any::<bool>()), 1..40),
    ) {
        let paths = ["data/a", "data/a/b", "data", "name", "/local", "device/x/y"];
        let values: [&[u8]; 4] = [b"", b"1", b"T", b"n3"];
        let mut xs = store();
        for (msg_type, path, value, in_tx) in ops {
            let tx = if in_tx && xs.transaction_count() > 0 { 1 } else { 0 };
            let mut payload = arg(paths[path]);
            payload.extend_from_slice(values[value]);
            if msg_type != XS_WRITE {
                payload.push(0);
            }
            let _ = exchange(&mut xs, msg_type, tx, &payload);
        }
        prop_assert_eq!(xs.read_as_dom0("name").unwrap(), b"guest-one".to_vec());
        prop_assert!(xs.node_count() >= 4);
    }
}
