//! A group's ownership table: the user-key ranges this group serves
//! (ARCHITECTURE.md §4). It lives in the group's replicated state (a Meta
//! record), so every replica checks writes at apply time, and readers check
//! from the same state as the data. A key outside every owned range is
//! refused, never answered "not found".
//!
//! Invariants: ranges are sorted, non-empty and non-overlapping; the
//! encoding round-trips exactly; a table that fails to decode is an error,
//! never "owns nothing" or "owns everything".

use crate::storage::Mutation;

/// The Meta record under which the table is stored.
pub const OWNERSHIP_META_KEY: &[u8] = b"ownership";

const FORMAT_VERSION: u8 = 1;

/// One owned range `[start, end)`; `end = None` is unbounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedRange {
    pub start: Vec<u8>,
    pub end: Option<Vec<u8>>,
}

impl OwnedRange {
    pub fn contains(&self, key: &[u8]) -> bool {
        key >= self.start.as_slice() && self.end.as_deref().is_none_or(|end| key < end)
    }

    /// True when all of `[start, end)` lies inside this range.
    pub fn covers(&self, start: &[u8], end: Option<&[u8]>) -> bool {
        if start < self.start.as_slice() {
            return false;
        }
        match (self.end.as_deref(), end) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(own_end), Some(end)) => end <= own_end,
        }
    }
}

/// The ranges a group owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnershipTable {
    ranges: Vec<OwnedRange>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OwnershipError {
    #[error("ownership table is corrupt: {0}")]
    Corrupt(String),
    #[error("ownership ranges overlap or are out of order at range {0}")]
    Overlap(usize),
}

impl Default for OwnershipTable {
    /// A fresh single-group cluster owns the whole key space.
    fn default() -> Self {
        Self::everything()
    }
}

impl OwnershipTable {
    pub fn everything() -> Self {
        Self {
            ranges: vec![OwnedRange {
                start: Vec::new(),
                end: None,
            }],
        }
    }

    pub fn new(ranges: Vec<OwnedRange>) -> Result<Self, OwnershipError> {
        for (i, pair) in ranges.windows(2).enumerate() {
            let ok = match &pair[0].end {
                Some(end) => end.as_slice() <= pair[1].start.as_slice(),
                None => false,
            };
            if !ok {
                return Err(OwnershipError::Overlap(i + 1));
            }
        }
        for (i, r) in ranges.iter().enumerate() {
            if r.end
                .as_deref()
                .is_some_and(|end| end <= r.start.as_slice())
            {
                return Err(OwnershipError::Overlap(i));
            }
        }
        Ok(Self { ranges })
    }

    pub fn ranges(&self) -> &[OwnedRange] {
        &self.ranges
    }

    /// True when the table is the single unbounded range: every key.
    pub fn owns_everything(&self) -> bool {
        matches!(self.ranges.as_slice(), [only] if only.start.is_empty() && only.end.is_none())
    }

    pub fn owns(&self, key: &[u8]) -> bool {
        // Ranges are sorted: find the last range starting at or before key.
        let idx = self.ranges.partition_point(|r| r.start.as_slice() <= key);
        idx > 0 && self.ranges[idx - 1].contains(key)
    }

    pub fn owns_range(&self, start: &[u8], end: Option<&[u8]>) -> bool {
        self.ranges.iter().any(|r| r.covers(start, end))
    }

