//! Value encoding of one MVCC version in the data column family.
//!
//! ```text
//! byte 0      flags: bit 0 = tombstone; bits 1..7 reserved, must be 0
//! bytes 1..9  u64be expire_at (HLC timestamp, 0 = never expires)
//! bytes 9..17 u64be start_ts of the writing transaction
//! bytes 17..  body (empty for tombstones)
//! ```
//!
//! Invariants: a tombstone has an empty body and `expire_at = 0`; decoding
//! rejects short values, reserved flag bits and tombstones with a body,
//! naming the key, so corruption is reported and never misread.

use super::error::StorageError;
use crate::clock::Timestamp;

pub const HEADER_LEN: usize = 17;
const FLAG_TOMBSTONE: u8 = 0x01;

/// One decoded version (owned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVersion {
    pub tombstone: bool,
    pub expire_at: Timestamp,
    pub start_ts: Timestamp,
    pub value: Vec<u8>,
}

/// A decoded version borrowing its body from the encoded bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VersionRef<'a> {
    pub tombstone: bool,
    pub expire_at: Timestamp,
    pub start_ts: Timestamp,
    pub body: &'a [u8],
}

impl VersionRef<'_> {
    /// Visible (live) to a reader at `read_ts`: not a tombstone, not expired.
    pub fn is_live_at(&self, read_ts: Timestamp) -> bool {
        !self.tombstone && (self.expire_at == 0 || self.expire_at > read_ts)
    }
}

impl StoredVersion {
    pub fn is_live_at(&self, read_ts: Timestamp) -> bool {
        !self.tombstone && (self.expire_at == 0 || self.expire_at > read_ts)
    }
}

/// Encodes a live value.
pub fn encode_put(value: &[u8], expire_at: Timestamp, start_ts: Timestamp) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + value.len());
    out.push(0);
    out.extend_from_slice(&expire_at.to_be_bytes());
    out.extend_from_slice(&start_ts.to_be_bytes());
    out.extend_from_slice(value);
    out
}

/// Encodes a tombstone.
pub fn encode_tombstone(start_ts: Timestamp) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN);
    out.push(FLAG_TOMBSTONE);
    out.extend_from_slice(&0u64.to_be_bytes());
    out.extend_from_slice(&start_ts.to_be_bytes());
    out
}

/// Encodes any version.
pub fn encode_value(version: &StoredVersion) -> Vec<u8> {
    if version.tombstone {
        encode_tombstone(version.start_ts)
    } else {
        encode_put(&version.value, version.expire_at, version.start_ts)
    }
}

pub(crate) fn decode_value_ref<'a>(
    key_for_errors: &[u8],
    bytes: &'a [u8],
) -> Result<VersionRef<'a>, StorageError> {
    if bytes.len() < HEADER_LEN {
        return Err(StorageError::corrupt(
            "data",
            key_for_errors,
            format!(
                "value is {} bytes, shorter than the {HEADER_LEN}-byte header",
                bytes.len()
            ),
        ));
    }
    let flags = bytes[0];
    if flags & !FLAG_TOMBSTONE != 0 {
        return Err(StorageError::corrupt(
            "data",
            key_for_errors,
            format!("reserved value flag bits set: {flags:#04x}"),
        ));
    }
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[1..9]);
    let expire_at = u64::from_be_bytes(word);
    word.copy_from_slice(&bytes[9..17]);
    let start_ts = u64::from_be_bytes(word);
    let tombstone = flags & FLAG_TOMBSTONE != 0;
    let body = &bytes[HEADER_LEN..];
    if tombstone && (!body.is_empty() || expire_at != 0) {
        return Err(StorageError::corrupt(
            "data",
            key_for_errors,
            "tombstone with a body or an expiry",
        ));
    }
    Ok(VersionRef {
        tombstone,
        expire_at,
        start_ts,
        body,
    })
}

/// Decodes a version; `key_for_errors` (the physical key) is named in errors.
pub fn decode_value(key_for_errors: &[u8], bytes: &[u8]) -> Result<StoredVersion, StorageError> {
    let v = decode_value_ref(key_for_errors, bytes)?;
    Ok(StoredVersion {
        tombstone: v.tombstone,
        expire_at: v.expire_at,
        start_ts: v.start_ts,
        value: v.body.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn version() -> impl Strategy<Value = StoredVersion> {
        prop_oneof![
            (
                any::<u64>(),
                any::<u64>(),
                prop::collection::vec(any::<u8>(), 0..32)
            )
                .prop_map(|(expire_at, start_ts, value)| StoredVersion {
                    tombstone: false,
                    expire_at,
                    start_ts,
                    value
                }),
            any::<u64>().prop_map(|start_ts| StoredVersion {
                tombstone: true,
                expire_at: 0,
                start_ts,
                value: Vec::new()
            }),
        ]
    }

    proptest! {
        #[test]
        fn value_round_trips(v in version()) {
            prop_assert_eq!(decode_value(b"k", &encode_value(&v)).unwrap(), v);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(v) = decode_value(b"k", &bytes) {
                prop_assert_eq!(encode_value(&v), bytes);
            }
        }
    }

    #[test]
    fn errors_name_the_key() {
        let err = decode_value(b"\x01key", &[0u8; 5]).unwrap_err();
        assert!(err.to_string().contains("016b6579"), "{err}");
        let mut bad_flags = encode_put(b"v", 0, 1);
        bad_flags[0] = 0x80;
        assert!(
            decode_value(b"k", &bad_flags)
                .unwrap_err()
                .to_string()
                .contains("reserved")
        );
        let mut bad_tomb = encode_tombstone(1);
        bad_tomb.push(7);
        assert!(decode_value(b"k", &bad_tomb).is_err());
    }

    #[test]
    fn liveness_respects_expiry() {
        let v = StoredVersion {
            tombstone: false,
            expire_at: 10,
            start_ts: 1,
            value: vec![],
        };
        assert!(v.is_live_at(9));
        assert!(!v.is_live_at(10));
        let forever = StoredVersion { expire_at: 0, ..v };
        assert!(forever.is_live_at(u64::MAX));
    }
}
