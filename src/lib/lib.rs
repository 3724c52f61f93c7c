//! elastickv: a Raft-replicated, range-sharded MVCC key-value store with
//! Redis (and later DynamoDB, S3, SQS) front ends, and its operator toolkit.
//!
//! Layers (ARCHITECTURE.md §2), data flows down, never up:
//!
//! ```text
//! cli, server      process wiring, clap definitions, exit codes
//! api/*            protocol front ends (Redis, gRPC)
//! model/*          each service's records over MVCC storage keys
//! backup, snapshot logical tree format; .fsm snapshot files
//! routing          route keys, ownership
//! txn              optimistic transactions over one group
//! raft             raft-rs driving, log storage, transport, lease reads
//! fsm              Raft commands and their deterministic apply
//! storage          RocksDB MVCC store of one group
//! clock            hybrid logical clock
//! ```
//!
//! A module never imports a module above it.

pub mod api;
pub mod backup;
pub mod cli;
pub mod clock;
pub mod fsm;
pub mod model;
pub mod raft;
pub mod routing;
pub mod server;
pub mod snapshot;
pub mod storage;
pub mod txn;
