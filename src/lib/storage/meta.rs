//! Records of the meta column family.
//!
//! ```text
//! 0x01 'a'               applied index   u64be(index) ‖ u32be(crc32c of those 8 bytes)
//! 0x01 'c'               last commit ts  u64be
//! 0x01 'w'               watermark       u64be(ts) ‖ u32be(n) ‖ n × u64be(honoured pin ts)
//! 0x01 'W'               pending watermark (same encoding), present only while a
//!                        compaction is deleting history
//! 0x01 'p' ‖ u64be(id)   pin             u64be(ts) ‖ u64be(deadline_ms)
//! 0x01 'r'               restore marker  empty; present only while restore_from runs
//! 0x02 ‖ key             state-machine record (MetaPut), opaque value
//! ```
//!
//! Invariants: the store's records (0x01) and the state machine's (0x02)
//! never collide; every fixed-size record is length-checked on decode and
//! the applied index is checksummed, so a flipped byte is detected.

use super::api::Pin;
use super::error::StorageError;
use crate::clock::Timestamp;

pub const STORE_PREFIX: u8 = 0x01;
pub const STATE_MACHINE_PREFIX: u8 = 0x02;

pub const APPLIED_INDEX_KEY: [u8; 2] = [STORE_PREFIX, b'a'];
pub const LAST_COMMIT_TS_KEY: [u8; 2] = [STORE_PREFIX, b'c'];
pub const WATERMARK_KEY: [u8; 2] = [STORE_PREFIX, b'w'];
pub const PENDING_WATERMARK_KEY: [u8; 2] = [STORE_PREFIX, b'W'];
pub const PIN_PREFIX: [u8; 2] = [STORE_PREFIX, b'p'];
pub const RESTORE_MARKER_KEY: [u8; 2] = [STORE_PREFIX, b'r'];

/// Meta key of a state-machine record.
pub fn state_machine_key(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 1);
    out.push(STATE_MACHINE_PREFIX);
    out.extend_from_slice(key);
    out
}

pub fn pin_key(id: u64) -> Vec<u8> {
    let mut out = PIN_PREFIX.to_vec();
    out.extend_from_slice(&id.to_be_bytes());
    out
}

pub fn encode_applied_index(index: u64) -> [u8; 12] {
    let mut out = [0u8; 12];
    out[..8].copy_from_slice(&index.to_be_bytes());
    let crc = crc32c::crc32c(&out[..8]);
    out[8..].copy_from_slice(&crc.to_be_bytes());
    out
}

pub fn decode_applied_index(bytes: &[u8]) -> Result<u64, StorageError> {
    if bytes.len() != 12 {
        return Err(StorageError::CorruptAppliedIndex {
            reason: format!("record is {} bytes, expected 12", bytes.len()),
        });
    }
    let (index, crc) = bytes.split_at(8);
    let expected = crc32c::crc32c(index);
    let stored = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if expected != stored {
        return Err(StorageError::CorruptAppliedIndex {
            reason: format!("checksum mismatch (stored {stored:#010x}, computed {expected:#010x})"),
        });
    }
    Ok(u64_at(index, 0))
}

pub fn decode_u64(key: &[u8], bytes: &[u8]) -> Result<u64, StorageError> {
    if bytes.len() != 8 {
        return Err(StorageError::corrupt(
            "meta",
            key,
            format!("expected an 8-byte value, found {} bytes", bytes.len()),
        ));
    }
    Ok(u64_at(bytes, 0))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_be_bytes(word)
}

/// A retention watermark and the pin timestamps below it whose history was
/// kept (reads at exactly those timestamps stay possible while the pin lives).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatermarkRecord {
    pub ts: Timestamp,
    /// Ascending, all `< ts`.
    pub honoured: Vec<Timestamp>,
}

