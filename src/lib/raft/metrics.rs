//! Prometheus metrics of the Raft groups on a node: per-group role, term,
//! commit and applied index, leader id, cold-start path counts, and where a
//! Ready round's time goes (log append, apply; wall and thread CPU time).
//!
//! The step timers answer the write path's first question — is the Raft
//! thread computing or waiting? — without a profiler: a log append whose
//! wall time far exceeds its CPU time is waiting for the disk.

use std::time::Duration;

use prometheus::{
    Counter, CounterVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGaugeVec, Opts, Registry,
};

use crate::raft::core::ReadyStep;
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
    append_seconds: HistogramVec,
    apply_seconds: HistogramVec,
    step_cpu_seconds: CounterVec,
    step_entries: IntCounterVec,
}

/// One group's Ready step timers, resolved once so that a round does not
/// look its labels up.
#[derive(Clone)]
pub struct StepMetrics {
    append_seconds: Histogram,
    apply_seconds: Histogram,
    append_cpu: Counter,
    apply_cpu: Counter,
    append_entries: IntCounter,
    apply_entries: IntCounter,
}

impl StepMetrics {
    /// Records one `step` that took `wall` (of which `cpu` on the Raft
    /// thread) for `entries` log entries.
    pub fn observe(&self, step: ReadyStep, wall: Duration, cpu: Duration, entries: usize) {
        let (seconds, cpu_total, count) = match step {
            ReadyStep::LogAppend => (&self.append_seconds, &self.append_cpu, &self.append_entries),
            ReadyStep::Apply => (&self.apply_seconds, &self.apply_cpu, &self.apply_entries),
        };
        seconds.observe(wall.as_secs_f64());
        cpu_total.inc_by(cpu.as_secs_f64());
        count.inc_by(u64::try_from(entries).unwrap_or(u64::MAX));
    }
}

fn register<M: prometheus::core::Collector + Clone + 'static>(
    reg: &Registry,
    name: &str,
    metric: Result<M, prometheus::Error>,
) -> Result<M, RaftError> {
    let metric = metric.map_err(|e| RaftError::Invalid(format!("metric {name}: {e}")))?;
    reg.register(Box::new(metric.clone()))
        .map_err(|e| RaftError::Invalid(format!("register {name}: {e}")))?;
    Ok(metric)
}

/// 50 µs to ~1.6 s, doubling: an fsync on a fast disk to a stalled write.
fn step_buckets() -> Vec<f64> {
    prometheus::exponential_buckets(0.000_05, 2.0, 16).unwrap_or_default()
}

fn step_histogram(reg: &Registry, name: &str, help: &str) -> Result<HistogramVec, RaftError> {
    register(
        reg,
        name,
        HistogramVec::new(
            HistogramOpts::new(name, help).buckets(step_buckets()),
            &["group"],
        ),
    )
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
            append_seconds: step_histogram(
                reg,
                "elastickv_raft_log_append_duration_seconds",
                "Time to write a Ready round's new log entries and make them durable",
            )?,
            apply_seconds: step_histogram(
                reg,
                "elastickv_raft_apply_duration_seconds",
                "Time to apply a batch of committed entries to the state machine",
            )?,
            step_cpu_seconds: register(
                reg,
                "elastickv_raft_thread_cpu_seconds_total",
                CounterVec::new(
                    Opts::new(
                        "elastickv_raft_thread_cpu_seconds_total",
                        "CPU time of a group's Raft thread by Ready step (log_append, apply); \
                         the rest of the step's duration is waiting, mostly for fsync",
                    ),
                    &["group", "step"],
                ),
            )?,
            step_entries: register(
                reg,
                "elastickv_raft_step_entries_total",
                IntCounterVec::new(
                    Opts::new(
                        "elastickv_raft_step_entries_total",
                        "Log entries appended (log_append) and applied (apply)",
                    ),
                    &["group", "step"],
                ),
            )?,
        })
    }

    /// The step timers of `group`.
    pub fn steps(&self, group: u64) -> StepMetrics {
        let g = group.to_string();
        StepMetrics {
            append_seconds: self.append_seconds.with_label_values(&[&g]),
            apply_seconds: self.apply_seconds.with_label_values(&[&g]),
            append_cpu: self.step_cpu_seconds.with_label_values(&[&g, "log_append"]),
            apply_cpu: self.step_cpu_seconds.with_label_values(&[&g, "apply"]),
            append_entries: self.step_entries.with_label_values(&[&g, "log_append"]),
            apply_entries: self.step_entries.with_label_values(&[&g, "apply"]),
        }
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
