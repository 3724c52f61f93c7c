//! The Prometheus `/metrics` endpoint (text exposition format), and the
//! collector of per-group storage figures (read when scraped).

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::sync::Arc;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Encoder, IntGaugeVec, Opts, Registry, TextEncoder};
use tokio::sync::watch;

use crate::storage::GroupStore;

/// Newest-version cache figures of each group's store, read at scrape time.
/// Hits and misses are exported as gauges of running totals (use `rate()`
/// as with counters): their source counts only up, so they behave as
/// counters without a second copy to keep in step.
pub struct StorageCollector {
    stores: Vec<(u64, Arc<GroupStore>)>,
    hits: IntGaugeVec,
    misses: IntGaugeVec,
    entries: IntGaugeVec,
    bytes: IntGaugeVec,
    budget: IntGaugeVec,
}

impl StorageCollector {
    pub fn new(stores: Vec<(u64, Arc<GroupStore>)>) -> prometheus::Result<Self> {
        let vec = |name: &str, help: &str| IntGaugeVec::new(Opts::new(name, help), &["group"]);
        Ok(StorageCollector {
            stores,
            hits: vec(
                "elastickv_row_cache_hits",
                "Point reads answered by the newest-version cache (running total)",
            )?,
            misses: vec(
                "elastickv_row_cache_misses",
                "Point reads that went to RocksDB (running total)",
            )?,
            entries: vec(
                "elastickv_row_cache_entries",
                "Keys in the newest-version cache",
            )?,
            bytes: vec(
                "elastickv_row_cache_bytes",
                "Bytes charged to the newest-version cache",
            )?,
            budget: vec(
                "elastickv_row_cache_budget_bytes",
                "Budget of the newest-version cache (0: off)",
            )?,
        })
    }

    fn all(&self) -> [&IntGaugeVec; 5] {
        [
            &self.hits,
            &self.misses,
            &self.entries,
            &self.bytes,
            &self.budget,
        ]
    }
}

impl Collector for StorageCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.all().into_iter().flat_map(|g| g.desc()).collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        for (group, store) in &self.stores {
            let stats = store.row_cache_stats();
            let label = group.to_string();
            let set = |g: &IntGaugeVec, v: u64| {
                g.with_label_values(&[label.as_str()])
                    .set(i64::try_from(v).unwrap_or(i64::MAX));
            };
            set(&self.hits, stats.hits);
            set(&self.misses, stats.misses);
            set(&self.entries, stats.entries);
            set(&self.bytes, stats.bytes);
            set(&self.budget, stats.budget_bytes);
        }
        self.all().into_iter().flat_map(|g| g.collect()).collect()
    }
}

async fn metrics(State(registry): State<Registry>) -> impl IntoResponse {
    let mut buf = Vec::new();
    match TextEncoder::new().encode(&registry.gather(), &mut buf) {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            buf,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// Serves `/metrics` until `stop` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    registry: Registry,
    mut stop: watch::Receiver<bool>,
) {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .with_state(registry);
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await;
    if let Err(e) = result {
        tracing::error!("metrics endpoint stopped: {e}");
    }
}
