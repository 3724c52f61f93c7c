//! Errors of the Raft layer, as seen by callers of a group (front ends,
//! coordinators, admin tools) and by the transport.

use crate::raft::state_machine::SmError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum RaftError {
    /// This node cannot serve the request; `leader` is the node id and
    /// address of the leader this node believes in, when it knows one.
    #[error("not leader (leader hint: {leader:?})")]
    NotLeader { leader: Option<(u64, String)> },
    #[error("timed out waiting for the group")]
    Timeout,
    /// Leadership changed while the request was in flight; its outcome is
    /// unknown to this node (the entry may or may not commit).
    #[error("leadership lost while the request was in flight")]
    LeadershipLost,
    #[error("group {group} halted: {reason}")]
    Halted { group: u64, reason: String },
    #[error("raft storage: {0}")]
    Storage(String),
    #[error("raft transport: {0}")]
    Transport(String),
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    #[error("state machine: {0}")]
    StateMachine(#[from] SmError),
    #[error("a membership change is already pending")]
    MembershipChangePending,
    #[error("a leadership transfer is in progress")]
    TransferInProgress,
    #[error("node {id} is not caught up: match {matched} < required {required}")]
    NotCaughtUp {
        id: u64,
        matched: u64,
        required: u64,
    },
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("group {0} is not running on this node")]
    UnknownGroup(u64),
    #[error("group is shut down")]
    Shutdown,
    #[error("raft: {0}")]
    Raft(String),
}

impl From<rocksdb::Error> for RaftError {
    fn from(e: rocksdb::Error) -> Self {
        RaftError::Storage(e.to_string())
    }
}

impl From<std::io::Error> for RaftError {
    fn from(e: std::io::Error) -> Self {
        RaftError::Storage(format!("io: {e}"))
    }
}

impl From<::raft::Error> for RaftError {
    fn from(e: ::raft::Error) -> Self {
        match e {
            ::raft::Error::ProposalDropped => RaftError::NotLeader { leader: None },
            other => RaftError::Raft(other.to_string()),
        }
    }
}
