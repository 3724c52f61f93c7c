//! The atomic, optionally validated write of a `GroupStore`.
//!
//! Invariants:
//! - one apply mutex serialises validate→commit, so validation sees every
//!   earlier write and no later one;
//! - data, pins, state-machine records, last commit ts and the applied index
//!   go in ONE RocksDB batch: after a crash a write is wholly present or
//!   wholly absent, and the applied index matches the data;
//! - an entry at or below the applied index writes nothing; a conflicting
//!   entry writes only the applied index;
//! - deterministic: the result depends only on the store's contents and the
//!   intent (no clock, no randomness, no hash-order iteration), so every
//!   replica applies an entry identically.

use std::sync::atomic::Ordering;

use rocksdb::WriteBatch;

use super::api::{Cf, Mutation, Outcome, WriteIntent};
use super::error::StorageError;
use super::keys::{self, TS_LEN, data_key_from_prefix, encode_data_key};
use super::meta;
use super::reads::{
    RawIter, current_version, iter_status, newest_version_ts, range_read_options, skip_versions,
};
use super::store::GroupStore;
use super::value::{decode_value_ref, encode_put, encode_tombstone};
use crate::clock::Timestamp;

/// Data-CF puts of one batch segment, written in key order.
///
/// Why: RocksDB inserts a batch into the memtable skiplist one entry after
/// another, each a descent through the list (the most expensive part of
/// applying a write round); in key order consecutive descents share their
/// path, so it stays in cache, and an insert next to the previous one skips
/// the descent.
/// A segment holds only puts, so ordering them by key, with the last put of
/// a physical key winning, leaves exactly the state the original order
/// would; a range delete closes the segment (it removes only what precedes
/// it).
#[derive(Default)]
struct SortedPuts {
    pending: Vec<(Vec<u8>, Vec<u8>)>,
    written: WrittenPuts,
}

/// What a batch did to the data column family, for the row cache.
#[derive(Default)]
struct WrittenPuts {
    /// Physical (key, value) puts in batch order (last of a key wins).
    puts: Vec<(Vec<u8>, Vec<u8>)>,
    /// The batch also removed a physical range.
    removed_ranges: bool,
}

impl SortedPuts {
    fn push(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.pending.push((key, value));
    }

    fn flush_into(&mut self, batch: &mut WriteBatch, cf: &rocksdb::ColumnFamily) {
        // Stable: equal keys keep their order, so the last one is the winner.
        self.pending.sort_by(|a, b| a.0.cmp(&b.0));
        let mut entries = self.pending.drain(..).peekable();
        while let Some((key, value)) = entries.next() {
            if entries.peek().is_some_and(|(next, _)| *next == key) {
                continue;
            }
            batch.put_cf(cf, &key, &value);
            self.written.puts.push((key, value));
        }
    }
}

