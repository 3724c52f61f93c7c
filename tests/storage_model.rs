//! Model test of the MVCC store: random sequences of writes (puts, deletes,
//! TTLs, range deletes, purges, metadata, pins), reads (get, multi-get,
//! paged scans in both directions with resume), validated writes with
//! conflicts, compactions and reopens, checked against a simple in-memory
//! model.
//!
//! The model keeps two views: `full`, the complete history (never
//! compacted), which every allowed read must match exactly, and `kept`, the
//! history after applying the retention rule (versions newer than the
//! target, plus each reader point's visible version unless it is dead with
//! nothing older kept), which decides latest commit timestamps and conflicts.

use std::collections::BTreeMap;

use elastickv::storage::{
    CompactOptions, Direction, GroupStore, Mutation, Outcome, PointValue, ScanRequest,
    StorageError, StoreOptions, VersionedValue, WriteIntent,
};
use proptest::prelude::*;

type Key = Vec<u8>;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Ver {
    tombstone: bool,
    expire_at: u64,
    start_ts: u64,
    value: Vec<u8>,
}

impl Ver {
    fn live_at(&self, ts: u64) -> bool {
        !self.tombstone && (self.expire_at == 0 || self.expire_at > ts)
    }
}

/// key → commit_ts → version
type History = BTreeMap<Key, BTreeMap<u64, Ver>>;

#[derive(Debug, Clone, Copy)]
struct ModelPin {
    ts: u64,
    deadline_ms: u64,
}

#[derive(Default)]
struct Model {
    full: History,
    kept: History,
    meta: BTreeMap<Key, Vec<u8>>,
    pins: BTreeMap<u64, ModelPin>,
    watermark: u64,
    honoured: Vec<u64>,
    applied_index: u64,
    last_commit_ts: u64,
    clock: u64,
}

fn in_range(k: &[u8], start: &[u8], end: Option<&[u8]>) -> bool {
    k >= start && end.is_none_or(|e| k < e)
}

fn visible(h: &History, key: &[u8], ts: u64) -> Option<VersionedValue> {
    let (commit_ts, v) = h.get(key)?.range(..=ts).next_back()?;
    v.live_at(ts).then(|| VersionedValue {
        key: key.to_vec(),
        value: v.value.clone(),
        commit_ts: *commit_ts,
        start_ts: v.start_ts,
        expire_at: v.expire_at,
    })
}

/// What a point read answers for a visible key (the caller has the key).
fn point(v: VersionedValue) -> PointValue {
    PointValue {
        value: v.value,
        commit_ts: v.commit_ts,
        start_ts: v.start_ts,
        expire_at: v.expire_at,
    }
}

impl Model {
    fn read_allowed(&self, ts: u64) -> bool {
        ts >= self.watermark
            || (self.honoured.contains(&ts) && self.pins.values().any(|p| p.ts == ts))
    }

    fn latest(&self, key: &[u8]) -> Option<u64> {
        self.kept
            .get(key)
            .and_then(|vs| vs.keys().next_back().copied())
    }

    fn conflict(&self, intent: &WriteIntent) -> Option<Key> {
        let newer = |k: &[u8]| self.latest(k).is_some_and(|ts| ts > intent.start_ts);
        for m in &intent.mutations {
            if let Mutation::Put { key, .. } | Mutation::Delete { key } = m
                && newer(key)
            {
                return Some(key.clone());
            }
        }
        for k in &intent.read_keys {
            if newer(k) {
                return Some(k.clone());
            }
        }
        for (s, e) in &intent.read_ranges {
            for k in self.kept.keys() {
                if in_range(k, s, e.as_deref()) && newer(k) {
                    return Some(k.clone());
                }
            }
        }
        None
    }

    fn put_version(&mut self, key: &[u8], ts: u64, v: Ver) {
        for h in [&mut self.full, &mut self.kept] {
            h.entry(key.to_vec()).or_default().insert(ts, v.clone());
        }
    }

