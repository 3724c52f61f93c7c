//! Reads of a `GroupStore` at a timestamp: point get, multi-get, latest
//! commit ts, and forward/reverse paged scans.
//!
//! Invariants: the visible version of a key at `read_ts` is its newest
//! version with `commit_ts <= read_ts`; a tombstone or an expired version
//! hides the key (no fall-back to older versions). Scans hold at most one
//! page of rows in memory and bound the RocksDB iterator by the physical
//! range, so their cost follows the page, not the range.

use rocksdb::{DB, DBRawIteratorWithThreadMode, ReadOptions};

use super::api::{Cf, Direction, PointValue, ScanPage, ScanRequest, VersionedValue};
use super::error::StorageError;
use super::keys::{
    self, TS_LEN, data_key_from_prefix, decode_prefix, prefix_successor, split_data_key,
};
use super::row_cache::{MAX_CACHED_VALUE, Newest, RowCacheStats};
use super::store::GroupStore;
use super::value::{VersionRef, decode_value_ref};
use crate::clock::Timestamp;

pub(crate) type RawIter<'a> = DBRawIteratorWithThreadMode<'a, DB>;

/// How many `next()` steps to try before re-seeking past a key's versions.
const NEXT_BEFORE_SEEK: usize = 4;

/// Deleted RocksDB entries a point-read seek may step over before it gives
/// up (see [`point_read_options`]).
const POINT_SEEK_SKIP_LIMIT: u64 = 64;

/// Read options for point lookups: prefix seek, so each file's and the
/// memtable's bloom filter is asked about the key first.
///
/// Not `prefix_same_as_start`: with it RocksDB allocates a copy of the
/// prefix and calls the extractor twice in every file's seek, about a
/// twentieth of a multi-get (bench/RESULTS.md, session 8). A point read
/// looks only at the first entry after its seek and checks that entry's
/// prefix itself. What the option also bounded — a seek stepping over a
/// long run of deleted entries after the key (compaction deletes versions
/// one by one) into other keys — the skip limit bounds instead: past it the
/// seek stops with `Incomplete`, and the read is redone on an iterator
/// bounded to the key ([`bounded_point_iter`]).
pub(crate) fn point_read_options() -> ReadOptions {
    let mut ro = ReadOptions::default();
    ro.set_max_skippable_internal_keys(POINT_SEEK_SKIP_LIMIT);
    ro
}

/// True when the iterator's last seek gave up at the skip limit.
fn seek_gave_up(it: &RawIter<'_>) -> bool {
    matches!(it.status(), Err(e) if e.kind() == rocksdb::ErrorKind::Incomplete)
}

/// A total-order iterator over exactly the versions of the key with
/// `prefix`, for a point read whose prefix-mode seek gave up.
fn bounded_point_iter<'db>(db: &'db DB, prefix: &[u8]) -> Result<RawIter<'db>, StorageError> {
    let cf = db
        .cf_handle(Cf::Data.name())
        .ok_or(StorageError::MissingColumnFamily(Cf::Data.name()))?;
    Ok(db.raw_iterator_cf_opt(
        cf,
        range_read_options(prefix.to_vec(), Some(prefix_successor(prefix))),
    ))
}

/// Read options for range iteration over physical `[lower, upper)`.
pub(crate) fn range_read_options(lower: Vec<u8>, upper: Option<Vec<u8>>) -> ReadOptions {
    let mut ro = ReadOptions::default();
    ro.set_total_order_seek(true);
    if !lower.is_empty() {
        ro.set_iterate_lower_bound(lower);
    }
    if let Some(upper) = upper {
        ro.set_iterate_upper_bound(upper);
    }
    ro
}

pub(crate) fn iter_status(it: &RawIter<'_>) -> Result<(), StorageError> {
    it.status().map_err(StorageError::rocks("iterate"))
}

/// A version under an iterator: (physical key, raw value, commit ts).
pub(crate) type RawVersion<'i> = (&'i [u8], &'i [u8], Timestamp);

/// The iterator's current data key split into (prefix, ts), or a corruption
/// error naming it. `None` when the iterator is exhausted (status checked).
pub(crate) fn current_version<'i>(
    it: &'i RawIter<'_>,
) -> Result<Option<RawVersion<'i>>, StorageError> {
    match it.item() {
        Some((key, value)) => {
            let (_, ts) = split_data_key(key).ok_or_else(|| {
                StorageError::corrupt(
                    "data",
                    key,
                    "malformed data key (expected escaped key ‖ 0x00 0x01 ‖ 8-byte timestamp)",
                )
            })?;
            Ok(Some((key, value, ts)))
        }
        None => {
            iter_status(it)?;
            Ok(None)
        }
    }
}

