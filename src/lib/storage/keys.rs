//! Physical key encoding of the MVCC data and lock column families.
//!
//! ```text
//! data key = escape(user_key) ‖ 0x00 0x01 ‖ u64be(!commit_ts)
//! lock key = escape(user_key) ‖ 0x00 0x01
//! escape   : 0x00 → 0x00 0xFF, every other byte unchanged
//! ```
//!
//! Invariants (proved in docs/storage.md, checked by proptests below):
//! - order-preserving: `a < b` ⇔ `encode(a, _) < encode(b, _)` for any
//!   timestamps, because the escaped terminator `0x00 0x01` sorts below both
//!   every non-zero byte and the escaped zero `0x00 0xFF`;
//! - prefix-free: no escaped key followed by the terminator is a prefix of
//!   another, so the versions of one key are contiguous and never interleave
//!   with the versions of a longer key;
//! - newest first: the inverted timestamp sorts larger commit timestamps first;
//! - homomorphic: `escape(a ‖ b) = escape(a) ‖ escape(b)`, so every user-key
//!   range `[s, e)` is the physical range `[escape(s), escape(e))`, which is
//!   what makes route-key ranges contiguous in every column family.

use super::error::StorageError;
use crate::clock::Timestamp;

/// Terminator after an escaped component.
pub const TERMINATOR: [u8; 2] = [0x00, 0x01];
/// Length of the inverted timestamp suffix of a data key.
pub const TS_LEN: usize = 8;

/// Route-key namespace bytes (ARCHITECTURE.md §4).
pub const NS_SYSTEM: u8 = 0x00;
pub const NS_REDIS: u8 = b'r';
pub const NS_DYNAMODB: u8 = b'd';
pub const NS_S3: u8 = b's';
pub const NS_SQS: u8 = b'q';

/// Appends the escaped form of `bytes` to `out`.
pub fn escape_into(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut rest = bytes;
    while let Some(pos) = rest.iter().position(|&b| b == 0) {
        out.extend_from_slice(&rest[..pos]);
        out.extend_from_slice(&[0x00, 0xFF]);
        rest = &rest[pos + 1..];
    }
    out.extend_from_slice(rest);
}

/// The escaped form of `bytes`.
pub fn escape(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 2);
    escape_into(&mut out, bytes);
    out
}