    fn apply(&mut self, intent: &WriteIntent) -> Outcome {
        if let Some(i) = intent.applied_index
            && i <= self.applied_index
        {
            return Outcome::AlreadyApplied;
        }
        if intent.validate
            && let Some(key) = self.conflict(intent)
        {
            if let Some(i) = intent.applied_index {
                self.applied_index = i;
            }
            return Outcome::Conflict { key };
        }
        let ts = intent.commit_ts;
        for (i, m) in intent.mutations.iter().enumerate() {
            match m {
                Mutation::Put {
                    key,
                    value,
                    expire_at,
                } => self.put_version(
                    key,
                    ts,
                    Ver {
                        tombstone: false,
                        expire_at: *expire_at,
                        start_ts: intent.start_ts,
                        value: value.clone(),
                    },
                ),
                Mutation::Delete { key } => self.put_version(key, ts, tombstone(intent.start_ts)),
                Mutation::DeleteRange { start, end } => {
                    let mut doomed: Vec<Key> = self
                        .kept
                        .keys()
                        .filter(|k| in_range(k, start, end.as_deref()))
                        .filter(|k| visible(&self.kept, k, ts).is_some())
                        .cloned()
                        .collect();
                    for earlier in &intent.mutations[..i] {
                        if let Mutation::Put { key, .. } = earlier
                            && in_range(key, start, end.as_deref())
                        {
                            doomed.push(key.clone());
                        }
                    }
                    for k in doomed {
                        self.put_version(&k, ts, tombstone(intent.start_ts));
                    }
                }
                Mutation::PurgeRange { start, end } => {
                    for h in [&mut self.full, &mut self.kept] {
                        h.retain(|k, _| !in_range(k, start, end.as_deref()));
                    }
                }
                Mutation::MetaPut { key, value } => {
                    self.meta.insert(key.clone(), value.clone());
                }
                Mutation::MetaDelete { key } => {
                    self.meta.remove(key);
                }
                Mutation::Pin {
                    id,
                    ts,
                    deadline_ms,
                } => {
                    self.pins.insert(
                        *id,
                        ModelPin {
                            ts: *ts,
                            deadline_ms: *deadline_ms,
                        },
                    );
                }
                Mutation::Unpin { id } => {
                    self.pins.remove(id);
                }
            }
        }
        for h in [&mut self.full, &mut self.kept] {
            h.retain(|_, vs| !vs.is_empty());
        }
        self.last_commit_ts = self.last_commit_ts.max(ts);
        if let Some(i) = intent.applied_index {
            self.applied_index = i;
        }
        Outcome::Committed
    }

    fn compact(&mut self, target: u64, now_ms: u64) -> u64 {
        let live_pins: Vec<u64> = self
            .pins
            .values()
            .filter(|p| p.deadline_ms > now_ms)
            .map(|p| p.ts)
            .collect();
        self.pins.retain(|_, p| p.deadline_ms > now_ms);
        if target <= self.watermark {
            return self.watermark;
        }
        let mut honoured: Vec<u64> = live_pins
            .into_iter()
            .filter(|&t| t < target && (t >= self.watermark || self.honoured.contains(&t)))
            .collect();
        honoured.sort_unstable();
        honoured.dedup();
        let mut readers = honoured.clone();
        readers.push(target);
        for vs in self.kept.values_mut() {
            let mut keep: Vec<u64> = vs.range(target + 1..).map(|(t, _)| *t).collect();
            let mut dead = Vec::new();
            for &r in &readers {
                if let Some((t, v)) = vs.range(..=r).next_back() {
                    if v.live_at(r) {
                        keep.push(*t);
                    } else {
                        dead.push(*t);
                    }
                }
            }
            let oldest_live = keep.iter().copied().filter(|t| *t <= target).min();
            for t in dead {
                if oldest_live.is_some_and(|o| o < t) {
                    keep.push(t);
                }
            }
            vs.retain(|t, _| keep.contains(t));
        }
        self.kept.retain(|_, vs| !vs.is_empty());
        self.watermark = target;
        self.honoured = honoured;
        target
    }