/// Moves the iterator past every remaining version of the key with `prefix`.
pub(crate) fn skip_versions(it: &mut RawIter<'_>, prefix: &[u8]) {
    for _ in 0..NEXT_BEFORE_SEEK {
        it.next();
        match it.key() {
            Some(k) if k.starts_with(prefix) => {}
            _ => return,
        }
    }
    it.seek(prefix_successor(prefix));
}

fn row(
    user_key: Vec<u8>,
    commit_ts: Timestamp,
    v: &VersionRef<'_>,
    keys_only: bool,
) -> VersionedValue {
    VersionedValue {
        key: user_key,
        value: if keys_only {
            Vec::new()
        } else {
            v.body.to_vec()
        },
        commit_ts,
        start_ts: v.start_ts,
        expire_at: v.expire_at,
    }
}

fn point_value(commit_ts: Timestamp, v: &VersionRef<'_>) -> PointValue {
    PointValue {
        value: v.body.to_vec(),
        commit_ts,
        start_ts: v.start_ts,
        expire_at: v.expire_at,
    }
}

/// What the newest-version cache alone says of a point read.
enum CacheAnswer {
    /// The read's answer (`None`: no live version at the read ts).
    Hit(Option<PointValue>),
    /// The cache cannot answer: read through an iterator.
    Miss,
}

impl GroupStore {
    /// Value of `key` visible at `read_ts`, if live.
    pub fn get(&self, key: &[u8], read_ts: Timestamp) -> Result<Option<PointValue>, StorageError> {
        let mut seek = Vec::new();
        if let CacheAnswer::Hit(answer) = self.cached_point_read(&mut seek, key, read_ts)? {
            return Ok(answer);
        }
        self.point_iters.with_point_iter(&self.db, |it, view| {
            // The iterator is in hand (its view fixed) before the fence check.
            self.check_read_ts(read_ts)?;
            self.point_read(it, view, &mut seek, key, read_ts)
        })
    }

    /// `get` for many keys through one iterator; results in input order.
    pub fn multi_get(
        &self,
        keys_in: &[Vec<u8>],
        read_ts: Timestamp,
    ) -> Result<Vec<Option<PointValue>>, StorageError> {
        let mut out = vec![None; keys_in.len()];
        let mut seek = Vec::new();
        // The keys the cache could not answer, in key order (the iterator
        // then moves forward only).
        let mut missed = Vec::new();
        for (i, key) in keys_in.iter().enumerate() {
            match self.cached_point_read(&mut seek, key, read_ts)? {
                CacheAnswer::Hit(answer) => out[i] = answer,
                CacheAnswer::Miss => missed.push(i),
            }
        }
        if missed.is_empty() {
            // Refused below the fence like any read, even with no keys.
            self.check_read_ts(read_ts)?;
            return Ok(out);
        }
        missed.sort_unstable_by(|&a, &b| keys_in[a].cmp(&keys_in[b]));
        self.point_iters.with_point_iter(&self.db, |it, view| {
            self.check_read_ts(read_ts)?;
            for i in missed {
                out[i] = self.point_read(it, view, &mut seek, &keys_in[i], read_ts)?;
            }
            Ok(out)
        })
    }

    /// How the newest-version cache is doing.
    pub fn row_cache_stats(&self) -> RowCacheStats {
        self.row_cache.stats()
    }

    /// A point read at `read_ts` from the newest-version cache alone,
    /// without an iterator: a hit costs one cache lookup (the fence is
    /// checked first, as an iterator read would). [`CacheAnswer::Miss`] when
    /// the cache cannot give it (disabled, no entry, or the cached version
    /// is newer than `read_ts`): the read must go to an iterator. `seek` is
    /// scratch space.
    fn cached_point_read(
        &self,
        seek: &mut Vec<u8>,
        user_key: &[u8],
        read_ts: Timestamp,
    ) -> Result<CacheAnswer, StorageError> {
        if !self.row_cache.enabled() {
            return Ok(CacheAnswer::Miss);
        }
        keys::key_prefix_into(seek, user_key);
        let newest = match self.row_cache.get(seek) {
            Some(newest) if newest.ts <= read_ts => newest,
            _ => return Ok(CacheAnswer::Miss),
        };
        self.check_read_ts(read_ts)?;
        self.row_cache.record(true);
        let Some(stored) = newest.stored else {
            return Ok(CacheAnswer::Hit(None));
        };
        let v = decode_value_ref(seek, &stored)?;
        Ok(CacheAnswer::Hit(
            v.is_live_at(read_ts).then(|| point_value(newest.ts, &v)),
        ))
    }

