//! The META row of a Redis key: its type and per-type bookkeeping.
//!
//! ```text
//! string : 0x01 ‖ value bytes
//! hash   : 0x02 ‖ u64be(field count)
//! set    : 0x03 ‖ u64be(member count)
//! zset   : 0x04 ‖ u64be(member count)
//! list   : 0x05 ‖ i64be(head) ‖ i64be(tail)        items live at seq in [head, tail)
//! stream : 0x06 ‖ u64be(length) ‖ u64be(last ms) ‖ u64be(last seq)
//!               ‖ u64be(entries added) ‖ u64be(max deleted ms) ‖ u64be(max deleted seq)
//! ```
//!
//! The TTL is not in the body: it is the `expire_at` of the row's version,
//! so an expired key is invisible at every read timestamp past its deadline
//! on every replica. Every write to a key rewrites its META row, so the
//! row's commit timestamp is the key's version (the WATCH token).

use super::error::ModelError;
use crate::clock::Timestamp;

/// The Redis type of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Hash,
    Set,
    ZSet,
    List,
    Stream,
}

impl Kind {
    /// The `TYPE` reply word.
    pub fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Hash => "hash",
            Kind::Set => "set",
            Kind::ZSet => "zset",
            Kind::List => "list",
            Kind::Stream => "stream",
        }
    }

    fn tag(self) -> u8 {
        match self {
            Kind::String => 1,
            Kind::Hash => 2,
            Kind::Set => 3,
            Kind::ZSet => 4,
            Kind::List => 5,
            Kind::Stream => 6,
        }
    }
}

/// A stream's bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamMeta {
    pub length: u64,
    pub last_id: (u64, u64),
    pub entries_added: u64,
    pub max_deleted: (u64, u64),
}

/// The decoded body of a META row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    String(Vec<u8>),
    Hash { count: u64 },
    Set { count: u64 },
    ZSet { count: u64 },
    List { head: i64, tail: i64 },
    Stream(StreamMeta),
}

/// A META row as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub body: Body,
    /// HLC deadline (0 = no TTL).
    pub expire_at: Timestamp,
    /// Commit ts of the row (0 when written by the running transaction).
    pub commit_ts: Timestamp,
}

impl Body {
    pub fn kind(&self) -> Kind {
        match self {
            Body::String(_) => Kind::String,
            Body::Hash { .. } => Kind::Hash,
            Body::Set { .. } => Kind::Set,
            Body::ZSet { .. } => Kind::ZSet,
            Body::List { .. } => Kind::List,
            Body::Stream(_) => Kind::Stream,
        }
    }

    /// Number of elements (1 for a string), as `OBJECT`-ish callers and
    /// the active expirer use it.
    pub fn len(&self) -> u64 {
        match self {
            Body::String(_) => 1,
            Body::Hash { count } | Body::Set { count } | Body::ZSet { count } => *count,
            Body::List { head, tail } => tail.saturating_sub(*head) as u64,
            Body::Stream(s) => s.length,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.kind().tag()];
        match self {
            Body::String(value) => out.extend_from_slice(value),
            Body::Hash { count } | Body::Set { count } | Body::ZSet { count } => {
                out.extend_from_slice(&count.to_be_bytes())
            }
            Body::List { head, tail } => {
                out.extend_from_slice(&head.to_be_bytes());
                out.extend_from_slice(&tail.to_be_bytes());
            }
            Body::Stream(s) => {
                for n in [
                    s.length,
                    s.last_id.0,
                    s.last_id.1,
                    s.entries_added,
                    s.max_deleted.0,
                    s.max_deleted.1,
                ] {
                    out.extend_from_slice(&n.to_be_bytes());
                }
            }
        }
        out
    }

    pub fn decode(key: &[u8], bytes: &[u8]) -> Result<Body, ModelError> {
        let corrupt = |detail: &str| ModelError::corrupt(key, detail);
        let (&tag, rest) = bytes
            .split_first()
            .ok_or_else(|| corrupt("empty META row"))?;
        let words = |n: usize| -> Result<Vec<u64>, ModelError> {
            if rest.len() != n * 8 {
                return Err(corrupt(&format!(
                    "META body of type {tag} must be {} bytes, found {}",
                    n * 8,
                    rest.len()
                )));
            }
            Ok(rest
                .chunks_exact(8)
                .map(|c| {
                    let mut raw = [0u8; 8];
                    raw.copy_from_slice(c);
                    u64::from_be_bytes(raw)
                })
                .collect())
        };
        Ok(match tag {
            1 => Body::String(rest.to_vec()),
            2 => Body::Hash {
                count: words(1)?[0],
            },
            3 => Body::Set {
                count: words(1)?[0],
            },
            4 => Body::ZSet {
                count: words(1)?[0],
            },
            5 => {
                let w = words(2)?;
                Body::List {
                    head: w[0] as i64,
                    tail: w[1] as i64,
                }
            }
            6 => {
                let w = words(6)?;
                Body::Stream(StreamMeta {
                    length: w[0],
                    last_id: (w[1], w[2]),
                    entries_added: w[3],
                    max_deleted: (w[4], w[5]),
                })
            }
            other => return Err(corrupt(&format!("unknown META type tag {other}"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn body() -> impl Strategy<Value = Body> {
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..16).prop_map(Body::String),
            any::<u64>().prop_map(|count| Body::Hash { count }),
            any::<u64>().prop_map(|count| Body::Set { count }),
            any::<u64>().prop_map(|count| Body::ZSet { count }),
            (any::<i64>(), any::<i64>()).prop_map(|(head, tail)| Body::List { head, tail }),
            any::<[u64; 6]>().prop_map(|w| Body::Stream(StreamMeta {
                length: w[0],
                last_id: (w[1], w[2]),
                entries_added: w[3],
                max_deleted: (w[4], w[5]),
            })),
        ]
    }

    proptest! {
        #[test]
        fn round_trips(b in body()) {
            prop_assert_eq!(Body::decode(b"k", &b.encode()).unwrap(), b);
        }
    }

    #[test]
    fn rejects_garbage() {
        assert!(Body::decode(b"k", b"").is_err());
        assert!(Body::decode(b"k", &[9]).is_err());
        assert!(Body::decode(b"k", &[2, 0, 0]).is_err());
    }
}
