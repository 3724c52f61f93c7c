//! Storage layout of Redis keys (docs/redis-compatibility.md § "Storage
//! layout").
//!
//! ```text
//! route key   = 'r' ‖ redis_key
//! P           = storage::route_prefix(route key)      (escaped ‖ 0x00 0x01)
//! META row    = P                                     type ‖ body, TTL = version expire_at
//! hash field  = P ‖ 'h' ‖ field                       value
//! set member  = P ‖ 's' ‖ member                      (empty)
//! zset member = P ‖ 'z' ‖ member                      f64 score, 8 bytes BE bits
//! zset index  = P ‖ 'i' ‖ sortable(score) ‖ member    (empty)
//! list item   = P ‖ 'l' ‖ sortable(seq i64)           element
//! stream entry= P ‖ 'x' ‖ u64be(ms) ‖ u64be(seq)      field/value pairs
//! ```
//!
//! Invariants: every row of one Redis key starts with `P`, and `P` itself is
//! the META row, so the META row is the first row of its key's contiguous
//! range `[P, successor(P))`; range-deleting that range removes exactly the
//! key. The score and sequence encodings are order-preserving.

use crate::storage::{NS_REDIS, route_bound, route_prefix};

pub const TAG_HASH: u8 = b'h';
pub const TAG_SET: u8 = b's';
pub const TAG_ZMEMBER: u8 = b'z';
pub const TAG_ZINDEX: u8 = b'i';
pub const TAG_LIST: u8 = b'l';
pub const TAG_STREAM: u8 = b'x';

/// The route key of a Redis key.
pub fn route_key(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 1);
    out.push(NS_REDIS);
    out.extend_from_slice(key);
    out
}

/// The META row key of `key`, which is also the prefix of all its rows.
pub fn meta_key(key: &[u8]) -> Vec<u8> {
    route_prefix(&route_key(key))
}

/// The exclusive end of `key`'s rows: the META key with its terminator's
/// last byte incremented (`0x00 0x01` → `0x00 0x02`), so nothing of a
/// longer Redis key falls inside.
pub fn key_end(key: &[u8]) -> Vec<u8> {
    successor_of_prefix(&meta_key(key))
}

/// `prefix` with its last byte incremented; `prefix` ends in the
/// terminator `0x00 0x01`, so this never overflows.
pub fn successor_of_prefix(prefix: &[u8]) -> Vec<u8> {
    let mut out = prefix.to_vec();
    if let Some(last) = out.last_mut() {
        *last = last.wrapping_add(1);
    }
    out
}

/// The user-key range holding the whole Redis namespace.
pub fn namespace_range() -> (Vec<u8>, Vec<u8>) {
    (route_bound(&[NS_REDIS]), route_bound(&[NS_REDIS + 1]))
}

/// A member row key: `P ‖ tag ‖ suffix`.
pub fn member_key(key: &[u8], tag: u8, suffix: &[u8]) -> Vec<u8> {
    let mut out = meta_key(key);
    out.push(tag);
    out.extend_from_slice(suffix);
    out
}

/// The range `[P ‖ tag, P ‖ tag+1)` of all member rows with `tag`.
pub fn tag_range(key: &[u8], tag: u8) -> (Vec<u8>, Vec<u8>) {
    let prefix = meta_key(key);
    let mut start = prefix.clone();
    start.push(tag);
    let mut end = prefix;
    end.push(tag + 1);
    (start, end)
}

/// Splits a storage user key of the Redis namespace into (redis key,
/// prefix length). `None` when it is not a Redis row.
pub fn split_user_key(user_key: &[u8]) -> Option<(Vec<u8>, usize)> {
    let term = user_key.windows(2).position(|w| w == [0x00, 0x01])?;
    let route = crate::storage::keys::unescape(&user_key[..term])?;
    if route.first() != Some(&NS_REDIS) {
        return None;
    }
    Some((route[1..].to_vec(), term + 2))
}

/// Order-preserving encoding of a score; −0 is stored as +0 (Redis
/// treats them as equal). NaN never reaches here (rejected at intake).
pub fn sortable_f64(score: f64) -> [u8; 8] {
    let score = if score == 0.0 { 0.0 } else { score };
    let bits = score.to_bits();
    let flipped = if bits >> 63 == 0 {
        bits ^ (1 << 63)
    } else {
        !bits
    };
    flipped.to_be_bytes()
}

/// Reverses [`sortable_f64`].
pub fn unsortable_f64(bytes: [u8; 8]) -> f64 {
    let flipped = u64::from_be_bytes(bytes);
    let bits = if flipped >> 63 == 1 {
        flipped ^ (1 << 63)
    } else {
        !flipped
    };
    f64::from_bits(bits)
}

/// Order-preserving encoding of a list sequence number.
pub fn sortable_i64(seq: i64) -> [u8; 8] {
    ((seq as u64) ^ (1 << 63)).to_be_bytes()
}

/// Reverses [`sortable_i64`].
pub fn unsortable_i64(bytes: [u8; 8]) -> i64 {
    (u64::from_be_bytes(bytes) ^ (1 << 63)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn meta_is_first_and_ranges_nest() {
        let meta = meta_key(b"k");
        let field = member_key(b"k", TAG_HASH, b"");
        assert!(meta < field);
        assert!(field < key_end(b"k"));
        // A longer key never falls inside a shorter key's range.
        let longer = meta_key(b"k\x00");
        assert!(!(longer >= meta && longer < key_end(b"k")));
        let (start, end) = namespace_range();
        assert!(meta >= start && meta < end);
    }

    proptest! {
        #[test]
        fn scores_keep_order(a in any::<f64>(), b in any::<f64>()) {
            prop_assume!(!a.is_nan() && !b.is_nan());
            let (ea, eb) = (sortable_f64(a), sortable_f64(b));
            if a < b { prop_assert!(ea < eb); }
            if a == b { prop_assert_eq!(ea, eb); }
            let back = unsortable_f64(ea);
            prop_assert!(back == a);
        }

        #[test]
        fn seqs_keep_order(a in any::<i64>(), b in any::<i64>()) {
            prop_assert_eq!(a.cmp(&b), sortable_i64(a).cmp(&sortable_i64(b)));
            prop_assert_eq!(unsortable_i64(sortable_i64(a)), a);
        }

        #[test]
        fn user_keys_split_back(key in prop::collection::vec(any::<u8>(), 0..12),
                                suffix in prop::collection::vec(any::<u8>(), 0..6)) {
            let row = member_key(&key, TAG_HASH, &suffix);
            let (back, len) = split_user_key(&row).unwrap();
            prop_assert_eq!(&back, &key);
            prop_assert_eq!(len, meta_key(&key).len());
            let (a, b) = (meta_key(&key), key_end(&key));
            prop_assert!(row >= a && row < b);
        }
    }
}
