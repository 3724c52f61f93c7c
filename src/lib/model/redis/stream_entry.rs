//! The stored value of one stream entry row: its field/value items.
//!
//! ```text
//! u32be(item count) ‖ (u32be(len) ‖ bytes) × count      items: field, value, field, value, ...
//! ```
//!
//! The one codec the front end (XADD, XRANGE...), the backup decoder and
//! the backup encoder all use, so the three can never disagree. Decoding
//! never trusts a length before checking it against the bytes present.

use super::error::ModelError;

/// An entry's field/value pairs, in stored order.
pub type FieldPairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Encodes entry items (alternating field and value).
pub fn encode_items<T: AsRef<[u8]>>(items: &[T]) -> Vec<u8> {
    let size: usize = items.iter().map(|i| 4 + i.as_ref().len()).sum();
    let mut out = Vec::with_capacity(4 + size);
    out.extend_from_slice(&(items.len() as u32).to_be_bytes());
    for item in items {
        let item = item.as_ref();
        out.extend_from_slice(&(item.len() as u32).to_be_bytes());
        out.extend_from_slice(item);
    }
    out
}

/// Encodes field/value pairs.
pub fn encode_pairs(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let items: Vec<&[u8]> = pairs
        .iter()
        .flat_map(|(f, v)| [f.as_slice(), v.as_slice()])
        .collect();
    encode_items(&items)
}

/// Decodes the items of the entry value `raw` of stream `key`.
///
/// # Errors
/// [`ModelError::Corrupt`] naming the key when the value is truncated or
/// has bytes left after its last item.
pub fn decode_items(key: &[u8], raw: &[u8]) -> Result<Vec<Vec<u8>>, ModelError> {
    let truncated = || ModelError::corrupt(key, "stream entry value is truncated");
    let (head, mut rest) = raw.split_first_chunk::<4>().ok_or_else(truncated)?;
    let count = u32::from_be_bytes(*head) as usize;
    // Every item costs at least its 4-byte length: bounds the allocation.
    let mut items = Vec::with_capacity(count.min(rest.len() / 4));
    for _ in 0..count {
        let (head, tail) = rest.split_first_chunk::<4>().ok_or_else(truncated)?;
        let len = u32::from_be_bytes(*head) as usize;
        let item = tail.get(..len).ok_or_else(truncated)?;
        items.push(item.to_vec());
        rest = &tail[len..];
    }
    if !rest.is_empty() {
        return Err(ModelError::corrupt(
            key,
            "stray bytes after a stream entry's items",
        ));
    }
    Ok(items)
}

/// Decodes field/value pairs; an odd item count is corrupt.
///
/// # Errors
/// As [`decode_items`], and an odd number of items.
pub fn decode_pairs(key: &[u8], raw: &[u8]) -> Result<FieldPairs, ModelError> {
    // The count decides before anything is read: an odd one is never pairs.
    if raw
        .first_chunk::<4>()
        .is_some_and(|head| u32::from_be_bytes(*head) % 2 != 0)
    {
        return Err(ModelError::corrupt(
            key,
            "stream entry items are not field/value pairs",
        ));
    }
    let items = decode_items(key, raw)?;
    let mut pairs = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(field), Some(value)) = (it.next(), it.next()) {
        pairs.push((field, value));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn refuses_truncated_and_trailing_bytes() {
        assert!(decode_items(b"k", &[0, 0, 0, 1, 0, 0, 0, 5, b'a']).is_err());
        assert!(decode_items(b"k", &[0xff, 0xff, 0xff, 0xfe]).is_err());
        let mut ok = encode_items(&[b"f".as_slice(), b"v"]);
        ok.push(0);
        assert!(decode_items(b"k", &ok).is_err());
        assert!(decode_pairs(b"k", &encode_items(&[b"f".as_slice()])).is_err());
    }

    proptest! {
        #[test]
        fn pairs_round_trip(pairs in prop::collection::vec(
            (prop::collection::vec(any::<u8>(), 0..8), prop::collection::vec(any::<u8>(), 0..8)),
            0..6,
        )) {
            prop_assert_eq!(decode_pairs(b"k", &encode_pairs(&pairs)).unwrap(), pairs);
        }
    }
}
