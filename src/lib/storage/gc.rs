//! MVCC garbage collection of a `GroupStore` and its background runner.
//!
//! Compaction to `target` keeps, for every user key, each version newer than
//! `target` and, for each *reader point* (the target and every live, honoured
//! pin below it), the version visible there. A visible version that is a
//! tombstone or expired at its reader point is dropped too, unless an older
//! version is kept (dropping it would then resurrect that older version).
//!
//! Invariants:
//! - reads are fenced before any history is deleted: the pending watermark
//!   (with the pins it honours) is fsynced first, the committed watermark is
//!   written (fsynced, after the deletes, hence after they are durable) last;
//!   a crash in between leaves reads fenced at the pending watermark and the
//!   next run resumes it;
//! - the watermark never goes down;
//! - a pin counts as a reader point only if its history was never compacted
//!   away: its ts is at or above the previous fence, or a previous run
//!   honoured it;
//! - each batch of keys is examined and deleted under the apply mutex, so a
//!   concurrent write never interleaves with a decision about its key, and
//!   writers wait at most one batch;
//! - excluded user-key ranges are never touched.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex as StdMutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rocksdb::WriteBatch;

use super::api::{Cf, CompactStats};
use super::error::StorageError;
use super::keys::{self, TS_LEN};
use super::meta::{self, WatermarkRecord};
use super::reads::{current_version, range_read_options};
use super::store::GroupStore;
use super::value::decode_value_ref;
use crate::clock::Timestamp;

/// Options of one compaction run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactOptions {
    /// User keys examined per batch (and per hold of the apply mutex).
    pub batch_keys: usize,
    /// User-key ranges `[start, end)` (end `None` = unbounded) left untouched,
    /// e.g. ranges in migration.
    pub exclude: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Wall-clock now (Unix ms); pins whose deadline is not after it lapse.
    pub now_ms: u64,
}

impl CompactOptions {
    pub fn at(now_ms: u64) -> CompactOptions {
        CompactOptions {
            batch_keys: 1024,
            exclude: Vec::new(),
            now_ms,
        }
    }
}

/// One version's facts needed to decide whether it stays.
struct VersionFacts {
    phys: Vec<u8>,
    ts: Timestamp,
    tombstone: bool,
    expire_at: Timestamp,
}

/// Indices (into `versions`, newest first) of the versions to delete.
fn versions_to_drop(
    versions: &[VersionFacts],
    target: Timestamp,
    readers: &[Timestamp],
) -> Vec<usize> {
    let mut keep = vec![false; versions.len()];
    let mut dead_visible = Vec::new();
    let mut oldest_live_kept: Option<usize> = None;
    for (i, v) in versions.iter().enumerate() {
        if v.ts > target {
            keep[i] = true;
        }
    }
    for &r in readers {
        if let Some(i) = versions.iter().position(|v| v.ts <= r) {
            let v = &versions[i];
            let live = !v.tombstone && (v.expire_at == 0 || v.expire_at > r);
            if live {
                keep[i] = true;
                oldest_live_kept = Some(oldest_live_kept.map_or(i, |o| o.max(i)));
            } else {
                dead_visible.push(i);
            }
        }
    }
    // A dead visible version must stay if something older stays, or readers
    // would see through it.
    for i in dead_visible {
        if oldest_live_kept.is_some_and(|o| o > i) {
            keep[i] = true;
        }
    }
    (0..versions.len()).filter(|&i| !keep[i]).collect()
}

fn excluded_end<'a>(
    phys: &[u8],
    exclude: &'a [(Vec<u8>, Option<Vec<u8>>)],
) -> Option<Option<&'a Vec<u8>>> {
    exclude
        .iter()
        .find(|(lo, hi)| phys >= lo.as_slice() && hi.as_ref().is_none_or(|h| phys < h.as_slice()))
        .map(|(_, hi)| hi.as_ref())
}

impl GroupStore {
    /// Compacts history up to `target` (see the module docs). A target at or
    /// below the current watermark only removes lapsed pins. An interrupted
    /// run is resumed (its target wins if higher).
    pub fn compact(
        &self,
        target: Timestamp,
        opts: &CompactOptions,
    ) -> Result<CompactStats, StorageError> {
        let _maintenance = self.maintenance_lock.lock();
        let Some(plan) = self.begin_compaction(target, opts)? else {
            return Ok(CompactStats {
                watermark: self.watermark(),
                ..CompactStats::default()
            });
        };
        let mut stats = self.gc_pass(&plan, opts)?;
        self.commit_compaction(&plan)?;
        stats.watermark = plan.ts;
        Ok(stats)
    }

