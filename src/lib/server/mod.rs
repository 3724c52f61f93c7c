//! Process wiring for `elastickv serve`: opens the data dir, starts the Raft
//! node and its groups, the admin gRPC service, the metrics endpoint and the
//! protocol front ends, and shuts them down in order.

pub mod admin;
pub mod backend;
pub mod config;
pub mod metrics;
pub mod node;
pub mod redis;
pub mod restore;
pub mod state_machine;

pub use backend::{Peers, ReplicatedBackend};
pub use config::ServeConfig;
pub use node::{Node, NodeError};
pub use state_machine::{ApplyObserver, GroupStateMachine};