impl WatermarkRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + 8 * self.honoured.len());
        out.extend_from_slice(&self.ts.to_be_bytes());
        out.extend_from_slice(&(self.honoured.len() as u32).to_be_bytes());
        for ts in &self.honoured {
            out.extend_from_slice(&ts.to_be_bytes());
        }
        out
    }

    pub fn decode(key: &[u8], bytes: &[u8]) -> Result<WatermarkRecord, StorageError> {
        let bad = |reason: String| StorageError::corrupt("meta", key, reason);
        if bytes.len() < 12 {
            return Err(bad(format!(
                "watermark record is {} bytes, below 12",
                bytes.len()
            )));
        }
        let count = u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
        if bytes.len() != 12 + 8 * count {
            return Err(bad(format!(
                "watermark record is {} bytes but announces {count} pins",
                bytes.len()
            )));
        }
        let ts = u64_at(bytes, 0);
        let honoured: Vec<Timestamp> = (0..count).map(|i| u64_at(bytes, 12 + 8 * i)).collect();
        if honoured.windows(2).any(|w| w[0] >= w[1]) || honoured.last().is_some_and(|&h| h >= ts) {
            return Err(bad(
                "honoured pin timestamps not ascending below the watermark".into(),
            ));
        }
        Ok(WatermarkRecord { ts, honoured })
    }
}

pub fn encode_pin(pin: &Pin) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&pin.ts.to_be_bytes());
    out[8..].copy_from_slice(&pin.deadline_ms.to_be_bytes());
    out
}

pub fn decode_pin(key: &[u8], value: &[u8]) -> Result<Pin, StorageError> {
    let id_bytes = key
        .strip_prefix(&PIN_PREFIX)
        .filter(|rest| rest.len() == 8)
        .ok_or_else(|| StorageError::corrupt("meta", key, "pin key is not 0x01 'p' ‖ u64be(id)"))?;
    if value.len() != 16 {
        return Err(StorageError::corrupt(
            "meta",
            key,
            format!("pin record is {} bytes, expected 16", value.len()),
        ));
    }
    Ok(Pin {
        id: u64_at(id_bytes, 0),
        ts: u64_at(value, 0),
        deadline_ms: u64_at(value, 8),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn applied_index_round_trips_and_detects_flips(index in any::<u64>(), bit in 0usize..96) {
            let rec = encode_applied_index(index);
            prop_assert_eq!(decode_applied_index(&rec).unwrap(), index);
            let mut flipped = rec;
            flipped[bit / 8] ^= 1 << (bit % 8);
            let is_corrupt = matches!(
                decode_applied_index(&flipped),
                Err(StorageError::CorruptAppliedIndex { .. })
            );
            prop_assert!(is_corrupt);
        }

        #[test]
        fn watermark_round_trips(ts in 1u64.., mut honoured in prop::collection::btree_set(any::<u64>(), 0..5)) {
            honoured.retain(|&h| h < ts);
            let rec = WatermarkRecord { ts, honoured: honoured.into_iter().collect() };
            prop_assert_eq!(WatermarkRecord::decode(&WATERMARK_KEY, &rec.encode()).unwrap(), rec);
        }

        #[test]
        fn pin_round_trips(id in any::<u64>(), ts in any::<u64>(), deadline_ms in any::<u64>()) {
            let pin = Pin { id, ts, deadline_ms };
            prop_assert_eq!(decode_pin(&pin_key(id), &encode_pin(&pin)).unwrap(), pin);
        }
    }

    #[test]
    fn malformed_records_are_errors() {
        assert!(decode_applied_index(&[1, 2, 3]).is_err());
        assert!(decode_u64(&LAST_COMMIT_TS_KEY, &[0; 7]).is_err());
        assert!(WatermarkRecord::decode(&WATERMARK_KEY, &[0; 13]).is_err());
        assert!(decode_pin(&pin_key(1), &[0; 15]).is_err());
        assert!(decode_pin(b"\x01pshort", &[0; 16]).is_err());
        assert_eq!(state_machine_key(b"x"), vec![0x02, b'x']);
    }
}
