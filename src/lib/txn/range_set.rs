//! A set of half-open key ranges `[start, end)` (`end = None`: unbounded),
//! kept as disjoint, non-touching intervals ordered by start, so membership
//! is one ordered lookup and insertion merges with its neighbours.
//!
//! Used by a transaction for its range deletes: a transaction that
//! overwrites many keys (a combined round of hundreds of SETs, each
//! dropping its key's rows) would otherwise test every earlier range on
//! every read — quadratic in the round's size.

use std::collections::BTreeMap;
use std::ops::Bound;

/// Disjoint key ranges; the union of everything inserted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeSet {
    /// start → end, pairwise disjoint and not touching.
    ranges: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

/// `a >= b` where `None` is +∞.
fn end_at_least(a: Option<&[u8]>, b: &[u8]) -> bool {
    a.is_none_or(|a| a >= b)
}

/// The larger of two ends (`None` = +∞).
fn max_end(a: Option<Vec<u8>>, b: Option<Vec<u8>>) -> Option<Vec<u8>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        _ => None,
    }
}

impl RangeSet {
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// True when some range holds `key`.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.ranges
            .range::<[u8], _>((Bound::Unbounded, Bound::Included(key)))
            .next_back()
            .is_some_and(|(_, end)| end.as_deref().is_none_or(|end| key < end))
    }

    /// Adds `[start, end)`; an empty range adds nothing.
    pub fn insert(&mut self, start: Vec<u8>, end: Option<Vec<u8>>) {
        if end.as_deref().is_some_and(|end| end <= start.as_slice()) {
            return;
        }
        let mut new_start = start;
        let mut new_end = end;
        // A range starting at or before ours that reaches it: absorb it.
        if let Some((prev_start, prev_end)) = self
            .ranges
            .range::<[u8], _>((Bound::Unbounded, Bound::Included(new_start.as_slice())))
            .next_back()
            && end_at_least(prev_end.as_deref(), &new_start)
        {
            let prev_start = prev_start.clone();
            let prev_end = prev_end.clone();
            self.ranges.remove(&prev_start);
            new_start = prev_start;
            new_end = max_end(new_end, prev_end);
        }
        // Ranges starting inside ours (or where it ends): absorb them.
        loop {
            let next = self
                .ranges
                .range::<[u8], _>((Bound::Included(new_start.as_slice()), Bound::Unbounded))
                .next()
                .filter(|(next_start, _)| end_at_least(new_end.as_deref(), next_start))
                .map(|(s, e)| (s.clone(), e.clone()));
            match next {
                Some((next_start, next_end)) => {
                    self.ranges.remove(&next_start);
                    new_end = max_end(new_end, next_end);
                }
                None => break,
            }
        }
        self.ranges.insert(new_start, new_end);
    }

    /// The ranges in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> {
        self.ranges
            .iter()
            .map(|(start, end)| (start.as_slice(), end.as_deref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive_contains(ranges: &[(Vec<u8>, Option<Vec<u8>>)], key: &[u8]) -> bool {
        ranges
            .iter()
            .any(|(s, e)| key >= s.as_slice() && e.as_deref().is_none_or(|e| key < e))
    }

    #[test]
    fn merges_overlapping_and_touching_ranges() {
        let mut set = RangeSet::default();
        set.insert(b"b".to_vec(), Some(b"d".to_vec()));
        set.insert(b"d".to_vec(), Some(b"f".to_vec()));
        set.insert(b"a".to_vec(), Some(b"c".to_vec()));
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            vec![(&b"a"[..], Some(&b"f"[..]))]
        );
        set.insert(b"x".to_vec(), None);
        set.insert(b"y".to_vec(), Some(b"z".to_vec()));
        assert!(set.contains(b"zzz"));
        assert!(!set.contains(b"g"));
        assert!(!set.contains(b"f"));
        assert!(set.contains(b"a"));
    }

    proptest! {
        #[test]
        fn membership_matches_the_union_of_inserted_ranges(
            ranges in prop::collection::vec(
                (prop::collection::vec(0u8..6, 0..3), prop::option::of(prop::collection::vec(0u8..6, 0..3))),
                0..12,
            ),
            probes in prop::collection::vec(prop::collection::vec(0u8..6, 0..4), 0..40),
        ) {
            let mut set = RangeSet::default();
            for (s, e) in &ranges {
                set.insert(s.clone(), e.clone());
            }
            for probe in &probes {
                prop_assert_eq!(set.contains(probe), naive_contains(&ranges, probe));
            }
            // Disjoint, ordered, not touching.
            let listed: Vec<_> = set.iter().collect();
            for pair in listed.windows(2) {
                let end = pair[0].1.expect("only the last range may be unbounded");
                prop_assert!(end < pair[1].0);
            }
        }
    }
}
