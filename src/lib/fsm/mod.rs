//! Raft commands and their deterministic apply (ARCHITECTURE.md §5–§6).
//!
//! Invariants kept here:
//! - apply is a pure function of (store state, entry): no wall clock, no
//!   randomness, no hash-map iteration order; the same log gives
//!   byte-identical column families on every replica;
//! - re-applying an already applied entry is a no-op;
//! - a committed command that cannot be decoded stops the group's apply loop
//!   with an error naming the entry index; it is never skipped;
//! - commit timestamps within a group only rise: a write lands at
//!   `max(proposed commit_ts, last_commit_ts + 1)`.

pub mod command;

pub mod group;
pub mod ownership;

pub use command::{ApplyOutcome, Command, CommandError};
pub use group::{FsmError, Group, GroupOptions};

pub use ownership::{OwnedRange, OwnershipTable};

/// Generated protobuf types of the command envelope (`proto/commands.proto`).
pub mod proto {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("elastickv.fsm");
}
