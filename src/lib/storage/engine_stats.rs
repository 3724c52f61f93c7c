//! RocksDB's own figures for one group's database, for the metrics
//! endpoint: what the LSM tree holds in memory and how far compaction is
//! behind. Read from RocksDB properties when asked, never cached, so a
//! scrape sees the engine as it is.
//!
//! Invariant: every figure is summed over all column families of the
//! database except the block cache, which the column families share (each
//! reports the same total, so it is read once).

use super::api::Cf;
use super::error::StorageError;
use super::store::GroupStore;

/// RocksDB figures of one group's database (bytes unless named otherwise).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Index and bloom-filter blocks held by open SST table readers; they
    /// live outside the block cache (see `options::table_options`).
    pub table_readers_bytes: u64,
    /// Active and immutable memtables.
    pub memtable_bytes: u64,
    /// Data blocks in the shared block cache.
    pub block_cache_bytes: u64,
    /// SST files of the current version of the tree.
    pub live_sst_bytes: u64,
    /// SST files in level 0 (each one is consulted by every point read).
    pub l0_files: u64,
    /// Bytes compaction estimates it must rewrite to bring every level
    /// under its target size.
    pub pending_compaction_bytes: u64,
}

impl GroupStore {
    /// Reads the figures from RocksDB's properties.
    pub fn engine_stats(&self) -> Result<EngineStats, StorageError> {
        let mut stats = EngineStats::default();
        for cf in Cf::ALL {
            let handle = self.cf(cf)?;
            let int = |name: &str| -> Result<u64, StorageError> {
                Ok(self
                    .db()
                    .property_int_value_cf(handle, name)
                    .map_err(StorageError::rocks("read engine property"))?
                    .unwrap_or(0))
            };
            stats.table_readers_bytes += int("rocksdb.estimate-table-readers-mem")?;
            stats.memtable_bytes += int("rocksdb.cur-size-all-mem-tables")?;
            stats.live_sst_bytes += int("rocksdb.live-sst-files-size")?;
            stats.l0_files += int("rocksdb.num-files-at-level0")?;
            stats.pending_compaction_bytes += int("rocksdb.estimate-pending-compaction-bytes")?;
            if cf == Cf::Data {
                stats.block_cache_bytes = int("rocksdb.block-cache-usage")?;
            }
        }
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::StoreOptions;

    #[test]
    fn figures_follow_flushed_data() {
        let dir = tempfile::tempdir().unwrap();
        let store = GroupStore::open(dir.path(), StoreOptions::default()).unwrap();
        let empty = store.engine_stats().unwrap();
        assert_eq!(empty.l0_files, 0);
        assert_eq!(empty.live_sst_bytes, 0);

        let data = store.cf(Cf::Data).unwrap();
        for i in 0..2_000u32 {
            store
                .db()
                .put_cf(data, format!("key-{i:06}"), vec![7u8; 100])
                .unwrap();
        }
        assert!(store.engine_stats().unwrap().memtable_bytes > 0);
        store.db().flush_cf(data).unwrap();
        let read = store.db().get_cf(data, "key-000042").unwrap();
        assert_eq!(read.as_deref(), Some(&[7u8; 100][..]));

        let flushed = store.engine_stats().unwrap();
        assert_eq!(flushed.l0_files, 1);
        assert!(flushed.live_sst_bytes > 0);
        assert!(
            flushed.table_readers_bytes > 0,
            "the open file's index and filter are held by its reader: {flushed:?}"
        );
        assert!(
            flushed.block_cache_bytes > 0,
            "the read cached a data block"
        );
    }
}