    /// Drops lapsed pins and, if the target is new, fsyncs the pending
    /// watermark and raises the read fence. Returns the pending record.
    fn begin_compaction(
        &self,
        requested: Timestamp,
        opts: &CompactOptions,
    ) -> Result<Option<WatermarkRecord>, StorageError> {
        let meta_cf = self.cf(Cf::Meta)?;
        let _apply = self.apply_lock.lock();
        let retention = self.retention.read().clone();
        let interrupted = retention
            .pending
            .as_ref()
            .filter(|p| p.ts > retention.committed.ts);
        let target = requested.max(interrupted.map_or(0, |p| p.ts));
        let previous = retention.effective().clone();
        let pins = self.pins.read().clone();
        let mut batch = WriteBatch::default();
        let mut lapsed = Vec::new();
        for pin in pins.values() {
            if pin.deadline_ms <= opts.now_ms {
                batch.delete_cf(meta_cf, meta::pin_key(pin.id));
                lapsed.push(pin.id);
            }
        }
        let plan = (target > retention.committed.ts).then(|| {
            let mut honoured: Vec<Timestamp> = pins
                .values()
                .filter(|p| p.deadline_ms > opts.now_ms && p.ts < target)
                .map(|p| p.ts)
                .filter(|ts| *ts >= previous.ts || previous.honoured.binary_search(ts).is_ok())
                .collect();
            honoured.sort_unstable();
            honoured.dedup();
            WatermarkRecord {
                ts: target,
                honoured,
            }
        });
        if let Some(plan) = &plan {
            batch.put_cf(meta_cf, meta::PENDING_WATERMARK_KEY, plan.encode());
        }
        if batch.is_empty() {
            return Ok(plan);
        }
        self.write(batch, true, "begin compaction")?;
        {
            let mut pins = self.pins.write();
            for id in lapsed {
                pins.remove(&id);
            }
        }
        if let Some(plan) = &plan {
            self.retention.write().pending = Some(plan.clone());
            self.fence_ts.fetch_max(plan.ts, Ordering::SeqCst);
        }
        Ok(plan)
    }

    fn gc_pass(
        &self,
        plan: &WatermarkRecord,
        opts: &CompactOptions,
    ) -> Result<CompactStats, StorageError> {
        let data = self.cf(Cf::Data)?;
        let mut readers = plan.honoured.clone();
        readers.push(plan.ts);
        readers.reverse(); // newest reader first: cheaper `position` scans
        let exclude: Vec<(Vec<u8>, Option<Vec<u8>>)> = opts
            .exclude
            .iter()
            .map(|(lo, hi)| {
                (
                    keys::physical_bound(lo),
                    hi.as_deref().map(keys::physical_bound),
                )
            })
            .collect();
        let batch_keys = opts.batch_keys.max(1);
        let mut stats = CompactStats::default();
        let mut cursor: Vec<u8> = Vec::new();
        loop {
            let _apply = self.apply_lock.lock();
            let mut it = self
                .db
                .raw_iterator_cf_opt(data, range_read_options(Vec::new(), None));
            it.seek(&cursor);
            let mut batch = WriteBatch::default();
            let mut examined = 0usize;
            let mut finished = false;
            let mut versions: Vec<VersionFacts> = Vec::new();
            let mut touched: Vec<Vec<u8>> = Vec::new();
            while examined < batch_keys {
                let Some((key, _, _)) = current_version(&it)? else {
                    finished = true;
                    break;
                };
                if let Some(end) = excluded_end(key, &exclude) {
                    match end {
                        Some(end) => {
                            it.seek(end);
                            continue;
                        }
                        None => {
                            finished = true;
                            break;
                        }
                    }
                }
                let prefix = key[..key.len() - TS_LEN].to_vec();
                versions.clear();
                while let Some((key, value, ts)) = current_version(&it)? {
                    if !key.starts_with(&prefix) {
                        break;
                    }
                    if key.len() != prefix.len() + TS_LEN {
                        return Err(StorageError::corrupt(
                            "data",
                            key,
                            "trailing bytes after the version timestamp",
                        ));
                    }
                    let v = decode_value_ref(key, value)?;
                    versions.push(VersionFacts {
                        phys: key.to_vec(),
                        ts,
                        tombstone: v.tombstone,
                        expire_at: v.expire_at,
                    });
                    it.next();
                }
                let mut dropped_any = false;
                for i in versions_to_drop(&versions, plan.ts, &readers) {
                    batch.delete_cf(data, &versions[i].phys);
                    stats.versions_removed += 1;
                    dropped_any = true;
                }
                if dropped_any {
                    touched.push(prefix);
                }
                examined += 1;
            }
            stats.keys_examined += examined as u64;
            if !finished {
                match it.key() {
                    Some(k) => cursor = k.to_vec(),
                    None => finished = true,
                }
            }
            if !batch.is_empty() {
                let result = self.write(batch, false, "compaction delete");
                // Still under the apply mutex: no reader can learn of a
                // later write before these keys are forgotten.
                for prefix in &touched {
                    self.row_cache.forget(prefix);
                }
                result?;
                stats.batches += 1;
            }
            if finished {
                return Ok(stats);
            }
        }
    }

