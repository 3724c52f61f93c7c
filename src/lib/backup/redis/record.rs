//! The logical Redis record the decoder pushes and the encoder pulls: one
//! key, its optional absolute expiry, and its whole value. Independent of
//! how the store lays keys out.
//!
//! Canonical form (what the tree reader yields): hash fields, set members
//! and sorted-set members sorted by raw bytes; stream entries by id. The
//! writer accepts any order and sorts, but refuses what Redis cannot hold:
//! duplicate fields or members, NaN scores, unordered or duplicate stream
//! ids, a stream `last_id` behind its newest entry, and an expiry of 0.

use std::cmp::Ordering;

/// A stream entry id, `<ms>-<seq>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl StreamId {
    /// Parses the canonical `<ms>-<seq>` form (decimal, no sign, no
    /// leading zeros).
    pub fn parse(text: &str) -> Option<StreamId> {
        let (ms, seq) = text.split_once('-')?;
        let number = |part: &str| -> Option<u64> {
            let canonical = !part.is_empty()
                && part.bytes().all(|b| b.is_ascii_digit())
                && (part == "0" || !part.starts_with('0'));
            if canonical { part.parse().ok() } else { None }
        };
        Some(StreamId {
            ms: number(ms)?,
            seq: number(seq)?,
        })
    }
}

/// One stream entry: its id and its field/value pairs in XADD order
/// (duplicates allowed, as Redis allows them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEntry {
    pub id: StreamId,
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The value of one Redis key.
#[derive(Debug, Clone, PartialEq)]
pub enum RedisValue {
    String(Vec<u8>),
    /// A HyperLogLog sketch, kept as opaque bytes.
    Hll(Vec<u8>),
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
    /// Items left to right, as `LRANGE 0 -1` shows them.
    List(Vec<Vec<u8>>),
    Set(Vec<Vec<u8>>),
    ZSet(Vec<(Vec<u8>, f64)>),
    /// Entries plus the stream's last generated id (which may be beyond
    /// the newest entry after deletions).
    Stream {
        entries: Vec<StreamEntry>,
        last_id: StreamId,
    },
}

/// One key of one Redis database.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisRecord {
    pub key: Vec<u8>,
    /// Absolute expiry in Unix milliseconds; `None` = persistent.
    pub expire_at_ms: Option<u64>,
    pub value: RedisValue,
}

/// The seven value types, in the order the tree reader visits them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RedisKind {
    String,
    Hll,
    Hash,
    List,
    Set,
    ZSet,
    Stream,
}

impl RedisKind {
    pub const ALL: [RedisKind; 7] = [
        RedisKind::String,
        RedisKind::Hll,
        RedisKind::Hash,
        RedisKind::List,
        RedisKind::Set,
        RedisKind::ZSet,
        RedisKind::Stream,
    ];

    /// Subdirectory of `redis/db_<n>/` holding this type.
    pub fn dir(self) -> &'static str {
        match self {
            RedisKind::String => "strings",
            RedisKind::Hll => "hll",
            RedisKind::Hash => "hashes",
            RedisKind::List => "lists",
            RedisKind::Set => "sets",
            RedisKind::ZSet => "zsets",
            RedisKind::Stream => "streams",
        }
    }

    /// File suffix of this type.
    pub fn extension(self) -> &'static str {
        match self {
            RedisKind::String | RedisKind::Hll => ".bin",
            RedisKind::Stream => ".jsonl",
            _ => ".json",
        }
    }
}

impl RedisValue {
    pub fn kind(&self) -> RedisKind {
        match self {
            RedisValue::String(_) => RedisKind::String,
            RedisValue::Hll(_) => RedisKind::Hll,
            RedisValue::Hash(_) => RedisKind::Hash,
            RedisValue::List(_) => RedisKind::List,
            RedisValue::Set(_) => RedisKind::Set,
            RedisValue::ZSet(_) => RedisKind::ZSet,
            RedisValue::Stream { .. } => RedisKind::Stream,
        }
    }
}

fn first_duplicate<T, K: Ord>(sorted: &[T], key: impl Fn(&T) -> &K) -> bool {
    sorted
        .windows(2)
        .any(|pair| key(&pair[0]).cmp(key(&pair[1])) == Ordering::Equal)
}

