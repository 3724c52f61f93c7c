//! A serialisable view of one group on one node, for admin tools, the
//! status endpoint and tests.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerStatus {
    pub id: u64,
    pub address: Option<String>,
    /// "voter" or "learner".
    pub role: String,
    /// Leader-side match index; only known on the leader.
    pub match_index: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupStatus {
    pub group_id: u64,
    pub node_id: u64,
    /// "leader", "follower", "candidate", "pre_candidate" or "halted".
    pub role: String,
    pub term: u64,
    /// 0 when no leader is known.
    pub leader: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    pub last_index: u64,
    pub snapshot_index: u64,
    pub lease_valid: bool,
    pub peers: Vec<PeerStatus>,
    /// How this group came up: see `RestartPath`.
    pub restart_path: String,
    pub halted: Option<String>,
}

/// Leadership as seen by this node, published on a watch channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leadership {
    pub term: u64,
    pub leader: u64,
    pub is_leader: bool,
}

/// Which cold-start path a group took (seed 002).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestartPath {
    /// No state was on disk: a new member or a new cluster.
    Fresh,
    /// No snapshot; the log is replayed, entries at or below `durable` as
    /// volatile-only.
    Replay { durable: u64 },
    /// The durable applied index covers the snapshot: its body was not
    /// restored, only its header verified and applied.
    SkippedRestore { snapshot: u64, durable: u64 },
    /// The snapshot body was restored; `reason` says why the skip was not
    /// taken.
    FullRestore { snapshot: u64, reason: String },
}

impl RestartPath {
    /// Short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            RestartPath::Fresh => "fresh",
            RestartPath::Replay { .. } => "replay",
            RestartPath::SkippedRestore { .. } => "skipped_restore",
            RestartPath::FullRestore { .. } => "full_restore",
        }
    }
}

impl std::fmt::Display for RestartPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RestartPath::Fresh => write!(f, "fresh"),
            RestartPath::Replay { durable } => write!(f, "replay (durable applied {durable})"),
            RestartPath::SkippedRestore { snapshot, durable } => write!(
                f,
                "skipped restore of snapshot {snapshot} (durable applied {durable})"
            ),
            RestartPath::FullRestore { snapshot, reason } => {
                write!(f, "full restore of snapshot {snapshot} ({reason})")
            }
        }
    }
}
