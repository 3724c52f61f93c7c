//! Point-in-time images of a group's state machine: `GroupSnapshot` reads
//! every record of the data, lock and meta column families as of one
//! instant; `restore_from` replaces those column families with such a stream.
//!
//! Invariants:
//! - a snapshot is taken under the apply mutex, so its applied index and
//!   last commit ts describe exactly the records it iterates;
//! - restore is crash-safe: a fsynced marker precedes the wipe and is
//!   removed (fsynced) only after the last record landed; a store opened
//!   with the marker present reports `restore_incomplete()`;
//! - restore validates every data and lock key and every data value before
//!   writing it, so a damaged stream fails with an error naming the key.

use std::sync::atomic::Ordering;

use rocksdb::{
    DB, DBIteratorWithThreadMode, IteratorMode, ReadOptions, SnapshotWithThreadMode, WriteBatch,
};

use super::api::Cf;
use super::error::StorageError;
use super::keys;
use super::meta;
use super::store::GroupStore;
use super::value::decode_value_ref;
use crate::clock::Timestamp;

/// Records per restore batch, and bytes per restore batch.
const RESTORE_BATCH_RECORDS: usize = 1000;
const RESTORE_BATCH_BYTES: usize = 4 << 20;

/// A consistent point-in-time view of one group store.
pub struct GroupSnapshot<'a> {
    store: &'a GroupStore,
    snap: SnapshotWithThreadMode<'a, DB>,
    applied_index: u64,
    last_commit_ts: Timestamp,
}

impl<'a> GroupSnapshot<'a> {
    /// The applied index as of the snapshot (0 = none).
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// The last commit ts as of the snapshot.
    pub fn last_commit_ts(&self) -> Timestamp {
        self.last_commit_ts
    }

    /// Raw records of `cf` in key order (the restore marker is never included).
    pub fn iter(&self, cf: Cf) -> SnapshotIter<'_> {
        match self.store.cf(cf) {
            Ok(handle) => SnapshotIter {
                inner: Some(self.snap.iterator_cf_opt(
                    handle,
                    ReadOptions::default(),
                    IteratorMode::Start,
                )),
                error: None,
                skip_marker: cf == Cf::Meta,
            },
            Err(e) => SnapshotIter {
                inner: None,
                error: Some(e),
                skip_marker: false,
            },
        }
    }
}

/// Iterator over the raw records of one column family of a snapshot.
pub struct SnapshotIter<'s> {
    inner: Option<DBIteratorWithThreadMode<'s, DB>>,
    error: Option<StorageError>,
    skip_marker: bool,
}

impl Iterator for SnapshotIter<'_> {
    type Item = Result<(Box<[u8]>, Box<[u8]>), StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.error.take() {
            return Some(Err(e));
        }
        loop {
            let item = self.inner.as_mut()?.next()?;
            match item {
                Ok((k, _)) if self.skip_marker && *k == meta::RESTORE_MARKER_KEY => continue,
                Ok(kv) => return Some(Ok(kv)),
                Err(e) => {
                    self.inner = None;
                    return Some(Err(StorageError::Rocks {
                        op: "snapshot iterate",
                        source: e,
                    }));
                }
            }
        }
    }
}

fn validate_record(cf: Cf, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
    match cf {
        Cf::Data => {
            keys::decode_data_key(key)?;
            decode_value_ref(key, value)?;
        }
        Cf::Lock => {
            keys::decode_lock_key(key)?;
        }
        Cf::Meta => {
            if key == meta::APPLIED_INDEX_KEY {
                meta::decode_applied_index(value)?;
            } else if key == meta::LAST_COMMIT_TS_KEY {
                meta::decode_u64(key, value)?;
            } else if key == meta::WATERMARK_KEY || key == meta::PENDING_WATERMARK_KEY {
                meta::WatermarkRecord::decode(key, value)?;
            } else if key.starts_with(&meta::PIN_PREFIX) {
                meta::decode_pin(key, value)?;
            }
        }
        Cf::RaftLog | Cf::RaftState => {
            return Err(StorageError::InvalidArgument(format!(
                "restore stream carries a record of column family `{}`, which is not part of the state machine",
                cf.name()
            )));
        }
    }
    Ok(())
}