    fn scan(&self, req: &ScanRequest) -> (Vec<VersionedValue>, Option<Key>) {
        let mut rows = Vec::new();
        let keys: Box<dyn Iterator<Item = &Key>> = match req.direction {
            Direction::Forward => Box::new(self.full.keys()),
            Direction::Reverse => Box::new(self.full.keys().rev()),
        };
        for k in keys {
            if !in_range(k, &req.start, req.end.as_deref()) {
                continue;
            }
            if let Some(r) = &req.resume {
                let past = match req.direction {
                    Direction::Forward => k > r,
                    Direction::Reverse => k < r,
                };
                if !past {
                    continue;
                }
            }
            if let Some(mut row) = visible(&self.full, k, req.read_ts) {
                if req.keys_only {
                    row.value.clear();
                }
                rows.push(row);
                if rows.len() >= req.limit {
                    let resume = rows.last().map(|r| r.key.clone());
                    return (rows, resume);
                }
            }
        }
        (rows, None)
    }
}

fn tombstone(start_ts: u64) -> Ver {
    Ver {
        tombstone: true,
        expire_at: 0,
        start_ts,
        value: Vec::new(),
    }
}

#[derive(Debug, Clone)]
enum MutSpec {
    Put(Key, Vec<u8>, Option<u64>),
    Delete(Key),
    DeleteRange(Key, Option<Key>),
    PurgeRange(Key, Option<Key>),
    MetaPut(Key, Vec<u8>),
    MetaDelete(Key),
    Pin(u64, u64, u64),
    Unpin(u64),
}

#[derive(Debug, Clone)]
enum Op {
    Apply {
        advance: u64,
        start_back: u64,
        validate: bool,
        read_keys: Vec<Key>,
        read_ranges: Vec<(Key, Option<Key>)>,
        muts: Vec<MutSpec>,
        index: Option<u64>,
    },
    Get(Key, u64),
    MultiGet(Vec<Key>, u64),
    Scan {
        start: Key,
        end: Option<Key>,
        back: u64,
        limit: usize,
        reverse: bool,
        keys_only: bool,
    },
    Latest(Key),
    Compact {
        back: u64,
        now_ms: u64,
        batch_keys: usize,
    },
    Reopen,
}

/// Keys over the bytes the escaping cares about (with `0x02`, ranges such
/// as `[x 00 01, x 00 02)` are exactly one route key's rows, the range a
/// Redis key's creation or removal deletes).
fn key() -> BoxedStrategy<Key> {
    prop::collection::vec(
        prop_oneof![Just(0u8), Just(1u8), Just(2u8), Just(b'a'), Just(0xFFu8)],
        0..4,
    )
    .boxed()
}

/// Three keys, one a prefix of another: long histories per key.
fn tiny_key() -> BoxedStrategy<Key> {
    prop_oneof![
        Just(b"a".to_vec()),
        Just(b"a\x00".to_vec()),
        Just(b"b".to_vec())
    ]
    .boxed()
}

/// Relative weights of (pins, compactions) in the generated ops.
#[derive(Clone, Copy)]
struct Mix {
    pins: u32,
    compactions: u32,
}

fn mut_spec(key: fn() -> BoxedStrategy<Key>, mix: Mix) -> impl Strategy<Value = MutSpec> {
    prop_oneof![
        6 => (key(), prop::collection::vec(any::<u8>(), 0..4), prop::option::weighted(0.3, 1u64..6))
            .prop_map(|(k, v, ttl)| MutSpec::Put(k, v, ttl)),
        3 => key().prop_map(MutSpec::Delete),
        1 => (key(), prop::option::of(key())).prop_map(|(s, e)| MutSpec::DeleteRange(s, e)),
        1 => (key(), prop::option::weighted(0.8, key())).prop_map(|(s, e)| MutSpec::PurgeRange(s, e)),
        1 => (key(), prop::collection::vec(any::<u8>(), 0..3)).prop_map(|(k, v)| MutSpec::MetaPut(k, v)),
        1 => key().prop_map(MutSpec::MetaDelete),
        mix.pins => (0u64..3, 0u64..20, 0u64..100).prop_map(|(id, back, dl)| MutSpec::Pin(id, back, dl)),
        1 => (0u64..3).prop_map(MutSpec::Unpin),
    ]
}

