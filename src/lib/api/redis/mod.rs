//! The Redis front end: RESP2/RESP3 over TCP (parser, replies, command table).

pub mod args;
pub mod command;
pub mod reply;
pub mod resp;

pub use args::Command;
pub use reply::{Protocol, Reply};