    /// Persists the watermark (fsync, which also makes the earlier unsynced
    /// deletes durable: they precede it in the write-ahead log).
    fn commit_compaction(&self, plan: &WatermarkRecord) -> Result<(), StorageError> {
        let meta_cf = self.cf(Cf::Meta)?;
        let _apply = self.apply_lock.lock();
        let mut batch = WriteBatch::default();
        batch.put_cf(meta_cf, meta::WATERMARK_KEY, plan.encode());
        batch.delete_cf(meta_cf, meta::PENDING_WATERMARK_KEY);
        self.write(batch, true, "commit compaction")?;
        let mut retention = self.retention.write();
        retention.committed = plan.clone();
        retention.pending = None;
        Ok(())
    }
}

/// What the background runner should compact to next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionPlan {
    pub target: Timestamp,
    pub exclude: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

struct RunnerShared {
    state: StdMutex<RunnerState>,
    wake: Condvar,
}

#[derive(Default)]
struct RunnerState {
    stop: bool,
    triggered: bool,
    runs: u64,
    last: Option<Result<CompactStats, String>>,
}

/// Runs `compact` on a background thread every `interval` (or on
/// [`CompactionRunner::trigger`]), with the target and exclusions from a
/// closure; stops (and joins) on [`CompactionRunner::stop`] or drop.
pub struct CompactionRunner {
    shared: Arc<RunnerShared>,
    thread: Option<JoinHandle<()>>,
}