fn op(key: fn() -> BoxedStrategy<Key>, mix: Mix) -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (
            1u64..4,
            0u64..8,
            any::<bool>(),
            prop::collection::vec(key(), 0..2),
            prop::collection::vec((key(), prop::option::of(key())), 0..2),
            prop::collection::vec(mut_spec(key, mix), 1..4),
            prop::option::weighted(0.7, 0u64..3),
        )
            .prop_map(|(advance, start_back, validate, read_keys, read_ranges, muts, index)| Op::Apply {
                advance, start_back, validate, read_keys, read_ranges, muts, index
            }),
        3 => (key(), 0u64..30).prop_map(|(k, b)| Op::Get(k, b)),
        2 => (prop::collection::vec(key(), 0..5), 0u64..30).prop_map(|(ks, b)| Op::MultiGet(ks, b)),
        3 => (key(), prop::option::of(key()), 0u64..30, 1usize..4, any::<bool>(), any::<bool>())
            .prop_map(|(start, end, back, limit, reverse, keys_only)| Op::Scan { start, end, back, limit, reverse, keys_only }),
        1 => key().prop_map(Op::Latest),
        mix.compactions => (0u64..25, 0u64..100, 1usize..4)
            .prop_map(|(back, now_ms, batch_keys)| Op::Compact { back, now_ms, batch_keys }),
        1 => Just(Op::Reopen),
    ]
}

fn opts() -> StoreOptions {
    StoreOptions {
        sync_writes: false,
        block_cache_bytes: 1 << 20,
        create_if_missing: true,
        // Small: the newest-version cache both answers and evicts here.
        row_cache_bytes: 16 * 512,
    }
}

