//! MVCC version selection for offline decoding: which version of each user
//! key a reader at the snapshot's commit point sees (format deviation from
//! the Go decoder, ARCHITECTURE.md §7 and docs/backup-format.md § "Decode").
//!
//! Rule, applied to the data column family records in file order (all
//! versions of a user key are contiguous, newest first, storage/keys.rs):
//! versions committed after `read_ts` (the header's `last_commit_ts`) are
//! skipped; the first version at or below `read_ts` decides the user key —
//! a tombstone hides it, a version whose `expire_at` is set and
//! `<= read_ts` is expired and hides it, anything else is the row's value;
//! every older version is ignored. This is exactly what a storage read at
//! `read_ts` returns, so a deleted key is never resurrected and an
//! overwritten key shows its newest value. Model deadlines are whole
//! milliseconds (`compose(ms, 0)`), so "expired" is equivalently
//! `deadline_ms <= physical_ms(last_commit_ts)`: deterministic, independent
//! of the wall clock of the machine that decodes.
//!
//! Invariants: memory is one user key (the one being decided); a record
//! whose key or value does not decode is an error naming the key, never
//! skipped.

use crate::clock::Timestamp;
use crate::storage::StorageError;
use crate::storage::keys::decode_data_key;
use crate::storage::value::decode_value_ref;

/// The visible version of one user key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VisibleRow<'a> {
    /// The MVCC user key (route prefix ‖ service suffix).
    pub user_key: &'a [u8],
    /// The value body (without the version header).
    pub body: &'a [u8],
    /// HLC deadline of the version, 0 when it never expires.
    pub expire_at: Timestamp,
    /// Commit timestamp of the version.
    pub commit_ts: Timestamp,
}

/// What version selection skipped, per reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VersionCounts {
    /// Versions handed on as visible rows.
    pub visible: u64,
    /// Older versions behind the deciding one.
    pub superseded: u64,
    /// User keys whose deciding version is a tombstone.
    pub tombstones: u64,
    /// User keys whose deciding version expired at the snapshot's time.
    pub expired: u64,
    /// Versions committed after the snapshot's `last_commit_ts`.
    pub newer_than_snapshot: u64,
}

impl VersionCounts {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &VersionCounts) {
        self.visible += other.visible;
        self.superseded += other.superseded;
        self.tombstones += other.tombstones;
        self.expired += other.expired;
        self.newer_than_snapshot += other.newer_than_snapshot;
    }
}

/// Picks the visible version of each user key from a stream of data column
/// family records in ascending physical key order.
#[derive(Debug)]
pub struct VersionSelector {
    read_ts: Timestamp,
    /// User key of the previous record, and whether its deciding version
    /// was already met.
    current: Vec<u8>,
    has_current: bool,
    decided: bool,
    counts: VersionCounts,
}

/// A data record with its physical key decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedKey {
    pub user_key: Vec<u8>,
    pub commit_ts: Timestamp,
}

/// Decodes a data column family key, naming it (hex) when it is malformed.
///
/// # Errors
/// [`StorageError::Corrupt`] for a key that is not `escape(user key) ‖ 00 01
/// ‖ u64be(!commit_ts)`.
pub fn decode_key(physical: &[u8]) -> Result<DecodedKey, StorageError> {
    let (user_key, commit_ts) = decode_data_key(physical)?;
    Ok(DecodedKey {
        user_key,
        commit_ts,
    })
}

impl VersionSelector {
    /// A selector reading at `read_ts`.
    pub fn new(read_ts: Timestamp) -> VersionSelector {
        VersionSelector {
            read_ts,
            current: Vec::new(),
            has_current: false,
            decided: false,
            counts: VersionCounts::default(),
        }
    }

    /// The timestamp rows are selected at.
    pub fn read_ts(&self) -> Timestamp {
        self.read_ts
    }

    /// Counts so far.
    pub fn counts(&self) -> &VersionCounts {
        &self.counts
    }

