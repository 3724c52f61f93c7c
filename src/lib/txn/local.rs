//! A backend over one in-process group with no replication: tests, offline
//! tools, and the reference the replicated backend is compared against.
//!
//! Commits are applied under a mutex that also orders read timestamps: a
//! read timestamp is never handed out while a commit is between stamping and
//! applying, so every commit lands above every read timestamp issued before.

use std::sync::Arc;

use parking_lot::Mutex;

use super::backend::{KvBackend, TxnError};
use crate::clock::Timestamp;
use crate::fsm::{ApplyOutcome, Command, Group};

pub struct LocalBackend {
    group: Arc<Group>,
    /// The next Raft-like entry index; guarded with the commit order.
    next_index: Mutex<u64>,
}

impl LocalBackend {
    pub fn new(group: Arc<Group>) -> Self {
        let next = group.applied_index() + 1;
        Self {
            group,
            next_index: Mutex::new(next),
        }
    }

    pub fn group(&self) -> &Arc<Group> {
        &self.group
    }
}

/// Stamps `commit_ts` into a data command.
pub fn stamp_commit_ts(command: Command, ts: Timestamp) -> Command {
    match command {
        Command::Raw { mutations, .. } => Command::Raw {
            commit_ts: ts,
            mutations,
        },
        Command::Txn {
            start_ts,
            read_keys,
            read_ranges,
            mutations,
            chain,
            ..
        } => Command::Txn {
            start_ts,
            commit_ts: ts,
            read_keys,
            read_ranges,
            mutations,
            chain,
        },
        other => other,
    }
}

impl KvBackend for LocalBackend {
    async fn read_ts(&self) -> Result<Timestamp, TxnError> {
        let _order = self.next_index.lock();
        Ok(self.group.hlc().next())
    }

    fn group(&self) -> &Group {
        &self.group
    }

    async fn commit(&self, command: Command) -> Result<ApplyOutcome, TxnError> {
        let mut next = self.next_index.lock();
        let command = stamp_commit_ts(command, self.group.hlc().next());
        let index = *next;
        let outcome = self.group.apply_entry(index, &command.into_payload())?;
        *next += 1;
        outcome.ok_or_else(|| TxnError::Unavailable(format!("entry {index} was already applied")))
    }
}
