//! Byte envelopes the Raft layer wraps around what it puts in the log and in
//! raft-rs contexts, so an applying node can find the caller waiting for an
//! entry (possibly on another node: the proposal's origin).
//!
//! ```text
//! normal entry data   0x01 ‖ u64be(origin node) ‖ u64be(request id) ‖ payload
//! read-index context  0x02 ‖ u64be(origin node) ‖ u64be(request id)
//! conf-change context 0x03 ‖ u64be(origin node) ‖ u64be(request id) ‖ address (UTF-8)
//! ```
//! An empty normal entry is the leader's no-op of a new term.

use crate::raft::error::RaftError;

const TAG_PROPOSAL: u8 = 0x01;
const TAG_READ: u8 = 0x02;
const TAG_CONF: u8 = 0x03;
const HEADER: usize = 17;

/// Who is waiting for an entry or read: the node that accepted the request
/// and its request id there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestTag {
    pub origin: u64,
    pub id: u64,
}

fn encode(tag: u8, req: RequestTag, rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + rest.len());
    out.push(tag);
    out.extend_from_slice(&req.origin.to_be_bytes());
    out.extend_from_slice(&req.id.to_be_bytes());
    out.extend_from_slice(rest);
    out
}

fn decode<'a>(
    expected: u8,
    what: &str,
    bytes: &'a [u8],
) -> Result<(RequestTag, &'a [u8]), RaftError> {
    if bytes.len() < HEADER || bytes[0] != expected {
        return Err(RaftError::Invalid(format!(
            "malformed {what} envelope ({} bytes, tag {:?})",
            bytes.len(),
            bytes.first()
        )));
    }
    let origin = u64::from_be_bytes(bytes[1..9].try_into().unwrap_or([0; 8]));
    let id = u64::from_be_bytes(bytes[9..17].try_into().unwrap_or([0; 8]));
    Ok((RequestTag { origin, id }, &bytes[HEADER..]))
}

pub fn encode_proposal(req: RequestTag, payload: &[u8]) -> Vec<u8> {
    encode(TAG_PROPOSAL, req, payload)
}

pub fn decode_proposal(bytes: &[u8]) -> Result<(RequestTag, &[u8]), RaftError> {
    decode(TAG_PROPOSAL, "proposal", bytes)
}

pub fn encode_read(req: RequestTag) -> Vec<u8> {
    encode(TAG_READ, req, &[])
}

pub fn decode_read(bytes: &[u8]) -> Result<RequestTag, RaftError> {
    let (req, rest) = decode(TAG_READ, "read", bytes)?;
    if !rest.is_empty() {
        return Err(RaftError::Invalid(format!(
            "read envelope has {} trailing bytes",
            rest.len()
        )));
    }
    Ok(req)
}

pub fn encode_conf(req: RequestTag, address: &str) -> Vec<u8> {
    encode(TAG_CONF, req, address.as_bytes())
}

pub fn decode_conf(bytes: &[u8]) -> Result<(RequestTag, String), RaftError> {
    let (req, rest) = decode(TAG_CONF, "conf-change", bytes)?;
    let addr = std::str::from_utf8(rest)
        .map_err(|e| RaftError::Invalid(format!("conf-change address is not UTF-8: {e}")))?;
    Ok((req, addr.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn proposal_round_trip(origin: u64, id: u64, payload in proptest::collection::vec(any::<u8>(), 0..64)) {
            let req = RequestTag { origin, id };
            let bytes = encode_proposal(req, &payload);
            let (back, p) = decode_proposal(&bytes).unwrap();
            prop_assert_eq!(back, req);
            prop_assert_eq!(p, &payload[..]);
        }

        #[test]
        fn read_and_conf_round_trip(origin: u64, id: u64, addr in "[a-z0-9.:]{0,30}") {
            let req = RequestTag { origin, id };
            prop_assert_eq!(decode_read(&encode_read(req)).unwrap(), req);
            let (back, a) = decode_conf(&encode_conf(req, &addr)).unwrap();
            prop_assert_eq!(back, req);
            prop_assert_eq!(a, addr);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = decode_proposal(&bytes);
            let _ = decode_read(&bytes);
            let _ = decode_conf(&bytes);
        }
    }

    #[test]
    fn kinds_are_not_confused() {
        let req = RequestTag { origin: 1, id: 2 };
        assert!(decode_proposal(&encode_read(req)).is_err());
        assert!(decode_read(&encode_proposal(req, b"x")).is_err());
        assert!(decode_proposal(&[]).is_err());
    }
}