/// The key a refused write names: its first point mutation's, if any.
fn first_mutation_key(intent: &WriteIntent) -> Vec<u8> {
    intent
        .mutations
        .iter()
        .find_map(|m| match m {
            Mutation::Put { key, .. } | Mutation::Delete { key } => Some(key.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

fn in_range(key: &[u8], start: &[u8], end: Option<&[u8]>) -> bool {
    key >= start && end.is_none_or(|e| key < e)
}

impl GroupStore {
    /// Applies `intent` atomically; see [`WriteIntent`] and [`Outcome`].
    pub fn apply(&self, intent: &WriteIntent) -> Result<Outcome, StorageError> {
        let _apply = self.apply_lock.lock();
        if let Some(index) = intent.applied_index
            && index <= self.applied_index()
        {
            return Ok(Outcome::AlreadyApplied);
        }
        let conflict = if intent.chain.strict && intent.commit_ts <= self.last_commit_ts() {
            // Too late to land at its own timestamp (see `Chain::strict`).
            Some(first_mutation_key(intent))
        } else if intent.validate {
            self.find_conflict(intent)?
        } else {
            None
        };
        if let Some(key) = conflict {
            self.record_conflict(intent)?;
            return Ok(Outcome::Conflict { key });
        }
        // Above every earlier commit: this intent's versions become the
        // newest of their keys.
        let newest = intent.commit_ts > self.last_commit_ts();
        let (batch, written) = self.build_batch(intent)?;
        let result = self.write(batch, self.opts.sync_writes, "apply");
        self.update_row_cache(&written, newest && result.is_ok());
        result?;
        self.publish(intent);
        Ok(Outcome::Committed)
    }

    /// A refused write still counts as applied, and a strict one burns its
    /// commit ts (see `Chain::strict`); nothing else is written.
    fn record_conflict(&self, intent: &WriteIntent) -> Result<(), StorageError> {
        let burn = intent.chain.strict && intent.commit_ts > self.last_commit_ts();
        let mut batch = WriteBatch::default();
        let meta_cf = self.cf(Cf::Meta)?;
        if burn {
            batch.put_cf(
                meta_cf,
                meta::LAST_COMMIT_TS_KEY,
                intent.commit_ts.to_be_bytes(),
            );
        }
        if let Some(index) = intent.applied_index {
            batch.put_cf(
                meta_cf,
                meta::APPLIED_INDEX_KEY,
                meta::encode_applied_index(index),
            );
        }
        if batch.is_empty() {
            return Ok(());
        }
        self.write(batch, self.opts.sync_writes, "apply (conflict)")?;
        if burn {
            self.record_commit_ts(intent.commit_ts);
        }
        if let Some(index) = intent.applied_index {
            self.applied_index.store(index, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Keeps the newest-version cache true after a write of `written`
    /// (before anyone can learn of the write: see `row_cache`).
    fn update_row_cache(&self, written: &WrittenPuts, newest: bool) {
        if !self.row_cache.enabled() {
            return;
        }
        if written.removed_ranges {
            self.row_cache.clear();
            return;
        }
        for (key, value) in &written.puts {
            let Some((prefix, ts)) = keys::split_data_key(key) else {
                self.row_cache.clear();
                return;
            };
            if newest {
                self.row_cache.install(prefix, ts, value);
            } else {
                self.row_cache.forget(prefix);
            }
        }
    }

    /// Updates the in-memory mirrors after the batch of `intent` was written.
    fn publish(&self, intent: &WriteIntent) {
        self.record_commit_ts(intent.commit_ts);
        if let Some(index) = intent.applied_index {
            self.applied_index.store(index, Ordering::SeqCst);
        }
        let has_pin_change = intent
            .mutations
            .iter()
            .any(|m| matches!(m, Mutation::Pin { .. } | Mutation::Unpin { .. }));
        if has_pin_change {
            let mut pins = self.pins.write();
            for m in &intent.mutations {
                match *m {
                    Mutation::Pin {
                        id,
                        ts,
                        deadline_ms,
                    } => {
                        pins.insert(
                            id,
                            super::api::Pin {
                                id,
                                ts,
                                deadline_ms,
                            },
                        );
                    }
                    Mutation::Unpin { id } => {
                        pins.remove(&id);
                    }
                    _ => {}
                }
            }
        }
    }

    /// First key whose newest version the writer did not see: newer than
    /// `start_ts`, unless it is exactly the chained predecessor's commit ts
    /// (checked in this order: the chain guard, mutation keys, read keys,
    /// read ranges, each in input order).
    fn find_conflict(&self, intent: &WriteIntent) -> Result<Option<Vec<u8>>, StorageError> {
        let after = intent.chain.after.as_ref();
        // Every version in the group is at or below the last commit ts (it
        // only rises, and only commits write versions): when that is not
        // past the reader's start, nothing can be newer — no key to check.
        // The common case for a node's serialised write rounds.
        let nothing_newer = self.last_commit_ts() <= intent.start_ts;
        if nothing_newer && after.is_none() {
            return Ok(None);
        }
        // The predecessor is the only commit since the start, so every newer
        // version is its own (see `previous_commit_ts`): past the guard,
        // nothing to check. The common case of a chain of rounds on one key.
        let only_predecessor = after.is_some_and(|a| {
            self.last_commit_ts() == a.ts
                && self.previous_commit_ts.load(Ordering::SeqCst) <= intent.start_ts
        });
        let seen = |ts: Timestamp| ts <= intent.start_ts || after.is_some_and(|a| a.ts == ts);
        let data = self.cf(Cf::Data)?;
        let mutation_keys = intent.mutations.iter().filter_map(|m| match m {
            Mutation::Put { key, .. } | Mutation::Delete { key } => Some(key),
            _ => None,
        });
        let point_conflict = self.point_iters.with_point_iter(&self.db, |it, _| {
            // Under the apply mutex a cached entry is the key's newest
            // version exactly (see `row_cache`).
            let mut newest_of = |key: &[u8]| -> Result<Option<Timestamp>, StorageError> {
                let prefix = keys::encode_key_prefix(key);
                match self.row_cache.newest_ts(&prefix) {
                    Some(ts) => Ok((ts > 0).then_some(ts)),
                    None => newest_version_ts(&self.db, it, &prefix),
                }
            };
            if let Some(after) = after
                && newest_of(&after.guard)? != Some(after.ts)
            {
                return Ok(Some(after.guard.clone()));
            }
            if nothing_newer || only_predecessor {
                return Ok(None);
            }
            // A key both read and written (read-modify-write) is checked once.
            let mut checked: std::collections::HashSet<&[u8], foldhash::fast::RandomState> =
                Default::default();
            for key in mutation_keys.chain(intent.read_keys.iter()) {
                if !checked.insert(key.as_slice()) {
                    continue;
                }
                if newest_of(key)?.is_some_and(|ts| !seen(ts)) {
                    return Ok(Some(key.clone()));
                }
            }
            Ok(None)
        })?;
        if point_conflict.is_some() || nothing_newer || only_predecessor {
            return Ok(point_conflict);
        }
        for (start, end) in &intent.read_ranges {
            let lower = keys::physical_bound(start);
            let upper = end.as_deref().map(keys::physical_bound);
            if upper.as_ref().is_some_and(|u| u <= &lower) {
                continue;
            }
            let mut it = self
                .db
                .raw_iterator_cf_opt(data, range_read_options(lower, upper));
            it.seek_to_first();
            // The first version met of each key is its newest.
            while let Some((key, _, ts)) = current_version(&it)? {
                let prefix = key[..key.len() - TS_LEN].to_vec();
                if !seen(ts) {
                    return Ok(Some(keys::decode_prefix("data", key, &prefix)?));
                }
                skip_versions(&mut it, &prefix);
            }
        }
        Ok(None)
    }

    fn build_batch(&self, intent: &WriteIntent) -> Result<(WriteBatch, WrittenPuts), StorageError> {
        let data = self.cf(Cf::Data)?;
        let lock = self.cf(Cf::Lock)?;
        let meta_cf = self.cf(Cf::Meta)?;
        let commit_ts = intent.commit_ts;
        let mut batch = WriteBatch::default();
        let mut puts = SortedPuts::default();
        // What earlier mutations of this intent did that a later range
        // delete must account for, kept as it goes (not rescanned per range:
        // a combined round carries hundreds of range deletes).
        let mut purged: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
        let mut earlier_puts: Vec<&[u8]> = Vec::new();
        // One iterator serves every range delete of the intent: opening one
        // costs more than the seek itself, and a combined round of new
        // Redis keys carries hundreds of (mostly empty) ranges. Nothing is
        // written before the batch is complete, so it sees what fresh
        // iterators would.
        let mut range_iter: Option<RawIter<'_>> = None;
        for (i, m) in intent.mutations.iter().enumerate() {
            match m {
                Mutation::Put {
                    key,
                    value,
                    expire_at,
                } => {
                    puts.push(
                        encode_data_key(key, commit_ts),
                        encode_put(value, *expire_at, intent.start_ts),
                    );
                    earlier_puts.push(key);
                }
                Mutation::Delete { key } => {
                    puts.push(
                        encode_data_key(key, commit_ts),
                        encode_tombstone(intent.start_ts),
                    );
                }
                Mutation::DeleteRange { start, end } => {
                    let tombstone = encode_tombstone(intent.start_ts);
                    // Keys purged earlier in this intent are gone, though the
                    // database still shows them.
                    let it = range_iter.get_or_insert_with(|| {
                        self.db
                            .raw_iterator_cf_opt(data, range_read_options(Vec::new(), None))
                    });
                    tombstone_live_range(
                        it,
                        &mut puts,
                        start,
                        end.as_deref(),
                        commit_ts,
                        &tombstone,
                        &purged,
                    )?;
                    // Keys put earlier in this same intent are live at the
                    // commit ts too, though not yet in the database.
                    for key in &earlier_puts {
                        if in_range(key, start, end.as_deref()) {
                            puts.push(encode_data_key(key, commit_ts), tombstone.clone());
                        }
                    }
                }
                Mutation::PurgeRange { start, end } => {
                    // A range delete removes only what precedes it in the batch.
                    puts.flush_into(&mut batch, data);
                    puts.written.removed_ranges = true;
                    purged.push((
                        keys::physical_bound(start),
                        end.as_deref().map(keys::physical_bound),
                    ));
                    let lower = keys::physical_bound(start);
                    match end {
                        Some(end) => {
                            let upper = keys::physical_bound(end);
                            if upper > lower {
                                batch.delete_range_cf(data, &lower, &upper);
                                batch.delete_range_cf(lock, &lower, &upper);
                            }
                        }
                        None => {
                            for cf in [data, lock] {
                                let mut it = self.db.raw_iterator_cf_opt(
                                    cf,
                                    range_read_options(lower.clone(), None),
                                );
                                it.seek_to_last();
                                if let Some(last) = it.key() {
                                    batch.delete_range_cf(cf, lower.as_slice(), last);
                                    batch.delete_cf(cf, last);
                                }
                                super::reads::iter_status(&it)?;
                            }
                            // Earlier writes of this intent may lie beyond the
                            // database's last key.
                            for earlier in &intent.mutations[..i] {
                                if let Mutation::Put { key, .. } | Mutation::Delete { key } =
                                    earlier
                                    && key >= start
                                {
                                    batch.delete_cf(data, encode_data_key(key, commit_ts));
                                }
                            }
                        }
                    }
                }
                Mutation::MetaPut { key, value } => {
                    batch.put_cf(meta_cf, meta::state_machine_key(key), value);
                }
                Mutation::MetaDelete { key } => {
                    batch.delete_cf(meta_cf, meta::state_machine_key(key));
                }
                Mutation::Pin {
                    id,
                    ts,
                    deadline_ms,
                } => {
                    let pin = super::api::Pin {
                        id: *id,
                        ts: *ts,
                        deadline_ms: *deadline_ms,
                    };
                    batch.put_cf(meta_cf, meta::pin_key(*id), meta::encode_pin(&pin));
                }
                Mutation::Unpin { id } => {
                    batch.delete_cf(meta_cf, meta::pin_key(*id));
                }
            }
        }
        puts.flush_into(&mut batch, data);
        if commit_ts > self.last_commit_ts() {
            batch.put_cf(meta_cf, meta::LAST_COMMIT_TS_KEY, commit_ts.to_be_bytes());
        }
        if let Some(index) = intent.applied_index {
            batch.put_cf(
                meta_cf,
                meta::APPLIED_INDEX_KEY,
                meta::encode_applied_index(index),
            );
        }
        Ok((batch, puts.written))
    }
}

/// Adds a tombstone at `commit_ts` for every key in `[start, end)` whose
/// version visible at `commit_ts` is live, read through `it` (total order,
/// unbounded). Streams the range; only the batch grows.
fn tombstone_live_range(
    it: &mut RawIter<'_>,
    puts: &mut SortedPuts,
    start: &[u8],
    end: Option<&[u8]>,
    commit_ts: Timestamp,
    tombstone: &[u8],
    purged: &[(Vec<u8>, Option<Vec<u8>>)],
) -> Result<(), StorageError> {
    let lower = keys::physical_bound(start);
    let upper = end.map(keys::physical_bound);
    if upper.as_ref().is_some_and(|u| u <= &lower) {
        return Ok(());
    }
    let in_range = |key: &[u8]| upper.as_ref().is_none_or(|u| key < u.as_slice());
    it.seek(&lower);
    let mut prefix = Vec::new();
    // The bound is checked before a key is parsed: what lies past the range
    // is not this range's business.
    while it.key().is_some_and(in_range) {
        let Some((key, _, ts)) = current_version(it)? else {
            break;
        };
        prefix.clear();
        prefix.extend_from_slice(&key[..key.len() - TS_LEN]);
        if ts > commit_ts {
            it.seek(data_key_from_prefix(&prefix, commit_ts));
            if !it.key().is_some_and(|k| k.starts_with(&prefix)) {
                continue;
            }
        }
        let Some((key, value, _)) = current_version(it)? else {
            break;
        };
        let was_purged = purged
            .iter()
            .any(|(lo, hi)| key >= lo.as_slice() && hi.as_ref().is_none_or(|h| key < h.as_slice()));
        if !was_purged && decode_value_ref(key, value)?.is_live_at(commit_ts) {
            puts.push(data_key_from_prefix(&prefix, commit_ts), tombstone.to_vec());
        }
        skip_versions(it, &prefix);
    }
    iter_status(it)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::options::StoreOptions;
    use crate::storage::{Chain, ChainAfter};

    fn put(key: &[u8]) -> Mutation {
        Mutation::Put {
            key: key.to_vec(),
            value: b"v".to_vec(),
            expire_at: 0,
        }
    }

    fn chained(start_ts: u64, commit_ts: u64, after: u64, mutations: Vec<Mutation>) -> WriteIntent {
        WriteIntent {
            start_ts,
            commit_ts,
            validate: true,
            read_keys: vec![b"k".to_vec()],
            mutations,
            chain: Chain {
                strict: true,
                after: Some(ChainAfter {
                    ts: after,
                    guard: b"k".to_vec(),
                }),
            },
            ..Default::default()
        }
    }

    #[test]
    fn a_late_strict_write_conflicts_and_a_failed_one_burns_its_timestamp() {
        let dir = tempfile::tempdir().unwrap();
        let store = GroupStore::open(dir.path(), StoreOptions::default()).unwrap();
        let strict = |start_ts, commit_ts, read: &[u8]| WriteIntent {
            start_ts,
            commit_ts,
            validate: true,
            read_keys: vec![read.to_vec()],
            mutations: vec![put(b"s")],
            chain: Chain {
                strict: true,
                after: None,
            },
            ..Default::default()
        };
        crate::storage::test_support::commit_at(&store, 10, vec![put(b"k")]);
        // At or below the last commit: refused, not moved up.
        assert!(matches!(
            store.apply(&strict(9, 10, b"x")).unwrap(),
            Outcome::Conflict { .. }
        ));
        assert_eq!(store.get(b"s", 100).unwrap(), None);
        // A validation failure at 20 still takes 20 out of use.
        assert!(matches!(
            store.apply(&strict(5, 20, b"k")).unwrap(),
            Outcome::Conflict { .. }
        ));
        assert_eq!(store.last_commit_ts(), 20);
        assert_eq!(
            store.apply(&strict(20, 21, b"k")).unwrap(),
            Outcome::Committed
        );
        assert_eq!(store.get(b"s", 21).unwrap().map(|v| v.commit_ts), Some(21));
    }

    #[test]
    fn a_chained_write_needs_its_predecessor_committed_and_nothing_else_newer() {
        let dir = tempfile::tempdir().unwrap();
        let store = GroupStore::open(dir.path(), StoreOptions::default()).unwrap();
        crate::storage::test_support::commit_at(&store, 10, vec![put(b"k"), put(b"j")]);
        // Read at 10; the predecessor was stamped 12 but has not applied:
        // its guard has no version at 12 (and 15 is burnt).
        assert_eq!(
            store.apply(&chained(10, 15, 12, vec![put(b"c")])).unwrap(),
            Outcome::Conflict { key: b"k".to_vec() }
        );
        // The predecessor commits at 20: its version passes.
        crate::storage::test_support::commit_at(&store, 20, vec![put(b"k")]);
        assert_eq!(
            store.apply(&chained(10, 30, 20, vec![put(b"c")])).unwrap(),
            Outcome::Committed
        );
        // Another commit (40, on j) lands after the predecessor (50): a
        // chained write after 50 that read j at 30 must see it.
        crate::storage::test_support::commit_at(&store, 40, vec![put(b"j")]);
        crate::storage::test_support::commit_at(&store, 50, vec![put(b"k")]);
        let mut reads_j = chained(30, 60, 50, vec![put(b"c")]);
        reads_j.read_keys.push(b"j".to_vec());
        assert_eq!(
            store.apply(&reads_j).unwrap(),
            Outcome::Conflict { key: b"j".to_vec() }
        );
        // The same write not reading j passes (above the burnt 60): 50 is
        // its predecessor's.
        assert_eq!(
            store.apply(&chained(30, 70, 50, vec![put(b"c")])).unwrap(),
            Outcome::Committed
        );
        // The predecessor is the only commit since the start: passes at the
        // guard, and still sees a newer version of the guard.
        assert_eq!(
            store.apply(&chained(69, 80, 70, vec![put(b"k")])).unwrap(),
            Outcome::Conflict { key: b"k".to_vec() },
            "the guard k was last written at 50, not by the predecessor at 70"
        );
        crate::storage::test_support::commit_at(&store, 90, vec![put(b"k")]);
        assert_eq!(
            store.apply(&chained(85, 95, 90, vec![put(b"j")])).unwrap(),
            Outcome::Committed
        );
    }

    #[test]
    fn conflicts_write_only_the_applied_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = GroupStore::open(dir.path(), StoreOptions::default()).unwrap();
        let first = WriteIntent {
            start_ts: 1,
            commit_ts: 10,
            mutations: vec![put(b"k")],
            applied_index: Some(1),
            ..Default::default()
        };
        assert_eq!(store.apply(&first).unwrap(), Outcome::Committed);
        assert_eq!(store.apply(&first).unwrap(), Outcome::AlreadyApplied);
        let stale = WriteIntent {
            start_ts: 5,
            commit_ts: 20,
            validate: true,
            read_ranges: vec![(b"a".to_vec(), Some(b"z".to_vec()))],
            mutations: vec![put(b"other")],
            applied_index: Some(2),
            ..Default::default()
        };
        assert_eq!(
            store.apply(&stale).unwrap(),
            Outcome::Conflict { key: b"k".to_vec() }
        );
        assert_eq!(store.applied_index(), 2);
        assert_eq!(store.get(b"other", 30).unwrap(), None);
        assert_eq!(store.last_commit_ts(), 10);
    }

    #[test]
    fn reordered_puts_keep_the_last_write_of_a_key_and_purge_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let store = GroupStore::open(dir.path(), StoreOptions::default()).unwrap();
        let value = |v: &[u8]| Mutation::Put {
            key: b"k".to_vec(),
            value: v.to_vec(),
            expire_at: 0,
        };
        let intent = WriteIntent {
            start_ts: 9,
            commit_ts: 10,
            mutations: vec![
                put(b"z"),
                value(b"first"),
                Mutation::Delete { key: b"m".to_vec() },
                value(b"second"),
                put(b"p"),
                Mutation::PurgeRange {
                    start: b"p".to_vec(),
                    end: None,
                },
                put(b"q"),
                value(b"third"),
            ],
            ..Default::default()
        };
        store.apply(&intent).unwrap();
        assert_eq!(store.get(b"k", 10).unwrap().unwrap().value, b"third");
        assert_eq!(store.get(b"z", 10).unwrap(), None, "purged after its put");
        assert_eq!(store.get(b"p", 10).unwrap(), None, "purged after its put");
        assert!(
            store.get(b"q", 10).unwrap().is_some(),
            "put after the purge"
        );
        assert_eq!(store.get(b"m", 10).unwrap(), None);
    }

    #[test]
    fn delete_range_and_purge_range() {
        let dir = tempfile::tempdir().unwrap();
        let store = GroupStore::open(dir.path(), StoreOptions::default()).unwrap();
        let load = WriteIntent {
            start_ts: 1,
            commit_ts: 10,
            mutations: vec![put(b"a"), put(b"b"), put(b"c")],
            ..Default::default()
        };
        store.apply(&load).unwrap();
        let del = WriteIntent {
            start_ts: 19,
            commit_ts: 20,
            mutations: vec![
                put(b"bb"),
                Mutation::DeleteRange {
                    start: b"b".to_vec(),
                    end: Some(b"c".to_vec()),
                },
            ],
            ..Default::default()
        };
        store.apply(&del).unwrap();
        assert_eq!(store.get(b"b", 25).unwrap(), None);
        assert_eq!(
            store.get(b"bb", 25).unwrap(),
            None,
            "a put earlier in the batch is deleted too"
        );
        assert_eq!(
            store.get(b"b", 15).unwrap().unwrap().commit_ts,
            10,
            "history stays"
        );
        let purge = WriteIntent {
            start_ts: 29,
            commit_ts: 30,
            mutations: vec![Mutation::PurgeRange {
                start: b"b".to_vec(),
                end: None,
            }],
            ..Default::default()
        };
        store.apply(&purge).unwrap();
        assert_eq!(store.latest_commit_ts(b"b").unwrap(), None);
        assert_eq!(store.latest_commit_ts(b"c").unwrap(), None);
        assert_eq!(store.latest_commit_ts(b"a").unwrap(), Some(10));
    }
}
