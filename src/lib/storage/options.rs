//! How a group's RocksDB database is opened: the column families and the
//! options each one gets. The raw-RocksDB benchmarks open their baseline with
//! the same function, so comparisons are like for like.
//!
//! Invariant: the data column family's prefix extractor maps a data key to
//! its `escape(user_key) ‖ 0x00 0x01` prefix (the key without its 8-byte
//! timestamp); all versions of a user key share it and are contiguous, which
//! is what RocksDB requires of a prefix extractor. Point reads use prefix
//! bloom filters; scans use total-order iteration.

use std::path::Path;
use std::sync::Arc;

use rocksdb::{BlockBasedOptions, Cache, ColumnFamilyDescriptor, DB, Options, SliceTransform};

use super::api::Cf;
use super::error::StorageError;
use super::keys::{TS_LEN, split_data_key};

/// Options of one group store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// fsync the WAL on every applied batch (default true). Watermark,
    /// applied-index raises and restore markers are always synced.
    pub sync_writes: bool,
    /// LRU block cache shared by the column families of this database.
    pub block_cache_bytes: usize,
    /// Create the database (and any missing column family) if absent.
    pub create_if_missing: bool,
    /// Budget of the newest-version cache that answers point reads without
    /// a RocksDB seek (`row_cache`); 0 turns it off.
    pub row_cache_bytes: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            sync_writes: true,
            block_cache_bytes: 64 << 20,
            create_if_missing: true,
            row_cache_bytes: 64 << 20,
        }
    }
}

/// Memtable size of the data column family. Every MVCC version is a new
/// memtable row, and inserting one is a skiplist descent whose cost grows
/// with the memtable (more levels, fewer of them in the CPU cache): with
/// RocksDB's 64 MiB default, inserts took half of the Raft apply thread
/// under redis-benchmark SET, and 8 MiB made the apply ~30 % cheaper.
/// 16 MiB (one skiplist level more than 8 MiB on average) halves the
/// flushes, and with them the level-0 compactions, each of which rewrites
/// the whole base level when writes land on random keys: at 8 MiB,
/// compaction took up to half a core in the later rounds of
/// `bench/rounds.sh` and HSET fell to 147 k requests a second; at 16 MiB
/// it held 245 k (bench/RESULTS.md, session 12). Level 0 keeps RocksDB's
/// trigger of four files: compacting at eight halved compaction as well,
/// but made creating keys 20 % slower (a creation range-scans the key's
/// rows, and that seek visits every level-0 file).
const DATA_WRITE_BUFFER_BYTES: usize = 16 << 20;

/// Write-ahead log kept before RocksDB flushes the column families that
/// pin its oldest file. The small column families (meta, lock, Raft state)
/// are written on every apply but fill their 64 MiB memtables only after
/// hours, and each of them pins every log file written since its last
/// flush. Without a cap RocksDB allows four times the memtable budget
/// (about 2 GiB here): one minute of `redis-benchmark` left 45 log files,
/// 450 MB, all to be replayed at restart; with the cap, two files, 10 MB.
const MAX_TOTAL_WAL_BYTES: u64 = 64 << 20;

fn mvcc_prefix(key: &[u8]) -> &[u8] {
    &key[..key.len().saturating_sub(TS_LEN)]
}

fn is_data_key(key: &[u8]) -> bool {
    split_data_key(key).is_some()
}

/// Block-based table options: the block cache holds data blocks only; each
/// SST file's index and bloom filter are loaded once, when the file is
/// opened, and live with its table reader (`rocksdb.estimate-table-readers-mem`,
/// exported as `elastickv_rocksdb_table_readers_bytes`: about 1.5 % of the
/// data on disk).
///
/// Why not in the block cache: a file's index and filter blocks grow with
/// the file (666 KB and 652 KB for a 24 MB file of 1.2 M versions; files
/// reach 64 MiB), as large as a 1 MiB shard of the 64 MiB cache, which
/// drops such a block as soon as the seek that loaded it lets go. Every
/// later seek into the file read, checksummed and LZ4-decoded it again:
/// once the first files reached the bottom level, a quarter of the Redis
/// workers' CPU went there and HSET fell from 240 k to 120 k requests a
/// second over five rounds of `bench/rounds.sh` (bench/RESULTS.md,
/// session 12). Partitioned indexes and filters also fixed it, but ran
/// HSET and ZADD 10-30 % slower while the tree was small.
fn table_options(cache: &Cache) -> BlockBasedOptions {
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    table.set_bloom_filter(10.0, false);
    table.set_cache_index_and_filter_blocks(false);
    table
}

/// Options of column family `cf` (exposed for the raw-RocksDB baselines).
pub fn cf_options(cf: Cf, cache: &Cache) -> Options {
    let mut opts = Options::default();
    let mut table = table_options(cache);
    if cf == Cf::Data {
        opts.set_prefix_extractor(SliceTransform::create(
            "elastickv.mvcc_prefix.v1",
            mvcc_prefix,
            Some(is_data_key),
        ));
        opts.set_memtable_prefix_bloom_ratio(0.1);
        opts.set_write_buffer_size(DATA_WRITE_BUFFER_BYTES);
        table.set_whole_key_filtering(false);
    }
    opts.set_block_based_table_factory(&table);
    opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
    opts
}

/// Opens (or creates) the database at `path` with every column family.
pub fn open_db(path: &Path, opts: &StoreOptions) -> Result<Arc<DB>, StorageError> {
    let cache = Cache::new_lru_cache(opts.block_cache_bytes.max(1 << 20));
    let mut db_opts = Options::default();
    db_opts.create_if_missing(opts.create_if_missing);
    db_opts.create_missing_column_families(opts.create_if_missing);
    db_opts.set_max_background_jobs(2);
    db_opts.set_bytes_per_sync(1 << 20);
    db_opts.set_max_total_wal_size(MAX_TOTAL_WAL_BYTES);
    let descriptors = Cf::ALL
        .into_iter()
        .map(|cf| ColumnFamilyDescriptor::new(cf.name(), cf_options(cf, &cache)));
    let db = DB::open_cf_descriptors(&db_opts, path, descriptors)
        .map_err(StorageError::rocks("open"))?;
    Ok(Arc::new(db))
}
