//! The xenstore wire format (`xen/io/xs_wire.h`, `docs/misc/xenstore.txt`).
//!
//! A message is a 16-byte [`XsdSockmsg`] header in host byte order followed
//! by `len` payload bytes, at most [`XENSTORE_PAYLOAD_MAX`]. Payloads are
//! mostly NUL-terminated strings (`"path\0"`, `"path\0token\0"`); `WRITE`
//! carries `"path\0"` then raw value bytes. Errors travel as an `XS_ERROR`
//! message whose payload is an errno *name* such as `"ENOENT\0"`.

use alloc::vec::Vec;

use hypercalls::abi::io::xs_wire::{
    XsdError, XsdSockmsg, XENSTORE_PAYLOAD_MAX, XSD_ERRORS, XS_ERROR, XS_TYPE_COUNT,
};
use hypercalls::abi::xen::DomId;

/// Bytes in a message header.
pub const HEADER_LEN: usize = core::mem::size_of::<XsdSockmsg>();

/// The largest message either side may send.
pub const MESSAGE_MAX: usize = HEADER_LEN + XENSTORE_PAYLOAD_MAX;

/// The type number xenstore once used for `XS_RESTRICT`; no longer valid.
const XS_RESTRICT_REMOVED: u32 = 20;

/// A malformed message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// Fewer than [`HEADER_LEN`] bytes.
    TruncatedHeader { got: usize },
    /// `len` exceeds [`XENSTORE_PAYLOAD_MAX`].
    PayloadTooLarge { len: u32 },
    /// The header promises more payload than there is.
    TruncatedPayload { expected: usize, got: usize },
    /// Not one of the `XS_*` types.
    UnknownType(u32),
    /// The output buffer cannot hold the message.
    BufferTooSmall { needed: usize },
    /// A string in the payload has no terminating NUL.
    MissingNul,
    /// A payload field is not what its message type requires.
    Malformed,
}

/// One message: its header and a borrowed payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    pub header: XsdSockmsg,
    pub payload: &'a [u8],
}

impl Message<'_> {
    /// Header plus payload bytes.
    pub fn wire_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }
}

/// Whether `msg_type` is a type this protocol version defines.
pub fn is_known_type(msg_type: u32) -> bool {
    msg_type < XS_TYPE_COUNT && msg_type != XS_RESTRICT_REMOVED
}

