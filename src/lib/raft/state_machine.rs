//! The contract between the Raft layer and a group's replicated state
//! machine (`fsm::Group` in production, a test double in tests).
//!
//! Invariants the Raft layer keeps towards an implementation:
//! - every method is called from the group's apply thread only, in log order;
//! - `apply` sees each committed normal entry above the durable applied index
//!   exactly once per process lifetime; entries at or below it (replayed after
//!   a cold-start skip) go to `apply_volatile` instead;
//! - `raise_applied_index(i)` is called, and must succeed, before a snapshot
//!   at index `i` is recorded in `raft_state` and before the log is compacted.

use std::path::Path;

/// Returned by [`StateMachine::apply`] when an entry cannot be applied
/// (for example a command this build cannot decode). The group stops
/// applying for good; the entry does not count as applied.
#[derive(Debug, Clone, thiserror::Error)]
#[error("apply halted at index {index}: {message}")]
pub struct ApplyHalt {
    pub index: u64,
    pub message: String,
}

/// A state machine failure outside the apply path (snapshots, durable index).
#[derive(Debug, Clone, thiserror::Error)]
#[error("state machine: {message}")]
pub struct SmError {
    pub message: String,
}

impl SmError {
    pub fn new(message: impl Into<String>) -> Self {
        SmError {
            message: message.into(),
        }
    }
}

impl From<std::io::Error> for SmError {
    fn from(e: std::io::Error) -> Self {
        SmError::new(format!("io: {e}"))
    }
}

/// Implemented by `fsm::Group` (the lead's). Called only from the group's
/// apply thread/task, in log order.
pub trait StateMachine: Send + 'static {
    /// Apply a committed normal entry's payload (the Raft layer's proposal
    /// envelope already removed). Ok = response bytes for the proposer
    /// (business errors such as write conflicts are encoded INSIDE the
    /// response). Err(ApplyHalt) stops this group's apply loop for good; the
    /// entry is NOT counted as applied.
    fn apply(&mut self, index: u64, term: u64, payload: &[u8]) -> Result<Vec<u8>, ApplyHalt>;
    /// Re-apply only in-memory effects of an entry at or below the durable
    /// applied index after a cold-start skip (e.g. HLC ceilings).
    fn apply_volatile(&mut self, index: u64, payload: &[u8]);
    /// Entries whose effects are in memory only still advance this.
    fn applied_index(&self) -> u64;
    fn durable_applied_index(&self) -> Result<Option<u64>, SmError>;
    /// Raise the durable applied index to at least `index`, fsynced.
    fn raise_applied_index(&mut self, index: u64) -> Result<(), SmError>;
    /// Capture a consistent view now (cheap, on the apply thread); the job
    /// writes it to a file later on another thread.
    fn begin_snapshot(&self, index: u64, term: u64) -> Result<Box<dyn SnapshotJob>, SmError>;
    /// Cold-start skip path: check the file is intact and apply its header's
    /// in-memory effects; the body is not installed.
    fn verify_and_apply_header(&mut self, path: &Path) -> Result<(), SmError>;
    /// Replace the whole state with the file's contents (index/term inside).
    fn restore_snapshot(&mut self, path: &Path) -> Result<(), SmError>;
}

/// A captured state machine view, written to a file off the apply thread.
pub trait SnapshotJob: Send + 'static {
    /// Write the captured state to `path` (create, write, fsync; the Raft
    /// layer renames into place afterwards). Returns the file's length.
    fn write_to(self: Box<Self>, path: &Path) -> Result<u64, SmError>;
}