fn unix_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl CompactionRunner {
    pub fn spawn<F>(
        store: Arc<GroupStore>,
        interval: Duration,
        batch_keys: usize,
        mut plan: F,
    ) -> std::io::Result<CompactionRunner>
    where
        F: FnMut() -> Option<CompactionPlan> + Send + 'static,
    {
        let shared = Arc::new(RunnerShared {
            state: StdMutex::new(RunnerState::default()),
            wake: Condvar::new(),
        });
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("ekv-compaction".into())
            .spawn(move || {
                loop {
                    {
                        let Ok(mut state) = worker.state.lock() else {
                            return;
                        };
                        if !state.stop && !state.triggered {
                            state = match worker.wake.wait_timeout(state, interval) {
                                Ok((s, _)) => s,
                                Err(_) => return,
                            };
                        }
                        if state.stop {
                            return;
                        }
                        state.triggered = false;
                    }
                    let Some(next) = plan() else { continue };
                    let opts = CompactOptions {
                        batch_keys,
                        exclude: next.exclude,
                        now_ms: unix_now_ms(),
                    };
                    let result = store.compact(next.target, &opts).map_err(|e| e.to_string());
                    if let Err(e) = &result {
                        tracing::warn!(error = %e, "background compaction failed");
                    }
                    let Ok(mut state) = worker.state.lock() else {
                        return;
                    };
                    state.runs += 1;
                    state.last = Some(result);
                    worker.wake.notify_all();
                }
            })?;
        Ok(CompactionRunner {
            shared,
            thread: Some(thread),
        })
    }

    /// Asks for a run now rather than at the next interval.
    pub fn trigger(&self) {
        if let Ok(mut state) = self.shared.state.lock() {
            state.triggered = true;
            self.shared.wake.notify_all();
        }
    }

    /// Number of completed runs (successful or not).
    pub fn runs(&self) -> u64 {
        self.shared.state.lock().map_or(0, |s| s.runs)
    }

    /// Outcome of the latest run.
    pub fn last_result(&self) -> Option<Result<CompactStats, String>> {
        self.shared.state.lock().ok().and_then(|s| s.last.clone())
    }

    /// Waits (at most `timeout`) until at least `runs` runs have completed.
    pub fn wait_for_runs(&self, runs: u64, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let Ok(mut state) = self.shared.state.lock() else {
            return false;
        };
        while state.runs < runs {
            let now = std::time::Instant::now();
            if now >= deadline {
                return false;
            }
            state = match self.shared.wake.wait_timeout(state, deadline - now) {
                Ok((s, _)) => s,
                Err(_) => return false,
            };
        }
        true
    }

    /// Stops the thread and waits for it (a run in progress finishes its batch loop first).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Ok(mut state) = self.shared.state.lock() {
            state.stop = true;
            self.shared.wake.notify_all();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for CompactionRunner {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(ts: Timestamp, tombstone: bool, expire_at: Timestamp) -> VersionFacts {
        VersionFacts {
            phys: Vec::new(),
            ts,
            tombstone,
            expire_at,
        }
    }

    #[test]
    fn keeps_newer_and_visible_versions() {
        // Newest first: 20, 8, 5, 1; target 10, pin at 6.
        let versions = [
            v(20, false, 0),
            v(8, false, 0),
            v(5, false, 0),
            v(1, false, 0),
        ];
        assert_eq!(versions_to_drop(&versions, 10, &[10, 6]), vec![3]);
        assert_eq!(versions_to_drop(&versions, 10, &[10]), vec![2, 3]);
    }

    #[test]
    fn tombstone_is_dropped_only_when_nothing_older_stays() {
        // delete@5 over put@1, target 10.
        let versions = [v(5, true, 0), v(1, false, 0)];
        assert_eq!(versions_to_drop(&versions, 10, &[10]), vec![0, 1]);
        // A pin at 3 keeps put@1, so the tombstone must stay to hide it at 10.
        assert_eq!(
            versions_to_drop(&versions, 10, &[10, 3]),
            Vec::<usize>::new()
        );
    }

    #[test]
    fn expired_versions_go_unless_a_pin_still_sees_them() {
        let versions = [v(5, false, 7)];
        assert_eq!(versions_to_drop(&versions, 10, &[10]), vec![0]);
        assert_eq!(
            versions_to_drop(&versions, 10, &[10, 6]),
            Vec::<usize>::new()
        );
    }
}

#[cfg(test)]
mod runner_tests {
    use super::*;
    use crate::storage::api::Mutation;
    use crate::storage::options::StoreOptions;
    use crate::storage::test_support::commit_at;

    #[test]
    fn runner_compacts_in_the_background_and_fences_reads() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(GroupStore::open(dir.path(), StoreOptions::default()).unwrap());
        for ts in [10u64, 20] {
            let m = Mutation::Put {
                key: b"k".to_vec(),
                value: ts.to_be_bytes().to_vec(),
                expire_at: 0,
            };
            commit_at(&store, ts, vec![m]);
        }
        let runner =
            CompactionRunner::spawn(Arc::clone(&store), Duration::from_secs(3600), 16, || {
                Some(CompactionPlan {
                    target: 25,
                    exclude: Vec::new(),
                })
            })
            .unwrap();
        runner.trigger();
        assert!(runner.wait_for_runs(1, Duration::from_secs(30)));
        let stats = runner.last_result().unwrap().unwrap();
        assert_eq!(stats.versions_removed, 1);
        assert_eq!(store.watermark(), 25);
        runner.stop();
        assert!(matches!(
            store.get(b"k", 15),
            Err(StorageError::ReadTimestampCompacted {
                read_ts: 15,
                watermark: 25
            })
        ));
        assert_eq!(store.get(b"k", 25).unwrap().unwrap().commit_ts, 20);
        // The read at 25 cached k's newest version (20): a read between it
        // and the fence could be answered from the cache alone, and is
        // refused all the same, as is a multi-get of no key at all.
        let refused = |r: Result<_, StorageError>| {
            matches!(
                r,
                Err(StorageError::ReadTimestampCompacted {
                    read_ts: 24,
                    watermark: 25
                })
            )
        };
        assert!(refused(store.get(b"k", 24).map(|_| ())));
        assert!(refused(store.multi_get(&[b"k".to_vec()], 24).map(|_| ())));
        assert!(refused(store.multi_get(&[], 24).map(|_| ())));
    }

    #[test]
    fn excluded_ranges_keep_their_history() {
        let dir = tempfile::tempdir().unwrap();
        let store = GroupStore::open(dir.path(), StoreOptions::default()).unwrap();
        for ts in [10u64, 20] {
            let muts = [b"a", b"m", b"z"]
                .iter()
                .map(|k| Mutation::Put {
                    key: k.to_vec(),
                    value: vec![],
                    expire_at: 0,
                })
                .collect();
            commit_at(&store, ts, muts);
        }
        let opts = CompactOptions {
            batch_keys: 1,
            exclude: vec![(b"m".to_vec(), Some(b"n".to_vec()))],
            now_ms: 0,
        };
        let stats = store.compact(30, &opts).unwrap();
        assert_eq!(
            stats.versions_removed, 2,
            "a and z lose their old version, m keeps it"
        );
        assert_eq!(stats.keys_examined, 2);
    }
}
