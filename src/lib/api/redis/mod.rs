//! The Redis front end: RESP2/RESP3 over TCP, from the socket to a
//! [`executor::CommandExecutor`].
//!
//! Layout: [`resp`] parses requests, [`reply`] encodes replies, [`command`]
//! is the command table (names, arity, flags, keys), [`args`] holds the
//! parsed [`args::Command`] and Redis's argument-parsing helpers,
//! [`executor`] is the seam to the data model, [`pubsub`] the broker,
//! [`session`] the per-connection state and connection-level commands,
//! [`conn`] and [`server`] the socket loops, [`metrics`] the counters.
//! Nothing here touches storage.

pub mod args;
pub mod clients;
pub mod command;
pub mod commands;
pub mod config;
pub mod conn;
pub mod executor;
pub mod glob;
pub mod metrics;
pub mod pubsub;
pub mod reply;
pub mod resp;
pub mod server;
pub mod session;

pub use args::Command;
pub use config::RedisConfig;
pub use executor::{ClientInfo, CommandExecutor, WatchToken, WatchedKey};
pub use pubsub::{LocalBroker, PubSubBroker};
pub use reply::{Protocol, Reply};
pub use server::serve;