    /// Offers the next record (key already decoded, `physical` kept for
    /// error messages). Returns the row when this version is the visible
    /// one of its user key.
    ///
    /// # Errors
    /// [`StorageError::Corrupt`] when the value does not decode.
    pub fn select<'a>(
        &mut self,
        key: &'a DecodedKey,
        physical: &[u8],
        value: &'a [u8],
    ) -> Result<Option<VisibleRow<'a>>, StorageError> {
        if !self.has_current || self.current != key.user_key {
            self.current.clear();
            self.current.extend_from_slice(&key.user_key);
            self.has_current = true;
            self.decided = false;
        }
        if self.decided {
            // Still decode it: corruption anywhere is reported.
            decode_value_ref(physical, value)?;
            self.counts.superseded += 1;
            return Ok(None);
        }
        let version = decode_value_ref(physical, value)?;
        if key.commit_ts > self.read_ts {
            self.counts.newer_than_snapshot += 1;
            return Ok(None);
        }
        self.decided = true;
        if version.tombstone {
            self.counts.tombstones += 1;
            return Ok(None);
        }
        if version.expire_at != 0 && version.expire_at <= self.read_ts {
            self.counts.expired += 1;
            return Ok(None);
        }
        self.counts.visible += 1;
        Ok(Some(VisibleRow {
            user_key: &key.user_key,
            body: version.body,
            expire_at: version.expire_at,
            commit_ts: key.commit_ts,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::keys::encode_data_key;
    use crate::storage::value::{encode_put, encode_tombstone};
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// (user key, commit ts, Some((value, expire_at)) | None for a tombstone)
    type Version = (Vec<u8>, u64, Option<(Vec<u8>, u64)>);

    fn records(versions: &[Version]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out: Vec<(Vec<u8>, Vec<u8>)> = versions
            .iter()
            .map(|(key, ts, value)| {
                let encoded = match value {
                    Some((body, expire_at)) => encode_put(body, *expire_at, ts.saturating_sub(1)),
                    None => encode_tombstone(ts.saturating_sub(1)),
                };
                (encode_data_key(key, *ts), encoded)
            })
            .collect();
        out.sort();
        out.dedup_by(|a, b| a.0 == b.0);
        out
    }

    fn select_all(
        read_ts: u64,
        recs: &[(Vec<u8>, Vec<u8>)],
    ) -> (BTreeMap<Vec<u8>, Vec<u8>>, VersionCounts) {
        let mut selector = VersionSelector::new(read_ts);
        let mut out = BTreeMap::new();
        for (phys, value) in recs {
            let key = decode_key(phys).unwrap();
            if let Some(row) = selector.select(&key, phys, value).unwrap() {
                assert!(
                    out.insert(row.user_key.to_vec(), row.body.to_vec())
                        .is_none(),
                    "a user key was selected twice"
                );
            }
        }
        (out, *selector.counts())
    }

    #[test]
    fn newest_version_wins_and_tombstones_hide() {
        let recs = records(&[
            (b"a".to_vec(), 10, Some((b"old".to_vec(), 0))),
            (b"a".to_vec(), 20, Some((b"new".to_vec(), 0))),
            (b"b".to_vec(), 10, Some((b"live".to_vec(), 0))),
            (b"b".to_vec(), 20, None),
            (b"c".to_vec(), 10, Some((b"c1".to_vec(), 0))),
            (b"c".to_vec(), 50, Some((b"future".to_vec(), 0))),
        ]);
        let (rows, counts) = select_all(30, &recs);
        assert_eq!(rows.get(&b"a".to_vec()), Some(&b"new".to_vec()));
        assert_eq!(rows.get(&b"b".to_vec()), None, "deleted key resurrected");
        assert_eq!(rows.get(&b"c".to_vec()), Some(&b"c1".to_vec()));
        assert_eq!(
            counts,
            VersionCounts {
                visible: 2,
                superseded: 2,
                tombstones: 1,
                expired: 0,
                newer_than_snapshot: 1,
            }
        );
    }

    #[test]
    fn expiry_is_judged_at_the_snapshot_commit_point() {
        let deadline = crate::clock::compose(1_000, 0);
        let recs = records(&[
            (b"k".to_vec(), 5, Some((b"v".to_vec(), deadline))),
            (b"old".to_vec(), 4, Some((b"live".to_vec(), 0))),
            (b"old".to_vec(), 6, Some((b"gone".to_vec(), deadline))),
        ]);
        // Just before the deadline the key is live; at it, expired, and an
        // expired newest version hides the older live one.
        let (rows, _) = select_all(deadline - 1, &recs);
        assert_eq!(rows.len(), 2);
        let (rows, counts) = select_all(deadline, &recs);
        assert!(rows.is_empty());
        assert_eq!(counts.expired, 2);
        assert_eq!(counts.superseded, 1);
    }

    #[test]
    fn corrupt_values_are_errors_naming_the_key() {
        let phys = encode_data_key(b"k", 1);
        let key = decode_key(&phys).unwrap();
        let mut selector = VersionSelector::new(10);
        let err = selector.select(&key, &phys, b"\x00short").unwrap_err();
        assert!(err.to_string().contains(&hex::encode(&phys)), "{err}");
        assert!(decode_key(b"no terminator").is_err());
    }

    proptest! {
        /// Against a model: the visible value of each key is the newest
        /// version at or below read_ts, absent if that one is a tombstone
        /// or expired.
        #[test]
        fn matches_a_snapshot_read(
            versions in proptest::collection::vec(
                (proptest::collection::vec(0u8..3, 0..3), 1u64..40,
                 proptest::option::of((proptest::collection::vec(any::<u8>(), 0..4), prop_oneof![Just(0u64), 1u64..60]))),
                0..40),
            read_ts in 0u64..50,
        ) {
            let recs = records(&versions);
            let (rows, counts) = select_all(read_ts, &recs);
            let mut expected = BTreeMap::new();
            let mut by_key: BTreeMap<Vec<u8>, Vec<(u64, Vec<u8>)>> = BTreeMap::new();
            for (phys, value) in &recs {
                let key = decode_key(phys).unwrap();
                by_key.entry(key.user_key).or_default().push((key.commit_ts, value.clone()));
            }
            for (key, mut list) in by_key {
                list.sort_by(|a, b| b.0.cmp(&a.0));
                if let Some((_, value)) = list.into_iter().find(|(ts, _)| *ts <= read_ts) {
                    let decoded = crate::storage::decode_value(b"", &value).unwrap();
                    if decoded.is_live_at(read_ts) {
                        expected.insert(key, decoded.value);
                    }
                }
            }
            prop_assert_eq!(&rows, &expected);
            prop_assert_eq!(counts.visible as usize, rows.len());
            prop_assert_eq!(
                counts.visible + counts.superseded + counts.tombstones + counts.expired + counts.newer_than_snapshot,
                recs.len() as u64
            );
        }
    }
}
