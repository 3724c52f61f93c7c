//! The Redis data model over MVCC storage: every Redis key is a contiguous
//! range of rows under its route key (`'r' ‖ key`), with a META row first
//! (type, TTL, counts) and per-type member rows after it. See
//! docs/redis-compatibility.md § "Storage layout" and [`layout`].
//!
//! The model is synchronous over a [`crate::txn::Txn`] so that a command,
//! a MULTI/EXEC queue or a Lua script runs in exactly one transaction.

pub mod backup_decode;
pub mod backup_encode;
pub mod collections;
pub mod db;
pub mod error;
pub mod expire;
pub mod hll;
pub mod layout;
pub mod list;
pub mod meta;
pub mod stream_entry;

pub use db::{Db, KeyEntry};
pub use error::ModelError;
pub use list::{End, ListMeta};
pub use meta::{Body, Kind, Meta, StreamMeta};
