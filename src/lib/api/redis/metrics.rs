//! Prometheus metrics of the Redis front end: connected clients, commands
//! processed by name, error replies by code word, refused or dropped
//! connections by reason, and the write combiner's rounds (commands per
//! round, time from a round's start to its replies).

use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry};

/// The front end's counters; cheap to clone (shared handles).
#[derive(Debug, Clone)]
pub struct RedisMetrics {
    /// Currently connected clients.
    pub connected_clients: IntGauge,
    /// Commands processed, by lower-case command name.
    pub commands: IntCounterVec,
    /// Error replies, by code word (`ERR`, `WRONGTYPE`, ...).
    pub errors: IntCounterVec,
    /// Connections refused or closed by the server, by reason.
    pub disconnects: IntCounterVec,
    /// Commands carried by each write-combiner round (one Raft proposal).
    pub write_round_commands: Histogram,
    /// Time from a combined round's start to its replies: execution,
    /// replication and apply.
    pub write_round_seconds: Histogram,
}

impl RedisMetrics {
    /// Creates the metrics and registers them in `registry` when given.
    pub fn new(registry: Option<&Registry>) -> Result<Self, prometheus::Error> {
        let metrics = RedisMetrics {
            connected_clients: IntGauge::new(
                "elastickv_redis_connected_clients",
                "Connected Redis clients",
            )?,
            commands: IntCounterVec::new(
                Opts::new("elastickv_redis_commands_total", "Redis commands processed"),
                &["command"],
            )?,
            errors: IntCounterVec::new(
                Opts::new(
                    "elastickv_redis_errors_total",
                    "Redis error replies by error code",
                ),
                &["code"],
            )?,
            disconnects: IntCounterVec::new(
                Opts::new(
                    "elastickv_redis_server_disconnects_total",
                    "Redis connections refused or closed by the server",
                ),
                &["reason"],
            )?,
            write_round_commands: Histogram::with_opts(
                HistogramOpts::new(
                    "elastickv_redis_write_round_commands",
                    "Commands carried by each write-combiner round (one Raft proposal)",
                )
                .buckets(prometheus::exponential_buckets(1.0, 2.0, 14)?),
            )?,
            write_round_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "elastickv_redis_write_round_duration_seconds",
                    "Time from a write-combiner round's start to its replies \
                     (execution, replication, apply)",
                )
                .buckets(prometheus::exponential_buckets(0.000_1, 2.0, 16)?),
            )?,
        };
        if let Some(registry) = registry {
            registry.register(Box::new(metrics.connected_clients.clone()))?;
            registry.register(Box::new(metrics.commands.clone()))?;
            registry.register(Box::new(metrics.errors.clone()))?;
            registry.register(Box::new(metrics.disconnects.clone()))?;
            registry.register(Box::new(metrics.write_round_commands.clone()))?;
            registry.register(Box::new(metrics.write_round_seconds.clone()))?;
        }
        Ok(metrics)
    }

    /// Counts one processed command.
    pub fn command(&self, lowercase_name: &str) {
        self.commands.with_label_values(&[lowercase_name]).inc();
    }

    /// Counts one error reply.
    pub fn error(&self, code: &str) {
        self.errors.with_label_values(&[code]).inc();
    }

    /// Counts one server-side refusal or disconnect.
    pub fn disconnect(&self, reason: &str) {
        self.disconnects.with_label_values(&[reason]).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_and_counts() {
        let registry = Registry::new();
        let metrics = RedisMetrics::new(Some(&registry)).unwrap();
        metrics.command("get");
        metrics.error("WRONGTYPE");
        metrics.connected_clients.inc();
        metrics.write_round_commands.observe(208.0);
        metrics.write_round_seconds.observe(0.002);
        let families = registry.gather();
        assert_eq!(families.len(), 5, "disconnects has no sample yet");
        assert_eq!(metrics.commands.with_label_values(&["get"]).get(), 1);
        assert_eq!(metrics.write_round_commands.get_sample_count(), 1);
        assert_eq!(metrics.write_round_commands.get_sample_sum(), 208.0);
        assert!(
            RedisMetrics::new(Some(&registry)).is_err(),
            "double registration is refused"
        );
    }
}