    /// The live version of `user_key` visible at `read_ts`, read from the
    /// iterator (whose view was taken at write generation `view`), filling
    /// the newest-version cache when the answer is the key's newest version.
    /// Callers have asked the cache first ([`Self::cached_point_read`]).
    /// `seek` is scratch space.
    fn point_read(
        &self,
        it: &mut RawIter<'_>,
        view: u64,
        seek: &mut Vec<u8>,
        user_key: &[u8],
        read_ts: Timestamp,
    ) -> Result<Option<PointValue>, StorageError> {
        keys::key_prefix_into(seek, user_key);
        let prefix_len = seek.len();
        if !self.row_cache.enabled() {
            return self.visible_at(it, seek, prefix_len, read_ts);
        }
        self.row_cache.record(false);
        seek.extend_from_slice(&(!Timestamp::MAX).to_be_bytes());
        it.seek(&seek[..]);
        if seek_gave_up(it) {
            // Rare (a long run of deleted entries): read it bounded, and
            // leave the cache alone.
            seek.truncate(prefix_len);
            return self.visible_at_bounded(seek, read_ts);
        }
        let prefix = &seek[..prefix_len];
        let (ts, stored, found) = match current_version(it)? {
            Some((key, value, ts)) if key.starts_with(prefix) => {
                check_version_key(key, prefix)?;
                if ts > read_ts {
                    seek.truncate(prefix_len);
                    return self.visible_at(it, seek, prefix_len, read_ts);
                }
                let v = decode_value_ref(key, value)?;
                let found = v.is_live_at(read_ts).then(|| point_value(ts, &v));
                (ts, Some(value), found)
            }
            _ => (0, None, None),
        };
        let newest = Newest {
            ts,
            stored: stored
                .filter(|s| s.len() <= MAX_CACHED_VALUE)
                .map(Box::from),
        };
        if ts == 0 || newest.stored.is_some() {
            self.row_cache
                .fill(prefix, newest, || self.point_iters.generation() == view);
        }
        Ok(found)
    }

    /// The live version visible at `read_ts` of the key whose prefix `seek`
    /// holds (`prefix_len` bytes) on entry, read from the iterator.
    fn visible_at(
        &self,
        it: &mut RawIter<'_>,
        seek: &mut Vec<u8>,
        prefix_len: usize,
        read_ts: Timestamp,
    ) -> Result<Option<PointValue>, StorageError> {
        seek.extend_from_slice(&(!read_ts).to_be_bytes());
        it.seek(&seek[..]);
        if seek_gave_up(it) {
            seek.truncate(prefix_len);
            return self.visible_at_bounded(seek, read_ts);
        }
        let prefix = &seek[..prefix_len];
        let Some((key, value, ts)) = current_version(it)? else {
            return Ok(None);
        };
        if !key.starts_with(prefix) {
            return Ok(None);
        }
        check_version_key(key, prefix)?;
        let v = decode_value_ref(key, value)?;
        Ok(v.is_live_at(read_ts).then(|| point_value(ts, &v)))
    }

    /// [`Self::visible_at`] on a new iterator bounded to the key whose
    /// prefix `seek` holds, for a read whose pooled seek gave up. The new
    /// view is taken after the caller's fence check, so the fence is
    /// checked again: a compaction may have raised it past `read_ts` since.
    fn visible_at_bounded(
        &self,
        seek: &mut Vec<u8>,
        read_ts: Timestamp,
    ) -> Result<Option<PointValue>, StorageError> {
        let prefix_len = seek.len();
        let mut bounded = bounded_point_iter(&self.db, seek)?;
        self.check_read_ts(read_ts)?;
        self.visible_at(&mut bounded, seek, prefix_len, read_ts)
    }