/// Reads a header without judging it (use [`decode_header`] for that).
pub fn read_header(bytes: &[u8; HEADER_LEN]) -> XsdSockmsg {
    let word = |i: usize| u32::from_ne_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    XsdSockmsg { r#type: word(0), req_id: word(4), tx_id: word(8), len: word(12) }
}

/// The header at the start of `bytes`, checking it is complete and its
/// payload length within [`XENSTORE_PAYLOAD_MAX`]. The type is not checked,
/// so a server can still answer an unknown type with an error.
pub fn decode_header(bytes: &[u8]) -> Result<XsdSockmsg, WireError> {
    let raw: &[u8; HEADER_LEN] = bytes
        .get(..HEADER_LEN)
        .and_then(|b| b.try_into().ok())
        .ok_or(WireError::TruncatedHeader { got: bytes.len() })?;
    let header = read_header(raw);
    if header.len as usize > XENSTORE_PAYLOAD_MAX {
        return Err(WireError::PayloadTooLarge { len: header.len });
    }
    Ok(header)
}

/// The complete message at the start of `bytes` (which may hold more after
/// it: see [`Message::wire_len`]).
pub fn decode(bytes: &[u8]) -> Result<Message<'_>, WireError> {
    let header = decode_header(bytes)?;
    if !is_known_type(header.r#type) {
        return Err(WireError::UnknownType(header.r#type));
    }
    let expected = HEADER_LEN + header.len as usize;
    let payload =
        bytes.get(HEADER_LEN..expected).ok_or(WireError::TruncatedPayload { expected, got: bytes.len() })?;
    Ok(Message { header, payload })
}

/// Writes a message into `buf`; returns its length.
pub fn encode(
    buf: &mut [u8],
    msg_type: u32,
    req_id: u32,
    tx_id: u32,
    payload: &[u8],
) -> Result<usize, WireError> {
    if payload.len() > XENSTORE_PAYLOAD_MAX {
        return Err(WireError::PayloadTooLarge { len: payload.len().try_into().unwrap_or(u32::MAX) });
    }
    let needed = HEADER_LEN + payload.len();
    let out = buf.get_mut(..needed).ok_or(WireError::BufferTooSmall { needed })?;
    let fields = [msg_type, req_id, tx_id, payload.len() as u32];
    for (chunk, value) in out[..HEADER_LEN].chunks_exact_mut(4).zip(fields) {
        chunk.copy_from_slice(&value.to_ne_bytes());
    }
    out[HEADER_LEN..].copy_from_slice(payload);
    Ok(needed)
}

/// [`encode`] into a new vector.
pub fn encode_vec(msg_type: u32, req_id: u32, tx_id: u32, payload: &[u8]) -> Result<Vec<u8>, WireError> {
    let mut buf = alloc::vec![0u8; HEADER_LEN + payload.len().min(XENSTORE_PAYLOAD_MAX)];
    encode(&mut buf, msg_type, req_id, tx_id, payload)?;
    Ok(buf)
}

/// Each string followed by a NUL: `["a", "b"]` becomes `"a\0b\0"`.
pub fn nul_terminated(strings: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(strings.iter().map(|s| s.len() + 1).sum());
    for s in strings {
        out.extend_from_slice(s);
        out.push(0);
    }
    out
}

/// Splits a payload of NUL-terminated strings (`"a\0b\0"` gives `a`, `b`;
/// an empty payload gives none). Bytes after the last NUL are an error.
pub fn split_strings(payload: &[u8]) -> Result<Vec<&[u8]>, WireError> {
    if payload.last().is_some_and(|&b| b != 0) {
        return Err(WireError::MissingNul);
    }
    Ok(payload.split_inclusive(|&b| b == 0).map(|s| &s[..s.len() - 1]).collect())
}

/// The payload's single string: exactly `"s\0"`.
pub fn single_string(payload: &[u8]) -> Result<&[u8], WireError> {
    match payload.iter().position(|&b| b == 0) {
        Some(end) if end + 1 == payload.len() => Ok(&payload[..end]),
        Some(_) => Err(WireError::Malformed),
        None => Err(WireError::MissingNul),
    }
}

/// A `WRITE` payload `"path\0value"`: the path and the raw value.
pub fn split_write(payload: &[u8]) -> Result<(&[u8], &[u8]), WireError> {
    let end = payload.iter().position(|&b| b == 0).ok_or(WireError::MissingNul)?;
    Ok((&payload[..end], &payload[end + 1..]))
}

/// The `XS_ERROR` payload for `error`: its name and a NUL.
pub fn error_payload(error: XsdError) -> Vec<u8> {
    nul_terminated(&[error.errstring.as_bytes()])
}

/// The `XS_ERROR` reply to a request.
pub fn error_reply(req_id: u32, tx_id: u32, error: XsdError) -> Vec<u8> {
    encode_vec(XS_ERROR, req_id, tx_id, &error_payload(error)).unwrap_or_default()
}

/// The table entry for an errno value, if xenstore can send it.
pub fn xsd_error(errnum: i32) -> Option<XsdError> {
    XSD_ERRORS.iter().copied().find(|e| e.errnum == errnum)
}

/// The table entry named by an `XS_ERROR` payload (`"ENOENT\0"`; a missing
/// NUL is tolerated). `None` if the name is not in the table.
pub fn parse_error_payload(payload: &[u8]) -> Option<XsdError> {
    let name = payload.split(|&b| b == 0).next().unwrap_or(payload);
    XSD_ERRORS.iter().copied().find(|e| e.errstring.as_bytes() == name)
}

/// A decimal number such as a domid or transaction id; no sign, no junk.
pub fn parse_decimal(text: &[u8]) -> Option<u32> {
    if text.is_empty() || text.len() > 10 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    text.iter().try_fold(0u32, |acc, &d| acc.checked_mul(10)?.checked_add(u32::from(d - b'0')))
}

/// What a permission entry allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    None,
    Read,
    Write,
    Both,
}

impl Access {
    /// The wire letter: `n`, `r`, `w` or `b`.
    pub fn letter(self) -> u8 {
        match self {
            Access::None => b'n',
            Access::Read => b'r',
            Access::Write => b'w',
            Access::Both => b'b',
        }
    }

    pub fn from_letter(letter: u8) -> Option<Self> {
        match letter {
            b'n' => Some(Access::None),
            b'r' => Some(Access::Read),
            b'w' => Some(Access::Write),
            b'b' => Some(Access::Both),
            _ => None,
        }
    }

    pub fn can_read(self) -> bool {
        matches!(self, Access::Read | Access::Both)
    }

    pub fn can_write(self) -> bool {
        matches!(self, Access::Write | Access::Both)
    }
}

/// One entry of a node's permission list, e.g. `r5`. The first entry names
/// the owner and what every domain not listed later may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permission {
    pub domid: DomId,
    pub access: Access,
}

impl Permission {
    pub const fn new(domid: DomId, access: Access) -> Self {
        Self { domid, access }
    }

    /// Parses `"<letter><domid>"`.
    pub fn parse(text: &[u8]) -> Result<Self, WireError> {
        let (&letter, digits) = text.split_first().ok_or(WireError::Malformed)?;
        let access = Access::from_letter(letter).ok_or(WireError::Malformed)?;
        let domid =
            parse_decimal(digits).and_then(|d| DomId::try_from(d).ok()).ok_or(WireError::Malformed)?;
        Ok(Self { domid, access })
    }

    /// Appends `"<letter><domid>"` (no NUL).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.push(self.access.letter());
        push_decimal(out, u32::from(self.domid));
    }
}

/// Appends `value` in decimal.
pub fn push_decimal(out: &mut Vec<u8>, value: u32) {
    let mut digits = [0u8; 10];
    let mut rest = value;
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// A permission list as sent by `GET_PERMS`/`SET_PERMS`: each entry
/// NUL-terminated.
pub fn permissions_payload(perms: &[Permission]) -> Vec<u8> {
    let mut out = Vec::new();
    for perm in perms {
        perm.write_to(&mut out);
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests;
