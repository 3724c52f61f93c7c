//! [`Db`]: one Redis command's view of the keyspace inside a [`Txn`].
//!
//! All logic here is synchronous (reads are synchronous; only beginning and
//! committing a transaction are async), so MULTI/EXEC and Lua run many
//! operations in one transaction.
//!
//! Invariants: a key exists iff its META row is visible; rows of a key are
//! only ever written together with its META row; creating a key
//! range-deletes its whole row range first (skipped when its META row
//! provably never had a version, so no row can exist), so member rows left
//! behind by an expired incarnation are never seen; removing a key range-deletes the
//! same range; every write rewrites the META row (its commit ts is the
//! key's WATCH token); a collection that becomes empty is removed.

use super::error::ModelError;
use super::layout::{
    key_end, member_key, meta_key, namespace_range, split_user_key, successor_of_prefix, tag_range,
};
use super::meta::{Body, Kind, Meta};
use crate::clock::{Timestamp, compose, physical_ms};
use crate::storage::Direction;
use crate::txn::{KvBackend, Txn};

pub type Result<T> = std::result::Result<T, ModelError>;

/// Rows read per storage scan when walking the keyspace.
const KEY_SCAN_PAGE: usize = 64;

/// A key found by a keyspace scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEntry {
    pub key: Vec<u8>,
    pub meta: Meta,
}

/// The model's handle on one transaction.
pub struct Db<'t, 'a, B: KvBackend> {
    txn: &'t mut Txn<'a, B>,
}

impl<'t, 'a, B: KvBackend> Db<'t, 'a, B> {
    pub fn new(txn: &'t mut Txn<'a, B>) -> Self {
        Db { txn }
    }