    /// True when `key` provably never had a version: none is stored (of any
    /// kind, at any ts) and no history was ever compacted away (the read
    /// fence is 0). False whenever that cannot be shown. Callers use it to
    /// skip work that only matters for a key with a past (the Redis model
    /// skips range-deleting the rows of a key it creates).
    ///
    /// The versions are looked at before the fence: compaction raises the
    /// fence (SeqCst) before it deletes anything, so a fence still 0 after
    /// the look means no version had been compacted away before it.
    pub fn never_written(&self, key: &[u8]) -> Result<bool, StorageError> {
        let prefix = keys::encode_key_prefix(key);
        // Under the cache's rules an entry is the key's newest version
        // exactly, or "no version" (ts 0).
        let none_stored = match self.row_cache.get(&prefix) {
            Some(newest) => newest.ts == 0,
            None => self
                .point_iters
                .with_point_iter(&self.db, |it, _| newest_version_ts(&self.db, it, &prefix))?
                .is_none(),
        };
        Ok(none_stored && self.read_fence() == 0)
    }

    /// Commit ts of the newest version of `key` of any kind (tombstones and
    /// expired values included); not fenced by the watermark.
    pub fn latest_commit_ts(&self, key: &[u8]) -> Result<Option<Timestamp>, StorageError> {
        let prefix = keys::encode_key_prefix(key);
        self.point_iters
            .with_point_iter(&self.db, |it, _| newest_version_ts(&self.db, it, &prefix))
    }

    /// One page of the keys in `[start, end)` visible at `read_ts`.
    pub fn scan(&self, req: &ScanRequest) -> Result<ScanPage, StorageError> {
        if req.limit == 0 || req.end.as_ref().is_some_and(|end| end <= &req.start) {
            self.check_read_ts(req.read_ts)?;
            return Ok(ScanPage::default());
        }
        let mut lower = keys::physical_bound(&req.start);
        let mut upper = req.end.as_deref().map(keys::physical_bound);
        match (&req.resume, req.direction) {
            (Some(resume), Direction::Forward) => {
                let after = prefix_successor(&keys::encode_key_prefix(resume));
                if after > lower {
                    lower = after;
                }
            }
            (Some(resume), Direction::Reverse) => {
                let before = keys::physical_bound(resume);
                if upper.as_ref().is_none_or(|u| &before < u) {
                    upper = Some(before);
                }
            }
            (None, _) => {}
        }
        if upper.as_ref().is_some_and(|u| u <= &lower) {
            self.check_read_ts(req.read_ts)?;
            return Ok(ScanPage::default());
        }
        let mut it = self
            .db
            .raw_iterator_cf_opt(self.cf(Cf::Data)?, range_read_options(lower, upper));
        self.check_read_ts(req.read_ts)?;
        match req.direction {
            Direction::Forward => scan_forward(&mut it, req),
            Direction::Reverse => scan_reverse(&mut it, req),
        }
    }
}

/// Newest version ts of the key with `prefix` (iterator in prefix mode or
/// total order; it is re-seeked).
pub(crate) fn newest_version_ts(
    db: &DB,
    it: &mut RawIter<'_>,
    prefix: &[u8],
) -> Result<Option<Timestamp>, StorageError> {
    it.seek(data_key_from_prefix(prefix, Timestamp::MAX));
    if seek_gave_up(it) {
        // Unfenced, like every caller: write validation (under the apply
        // mutex, which compaction's deletes also take) and
        // `latest_commit_ts`.
        return newest_version_ts(db, &mut bounded_point_iter(db, prefix)?, prefix);
    }
    match current_version(it)? {
        Some((key, _, ts)) if key.starts_with(prefix) => {
            check_version_key(key, prefix)?;
            Ok(Some(ts))
        }
        _ => Ok(None),
    }
}

/// A key that starts with a prefix must be exactly prefix ‖ 8 bytes.
fn check_version_key(key: &[u8], prefix: &[u8]) -> Result<(), StorageError> {
    if key.len() != prefix.len() + TS_LEN {
        return Err(StorageError::corrupt(
            "data",
            key,
            "trailing bytes after the version timestamp",
        ));
    }
    Ok(())
}

