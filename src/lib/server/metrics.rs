//! The Prometheus `/metrics` endpoint (text exposition format), and the
//! collector of per-group storage figures (read when scraped): the
//! newest-version cache and RocksDB's own memory and compaction figures.

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

/// Newest-version cache and RocksDB figures of each group's store, read at
/// scrape time.
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
    table_readers: IntGaugeVec,
    memtables: IntGaugeVec,
    block_cache: IntGaugeVec,
    live_sst: IntGaugeVec,
    l0_files: IntGaugeVec,
    pending_compaction: IntGaugeVec,
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
            table_readers: vec(
                "elastickv_rocksdb_table_readers_bytes",
                "Index and bloom-filter blocks of open SST files, held outside the block cache",
            )?,
            memtables: vec(
                "elastickv_rocksdb_memtable_bytes",
                "Active and immutable memtables of all column families",
            )?,
            block_cache: vec(
                "elastickv_rocksdb_block_cache_bytes",
                "Data blocks in the block cache",
            )?,
            live_sst: vec(
                "elastickv_rocksdb_live_sst_bytes",
                "SST files of the current LSM tree",
            )?,
            l0_files: vec(
                "elastickv_rocksdb_l0_files",
                "SST files in level 0 (each consulted by every point read)",
            )?,
            pending_compaction: vec(
                "elastickv_rocksdb_pending_compaction_bytes",
                "Bytes compaction estimates it must rewrite",
            )?,
        })
    }

    fn all(&self) -> [&IntGaugeVec; 11] {
        [
            &self.hits,
            &self.misses,
            &self.entries,
            &self.bytes,
            &self.budget,
            &self.table_readers,
            &self.memtables,
            &self.block_cache,
            &self.live_sst,
            &self.l0_files,
            &self.pending_compaction,
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
            match store.engine_stats() {
                Ok(engine) => {
                    set(&self.table_readers, engine.table_readers_bytes);
                    set(&self.memtables, engine.memtable_bytes);
                    set(&self.block_cache, engine.block_cache_bytes);
                    set(&self.live_sst, engine.live_sst_bytes);
                    set(&self.l0_files, engine.l0_files);
                    set(&self.pending_compaction, engine.pending_compaction_bytes);
                }
                // A scrape must not fail for one figure; the gauges keep
                // their last values and the log says why.
                Err(e) => tracing::warn!(group, "RocksDB figures unavailable: {e}"),
            }
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
