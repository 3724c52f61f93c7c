//! The newest-version cache of a `GroupStore`: for recently read or written
//! keys, the newest committed version (or the fact that there is none), so a
//! point read at or above that version's timestamp needs no RocksDB seek.
//!
//! Why: a point read is an iterator seek (the store does not know which
//! version to `Get`), and on a node whose recent writes sit in the memtable
//! that seek is a full skiplist descent — the largest cost of a Redis GET,
//! and of every write that first reads the key's metadata.
//!
//! An entry `prefix → (ts, stored value)` means: no committed version of the
//! key is newer than `ts`, and the version at `ts` is `stored value` (an
//! entry with ts 0 and no value: the key has no version at all). A read at
//! `read_ts >= ts` may answer from it; a read below `ts` goes to RocksDB.
//!
//! Invariants (each `GroupStore` write path keeps its part):
//! - an apply whose commit ts is above every earlier commit of the group
//!   makes its versions the newest: it updates the entries of the keys it
//!   wrote that are cached, after RocksDB accepted the batch and before the
//!   apply returns (so before anyone can learn of it); any other apply
//!   forgets the keys it wrote; a batch with a physical
//!   range removal clears the cache; compaction forgets every key it touched;
//!   a restore clears the cache;
//! - a reader fills in an entry only from an iterator view taken at the
//!   current write generation, checked under the shard lock (so a write that
//!   completed after the view was taken, and whose own cache update may
//!   already be done, can never be overwritten by the older answer), and
//!   never replaces an entry with a newer timestamp;
//! - memory stays under the configured budget: values larger than
//!   [`MAX_CACHED_VALUE`] are not cached, and a full shard drops the entries
//!   not used since its last sweep (CLOCK).

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

// foldhash, not the standard SipHash: the cache is hashed twice per point
// read and once per applied write, on the hottest paths of the node, and
// its keys are short; foldhash's per-instance random seed still keeps
// client-chosen keys from being aimed at one bucket.
use foldhash::fast::RandomState;
use parking_lot::Mutex;

use crate::clock::Timestamp;

/// Largest stored value (encoded, with its header) kept in the cache.
pub(crate) const MAX_CACHED_VALUE: usize = 4096;
const SHARDS: usize = 16;
/// Bookkeeping bytes charged per entry beside its key and value.
const ENTRY_OVERHEAD: usize = 64;

/// The newest version of a key as the cache knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Newest {
    /// Commit ts of the newest version; 0 with `stored: None` = no version.
    pub ts: Timestamp,
    /// The stored (encoded) value of that version.
    pub stored: Option<Box<[u8]>>,
}

struct Slot {
    newest: Newest,
    used: bool,
}

#[derive(Default)]
struct Shard {
    map: HashMap<Box<[u8]>, Slot, RandomState>,
    bytes: usize,
}

fn charge(prefix: &[u8], newest: &Newest) -> usize {
    prefix.len() + newest.stored.as_ref().map_or(0, |s| s.len()) + ENTRY_OVERHEAD
}

impl Shard {
    fn put(&mut self, prefix: &[u8], newest: Newest, budget: usize) {
        let cost = charge(prefix, &newest);
        let before = if let Some(slot) = self.map.get_mut(prefix) {
            let before = charge(prefix, &slot.newest);
            slot.newest = newest;
            slot.used = true;
            before
        } else {
            self.map.insert(
                prefix.into(),
                Slot {
                    newest,
                    used: false,
                },
            );
            0
        };
        self.recharge(before, cost, budget);
    }

    /// An entry charged `before` bytes now costs `after`; sweeps when the
    /// shard went over `budget`.
    fn recharge(&mut self, before: usize, after: usize, budget: usize) {
        self.bytes = self.bytes - before + after;
        if self.bytes > budget {
            self.sweep(budget);
        }
    }

    fn remove(&mut self, prefix: &[u8]) {
        if let Some(slot) = self.map.remove(prefix) {
            self.bytes -= charge(prefix, &slot.newest);
        }
    }

    /// Drops entries not used since the previous sweep (and clears the use
    /// marks) until the shard is under three quarters of its budget.
    fn sweep(&mut self, budget: usize) {
        let target = budget / 4 * 3;
        let mut bytes = self.bytes;
        for pass in 0..2 {
            self.map.retain(|prefix, slot| {
                if bytes <= target {
                    return true;
                }
                if slot.used && pass == 0 {
                    slot.used = false;
                    return true;
                }
                bytes -= charge(prefix, &slot.newest);
                false
            });
        }
        self.bytes = bytes;
    }
}

