//! `GroupStore`: the MVCC store of one Raft group over one RocksDB database.
//! This file holds the handle, its in-memory mirrors of the meta records and
//! the retention fence; reads, apply, compaction and snapshots live in
//! sibling files as further `impl GroupStore` blocks.
//!
//! Invariants:
//! - the in-memory mirrors (applied index, last commit ts, watermarks, pins)
//!   change only after the batch that persists them was written, and only
//!   under the apply mutex (compaction and restore also hold the
//!   maintenance mutex);
//! - `fence_ts` is `max(committed watermark, pending watermark)`; a read
//!   creates its RocksDB iterator (pinning a sequence number) *before* it
//!   checks the fence, so history deleted after a passing check is invisible
//!   to it (a pooled iterator fixed its view no later than the last write
//!   before the check, which is as good; see `iter_pool`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};
use rocksdb::{ColumnFamily, DB, WriteBatch, WriteOptions};

use super::api::{Cf, Pin};
use super::error::StorageError;
use super::iter_pool::IterPool;
use super::meta::{self, WatermarkRecord};
use super::options::{StoreOptions, open_db};
use super::row_cache::RowCache;
use crate::clock::Timestamp;

/// Committed and (while a compaction deletes history) pending watermark.
#[derive(Debug, Clone, Default)]
pub(crate) struct Retention {
    pub committed: WatermarkRecord,
    pub pending: Option<WatermarkRecord>,
}

impl Retention {
    /// The record that fences reads: the pending one while it is higher.
    pub fn effective(&self) -> &WatermarkRecord {
        match &self.pending {
            Some(p) if p.ts > self.committed.ts => p,
            _ => &self.committed,
        }
    }
}

/// The MVCC store of one group. `Send + Sync`; share it as `Arc<GroupStore>`.
pub struct GroupStore {
    pub(crate) db: Arc<DB>,
    pub(crate) opts: StoreOptions,
    /// Serialises validate→commit of writers, and compaction batches.
    pub(crate) apply_lock: Mutex<()>,
    /// Serialises compaction runs and restores.
    pub(crate) maintenance_lock: Mutex<()>,
    pub(crate) applied_index: AtomicU64,
    pub(crate) last_commit_ts: AtomicU64,
    /// Every data version newer than this has exactly `last_commit_ts`
    /// (in memory only: after opening or a restore, `last_commit_ts`).
    pub(crate) previous_commit_ts: AtomicU64,
    pub(crate) fence_ts: AtomicU64,
    pub(crate) retention: RwLock<Retention>,
    pub(crate) pins: RwLock<BTreeMap<u64, Pin>>,
    pub(crate) restore_incomplete: AtomicBool,
    /// Point-read iterators reused between writes (invalidated by `write`).
    pub(crate) point_iters: IterPool,
    /// Newest version of recently used keys (kept by every write path).
    pub(crate) row_cache: RowCache,
}

impl std::fmt::Debug for GroupStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupStore")
            .field("path", &self.db.path())
            .field("applied_index", &self.applied_index())
            .field("last_commit_ts", &self.last_commit_ts())
            .field("watermark", &self.watermark())
            .finish()
    }
}

/// State loaded from the meta column family.
struct LoadedMeta {
    applied_index: u64,
    last_commit_ts: Timestamp,
    retention: Retention,
    pins: BTreeMap<u64, Pin>,
    restore_incomplete: bool,
}

impl GroupStore {
    /// Opens (creating if allowed) the database at `path` with every column family.
    pub fn open(path: &Path, opts: StoreOptions) -> Result<GroupStore, StorageError> {
        let db = open_db(path, &opts)?;
        GroupStore::from_db(db, opts)
    }

    /// Opens or creates the database with every column family and our options.
    pub fn open_db(path: &Path, opts: &StoreOptions) -> Result<Arc<DB>, StorageError> {
        open_db(path, opts)
    }

    /// Wraps an already-open database (opened by [`GroupStore::open_db`]).
    pub fn from_db(db: Arc<DB>, opts: StoreOptions) -> Result<GroupStore, StorageError> {
        for cf in Cf::ALL {
            if db.cf_handle(cf.name()).is_none() {
                return Err(StorageError::MissingColumnFamily(cf.name()));
            }
        }
        let store = GroupStore {
            db,
            row_cache: RowCache::new(opts.row_cache_bytes),
            opts,
            apply_lock: Mutex::new(()),
            maintenance_lock: Mutex::new(()),
            applied_index: AtomicU64::new(0),
            last_commit_ts: AtomicU64::new(0),
            previous_commit_ts: AtomicU64::new(0),
            fence_ts: AtomicU64::new(0),
            retention: RwLock::new(Retention::default()),
            pins: RwLock::new(BTreeMap::new()),
            restore_incomplete: AtomicBool::new(false),
            point_iters: IterPool::default(),
        };
        store.reload_meta()?;
        Ok(store)
    }