impl GroupStore {
    /// A consistent point-in-time view over all column families.
    pub fn snapshot(&self) -> GroupSnapshot<'_> {
        let _apply = self.apply_lock.lock();
        GroupSnapshot {
            store: self,
            snap: self.db.snapshot(),
            applied_index: self.applied_index(),
            last_commit_ts: self.last_commit_ts(),
        }
    }

    /// Replaces the data, lock and meta column families with `records`
    /// (raw key/value pairs as produced by [`GroupSnapshot::iter`]) and
    /// reloads the in-memory state from them.
    pub fn restore_from<I>(&self, records: I) -> Result<(), StorageError>
    where
        I: Iterator<Item = Result<(Cf, Vec<u8>, Vec<u8>), StorageError>>,
    {
        let _maintenance = self.maintenance_lock.lock();
        let _apply = self.apply_lock.lock();
        let meta_cf = self.cf(Cf::Meta)?;

        let mut marker = WriteBatch::default();
        marker.put_cf(meta_cf, meta::RESTORE_MARKER_KEY, []);
        self.write(marker, true, "restore marker")?;
        self.restore_incomplete.store(true, Ordering::SeqCst);

        let mut wipe = WriteBatch::default();
        for cf in Cf::STATE_MACHINE {
            let handle = self.cf(cf)?;
            let mut it = self.db.raw_iterator_cf(handle);
            it.seek_to_first();
            let first = it.key().map(<[u8]>::to_vec);
            it.seek_to_last();
            let last = it.key().map(<[u8]>::to_vec);
            it.status().map_err(StorageError::rocks("restore wipe"))?;
            if let (Some(first), Some(last)) = (first, last) {
                wipe.delete_range_cf(handle, &first, &last);
                wipe.delete_cf(handle, &last);
            }
        }
        // The wipe covers the marker; put it back in the same batch.
        wipe.put_cf(meta_cf, meta::RESTORE_MARKER_KEY, []);
        let wiped = self.write(wipe, false, "restore wipe");
        self.row_cache.clear();
        wiped?;

        let mut batch = WriteBatch::default();
        let mut records_in_batch = 0usize;
        for record in records {
            let (cf, key, value) = record?;
            if cf == Cf::Meta && key == meta::RESTORE_MARKER_KEY {
                continue;
            }
            validate_record(cf, &key, &value)?;
            batch.put_cf(self.cf(cf)?, &key, &value);
            records_in_batch += 1;
            if records_in_batch >= RESTORE_BATCH_RECORDS
                || batch.size_in_bytes() >= RESTORE_BATCH_BYTES
            {
                self.write(std::mem::take(&mut batch), false, "restore write")?;
                records_in_batch = 0;
            }
        }
        batch.delete_cf(meta_cf, meta::RESTORE_MARKER_KEY);
        self.write(batch, true, "restore finish")?;
        self.row_cache.clear();
        self.reload_meta()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::api::{Mutation, WriteIntent};
    use crate::storage::options::StoreOptions;

    fn put(store: &GroupStore, key: &[u8], ts: u64, index: u64) {
        let intent = WriteIntent {
            start_ts: ts - 1,
            commit_ts: ts,
            mutations: vec![
                Mutation::Put {
                    key: key.to_vec(),
                    value: key.to_vec(),
                    expire_at: 0,
                },
                Mutation::MetaPut {
                    key: b"m".to_vec(),
                    value: key.to_vec(),
                },
            ],
            applied_index: Some(index),
            ..WriteIntent::default()
        };
        store.apply(&intent).unwrap();
    }

    fn records(snap: &GroupSnapshot<'_>) -> Vec<(Cf, Vec<u8>, Vec<u8>)> {
        Cf::STATE_MACHINE
            .into_iter()
            .flat_map(|cf| {
                snap.iter(cf)
                    .map(move |r| r.map(|(k, v)| (cf, k.to_vec(), v.to_vec())))
            })
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn snapshot_is_point_in_time_and_restores_elsewhere() {
        let a_dir = tempfile::tempdir().unwrap();
        let a = GroupStore::open(a_dir.path(), StoreOptions::default()).unwrap();
        put(&a, b"k1", 10, 1);
        let snap = a.snapshot();
        put(&a, b"k2", 20, 2);
        assert_eq!(snap.applied_index(), 1);
        assert_eq!(snap.last_commit_ts(), 10);
        let image = records(&snap);
        assert!(image.iter().all(|(_, k, _)| !k.starts_with(b"k2")));

        let b_dir = tempfile::tempdir().unwrap();
        let b = GroupStore::open(b_dir.path(), StoreOptions::default()).unwrap();
        put(&b, b"old", 5, 9);
        b.restore_from(image.into_iter().map(Ok)).unwrap();
        assert!(!b.restore_incomplete());
        assert_eq!(b.applied_index(), 1);
        assert_eq!(b.last_commit_ts(), 10);
        assert_eq!(b.get(b"k1", 100).unwrap().unwrap().value, b"k1");
        assert_eq!(
            b.get(b"old", 100).unwrap(),
            None,
            "restore replaces the old state"
        );
        assert_eq!(b.meta_get(b"m").unwrap(), Some(b"k1".to_vec()));
    }

    #[test]
    fn restore_refuses_raft_records() {
        let dir = tempfile::tempdir().unwrap();
        let store = GroupStore::open(dir.path(), StoreOptions::default()).unwrap();
        let err = store
            .restore_from(std::iter::once(Ok((Cf::RaftLog, vec![1], vec![2]))))
            .unwrap_err();
        assert!(matches!(err, StorageError::InvalidArgument(_)));
        assert!(store.restore_incomplete());
        // A second, good restore clears the marker.
        store.restore_from(std::iter::empty()).unwrap();
        assert!(!store.restore_incomplete());
    }
}