    /// The first key a mutation touches that this group does not own.
    pub fn first_unowned<'a>(&self, mutation: &'a Mutation) -> Option<&'a [u8]> {
        match mutation {
            Mutation::Put { key, .. } | Mutation::Delete { key } => {
                (!self.owns(key)).then_some(key.as_slice())
            }
            Mutation::DeleteRange { start, end } | Mutation::PurgeRange { start, end } => {
                (!self.owns_range(start, end.as_deref())).then_some(start.as_slice())
            }
            // Group-level records are not keyed by user keys.
            Mutation::MetaPut { .. }
            | Mutation::MetaDelete { .. }
            | Mutation::Pin { .. }
            | Mutation::Unpin { .. } => None,
        }
    }

    /// `version u8 ‖ count u32be ‖ { start_len u32be ‖ start ‖ has_end u8 ‖ [end_len u32be ‖ end] }*`
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![FORMAT_VERSION];
        out.extend_from_slice(&(self.ranges.len() as u32).to_be_bytes());
        for r in &self.ranges {
            out.extend_from_slice(&(r.start.len() as u32).to_be_bytes());
            out.extend_from_slice(&r.start);
            match &r.end {
                Some(end) => {
                    out.push(1);
                    out.extend_from_slice(&(end.len() as u32).to_be_bytes());
                    out.extend_from_slice(end);
                }
                None => out.push(0),
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, OwnershipError> {
        let mut cur = Cursor { bytes, pos: 0 };
        let version = cur.u8()?;
        if version != FORMAT_VERSION {
            return Err(OwnershipError::Corrupt(format!(
                "unknown format version {version}"
            )));
        }
        let count = cur.u32()? as usize;
        // Each range needs at least 5 bytes: bound the allocation by input.
        if count > bytes.len() / 5 + 1 {
            return Err(OwnershipError::Corrupt(format!(
                "range count {count} exceeds what {} bytes can hold",
                bytes.len()
            )));
        }
        let mut ranges = Vec::with_capacity(count);
        for _ in 0..count {
            let start = cur.bytes()?;
            let end = match cur.u8()? {
                0 => None,
                1 => Some(cur.bytes()?),
                other => {
                    return Err(OwnershipError::Corrupt(format!(
                        "bad end marker {other} at offset {}",
                        cur.pos - 1
                    )));
                }
            };
            ranges.push(OwnedRange { start, end });
        }
        if cur.pos != bytes.len() {
            return Err(OwnershipError::Corrupt(format!(
                "{} trailing bytes",
                bytes.len() - cur.pos
            )));
        }
        Self::new(ranges)
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], OwnershipError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| OwnershipError::Corrupt(format!("truncated at offset {}", self.pos)))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, OwnershipError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, OwnershipError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn bytes(&mut self) -> Result<Vec<u8>, OwnershipError> {
        let len = self.u32()? as usize;
        Ok(self.take(len)?.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn range(start: &[u8], end: Option<&[u8]>) -> OwnedRange {
        OwnedRange {
            start: start.to_vec(),
            end: end.map(<[u8]>::to_vec),
        }
    }

    #[test]
    fn everything_owns_every_key() {
        let t = OwnershipTable::everything();
        assert!(t.owns_everything());
        assert!(
            !OwnershipTable::new(vec![range(b"", Some(b"m"))])
                .unwrap()
                .owns_everything()
        );
        assert!(
            !OwnershipTable::new(vec![range(b"a", None)])
                .unwrap()
                .owns_everything()
        );
        assert!(t.owns(b""));
        assert!(t.owns(&[0xff; 40]));
        assert!(t.owns_range(b"a", None));
    }

    #[test]
    fn split_table_refuses_outside_keys() {
        let t = OwnershipTable::new(vec![range(b"b", Some(b"d")), range(b"m", None)]).unwrap();
        assert!(!t.owns(b"a"));
        assert!(t.owns(b"b"));
        assert!(t.owns(b"c\xff"));
        assert!(!t.owns(b"d"));
        assert!(t.owns(b"zzz"));
        assert!(t.owns_range(b"b", Some(b"c")));
        assert!(!t.owns_range(b"b", Some(b"e")));
        assert!(!t.owns_range(b"b", None));
    }

    #[test]
    fn overlapping_ranges_are_rejected() {
        assert!(OwnershipTable::new(vec![range(b"a", Some(b"c")), range(b"b", None)]).is_err());
        assert!(OwnershipTable::new(vec![range(b"a", None), range(b"b", None)]).is_err());
        assert!(OwnershipTable::new(vec![range(b"c", Some(b"a"))]).is_err());
    }

    proptest! {
        #[test]
        fn encoding_round_trips(bounds in proptest::collection::btree_set(proptest::collection::vec(any::<u8>(), 0..6), 0..8), open in any::<bool>()) {
            let bounds: Vec<_> = bounds.into_iter().collect();
            let mut ranges = Vec::new();
            for pair in bounds.chunks(2) {
                if pair.len() == 2 {
                    ranges.push(range(&pair[0], Some(&pair[1])));
                }
            }
            if open && let Some(last) = ranges.last().and_then(|r| r.end.clone()) {
                ranges.push(range(&last, None));
            }
            let table = OwnershipTable::new(ranges).unwrap();
            prop_assert_eq!(OwnershipTable::decode(&table.encode()).unwrap(), table);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = OwnershipTable::decode(&bytes);
        }
    }
}