    /// Re-reads every store record of the meta column family into memory.
    pub(crate) fn reload_meta(&self) -> Result<(), StorageError> {
        let loaded = self.load_meta()?;
        *self.pins.write() = loaded.pins;
        let fence = loaded.retention.effective().ts;
        *self.retention.write() = loaded.retention;
        self.fence_ts.store(fence, Ordering::SeqCst);
        self.applied_index
            .store(loaded.applied_index, Ordering::SeqCst);
        self.last_commit_ts
            .store(loaded.last_commit_ts, Ordering::SeqCst);
        self.previous_commit_ts
            .store(loaded.last_commit_ts, Ordering::SeqCst);
        self.restore_incomplete
            .store(loaded.restore_incomplete, Ordering::SeqCst);
        Ok(())
    }

    fn load_meta(&self) -> Result<LoadedMeta, StorageError> {
        let meta_cf = self.cf(Cf::Meta)?;
        let get = |key: &[u8]| -> Result<Option<Vec<u8>>, StorageError> {
            self.db
                .get_cf(meta_cf, key)
                .map_err(StorageError::rocks("read meta"))
        };
        // A corrupt applied index leaves the mirror at 0; callers learn of it
        // through `read_durable_applied_index` and restore from a snapshot.
        let applied_index = match get(&meta::APPLIED_INDEX_KEY)? {
            Some(bytes) => meta::decode_applied_index(&bytes).unwrap_or(0),
            None => 0,
        };
        let last_commit_ts = match get(&meta::LAST_COMMIT_TS_KEY)? {
            Some(bytes) => meta::decode_u64(&meta::LAST_COMMIT_TS_KEY, &bytes)?,
            None => 0,
        };
        let committed = match get(&meta::WATERMARK_KEY)? {
            Some(bytes) => WatermarkRecord::decode(&meta::WATERMARK_KEY, &bytes)?,
            None => WatermarkRecord::default(),
        };
        let pending = match get(&meta::PENDING_WATERMARK_KEY)? {
            Some(bytes) => Some(WatermarkRecord::decode(
                &meta::PENDING_WATERMARK_KEY,
                &bytes,
            )?),
            None => None,
        };
        let mut pins = BTreeMap::new();
        let mut ro = rocksdb::ReadOptions::default();
        ro.set_iterate_lower_bound(meta::PIN_PREFIX.to_vec());
        ro.set_iterate_upper_bound(vec![meta::STORE_PREFIX, b'p' + 1]);
        let mut it = self.db.raw_iterator_cf_opt(meta_cf, ro);
        it.seek_to_first();
        while let Some((key, value)) = it.item() {
            let pin = meta::decode_pin(key, value)?;
            pins.insert(pin.id, pin);
            it.next();
        }
        it.status().map_err(StorageError::rocks("scan pins"))?;
        let restore_incomplete = get(&meta::RESTORE_MARKER_KEY)?.is_some();
        Ok(LoadedMeta {
            applied_index,
            last_commit_ts,
            retention: Retention { committed, pending },
            pins,
            restore_incomplete,
        })
    }

    /// The underlying database (the Raft log store uses its raft CFs).
    pub fn db(&self) -> &DB {
        &self.db
    }

    /// The same database, shared.
    pub fn db_handle(&self) -> Arc<DB> {
        Arc::clone(&self.db)
    }

    /// Handle of a column family (all of them exist once the store is open).
    pub fn cf(&self, cf: Cf) -> Result<&ColumnFamily, StorageError> {
        self.db
            .cf_handle(cf.name())
            .ok_or(StorageError::MissingColumnFamily(cf.name()))
    }

    pub fn options(&self) -> &StoreOptions {
        &self.opts
    }

    /// Highest commit ts applied (persisted with each batch).
    pub fn last_commit_ts(&self) -> Timestamp {
        self.last_commit_ts.load(Ordering::SeqCst)
    }

    /// Records a commit (or a burnt strict timestamp) at `ts`, keeping
    /// `previous_commit_ts` true. Called under the apply mutex.
    pub(crate) fn record_commit_ts(&self, ts: Timestamp) {
        let last = self.last_commit_ts.fetch_max(ts, Ordering::SeqCst);
        if ts > last {
            self.previous_commit_ts.store(last, Ordering::SeqCst);
        } else if ts < last {
            self.previous_commit_ts.fetch_max(ts, Ordering::SeqCst);
        }
    }

    /// In-memory mirror of the durable applied index (0 = none).
    pub fn applied_index(&self) -> u64 {
        self.applied_index.load(Ordering::SeqCst)
    }

    /// The applied index as stored on disk; a record that fails its checksum
    /// is an error ([`StorageError::CorruptAppliedIndex`]), never a value.
    pub fn read_durable_applied_index(&self) -> Result<Option<u64>, StorageError> {
        let bytes = self
            .db
            .get_cf(self.cf(Cf::Meta)?, meta::APPLIED_INDEX_KEY)
            .map_err(StorageError::rocks("read applied index"))?;
        bytes.map(|b| meta::decode_applied_index(&b)).transpose()
    }