impl RedisRecord {
    /// Returns the record in canonical order, or why it cannot be stored.
    ///
    /// # Errors
    /// A static description of the first rule broken.
    pub fn canonical(&self) -> Result<RedisRecord, &'static str> {
        if self.expire_at_ms == Some(0) {
            return Err("expire_at_ms of 0 (use None for a persistent key)");
        }
        let value = match &self.value {
            RedisValue::Hash(fields) => {
                let mut fields = fields.clone();
                fields.sort_by(|a, b| a.0.cmp(&b.0));
                if first_duplicate(&fields, |f| &f.0) {
                    return Err("hash field repeated");
                }
                RedisValue::Hash(fields)
            }
            RedisValue::Set(members) => {
                let mut members = members.clone();
                members.sort();
                if first_duplicate(&members, |m| m) {
                    return Err("set member repeated");
                }
                RedisValue::Set(members)
            }
            RedisValue::ZSet(members) => {
                if members.iter().any(|(_, score)| score.is_nan()) {
                    return Err("NaN sorted-set score");
                }
                let mut members = members.clone();
                members.sort_by(|a, b| a.0.cmp(&b.0));
                if first_duplicate(&members, |m| &m.0) {
                    return Err("sorted-set member repeated");
                }
                RedisValue::ZSet(members)
            }
            RedisValue::Stream { entries, last_id } => {
                if entries.windows(2).any(|pair| pair[0].id >= pair[1].id) {
                    return Err("stream entry ids not strictly ascending");
                }
                if entries.last().is_some_and(|newest| newest.id > *last_id) {
                    return Err("stream last_id behind its newest entry");
                }
                RedisValue::Stream {
                    entries: entries.clone(),
                    last_id: *last_id,
                }
            }
            other => other.clone(),
        };
        Ok(RedisRecord {
            key: self.key.clone(),
            expire_at_ms: self.expire_at_ms,
            value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_parse_only_in_canonical_form() {
        assert_eq!(
            StreamId::parse("1714400000000-0"),
            Some(StreamId {
                ms: 1_714_400_000_000,
                seq: 0
            })
        );
        assert_eq!(StreamId { ms: 5, seq: 7 }.to_string(), "5-7");
        for bad in [
            "",
            "1",
            "1-",
            "-1",
            "01-0",
            "1-+2",
            "1-2-3",
            "18446744073709551616-0",
        ] {
            assert_eq!(StreamId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn canonical_sorts_and_refuses_impossible_values() {
        let record = |value| RedisRecord {
            key: b"k".to_vec(),
            expire_at_ms: None,
            value,
        };
        let hash = record(RedisValue::Hash(vec![
            (b"b".to_vec(), b"1".to_vec()),
            (b"a".to_vec(), b"2".to_vec()),
        ]));
        assert_eq!(
            hash.canonical().unwrap().value,
            RedisValue::Hash(vec![
                (b"a".to_vec(), b"2".to_vec()),
                (b"b".to_vec(), b"1".to_vec())
            ])
        );
        assert!(
            record(RedisValue::Set(vec![b"x".to_vec(), b"x".to_vec()]))
                .canonical()
                .is_err()
        );
        assert!(
            record(RedisValue::ZSet(vec![(b"m".to_vec(), f64::NAN)]))
                .canonical()
                .is_err()
        );
        let entry = |ms| StreamEntry {
            id: StreamId { ms, seq: 0 },
            fields: vec![],
        };
        let stream = |entries, last| {
            record(RedisValue::Stream {
                entries,
                last_id: StreamId { ms: last, seq: 0 },
            })
        };
        assert!(stream(vec![entry(2), entry(1)], 5).canonical().is_err());
        assert!(stream(vec![entry(1), entry(9)], 5).canonical().is_err());
        assert!(stream(vec![entry(1), entry(5)], 5).canonical().is_ok());
        let mut zero_ttl = record(RedisValue::String(vec![]));
        zero_ttl.expire_at_ms = Some(0);
        assert!(zero_ttl.canonical().is_err());
    }
}