fn scan_forward(it: &mut RawIter<'_>, req: &ScanRequest) -> Result<ScanPage, StorageError> {
    let mut page = ScanPage::default();
    it.seek_to_first();
    let mut prefix = Vec::new();
    while let Some((key, _, ts)) = current_version(it)? {
        prefix.clear();
        prefix.extend_from_slice(&key[..key.len() - TS_LEN]);
        if ts > req.read_ts {
            it.seek(data_key_from_prefix(&prefix, req.read_ts));
            match current_version(it)? {
                Some((k, _, _)) if k.starts_with(&prefix) => {}
                // No version old enough: the iterator already sits on the next key.
                _ => continue,
            }
        }
        let Some((key, value, ts)) = current_version(it)? else {
            break;
        };
        check_version_key(key, &prefix)?;
        let v = decode_value_ref(key, value)?;
        if v.is_live_at(req.read_ts) {
            let user_key = decode_prefix("data", key, &prefix)?;
            page.rows.push(row(user_key, ts, &v, req.keys_only));
            if page.rows.len() >= req.limit {
                page.resume = page.rows.last().map(|r| r.key.clone());
                break;
            }
        }
        skip_versions(it, &prefix);
    }
    Ok(page)
}

fn scan_reverse(it: &mut RawIter<'_>, req: &ScanRequest) -> Result<ScanPage, StorageError> {
    let mut page = ScanPage::default();
    it.seek_to_last();
    let mut prefix = Vec::new();
    // Each round starts positioned on the oldest version of some key.
    while let Some((key, value, ts)) = current_version(it)? {
        prefix.clear();
        prefix.extend_from_slice(&key[..key.len() - TS_LEN]);
        check_version_key(key, &prefix)?;
        let mut found = if ts <= req.read_ts {
            let v = decode_value_ref(key, value)?;
            Some(
                v.is_live_at(req.read_ts)
                    .then(|| row(Vec::new(), ts, &v, req.keys_only)),
            )
        } else {
            None
        };
        it.prev();
        if it.key().is_some_and(|k| k.starts_with(&prefix)) {
            // Several versions: find the visible one directly, then step
            // below the whole key.
            it.seek(data_key_from_prefix(&prefix, req.read_ts));
            found = match current_version(it)? {
                Some((k, val, ts)) if k.starts_with(&prefix) => {
                    check_version_key(k, &prefix)?;
                    let v = decode_value_ref(k, val)?;
                    Some(
                        v.is_live_at(req.read_ts)
                            .then(|| row(Vec::new(), ts, &v, req.keys_only)),
                    )
                }
                _ => None,
            };
            it.seek_for_prev(&prefix[..prefix.len() - keys::TERMINATOR.len()]);
        } else {
            iter_status(it)?;
        }
        if let Some(Some(mut r)) = found {
            let phys = data_key_from_prefix(&prefix, r.commit_ts);
            r.key = decode_prefix("data", &phys, &prefix)?;
            page.rows.push(r);
            if page.rows.len() >= req.limit {
                page.resume = page.rows.last().map(|r| r.key.clone());
                break;
            }
        }
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::api::Mutation;
    use crate::storage::options::StoreOptions;

    fn store_with(versions: &[(&[u8], u64, Option<u64>)]) -> (tempfile::TempDir, GroupStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = GroupStore::open(
            dir.path(),
            StoreOptions {
                sync_writes: false,
                ..StoreOptions::default()
            },
        )
        .unwrap();
        for &(key, ts, expire) in versions {
            let m = match expire {
                Some(expire_at) => Mutation::Put {
                    key: key.to_vec(),
                    value: ts.to_be_bytes().to_vec(),
                    expire_at,
                },
                None => Mutation::Delete { key: key.to_vec() },
            };
            commit(&store, ts, m);
        }
        (dir, store)
    }

    /// Applies one mutation as a transaction committed at `ts`.
    fn commit(store: &GroupStore, ts: u64, m: Mutation) {
        crate::storage::test_support::commit_at(store, ts, vec![m]);
    }

    fn scan(
        store: &GroupStore,
        direction: Direction,
        read_ts: u64,
        limit: usize,
        resume: Option<Vec<u8>>,
    ) -> ScanPage {
        store
            .scan(&ScanRequest {
                start: Vec::new(),
                end: None,
                read_ts,
                limit,
                direction,
                resume,
                keys_only: false,
            })
            .unwrap()
    }

    #[test]
    fn never_written_needs_no_version_of_any_kind_and_no_compacted_history() {
        let (_d, store) = store_with(&[(b"live", 10, Some(0)), (b"gone", 20, None)]);
        assert!(!store.never_written(b"live").unwrap());
        assert!(
            !store.never_written(b"gone").unwrap(),
            "a tombstone is a past"
        );
        assert!(store.never_written(b"fresh").unwrap());
        // The same answers once the newest-version cache holds the keys
        // (a read of an absent key caches "no version").
        assert_eq!(store.get(b"fresh", 30).unwrap(), None);
        assert_eq!(store.get(b"gone", 30).unwrap(), None);
        assert!(store.never_written(b"fresh").unwrap());
        assert!(!store.never_written(b"gone").unwrap());
        // A version newer than any read ts still counts.
        commit(
            &store,
            40,
            Mutation::Put {
                key: b"later".to_vec(),
                value: b"v".to_vec(),
                expire_at: 0,
            },
        );
        assert!(!store.never_written(b"later").unwrap());
        // Once history was compacted, a key with no version may have had
        // one: nothing is provable any more.
        store
            .compact(35, &crate::storage::CompactOptions::at(0))
            .unwrap();
        assert!(store.read_fence() > 0);
        assert!(!store.never_written(b"fresh").unwrap());
        assert!(!store.never_written(b"other").unwrap());
    }

    #[test]
    fn newest_visible_version_wins_and_tombstones_and_ttl_hide() {
        let (_d, store) = store_with(&[
            (b"a", 10, Some(0)),
            (b"a", 20, None),
            (b"a", 30, Some(35)),
            (b"b", 5, Some(0)),
        ]);
        assert_eq!(store.get(b"a", 9).unwrap(), None);
        assert_eq!(store.get(b"a", 15).unwrap().unwrap().commit_ts, 10);
        assert_eq!(
            store.get(b"a", 25).unwrap(),
            None,
            "tombstone hides older value"
        );
        assert_eq!(store.get(b"a", 34).unwrap().unwrap().expire_at, 35);
        assert_eq!(store.get(b"a", 35).unwrap(), None, "expired, no fall-back");
        assert_eq!(store.latest_commit_ts(b"a").unwrap(), Some(30));
        assert_eq!(store.latest_commit_ts(b"zz").unwrap(), None);
        let got = store
            .multi_get(&[b"b".to_vec(), b"a".to_vec(), b"b".to_vec()], 15)
            .unwrap();
        assert_eq!(
            got.iter()
                .map(|v| v.as_ref().map(|v| v.commit_ts))
                .collect::<Vec<_>>(),
            vec![Some(5), Some(10), Some(5)]
        );
    }

    /// Readers that read at the group's announced last commit must see the
    /// version written there, whatever the cache and the pooled iterators
    /// held a moment before (every write rewrites the one key).
    #[test]
    fn readers_at_the_announced_commit_see_it_under_concurrent_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(
            GroupStore::open(
                dir.path(),
                StoreOptions {
                    sync_writes: false,
                    ..StoreOptions::default()
                },
            )
            .unwrap(),
        );
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|r| {
                let store = store.clone();
                let done = done.clone();
                std::thread::spawn(move || {
                    let mut checked = 0u64;
                    while !done.load(std::sync::atomic::Ordering::SeqCst) {
                        let t = store.last_commit_ts();
                        if t == 0 {
                            continue;
                        }
                        let got = if r == 0 {
                            store.get(b"k", t).unwrap()
                        } else {
                            let keys = [b"k".to_vec(), b"other".to_vec()];
                            store.multi_get(&keys, t).unwrap().remove(0)
                        };
                        if (t / 2).is_multiple_of(5) {
                            assert_eq!(got, None, "tombstone at {t}");
                        } else {
                            let got = got.unwrap_or_else(|| panic!("nothing at {t}"));
                            assert_eq!(got.commit_ts, t);
                            assert_eq!(got.value, t.to_be_bytes());
                        }
                        checked += 1;
                    }
                    checked
                })
            })
            .collect();
        for i in 1..=3000u64 {
            let ts = i * 2;
            let m = if i.is_multiple_of(5) {
                Mutation::Delete { key: b"k".to_vec() }
            } else {
                Mutation::Put {
                    key: b"k".to_vec(),
                    value: ts.to_be_bytes().to_vec(),
                    expire_at: 0,
                }
            };
            commit(&store, ts, m);
            // A late commit below the last one: not the newest of "other".
            if i.is_multiple_of(3) {
                let late = Mutation::Put {
                    key: b"other".to_vec(),
                    value: vec![1],
                    expire_at: 0,
                };
                commit(&store, ts - 1, late);
            }
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        for reader in readers {
            assert!(reader.join().unwrap() > 0);
        }
        assert_eq!(
            store.get(b"other", 6000).unwrap().unwrap().commit_ts,
            5999,
            "a late commit below the last one is still found"
        );
    }

    #[test]
    fn paged_scans_resume_in_both_directions() {
        let (_d, store) = store_with(&[
            (b"a", 10, Some(0)),
            (b"a\x00", 11, Some(0)),
            (b"b", 12, None),
            (b"c", 13, Some(0)),
        ]);
        let p1 = scan(&store, Direction::Forward, 100, 2, None);
        assert_eq!(
            p1.rows.iter().map(|r| r.key.clone()).collect::<Vec<_>>(),
            vec![b"a".to_vec(), b"a\x00".to_vec()]
        );
        let p2 = scan(&store, Direction::Forward, 100, 2, p1.resume);
        assert_eq!(
            p2.rows.iter().map(|r| r.key.clone()).collect::<Vec<_>>(),
            vec![b"c".to_vec()]
        );
        assert_eq!(p2.resume, None);
        let r1 = scan(&store, Direction::Reverse, 100, 1, None);
        assert_eq!(r1.rows[0].key, b"c");
        let r2 = scan(&store, Direction::Reverse, 100, 5, r1.resume);
        assert_eq!(
            r2.rows.iter().map(|r| r.key.clone()).collect::<Vec<_>>(),
            vec![b"a\x00".to_vec(), b"a".to_vec()]
        );
    }
    /// A point read whose seek lands in a long run of entries RocksDB has
    /// deleted (what compaction leaves after dropping a big deleted range,
    /// until RocksDB compacts the tombstones away) gives up at the skip
    /// limit and is answered by the bounded fallback, for every kind of
    /// point read, with the right answer.
    #[test]
    fn point_reads_over_a_long_run_of_deleted_entries_fall_back_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let store = GroupStore::open(dir.path(), StoreOptions::default()).unwrap();
        let run: Vec<Vec<u8>> = (0..4 * POINT_SEEK_SKIP_LIMIT)
            .map(|i| format!("b{i:04}").into_bytes())
            .collect();
        let mut all = vec![b"a".to_vec(), b"c".to_vec()];
        all.extend(run.iter().cloned());
        let intent = crate::storage::WriteIntent {
            start_ts: 4,
            commit_ts: 5,
            mutations: all
                .iter()
                .map(|k| Mutation::Put {
                    key: k.clone(),
                    value: b"v".to_vec(),
                    expire_at: 0,
                })
                .collect(),
            ..crate::storage::WriteIntent::default()
        };
        store.apply(&intent).unwrap();
        let data = store.cf(Cf::Data).unwrap();
        store.db().flush_cf(data).unwrap();
        for key in &run {
            store
                .db()
                .delete_cf(data, keys::encode_data_key(key, 5))
                .unwrap();
        }
        // Nothing cached, so every read below seeks.
        store.row_cache.clear();
        assert_eq!(store.get(&run[0], 10).unwrap(), None);
        assert!(store.get(b"c", 10).unwrap().is_some());
        let got = store
            .multi_get(&[run[0].clone(), b"c".to_vec(), run[7].clone()], 10)
            .unwrap();
        assert_eq!(
            got.iter().map(Option::is_some).collect::<Vec<_>>(),
            [false, true, false]
        );
        assert_eq!(store.latest_commit_ts(&run[0]).unwrap(), None);
        assert_eq!(store.latest_commit_ts(b"a").unwrap(), Some(5));
        // A validated write reading a key of the run finds no conflict.
        let read_run = crate::storage::WriteIntent {
            start_ts: 6,
            commit_ts: 8,
            validate: true,
            read_keys: vec![run[1].clone()],
            mutations: vec![Mutation::Put {
                key: b"a".to_vec(),
                value: b"w".to_vec(),
                expire_at: 0,
            }],
            ..crate::storage::WriteIntent::default()
        };
        assert_eq!(
            store.apply(&read_run).unwrap(),
            crate::storage::Outcome::Committed
        );
    }
}