    pub fn txn(&mut self) -> &mut Txn<'a, B> {
        self.txn
    }

    /// "Now" for TTL arithmetic: the physical part of the read timestamp,
    /// so every replica and every retry agrees on what has expired.
    pub fn now_ms(&self) -> u64 {
        physical_ms(self.txn.start_ts())
    }

    /// HLC deadline for a Unix-ms instant.
    pub fn deadline(ms: u64) -> Timestamp {
        compose(ms, 0)
    }

    /// The META row of `key`, if the key exists.
    pub fn meta(&mut self, key: &[u8]) -> Result<Option<Meta>> {
        let Some(row) = self.txn.get(&meta_key(key))? else {
            return Ok(None);
        };
        Ok(Some(Meta {
            body: Body::decode(key, &row.value)?,
            expire_at: row.expire_at,
            commit_ts: row.commit_ts,
        }))
    }

    /// The META row of `key` when it has type `kind`; WRONGTYPE otherwise.
    pub fn meta_of(&mut self, key: &[u8], kind: Kind) -> Result<Option<Meta>> {
        match self.meta(key)? {
            Some(meta) if meta.body.kind() != kind => Err(ModelError::WrongType),
            other => Ok(other),
        }
    }

    /// Writes the META row of an existing key (keeping `expire_at`).
    pub fn put_meta(&mut self, key: &[u8], body: &Body, expire_at: Timestamp) {
        self.txn.put(meta_key(key), body.encode(), expire_at);
    }

    /// Creates `key` afresh: drops every row it may have, writes META.
    pub fn create(&mut self, key: &[u8], body: &Body, expire_at: Timestamp) {
        self.clear_for_creation(key);
        self.put_meta(key, body, expire_at);
    }

    /// Drops every row an absent `key` may still have (left by an expired
    /// incarnation) before the command creates it. No range delete is
    /// proposed when the key provably never existed (`Txn::delete_range_guarded`
    /// with META as the guard): rows are only ever written together with
    /// META, and a creating command reads META (and then writes it), so
    /// its commit validates it.
    pub fn clear_for_creation(&mut self, key: &[u8]) {
        self.txn
            .delete_range_guarded(&meta_key(key), meta_key(key), Some(key_end(key)));
    }

    /// Removes `key` and all its rows; true when it existed.
    pub fn remove(&mut self, key: &[u8]) -> Result<bool> {
        let existed = self.meta(key)?.is_some();
        if existed {
            self.drop_rows(key);
        }
        Ok(existed)
    }

    /// Range-deletes every row of `key` without looking.
    pub fn drop_rows(&mut self, key: &[u8]) {
        self.txn.delete_range(meta_key(key), Some(key_end(key)));
    }

    /// Writes `body` for a collection that changed: removes the key when it
    /// became empty, otherwise rewrites META with the same TTL.
    pub fn store_collection(&mut self, key: &[u8], body: &Body, expire_at: Timestamp) {
        if body.is_empty() {
            self.drop_rows(key);
        } else {
            self.put_meta(key, body, expire_at);
        }
    }

    pub fn member_get(&mut self, key: &[u8], tag: u8, suffix: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .txn
            .get(&member_key(key, tag, suffix))?
            .map(|v| v.value))
    }

    pub fn member_put(&mut self, key: &[u8], tag: u8, suffix: &[u8], value: Vec<u8>) {
        self.txn.put(member_key(key, tag, suffix), value, 0);
    }

    pub fn member_delete(&mut self, key: &[u8], tag: u8, suffix: &[u8]) {
        self.txn.delete(member_key(key, tag, suffix));
    }

    /// Scans member rows with `tag` whose suffix lies in `[from, to)`
    /// (`None` = unbounded on that side), returning (suffix, value).
    pub fn member_scan(
        &mut self,
        key: &[u8],
        tag: u8,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
        limit: usize,
        direction: Direction,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let (tag_start, tag_end) = tag_range(key, tag);
        let start = from.map_or(tag_start.clone(), |s| member_key(key, tag, s));
        let end = to.map_or(tag_end, |e| member_key(key, tag, e));
        let skip = tag_start.len();
        Ok(self
            .txn
            .scan(&start, Some(&end), limit, direction)?
            .into_iter()
            .map(|(k, v)| (k[skip..].to_vec(), v.value))
            .collect())
    }

    /// All member rows with `tag`, in order.
    pub fn member_all(&mut self, key: &[u8], tag: u8) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.member_scan(key, tag, None, None, usize::MAX, Direction::Forward)
    }

    /// Up to `limit` keys from the user-key position `from` (None = the
    /// start of the namespace), with where to resume (None = done).
    /// Rows are read in pages; a collection's member rows are jumped over.
    pub fn scan_keys(
        &mut self,
        from: Option<&[u8]>,
        limit: usize,
    ) -> Result<(Vec<KeyEntry>, Option<Vec<u8>>)> {
        let (ns_start, ns_end) = namespace_range();
        let mut cursor = from.map_or(ns_start, <[u8]>::to_vec);
        let mut out = Vec::new();
        while out.len() < limit {
            // A page of rows, not one: a string key is a single row, and
            // one storage scan per key cost most of DBSIZE's time. A page
            // filled by one collection's member rows costs one page before
            // the cursor jumps past that key.
            let rows = self
                .txn
                .scan(&cursor, Some(&ns_end), KEY_SCAN_PAGE, Direction::Forward)?;
            let exhausted = rows.len() < KEY_SCAN_PAGE;
            for (user_key, row) in rows {
                if user_key < cursor {
                    // A member row of a key already passed.
                    continue;
                }
                let Some((key, prefix_len)) = split_user_key(&user_key) else {
                    let mut next = user_key;
                    next.push(0);
                    cursor = next;
                    continue;
                };
                if prefix_len == user_key.len() {
                    if out.len() == limit {
                        return Ok((out, Some(cursor)));
                    }
                    out.push(KeyEntry {
                        meta: Meta {
                            body: Body::decode(&key, &row.value)?,
                            expire_at: row.expire_at,
                            commit_ts: row.commit_ts,
                        },
                        key,
                    });
                }
                cursor = successor_of_prefix(&user_key[..prefix_len]);
            }
            if exhausted {
                return Ok((out, None));
            }
        }
        Ok((out, Some(cursor)))
    }

    /// Removes every Redis key (FLUSHDB): one range delete of the namespace.
    pub fn flush(&mut self) {
        let (start, end) = namespace_range();
        self.txn.delete_range(start, Some(end));
    }

    /// Removes the leftover rows of keys whose META row expired, scanning
    /// at most `budget` keys from `from`; returns (keys removed, resume).
    pub fn purge_expired(
        &mut self,
        from: Option<&[u8]>,
        budget: usize,
    ) -> Result<(u64, Option<Vec<u8>>)> {
        let (ns_start, ns_end) = namespace_range();
        let mut cursor = from.map_or(ns_start, <[u8]>::to_vec);
        let mut removed = 0;
        for _ in 0..budget {
            let rows = self
                .txn
                .scan(&cursor, Some(&ns_end), 1, Direction::Forward)?;
            let Some((user_key, _)) = rows.into_iter().next() else {
                return Ok((removed, None));
            };
            let Some((key, prefix_len)) = split_user_key(&user_key) else {
                let mut next = user_key;
                next.push(0);
                cursor = next;
                continue;
            };
            if prefix_len != user_key.len() {
                // Member rows without a visible META row: the key expired.
                self.drop_rows(&key);
                removed += 1;
            }
            cursor = successor_of_prefix(&user_key[..prefix_len]);
        }
        Ok((removed, Some(cursor)))
    }
}