    /// Raises the durable applied index to `index` (fsynced); lower or equal
    /// values are a no-op, so the index never goes back.
    pub fn raise_applied_index(&self, index: u64) -> Result<(), StorageError> {
        let _apply = self.apply_lock.lock();
        if index <= self.applied_index() {
            return Ok(());
        }
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(Cf::Meta)?,
            meta::APPLIED_INDEX_KEY,
            meta::encode_applied_index(index),
        );
        self.write(batch, true, "raise applied index")?;
        self.applied_index.store(index, Ordering::SeqCst);
        Ok(())
    }

    /// A state-machine record written by `Mutation::MetaPut`.
    pub fn meta_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.db
            .get_cf(self.cf(Cf::Meta)?, meta::state_machine_key(key))
            .map_err(StorageError::rocks("read meta"))
    }

    /// The committed retention watermark: reads below it fail unless they are
    /// at an honoured, live pin.
    pub fn watermark(&self) -> Timestamp {
        self.retention.read().committed.ts
    }

    /// The timestamp reads are fenced at (the watermark, or the target of a
    /// compaction in progress or interrupted by a crash).
    pub fn read_fence(&self) -> Timestamp {
        self.fence_ts.load(Ordering::SeqCst)
    }

    /// Active pins, by id.
    pub fn pins(&self) -> Result<Vec<Pin>, StorageError> {
        Ok(self.pins.read().values().copied().collect())
    }

    /// True when a crash interrupted `restore_from`: the state-machine column
    /// families hold a partial image and must be restored again.
    pub fn restore_incomplete(&self) -> bool {
        self.restore_incomplete.load(Ordering::SeqCst)
    }

    /// Fails with `ReadTimestampCompacted` when history at `read_ts` may be
    /// gone. Call only after the read's iterator or snapshot exists.
    pub(crate) fn check_read_ts(&self, read_ts: Timestamp) -> Result<(), StorageError> {
        let fence = self.fence_ts.load(Ordering::SeqCst);
        if read_ts >= fence {
            return Ok(());
        }
        let retention = self.retention.read();
        let effective = retention.effective();
        let honoured = effective.honoured.binary_search(&read_ts).is_ok()
            && self.pins.read().values().any(|p| p.ts == read_ts);
        if honoured {
            Ok(())
        } else {
            Err(StorageError::ReadTimestampCompacted {
                read_ts,
                watermark: effective.ts.max(fence),
            })
        }
    }

    pub(crate) fn write(
        &self,
        batch: WriteBatch,
        sync: bool,
        op: &'static str,
    ) -> Result<(), StorageError> {
        let mut wo = WriteOptions::default();
        wo.set_sync(sync);
        let written = self.db.write_opt(batch, &wo);
        // Before returning, so nobody told of this write can be served a
        // pooled view from before it.
        self.point_iters.invalidate();
        written.map_err(StorageError::rocks(op))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_send_sync<T: Send + Sync>() {}

    #[test]
    fn group_store_is_send_and_sync() {
        store_send_sync::<GroupStore>();
    }

    #[test]
    fn open_creates_every_cf_and_reopens_with_state() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = GroupStore::open(dir.path(), StoreOptions::default()).unwrap();
            for cf in Cf::ALL {
                store.cf(cf).unwrap();
            }
            assert_eq!(store.applied_index(), 0);
            assert_eq!(store.read_durable_applied_index().unwrap(), None);
            store.raise_applied_index(7).unwrap();
            store.raise_applied_index(3).unwrap();
            assert_eq!(store.applied_index(), 7);
        }
        let store = GroupStore::open(dir.path(), StoreOptions::default()).unwrap();
        assert_eq!(store.applied_index(), 7);
        assert_eq!(store.read_durable_applied_index().unwrap(), Some(7));
        assert!(!store.restore_incomplete());
    }

    #[test]
    fn corrupt_applied_index_is_detected_not_used() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = GroupStore::open(dir.path(), StoreOptions::default()).unwrap();
            store.raise_applied_index(42).unwrap();
            let mut rec = meta::encode_applied_index(42);
            rec[3] ^= 0x10;
            store
                .db()
                .put_cf(store.cf(Cf::Meta).unwrap(), meta::APPLIED_INDEX_KEY, rec)
                .unwrap();
        }
        let store = GroupStore::open(dir.path(), StoreOptions::default()).unwrap();
        assert_eq!(store.applied_index(), 0);
        assert!(matches!(
            store.read_durable_applied_index(),
            Err(StorageError::CorruptAppliedIndex { .. })
        ));
    }

    #[test]
    fn open_without_create_fails_on_missing_dir() {
        let dir = tempfile::tempdir().unwrap();
        let opts = StoreOptions {
            create_if_missing: false,
            ..StoreOptions::default()
        };
        assert!(GroupStore::open(&dir.path().join("absent"), opts).is_err());
    }
}
