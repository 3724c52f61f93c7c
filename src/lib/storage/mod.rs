//! The storage layer: one RocksDB database per Raft group holding MVCC data,
//! transaction locks, group metadata and the Raft log (ARCHITECTURE.md §3).
//!
//! Invariants kept here:
//! - all versions of a user key are contiguous, newest first; the physical
//!   encoding is order-preserving and prefix-free (see `keys`);
//! - a write is atomic: data, metadata and the applied index land in one
//!   RocksDB batch or not at all;
//! - a read below the retention watermark (and not at a live pin) fails with
//!   `ReadTimestampCompacted` instead of returning history that is gone.

pub mod api;

pub use api::{
    Cf, CompactStats, Direction, Mutation, Outcome, Pin, ScanPage, ScanRequest, VersionedValue,
    WriteIntent,
};
