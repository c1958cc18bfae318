use super::*;
use hypercalls::abi::errno::{XEN_EACCES, XEN_ENOENT, XEN_EPERM};
use hypercalls::abi::io::xs_wire::{XS_DIRECTORY_PART, XS_READ, XS_WRITE};

#[test]
fn encode_then_decode_round_trips() {
    let payload = nul_terminated(&[b"device/vif", b"token"]);
    let bytes = encode_vec(XS_READ, 7, 3, &payload).unwrap();
    assert_eq!(bytes.len(), HEADER_LEN + payload.len());
    assert_eq!(&bytes[..4], &XS_READ.to_ne_bytes());
    assert_eq!(&bytes[12..16], &(payload.len() as u32).to_ne_bytes());
    let message = decode(&bytes).unwrap();
    assert_eq!(
        message.header,
        XsdSockmsg { r#type: XS_READ, req_id: 7, tx_id: 3, len: payload.len() as u32 }
    );
    assert_eq!(message.payload, &payload[..]);
    assert_eq!(message.wire_len(), bytes.len());
}

#[test]
fn decode_takes_only_the_first_message() {
    let mut bytes = encode_vec(XS_WRITE, 1, 0, b"a\0xyz").unwrap();
    bytes.extend(encode_vec(XS_READ, 2, 0, b"a\0").unwrap());
    let first = decode(&bytes).unwrap();
    assert_eq!(first.payload, b"a\0xyz");
    let second = decode(&bytes[first.wire_len()..]).unwrap();
    assert_eq!(second.header.req_id, 2);
}

#[test]
fn malformed_messages_are_reported() {
    assert_eq!(decode(&[0u8; 15]), Err(WireError::TruncatedHeader { got: 15 }));
    let mut huge = encode_vec(XS_READ, 1, 0, b"").unwrap();
    huge[12..16].copy_from_slice(&(XENSTORE_PAYLOAD_MAX as u32 + 1).to_ne_bytes());
    assert_eq!(decode(&huge), Err(WireError::PayloadTooLarge { len: XENSTORE_PAYLOAD_MAX as u32 + 1 }));
    let short = &encode_vec(XS_READ, 1, 0, b"abc\0").unwrap()[..HEADER_LEN + 2];
    assert_eq!(
        decode(short),
        Err(WireError::TruncatedPayload { expected: HEADER_LEN + 4, got: HEADER_LEN + 2 })
    );
    let unknown = encode_vec(XS_TYPE_COUNT, 1, 0, b"").unwrap();
    assert_eq!(decode(&unknown), Err(WireError::UnknownType(XS_TYPE_COUNT)));
    let restrict = encode_vec(20, 1, 0, b"").unwrap();
    assert_eq!(decode(&restrict), Err(WireError::UnknownType(20)));
    // The header of an unknown type is still readable, to answer it.
    assert_eq!(decode_header(&unknown).unwrap().req_id, 1);
    assert!(is_known_type(XS_DIRECTORY_PART));
}

#[test]
fn encode_refuses_oversized_payloads_and_small_buffers() {
    let big = vec![b'x'; XENSTORE_PAYLOAD_MAX + 1];
    assert!(matches!(encode_vec(XS_WRITE, 0, 0, &big), Err(WireError::PayloadTooLarge { .. })));
    let max = vec![b'x'; XENSTORE_PAYLOAD_MAX];
    assert_eq!(encode_vec(XS_WRITE, 0, 0, &max).unwrap().len(), MESSAGE_MAX);
    let mut small = [0u8; 20];
    assert_eq!(encode(&mut small, XS_READ, 0, 0, b"abcdef"), Err(WireError::BufferTooSmall { needed: 22 }));
}

#[test]
fn payload_strings_split_on_nuls() {
    assert_eq!(split_strings(b"a\0bc\0\0").unwrap(), vec![&b"a"[..], b"bc", b""]);
    assert!(split_strings(b"").unwrap().is_empty());
    assert_eq!(split_strings(b"a\0b"), Err(WireError::MissingNul));
    assert_eq!(single_string(b"path\0"), Ok(&b"path"[..]));
    assert_eq!(single_string(b"path"), Err(WireError::MissingNul));
    assert_eq!(single_string(b"a\0b\0"), Err(WireError::Malformed));
    assert_eq!(split_write(b"key\0val\0ue"), Ok((&b"key"[..], &b"val\0ue"[..])));
    assert_eq!(split_write(b"key\0"), Ok((&b"key"[..], &b""[..])));
    assert_eq!(split_write(b"key"), Err(WireError::MissingNul));
}

#[test]
fn errors_travel_by_name() {
    let enoent = xsd_error(XEN_ENOENT).unwrap();
    assert_eq!(enoent.errstring, "ENOENT");
    assert_eq!(error_payload(enoent), b"ENOENT\0");
    assert_eq!(parse_error_payload(b"EACCES\0").map(|e| e.errnum), Some(XEN_EACCES));
    assert_eq!(parse_error_payload(b"EPERM").map(|e| e.errnum), Some(XEN_EPERM));
    assert_eq!(parse_error_payload(b"EWHATEVER\0"), None);
    let reply = error_reply(9, 4, enoent);
    let message = decode(&reply).unwrap();
    assert_eq!((message.header.r#type, message.header.req_id, message.header.tx_id), (XS_ERROR, 9, 4));
    assert_eq!(message.payload, b"ENOENT\0");
    // Not every errno has a xenstore name.
    assert_eq!(xsd_error(3), None);
}

#[test]
fn permissions_parse_and_print() {
    assert_eq!(Permission::parse(b"r5"), Ok(Permission::new(5, Access::Read)));
    assert_eq!(Permission::parse(b"b65535"), Ok(Permission::new(65535, Access::Both)));
    for bad in [&b""[..], b"r", b"x1", b"r-1", b"r65536", b"r1a", b"w 1"] {
        assert_eq!(Permission::parse(bad), Err(WireError::Malformed), "{:?}", bad);
    }
    let perms = [Permission::new(0, Access::None), Permission::new(12, Access::Write)];
    assert_eq!(permissions_payload(&perms), b"n0\0w12\0");
    assert!(Access::Both.can_read() && Access::Both.can_write());
    assert!(!Access::Read.can_write() && !Access::Write.can_read() && !Access::None.can_read());
}

#[test]
fn decimals_are_strict() {
    assert_eq!(parse_decimal(b"0"), Some(0));
    assert_eq!(parse_decimal(b"4294967295"), Some(u32::MAX));
    assert_eq!(parse_decimal(b"4294967296"), None);
    assert_eq!(parse_decimal(b""), None);
    assert_eq!(parse_decimal(b"+1"), None);
    let mut out = Vec::new();
    push_decimal(&mut out, 0);
    out.push(b' ');
    push_decimal(&mut out, 4_294_967_295);
    assert_eq!(out, b"0 4294967295");
}
