//! Transactions over one group (ARCHITECTURE.md §6): the seam between the
//! service models and replication.
//!
//! A service model runs a [`Txn`]: it reads at a freshness-checked
//! timestamp, buffers its writes (reading its own writes back), and commits
//! them as one `Command::Txn` that the group validates optimistically
//! against every key and range it read. The [`KvBackend`] behind it is either
//! replicated (Raft: the commit returns once applied on this node) or local
//! (one process, no Raft: tests, offline tools).
//!
//! Invariants: a read timestamp is taken only after the backend's freshness
//! check; a commit is acknowledged only once applied; a conflict is reported
//! as [`TxnError::Conflict`] and never half-applied.

mod backend;
mod local;
mod range_set;
mod transaction;

pub use backend::{KvBackend, StampHook, TxnError};
pub use local::{LocalBackend, stamp_commit_ts};
pub use transaction::{ChainLink, ChainSeed, Txn, TxnValue};
