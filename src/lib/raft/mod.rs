//! The Raft replication layer: raft-rs drives each group (one `RawNode` per
//! group), the log and hard state live in the group's RocksDB column
//! families, node-to-node traffic goes over one tonic gRPC transport per
//! process, and reads are served under a leader lease or ReadIndex.

pub mod auth;
pub mod config;
pub mod core;
pub mod envelope;
pub mod error;
pub mod lease;
pub mod log_store;
pub mod metrics;
pub mod node;
pub mod peers;
pub mod snapfile;
pub mod state_machine;
pub mod status;
pub mod transport;

pub use config::GroupConfig;
pub use core::{Applied, Bootstrap, Event, GroupCore, Membership, Output, SnapshotTicket};
pub use error::RaftError;
pub use node::{GroupHandle, NodeConfig, RaftNode};
pub use state_machine::{ApplyHalt, SmError, SnapshotJob, StateMachine};
pub use status::{GroupStatus, Leadership, PeerStatus, RestartPath};
