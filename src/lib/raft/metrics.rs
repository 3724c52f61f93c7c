//! Prometheus metrics of the Raft groups on a node: per-group role, term,
//! commit and applied index, leader id, and cold-start path counts.

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};

use crate::raft::error::RaftError;
use crate::raft::status::GroupStatus;

#[derive(Clone)]
pub struct RaftMetrics {
    role: IntGaugeVec,
    term: IntGaugeVec,
    commit: IntGaugeVec,
    applied: IntGaugeVec,
    leader: IntGaugeVec,
    restarts: IntCounterVec,
}

fn gauge(reg: &Registry, name: &str, help: &str) -> Result<IntGaugeVec, RaftError> {
    let g = IntGaugeVec::new(Opts::new(name, help), &["group"])
        .map_err(|e| RaftError::Invalid(format!("metric {name}: {e}")))?;
    reg.register(Box::new(g.clone()))
        .map_err(|e| RaftError::Invalid(format!("register {name}: {e}")))?;
    Ok(g)
}

impl RaftMetrics {
    pub fn register(reg: &Registry) -> Result<RaftMetrics, RaftError> {
        let restarts = IntCounterVec::new(
            Opts::new(
                "elastickv_raft_group_starts_total",
                "Group starts by cold-start path (fresh, replay, skipped_restore, full_restore)",
            ),
            &["group", "path"],
        )
        .map_err(|e| RaftError::Invalid(format!("metric: {e}")))?;
        reg.register(Box::new(restarts.clone()))
            .map_err(|e| RaftError::Invalid(format!("register: {e}")))?;
        Ok(RaftMetrics {
            role: gauge(
                reg,
                "elastickv_raft_group_role",
                "0 follower, 1 candidate, 2 leader, 3 halted",
            )?,
            term: gauge(reg, "elastickv_raft_group_term", "Current Raft term")?,
            commit: gauge(reg, "elastickv_raft_group_commit_index", "Commit index")?,
            applied: gauge(reg, "elastickv_raft_group_applied_index", "Applied index")?,
            leader: gauge(
                reg,
                "elastickv_raft_group_leader",
                "Leader node id (0: none)",
            )?,
            restarts,
        })
    }

    pub fn observe(&self, st: &GroupStatus) {
        let g = st.group_id.to_string();
        let role = match st.role.as_str() {
            "leader" => 2,
            "candidate" | "pre_candidate" => 1,
            "halted" => 3,
            _ => 0,
        };
        let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.role.with_label_values(&[&g]).set(role);
        self.term.with_label_values(&[&g]).set(clamp(st.term));
        self.commit
            .with_label_values(&[&g])
            .set(clamp(st.commit_index));
        self.applied
            .with_label_values(&[&g])
            .set(clamp(st.applied_index));
        self.leader.with_label_values(&[&g]).set(clamp(st.leader));
    }

    pub fn count_start(&self, group: u64, path: &str) {
        self.restarts
            .with_label_values(&[&group.to_string(), path])
            .inc();
    }
}