/// Reverses [`escape`]; `None` if `escaped` is not a valid escaped string.
pub fn unescape(escaped: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(escaped.len());
    let mut i = 0;
    while i < escaped.len() {
        let b = escaped[i];
        if b == 0 {
            if escaped.get(i + 1) != Some(&0xFF) {
                return None;
            }
            out.push(0);
            i += 2;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Some(out)
}

/// `escape(user_key) ‖ 0x00 0x01`: the lock key of `user_key`, and the
/// common prefix of all its data keys.
pub fn encode_key_prefix(user_key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(user_key.len() + TERMINATOR.len() + TS_LEN + 2);
    key_prefix_into(&mut out, user_key);
    out
}

/// [`encode_key_prefix`] into `out` (cleared first), reusing its capacity.
pub fn key_prefix_into(out: &mut Vec<u8>, user_key: &[u8]) {
    out.clear();
    escape_into(out, user_key);
    out.extend_from_slice(&TERMINATOR);
}

/// Lock column family key of `user_key`.
pub fn encode_lock_key(user_key: &[u8]) -> Vec<u8> {
    encode_key_prefix(user_key)
}

/// Data column family key of the version of `user_key` committed at `commit_ts`.
pub fn encode_data_key(user_key: &[u8], commit_ts: Timestamp) -> Vec<u8> {
    let mut out = encode_key_prefix(user_key);
    out.extend_from_slice(&(!commit_ts).to_be_bytes());
    out
}

/// Replaces the timestamp of a data key prefix buffer: `prefix ‖ u64be(!ts)`.
pub(crate) fn data_key_from_prefix(prefix: &[u8], commit_ts: Timestamp) -> Vec<u8> {
    let mut out = Vec::with_capacity(prefix.len() + TS_LEN);
    out.extend_from_slice(prefix);
    out.extend_from_slice(&(!commit_ts).to_be_bytes());
    out
}

/// The smallest physical key strictly above every version of the key whose
/// prefix (escaped key ‖ terminator) is `prefix`: the terminator's last byte
/// plus one. Keys that extend the user key start with `0x00 0xFF` or a
/// non-zero byte after the escaped key, so they sort after it.
pub(crate) fn prefix_successor(prefix: &[u8]) -> Vec<u8> {
    let mut out = prefix.to_vec();
    if let Some(last) = out.last_mut() {
        // The prefix always ends in TERMINATOR (0x00 0x01); 0x01 + 1 cannot overflow.
        *last = last.wrapping_add(1);
    }
    out
}

/// Physical bound corresponding to the user-key bound `user_key`: every
/// physical key of a user key `< user_key` sorts below it, every physical
/// key of a user key `>= user_key` sorts at or above it.
pub fn physical_bound(user_key: &[u8]) -> Vec<u8> {
    escape(user_key)
}

/// Splits a data key into (escaped prefix with terminator, commit ts).
/// `None` if it is too short to hold a terminator and timestamp, the
/// terminator is not where it must be, or the escaping is invalid.
pub(crate) fn split_data_key(phys: &[u8]) -> Option<(&[u8], Timestamp)> {
    if phys.len() < TERMINATOR.len() + TS_LEN {
        return None;
    }
    let (prefix, ts) = phys.split_at(phys.len() - TS_LEN);
    if !prefix.ends_with(&TERMINATOR) {
        return None;
    }
    if !is_valid_escaped(&prefix[..prefix.len() - TERMINATOR.len()]) {
        return None;
    }
    let mut raw = [0u8; TS_LEN];
    raw.copy_from_slice(ts);
    Some((prefix, !u64::from_be_bytes(raw)))
}

/// True when `escaped` is a valid escaped string (every 0x00 is followed
/// by 0xFF). Cheap: no allocation.
pub(crate) fn is_valid_escaped(escaped: &[u8]) -> bool {
    let mut i = 0;
    while let Some(pos) = escaped[i..].iter().position(|&b| b == 0) {
        let at = i + pos;
        if escaped.get(at + 1) != Some(&0xFF) {
            return false;
        }
        i = at + 2;
    }
    true
}

/// Decodes the user key of an escaped-key-plus-terminator prefix, naming
/// `cf` and the full physical key `phys` in errors.
pub(crate) fn decode_prefix(
    cf: &'static str,
    phys: &[u8],
    prefix: &[u8],
) -> Result<Vec<u8>, StorageError> {
    let escaped = prefix
        .strip_suffix(&TERMINATOR)
        .ok_or_else(|| StorageError::corrupt(cf, phys, "missing key terminator 0x00 0x01"))?;
    unescape(escaped)
        .ok_or_else(|| StorageError::corrupt(cf, phys, "invalid escape sequence in key"))
}

/// Decodes a data column family key into (user key, commit ts).
pub fn decode_data_key(phys: &[u8]) -> Result<(Vec<u8>, Timestamp), StorageError> {
    let (prefix, ts) = split_data_key(phys).ok_or_else(|| {
        StorageError::corrupt(
            "data",
            phys,
            "malformed data key (expected escaped key ‖ 0x00 0x01 ‖ 8-byte timestamp)",
        )
    })?;
    Ok((decode_prefix("data", phys, prefix)?, ts))
}

/// Decodes a lock column family key into its user key.
pub fn decode_lock_key(phys: &[u8]) -> Result<Vec<u8>, StorageError> {
    decode_prefix("lock", phys, phys)
}

/// Prefix of every user key under `route_key`: the routing layer builds user
/// keys as `route_prefix(route_key) ‖ suffix`, so all records of a route key
/// (and, by the homomorphism, of a route-key range) are contiguous.
pub fn route_prefix(route_key: &[u8]) -> Vec<u8> {
    encode_key_prefix(route_key)
}

/// User-key bound of the route-key bound `route_key`: the user keys of all
/// route keys in `[a, b)` are exactly the user keys in
/// `[route_bound(a), route_bound(b))`.
pub fn route_bound(route_key: &[u8]) -> Vec<u8> {
    escape(route_key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn small_key() -> impl Strategy<Value = Vec<u8>> {
        // Bias towards 0x00, 0x01 and 0xFF, the bytes the escaping cares about.
        prop::collection::vec(
            prop_oneof![Just(0u8), Just(1u8), Just(0xFFu8), any::<u8>()],
            0..8,
        )
    }

    #[test]
    fn known_bytes() {
        assert_eq!(escape(b"a\x00b"), b"a\x00\xFFb".to_vec());
        assert_eq!(
            encode_data_key(b"k", 1),
            [
                b'k', 0x00, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE
            ]
            .to_vec()
        );
        assert_eq!(encode_lock_key(b""), vec![0x00, 0x01]);
    }

    #[test]
    fn rejects_malformed_keys() {
        for bad in [
            &b""[..],
            b"short",
            b"k\x00\x01\x00",
            b"k\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00",
        ] {
            let err = decode_data_key(bad).unwrap_err();
            assert!(
                matches!(err, StorageError::Corrupt { cf: "data", .. }),
                "{err}"
            );
        }
        // A bare 0x00 inside the escaped key is not a valid escape.
        let err = decode_data_key(b"a\x00bc\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00").unwrap_err();
        assert!(err.to_string().contains(&hex::encode(b"a\x00bc")), "{err}");
        assert!(decode_lock_key(b"no-terminator").is_err());
    }

    proptest! {
        #[test]
        fn data_key_round_trips(key in small_key(), ts in any::<u64>()) {
            let phys = encode_data_key(&key, ts);
            prop_assert_eq!(decode_data_key(&phys).unwrap(), (key.clone(), ts));
            prop_assert_eq!(decode_lock_key(&encode_lock_key(&key)).unwrap(), key.clone());
            prop_assert_eq!(unescape(&escape(&key)).unwrap(), key);
        }

        #[test]
        fn order_is_preserved_and_versions_are_contiguous(
            a in small_key(), b in small_key(), ta in any::<u64>(), tb in any::<u64>()
        ) {
            let pa = encode_data_key(&a, ta);
            let pb = encode_data_key(&b, tb);
            if a != b {
                // Key order decides, whatever the timestamps: no interleaving.
                prop_assert_eq!(a < b, pa < pb);
                prop_assert_eq!(encode_lock_key(&a) < encode_lock_key(&b), a < b);
            } else {
                // Same key: newer first.
                prop_assert_eq!(pa.cmp(&pb), tb.cmp(&ta));
            }
            // Prefix-freedom of prefixes.
            if a != b {
                prop_assert!(!encode_key_prefix(&b).starts_with(&encode_key_prefix(&a)));
            }
        }

        #[test]
        fn bounds_map_user_ranges_to_physical_ranges(
            k in small_key(), bound in small_key(), ts in any::<u64>()
        ) {
            let phys = encode_data_key(&k, ts);
            prop_assert_eq!(k < bound, phys < physical_bound(&bound));
            prop_assert_eq!(k.as_slice() >= bound.as_slice(), encode_lock_key(&k) >= physical_bound(&bound));
            let prefix = encode_key_prefix(&k);
            let succ = prefix_successor(&prefix);
            prop_assert!(phys < succ);
            // Every other key's versions fall entirely on one side of the successor.
            let other = encode_data_key(&bound, ts);
            if bound > k {
                prop_assert!(other >= succ);
            }
        }

        #[test]
        fn escape_is_a_homomorphism(a in small_key(), b in small_key()) {
            let mut ab = a.clone();
            ab.extend_from_slice(&b);
            let mut expected = escape(&a);
            expected.extend_from_slice(&escape(&b));
            prop_assert_eq!(escape(&ab), expected);
        }

        #[test]
        fn route_ranges_are_contiguous(
            r in small_key(), lo in small_key(), hi in small_key(), suffix in small_key()
        ) {
            let mut user_key = route_prefix(&r);
            user_key.extend_from_slice(&suffix);
            let inside = r >= lo && r < hi;
            let in_user_range = user_key >= route_bound(&lo) && user_key < route_bound(&hi);
            prop_assert_eq!(inside, in_user_range);
        }
    }
}
