//! The storage layer: one RocksDB database per Raft group holding MVCC data,
//! transaction locks, group metadata and the Raft log (ARCHITECTURE.md §3).
//! The byte layouts and invariants are documented in docs/storage.md.
//!
//! Invariants kept here:
//! - all versions of a user key are contiguous, newest first; the physical
//!   encoding is order-preserving and prefix-free (see `keys`);
//! - a write is atomic: data, metadata and the applied index land in one
//!   RocksDB batch or not at all;
//! - a read below the retention watermark (and not at a live pin) fails with
//!   `ReadTimestampCompacted` instead of returning history that is gone.

pub mod api;
mod apply;
mod engine_stats;
pub mod error;
mod gc;
mod iter_pool;
pub mod keys;
pub mod meta;
pub mod options;
mod reads;
mod row_cache;
mod snapshot;
mod store;
#[cfg(test)]
mod test_support;
pub mod value;

pub use api::{
    Cf, Chain, ChainAfter, CompactStats, Direction, Mutation, Outcome, Pin, PointValue, ScanPage,
    ScanRequest, VersionedValue, WriteIntent,
};
pub use engine_stats::EngineStats;
pub use error::StorageError;
pub use gc::{CompactOptions, CompactionPlan, CompactionRunner};
pub use keys::{
    NS_DYNAMODB, NS_REDIS, NS_S3, NS_SQS, NS_SYSTEM, decode_data_key, decode_lock_key,
    encode_data_key, encode_key_prefix, encode_lock_key, route_bound, route_prefix,
};
pub use options::StoreOptions;
pub use row_cache::RowCacheStats;
pub use snapshot::{GroupSnapshot, SnapshotIter};
pub use store::GroupStore;
pub use value::{StoredVersion, decode_value, encode_value};
