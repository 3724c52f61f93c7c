//! What a transaction needs from the layer below: fresh read timestamps,
//! reads at a timestamp, and committing a command.

use std::future::Future;

use crate::clock::Timestamp;
use crate::fsm::{ApplyOutcome, Command, FsmError, Group};
use crate::storage::{PointValue, ScanPage, ScanRequest};

/// Errors a transaction can meet.
#[derive(Debug, thiserror::Error)]
pub enum TxnError {
    /// Another commit changed a key or range this transaction read or wrote.
    #[error("write conflict on key {}", hex::encode(key))]
    Conflict { key: Vec<u8> },
    /// The group refused the write (for example, a key it does not own).
    #[error("write refused: {reason}")]
    Refused { reason: String, key: Vec<u8> },
    /// This node cannot serve right now (no leader, lease lost, shutting
    /// down); the caller may retry or forward.
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("clock: {0}")]
    Clock(#[from] crate::clock::HlcError),
    #[error(transparent)]
    Fsm(#[from] FsmError),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
}

/// Called with a commit's timestamp once it is stamped and its proposal
/// queued, before it is applied (see [`KvBackend::commit_observed`]).
pub type StampHook = Box<dyn FnOnce(Timestamp) + Send>;

/// One group's transactional key-value access.
pub trait KvBackend: Send + Sync + 'static {
    /// A read timestamp taken after the freshness check (lease or ReadIndex
    /// plus wait-for-apply): every write acknowledged before this call is
    /// visible at it, and no later commit lands at or below it.
    fn read_ts(&self) -> impl Future<Output = Result<Timestamp, TxnError>> + Send;

    /// The group this backend reads from (its local replica).
    fn group(&self) -> &Group;

    /// Reads go to the local replica once `read_ts` has been obtained.
    fn get(&self, key: &[u8], read_ts: Timestamp) -> Result<Option<PointValue>, TxnError> {
        Ok(self.group().get(key, read_ts)?)
    }

    fn multi_get(
        &self,
        keys: &[Vec<u8>],
        read_ts: Timestamp,
    ) -> Result<Vec<Option<PointValue>>, TxnError> {
        Ok(self.group().multi_get(keys, read_ts)?)
    }

    fn scan(&self, req: &ScanRequest) -> Result<ScanPage, TxnError> {
        Ok(self.group().scan(req)?)
    }

    /// True when `key` provably never had a version on the local replica
    /// (`GroupStore::never_written`).
    fn never_written(&self, key: &[u8]) -> Result<bool, TxnError> {
        Ok(self.group().never_written(key)?)
    }

    /// Replicates and applies a command; returns once applied on this node.
    /// The backend stamps the command's commit timestamp itself, at a point
    /// ordered after every read timestamp it has handed out, so a commit
    /// never lands at or below a timestamp some reader already used.
    fn commit(
        &self,
        command: Command,
    ) -> impl Future<Output = Result<ApplyOutcome, TxnError>> + Send;

    /// [`KvBackend::commit`], calling `on_stamped` with the commit
    /// timestamp once the command is stamped and queued for replication on
    /// this node, ahead of anything proposed after the call — the moment a
    /// transaction may be chained after it (`Txn::chained`). A backend
    /// that does not stamp locally never calls it.
    fn commit_observed(
        &self,
        command: Command,
        on_stamped: StampHook,
    ) -> impl Future<Output = Result<ApplyOutcome, TxnError>> + Send {
        drop(on_stamped);
        self.commit(command)
    }

    /// True when commits are stamped on this node (it leads the group), so
    /// [`KvBackend::commit_observed`] reports stamps.
    fn stamps_locally(&self) -> bool {
        false
    }
}
