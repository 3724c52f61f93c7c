//! A pool of point-read iterators over the data column family, reused while
//! the database has not been written since they were created.
//!
//! Why: a point read is one `seek` on a prefix-mode iterator, and creating
//! and destroying that iterator (pinning RocksDB's current memtables and
//! files, building the merging iterator, freeing its arena) is about a fifth
//! of the read's cost. A read-mostly group reads many times between writes;
//! an iterator created after the last write sees exactly what a new one
//! would, so it can serve the next read.
//!
//! Invariants:
//! - every `GroupStore::write` calls [`IterPool::invalidate`] after RocksDB
//!   accepted the batch and before `write` returns; anyone who can learn of a
//!   write (its caller, and readers told through `last_commit_ts` or an
//!   acknowledgement, both published after `write` returns) therefore finds
//!   the generation raised and gets an iterator that sees it;
//! - an iterator is tagged with the generation read *before* it was created,
//!   and is handed out or put back only while that is still the current
//!   generation; an older view is never served;
//! - an iterator whose status is an error is never put back;
//! - at most [`MAX_IDLE`] iterators are kept, so the pool pins at most that
//!   many RocksDB views, and invalidation drops them at once (they would
//!   otherwise keep flushed memtables and compacted files alive).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use rocksdb::{DB, DBRawIteratorWithThreadMode};

use super::api::Cf;
use super::error::StorageError;
use super::reads::point_read_options;

/// Idle iterators kept per store; beyond that a finished read drops its own.
const MAX_IDLE: usize = 16;

type DataIter<'db> = DBRawIteratorWithThreadMode<'db, DB>;

self_cell::self_cell!(
    /// A data-CF iterator together with the database handle it borrows.
    struct OwnedIter {
        owner: Arc<DB>,
        #[covariant]
        dependent: DataIter,
    }
);

/// A new prefix-mode iterator over the data column family of `db`.
fn open_point_iter(db: &Arc<DB>) -> Result<OwnedIter, StorageError> {
    OwnedIter::try_new(Arc::clone(db), |db| {
        let cf = db
            .cf_handle(Cf::Data.name())
            .ok_or(StorageError::MissingColumnFamily(Cf::Data.name()))?;
        Ok(db.raw_iterator_cf_opt(cf, point_read_options()))
    })
}

struct Pooled {
    generation: u64,
    iter: OwnedIter,
}

/// Point-read iterators of one store's data column family.
#[derive(Default)]
pub(crate) struct IterPool {
    generation: AtomicU64,
    idle: Mutex<Vec<Pooled>>,
}

impl IterPool {
    /// Marks every existing iterator stale; called after each write.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        let stale = std::mem::take(&mut *self.idle.lock());
        // Dropped outside the lock: freeing a view can release a memtable.
        drop(stale);
    }

    /// The current write generation.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Runs `read` on a point-read (prefix mode) data iterator that sees
    /// every write completed before this call, with the generation its view
    /// was taken at (still current means: no write completed since).
    pub fn with_point_iter<R>(
        &self,
        db: &Arc<DB>,
        read: impl FnOnce(&mut DataIter<'_>, u64) -> Result<R, StorageError>,
    ) -> Result<R, StorageError> {
        let generation = self.generation.load(Ordering::SeqCst);
        let mut pooled = match self.take(generation) {
            Some(p) => p,
            None => Pooled {
                generation,
                iter: open_point_iter(db)?,
            },
        };
        let view = pooled.generation;
        let result = pooled.iter.with_dependent_mut(|_, it| read(it, view));
        let healthy = pooled.iter.borrow_dependent().status().is_ok();
        if result.is_ok() && healthy {
            self.put_back(pooled);
        }
        result
    }

    fn take(&self, generation: u64) -> Option<Pooled> {
        let mut idle = self.idle.lock();
        while let Some(p) = idle.pop() {
            if p.generation == generation {
                return Some(p);
            }
        }
        None
    }

    fn put_back(&self, pooled: Pooled) {
        let mut idle = self.idle.lock();
        if pooled.generation == self.generation.load(Ordering::SeqCst) && idle.len() < MAX_IDLE {
            idle.push(pooled);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::keys::encode_data_key;
    use crate::storage::options::{StoreOptions, open_db};

    fn put(db: &DB, key: &[u8], ts: u64) {
        let cf = db.cf_handle(Cf::Data.name()).unwrap();
        db.put_cf(cf, encode_data_key(key, ts), b"v").unwrap();
    }

    fn newest_ts_of(pool: &IterPool, db: &Arc<DB>, key: &[u8]) -> Option<u64> {
        let prefix = crate::storage::keys::encode_key_prefix(key);
        pool.with_point_iter(db, |it, _| {
            crate::storage::reads::newest_version_ts(db, it, &prefix)
        })
        .unwrap()
    }

    #[test]
    fn reuses_an_iterator_until_invalidated_and_then_sees_the_write() {
        let dir = tempfile::tempdir().unwrap();
        let db = open_db(dir.path(), &StoreOptions::default()).unwrap();
        let pool = IterPool::default();
        put(&db, b"k", 5);
        assert_eq!(newest_ts_of(&pool, &db, b"k"), Some(5));
        assert_eq!(pool.idle.lock().len(), 1, "the iterator went back");

        // A write RocksDB accepted but not yet announced is not required to
        // be visible; once announced it must be.
        put(&db, b"k", 9);
        pool.invalidate();
        assert!(pool.idle.lock().is_empty(), "stale views are dropped");
        assert_eq!(newest_ts_of(&pool, &db, b"k"), Some(9));
    }

    #[test]
    fn an_iterator_taken_before_a_write_is_not_put_back() {
        let dir = tempfile::tempdir().unwrap();
        let db = open_db(dir.path(), &StoreOptions::default()).unwrap();
        let pool = IterPool::default();
        put(&db, b"k", 5);
        let seen = pool
            .with_point_iter(&db, |it, view| {
                assert_eq!(view, pool.generation());
                put(&db, b"k", 7);
                pool.invalidate();
                assert_ne!(view, pool.generation());
                let prefix = crate::storage::keys::encode_key_prefix(b"k");
                crate::storage::reads::newest_version_ts(&db, it, &prefix)
            })
            .unwrap();
        assert_eq!(seen, Some(5), "the view is the one from before the write");
        assert!(pool.idle.lock().is_empty(), "a stale view is not pooled");
        assert_eq!(newest_ts_of(&pool, &db, b"k"), Some(7));
    }

    #[test]
    fn keeps_at_most_max_idle_iterators() {
        let dir = tempfile::tempdir().unwrap();
        let db = open_db(dir.path(), &StoreOptions::default()).unwrap();
        let pool = IterPool::default();
        let generation = pool.generation.load(Ordering::SeqCst);
        for _ in 0..MAX_IDLE + 4 {
            let iter = open_point_iter(&db).unwrap();
            pool.put_back(Pooled { generation, iter });
        }
        assert_eq!(pool.idle.lock().len(), MAX_IDLE);
    }
}