fn check_read<T: PartialEq + std::fmt::Debug>(
    model: &Model,
    ts: u64,
    got: Result<T, StorageError>,
    want: impl FnOnce() -> T,
) -> Result<(), TestCaseError> {
    if model.read_allowed(ts) {
        prop_assert_eq!(got.map_err(|e| e.to_string()), Ok(want()));
    } else {
        let fenced = matches!(got, Err(StorageError::ReadTimestampCompacted { .. }));
        prop_assert!(
            fenced,
            "read at {} below watermark {} was not refused: {:?}",
            ts,
            model.watermark,
            got
        );
    }
    Ok(())
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut store = GroupStore::open(dir.path(), opts()).unwrap();
    let mut model = Model {
        clock: 10,
        ..Model::default()
    };
    for op in ops {
        match op {
            Op::Apply {
                advance,
                start_back,
                validate,
                read_keys,
                read_ranges,
                muts,
                index,
            } => {
                model.clock += advance;
                let commit_ts = model.clock;
                let start_ts = commit_ts.saturating_sub(1 + start_back);
                let mutations = muts
                    .into_iter()
                    .map(|m| match m {
                        MutSpec::Put(key, value, ttl) => Mutation::Put {
                            key,
                            value,
                            expire_at: ttl.map_or(0, |t| commit_ts + t),
                        },
                        MutSpec::Delete(key) => Mutation::Delete { key },
                        MutSpec::DeleteRange(start, end) => Mutation::DeleteRange { start, end },
                        MutSpec::PurgeRange(start, end) => Mutation::PurgeRange { start, end },
                        MutSpec::MetaPut(key, value) => Mutation::MetaPut { key, value },
                        MutSpec::MetaDelete(key) => Mutation::MetaDelete { key },
                        MutSpec::Pin(id, back, deadline_ms) => Mutation::Pin {
                            id,
                            ts: commit_ts.saturating_sub(back),
                            deadline_ms,
                        },
                        MutSpec::Unpin(id) => Mutation::Unpin { id },
                    })
                    .collect();
                // 0 → next index, 1 → a replay of an old one, 2 → no index.
                let applied_index = index.and_then(|i| match i {
                    0 => Some(model.applied_index + 1),
                    1 => Some(model.applied_index),
                    _ => None,
                });
                let intent = WriteIntent {
                    start_ts,
                    commit_ts,
                    validate,
                    read_keys,
                    read_ranges,
                    mutations,
                    applied_index,
                    chain: Default::default(),
                };
                let want = model.apply(&intent);
                prop_assert_eq!(store.apply(&intent).unwrap(), want);
                prop_assert_eq!(store.applied_index(), model.applied_index);
                prop_assert_eq!(store.last_commit_ts(), model.last_commit_ts);
            }
            Op::Get(k, back) => {
                let ts = model.clock.saturating_sub(back);
                check_read(&model, ts, store.get(&k, ts), || {
                    visible(&model.full, &k, ts).map(point)
                })?;
            }
            Op::MultiGet(ks, back) => {
                let ts = model.clock.saturating_sub(back);
                check_read(&model, ts, store.multi_get(&ks, ts), || {
                    ks.iter()
                        .map(|k| visible(&model.full, k, ts).map(point))
                        .collect()
                })?;
            }
            Op::Scan {
                start,
                end,
                back,
                limit,
                reverse,
                keys_only,
            } => {
                let read_ts = model.clock.saturating_sub(back);
                let direction = if reverse {
                    Direction::Reverse
                } else {
                    Direction::Forward
                };
                let mut req = ScanRequest {
                    start,
                    end,
                    read_ts,
                    limit,
                    direction,
                    resume: None,
                    keys_only,
                };
                // Page through the whole range, comparing every page.
                for _ in 0..64 {
                    let got = store.scan(&req);
                    if !model.read_allowed(read_ts) {
                        let fenced =
                            matches!(got, Err(StorageError::ReadTimestampCompacted { .. }));
                        prop_assert!(
                            fenced,
                            "scan at {} below watermark {}: {:?}",
                            read_ts,
                            model.watermark,
                            got
                        );
                        break;
                    }
                    let page = got.map_err(|e| TestCaseError::fail(e.to_string()))?;
                    let (rows, resume) = model.scan(&req);
                    prop_assert_eq!(&page.rows, &rows);
                    prop_assert_eq!(&page.resume, &resume);
                    match resume {
                        Some(r) => req.resume = Some(r),
                        None => break,
                    }
                }
            }
            Op::Latest(k) => {
                prop_assert_eq!(store.latest_commit_ts(&k).unwrap(), model.latest(&k));
            }
            Op::Compact {
                back,
                now_ms,
                batch_keys,
            } => {
                let target = model.clock.saturating_sub(back);
                let want = model.compact(target, now_ms);
                let opts = CompactOptions {
                    batch_keys,
                    exclude: Vec::new(),
                    now_ms,
                };
                let stats = store.compact(target, &opts).unwrap();
                prop_assert_eq!(stats.watermark, want);
                prop_assert_eq!(store.watermark(), want);
                let mut pins: Vec<u64> = store.pins().unwrap().iter().map(|p| p.id).collect();
                pins.sort_unstable();
                prop_assert_eq!(pins, model.pins.keys().copied().collect::<Vec<_>>());
            }
            Op::Reopen => {
                drop(store);
                store = GroupStore::open(dir.path(), opts()).unwrap();
                prop_assert_eq!(store.applied_index(), model.applied_index);
                prop_assert_eq!(store.last_commit_ts(), model.last_commit_ts);
                prop_assert_eq!(store.watermark(), model.watermark);
            }
        }
    }
    // Final state: metadata and every key's latest version agree.
    for (k, v) in &model.meta {
        prop_assert_eq!(store.meta_get(k).unwrap(), Some(v.clone()));
    }
    for k in model.kept.keys() {
        prop_assert_eq!(store.latest_commit_ts(k).unwrap(), model.latest(k));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn store_matches_model(ops in prop::collection::vec(op(key, Mix { pins: 1, compactions: 2 }), 1..60)) {
        run(ops)?;
    }

    /// Few keys, many versions, frequent pins and compactions: exercises
    /// the retention rule (tombstones over pinned history, honoured pins).
    #[test]
    fn retention_matches_model(ops in prop::collection::vec(op(tiny_key, Mix { pins: 4, compactions: 4 }), 1..60)) {
        run(ops)?;
    }
}