/// Sharded newest-version cache; a budget of 0 disables it.
pub(crate) struct RowCache {
    shards: Vec<Mutex<Shard>>,
    shard_budget: usize,
    hasher: RandomState,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// How a store's newest-version cache is doing (for metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RowCacheStats {
    /// Point reads answered from the cache.
    pub hits: u64,
    /// Point reads that went to RocksDB.
    pub misses: u64,
    pub entries: u64,
    pub bytes: u64,
    pub budget_bytes: u64,
}

impl RowCache {
    pub fn new(budget_bytes: usize) -> RowCache {
        let shard_budget = budget_bytes / SHARDS;
        let count = if shard_budget == 0 { 0 } else { SHARDS };
        RowCache {
            shards: (0..count).map(|_| Mutex::new(Shard::default())).collect(),
            shard_budget,
            hasher: Default::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Counts a point read as answered from the cache or not.
    pub fn record(&self, hit: bool) {
        let counter = if hit { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn stats(&self) -> RowCacheStats {
        let (mut entries, mut bytes) = (0u64, 0u64);
        for shard in &self.shards {
            let shard = shard.lock();
            entries += shard.map.len() as u64;
            bytes += shard.bytes as u64;
        }
        RowCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries,
            bytes,
            budget_bytes: (self.shard_budget * self.shards.len()) as u64,
        }
    }

    pub fn enabled(&self) -> bool {
        !self.shards.is_empty()
    }

    fn shard(&self, prefix: &[u8]) -> Option<&Mutex<Shard>> {
        if self.shards.is_empty() {
            return None;
        }
        let hash = self.hasher.hash_one(prefix);
        self.shards.get(hash as usize % self.shards.len())
    }

    /// The cached newest version of the key with `prefix`, if any.
    pub fn get(&self, prefix: &[u8]) -> Option<Newest> {
        let mut shard = self.shard(prefix)?.lock();
        let slot = shard.map.get_mut(prefix)?;
        slot.used = true;
        Some(slot.newest.clone())
    }

    /// The commit ts of the cached newest version of the key with `prefix`
    /// (0: the key has no version), without copying the value: all that
    /// write validation needs.
    pub fn newest_ts(&self, prefix: &[u8]) -> Option<Timestamp> {
        let mut shard = self.shard(prefix)?.lock();
        let slot = shard.map.get_mut(prefix)?;
        slot.used = true;
        Some(slot.newest.ts)
    }

    /// A reader's answer: installed only while `view_is_current()` holds
    /// (checked under the shard lock) and no newer entry is present.
    pub fn fill(&self, prefix: &[u8], newest: Newest, view_is_current: impl FnOnce() -> bool) {
        if newest
            .stored
            .as_ref()
            .is_some_and(|s| s.len() > MAX_CACHED_VALUE)
        {
            return;
        }
        let Some(shard) = self.shard(prefix) else {
            return;
        };
        let mut shard = shard.lock();
        if !view_is_current() {
            return;
        }
        if shard
            .map
            .get(prefix)
            .is_some_and(|slot| slot.newest.ts >= newest.ts)
        {
            return;
        }
        shard.put(prefix, newest, self.shard_budget);
    }

    /// A committed version known to be the key's newest (writer side).
    /// Only keys already cached are updated: rows that nobody reads (list
    /// items, index rows) are not copied in on every write, and the
    /// writer — the Raft apply thread — does no more than it must.
    ///
    /// It runs on the Raft apply thread for every cached key a write
    /// touches, so it looks the key up once and overwrites the cached value
    /// in place when the new one has the same length (an overwritten
    /// counter, hash field or string of fixed size), instead of hashing the
    /// key again and allocating a new value.
    pub fn install(&self, prefix: &[u8], ts: Timestamp, stored: &[u8]) {
        let Some(shard) = self.shard(prefix) else {
            return;
        };
        let mut guard = shard.lock();
        let shard = &mut *guard;
        let Some(slot) = shard.map.get_mut(prefix) else {
            return;
        };
        if stored.len() > MAX_CACHED_VALUE {
            shard.remove(prefix);
            return;
        }
        let before = charge(prefix, &slot.newest);
        match &mut slot.newest.stored {
            Some(cached) if cached.len() == stored.len() => cached.copy_from_slice(stored),
            cached => *cached = Some(stored.into()),
        }
        slot.newest.ts = ts;
        slot.used = true;
        let after = charge(prefix, &slot.newest);
        shard.recharge(before, after, self.shard_budget);
    }

    /// Forgets the key with `prefix`.
    pub fn forget(&self, prefix: &[u8]) {
        if let Some(shard) = self.shard(prefix) {
            shard.lock().remove(prefix);
        }
    }

    /// Forgets everything.
    pub fn clear(&self) {
        for shard in &self.shards {
            let mut shard = shard.lock();
            shard.map.clear();
            shard.bytes = 0;
        }
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.shards.iter().map(|s| s.lock().bytes).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(ts: Timestamp, body: &[u8]) -> Newest {
        Newest {
            ts,
            stored: Some(body.into()),
        }
    }

    #[test]
    fn fill_never_replaces_a_newer_entry_nor_lands_from_a_stale_view() {
        let cache = RowCache::new(1 << 20);
        cache.install(b"k", 20, b"new");
        assert_eq!(cache.get(b"k"), None, "writes do not allocate entries");
        cache.fill(b"k", value(5, b"older"), || true);
        cache.install(b"k", 20, b"new");
        cache.fill(b"k", value(10, b"old"), || true);
        assert_eq!(cache.get(b"k"), Some(value(20, b"new")));
        assert_eq!(cache.newest_ts(b"k"), Some(20));
        assert_eq!(cache.newest_ts(b"absent"), None);
        cache.fill(b"j", value(10, b"old"), || false);
        assert_eq!(cache.get(b"j"), None, "a view from before a write");
        cache.fill(b"j", value(10, b"v"), || true);
        assert_eq!(cache.get(b"j"), Some(value(10, b"v")));
        cache.forget(b"j");
        assert_eq!(cache.get(b"j"), None);
    }

    #[test]
    fn install_overwrites_in_place_and_keeps_the_byte_count_true() {
        let cache = RowCache::new(1 << 20);
        cache.fill(b"k", value(1, b"aaaa"), || true);
        let start = cache.bytes();
        cache.install(b"k", 2, b"bbbb");
        assert_eq!(cache.get(b"k"), Some(value(2, b"bbbb")), "same length");
        assert_eq!(cache.bytes(), start);
        cache.install(b"k", 3, b"cccccccc");
        assert_eq!(cache.get(b"k"), Some(value(3, b"cccccccc")), "longer");
        assert_eq!(cache.bytes(), start + 4);
        cache.install(b"k", 4, b"d");
        assert_eq!(cache.get(b"k"), Some(value(4, b"d")), "shorter");
        assert_eq!(cache.bytes(), start - 3);
        cache.forget(b"k");
        assert_eq!(cache.bytes(), 0);
    }

    #[test]
    fn big_values_are_not_cached_and_disabled_cache_holds_nothing() {
        let cache = RowCache::new(1 << 20);
        cache.fill(b"k", value(1, b"small"), || true);
        cache.install(b"k", 2, &vec![0u8; MAX_CACHED_VALUE + 1]);
        assert_eq!(cache.get(b"k"), None, "the older small value is forgotten");
        let off = RowCache::new(0);
        assert!(!off.enabled());
        off.install(b"k", 1, b"v");
        off.fill(b"k", value(1, b"v"), || true);
        assert_eq!(off.get(b"k"), None);
    }

    #[test]
    fn stays_within_budget_and_keeps_recently_used_entries() {
        let budget = SHARDS * 2048;
        let cache = RowCache::new(budget);
        cache.fill(b"hot", value(1, b"v"), || true);
        for i in 0..10_000u32 {
            cache.fill(&i.to_be_bytes(), value(1, &[7u8; 40]), || true);
            if i % 8 == 0 {
                assert!(cache.get(b"hot").is_some(), "hot entry evicted at {i}");
            }
        }
        assert!(cache.bytes() <= budget, "{} > {budget}", cache.bytes());
        cache.clear();
        assert_eq!(cache.bytes(), 0);
    }
}
