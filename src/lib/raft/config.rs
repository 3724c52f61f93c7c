//! Settings of one Raft group on one node.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct GroupConfig {
    pub group_id: u64,
    /// This node's Raft id (non-zero, unique in the cluster).
    pub node_id: u64,
    /// The group's directory; snapshot files live under `<dir>/snap/`.
    pub dir: PathBuf,
    /// Logical clock tick (10–50 ms in production).
    pub tick: Duration,
    pub heartbeat_ticks: usize,
    pub election_ticks: usize,
    /// Subtracted from the election timeout to get the lease duration.
    pub lease_margin: Duration,
    /// Take a snapshot every this many applied entries (0: only on demand).
    pub snapshot_every: u64,
    /// Entries kept in the log below a snapshot's index when compacting.
    pub log_tail: u64,
    pub max_size_per_msg: u64,
    pub max_inflight_msgs: usize,
    /// How long a proposal or read may wait before `Timeout`.
    pub request_timeout: Duration,
    /// Largest snapshot file a receiver accepts.
    pub max_snapshot_bytes: u64,
}

impl GroupConfig {
    /// Production defaults: 10 ms tick, heartbeat 200 ms, election 2 s,
    /// lease 1.7 s.
    pub fn new(group_id: u64, node_id: u64, dir: PathBuf) -> GroupConfig {
        GroupConfig {
            group_id,
            node_id,
            dir,
            tick: Duration::from_millis(10),
            heartbeat_ticks: 20,
            election_ticks: 200,
            lease_margin: Duration::from_millis(300),
            snapshot_every: 10_000,
            log_tail: 1_000,
            max_size_per_msg: 1 << 20,
            max_inflight_msgs: 256,
            request_timeout: Duration::from_secs(10),
            max_snapshot_bytes: 16 << 30,
        }
    }

    pub fn election_timeout(&self) -> Duration {
        self.tick * self.election_ticks as u32
    }

    pub fn lease_duration(&self) -> Duration {
        self.election_timeout().saturating_sub(self.lease_margin)
    }
}
