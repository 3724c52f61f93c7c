//! Hashes, sets and sorted sets over [`Db`]: member rows under the key's
//! prefix plus a count in META.
//!
//! Invariants: META's count equals the number of member rows; a sorted
//! set has exactly one score-index row per member row, keyed by the
//! member's current score; NaN scores never reach storage.

use super::db::{Db, Result};
use super::error::ModelError;
use super::layout::{TAG_HASH, TAG_SET, TAG_ZINDEX, TAG_ZMEMBER, sortable_f64, unsortable_f64};
use super::meta::{Body, Kind};
use crate::clock::Timestamp;
use crate::storage::Direction;
use crate::txn::KvBackend;

/// A collection's META as loaded for an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loaded {
    pub count: u64,
    pub expire_at: Timestamp,
    pub existed: bool,
}

fn body_for(kind: Kind, count: u64) -> Body {
    match kind {
        Kind::Hash => Body::Hash { count },
        Kind::Set => Body::Set { count },
        _ => Body::ZSet { count },
    }
}

/// Decodes a stored score.
pub fn decode_score(key: &[u8], raw: &[u8]) -> Result<f64> {
    let bytes: [u8; 8] = raw
        .try_into()
        .map_err(|_| ModelError::corrupt(key, "sorted-set score row is not 8 bytes"))?;
    Ok(f64::from_bits(u64::from_be_bytes(bytes)))
}

impl<B: KvBackend> Db<'_, '_, B> {
    /// Loads a counted collection (hash, set, zset); absent = empty.
    pub fn load_counted(&mut self, key: &[u8], kind: Kind) -> Result<Loaded> {
        Ok(match self.meta_of(key, kind)? {
            Some(meta) => Loaded {
                count: meta.body.len(),
                expire_at: meta.expire_at,
                existed: true,
            },
            None => Loaded {
                count: 0,
                expire_at: 0,
                existed: false,
            },
        })
    }

    /// Like [`Db::load_counted`], and clears stale rows of an absent key
    /// so that member writes that follow start from nothing.
    pub fn load_counted_for_write(&mut self, key: &[u8], kind: Kind) -> Result<Loaded> {
        let loaded = self.load_counted(key, kind)?;
        if !loaded.existed {
            self.clear_for_creation(key);
        }
        Ok(loaded)
    }

    /// Stores the new count (removing the key when it reached zero).
    pub fn save_counted(&mut self, key: &[u8], kind: Kind, loaded: &Loaded) {
        self.store_collection(key, &body_for(kind, loaded.count), loaded.expire_at);
    }

    // ----- hashes -----

    pub fn hash_get(&mut self, key: &[u8], field: &[u8]) -> Result<Option<Vec<u8>>> {
        if self.meta_of(key, Kind::Hash)?.is_none() {
            return Ok(None);
        }
        self.member_get(key, TAG_HASH, field)
    }

    /// Sets fields; returns how many were new. With `only_new`, existing
    /// fields are left alone.
    pub fn hash_set(
        &mut self,
        key: &[u8],
        pairs: &[(&[u8], &[u8])],
        only_new: bool,
    ) -> Result<u64> {
        let mut loaded = self.load_counted_for_write(key, Kind::Hash)?;
        let mut added = 0;
        for (field, value) in pairs {
            let exists = self.member_get(key, TAG_HASH, field)?.is_some();
            if exists && only_new {
                continue;
            }
            if !exists {
                added += 1;
                loaded.count += 1;
            }
            self.member_put(key, TAG_HASH, field, value.to_vec());
            loaded.existed = true;
        }
        self.save_counted(key, Kind::Hash, &loaded);
        Ok(added)
    }

    pub fn hash_del(&mut self, key: &[u8], fields: &[&[u8]]) -> Result<u64> {
        let mut loaded = self.load_counted(key, Kind::Hash)?;
        if !loaded.existed {
            return Ok(0);
        }
        let mut removed = 0;
        for field in fields {
            if self.member_get(key, TAG_HASH, field)?.is_some() {
                self.member_delete(key, TAG_HASH, field);
                removed += 1;
                loaded.count -= 1;
            }
        }
        if removed > 0 {
            self.save_counted(key, Kind::Hash, &loaded);
        }
        Ok(removed)
    }

    pub fn hash_all(&mut self, key: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        if self.meta_of(key, Kind::Hash)?.is_none() {
            return Ok(Vec::new());
        }
        self.member_all(key, TAG_HASH)
    }

    // ----- sets -----

    pub fn set_add(&mut self, key: &[u8], members: &[&[u8]]) -> Result<u64> {
        let mut loaded = self.load_counted_for_write(key, Kind::Set)?;
        let mut added = 0;
        for member in members {
            if self.member_get(key, TAG_SET, member)?.is_some() {
                continue;
            }
            self.member_put(key, TAG_SET, member, Vec::new());
            added += 1;
            loaded.count += 1;
        }
        loaded.existed = true;
        self.save_counted(key, Kind::Set, &loaded);
        Ok(added)
    }

    pub fn set_rem(&mut self, key: &[u8], members: &[&[u8]]) -> Result<u64> {
        let mut loaded = self.load_counted(key, Kind::Set)?;
        if !loaded.existed {
            return Ok(0);
        }
        let mut removed = 0;
        for member in members {
            if self.member_get(key, TAG_SET, member)?.is_some() {
                self.member_delete(key, TAG_SET, member);
                removed += 1;
                loaded.count -= 1;
            }
        }
        if removed > 0 {
            self.save_counted(key, Kind::Set, &loaded);
        }
        Ok(removed)
    }

    pub fn set_contains(&mut self, key: &[u8], member: &[u8]) -> Result<bool> {
        if self.meta_of(key, Kind::Set)?.is_none() {
            return Ok(false);
        }
        Ok(self.member_get(key, TAG_SET, member)?.is_some())
    }

    pub fn set_members(&mut self, key: &[u8]) -> Result<Vec<Vec<u8>>> {
        if self.meta_of(key, Kind::Set)?.is_none() {
            return Ok(Vec::new());
        }
        Ok(self
            .member_all(key, TAG_SET)?
            .into_iter()
            .map(|(m, _)| m)
            .collect())
    }

    /// Replaces `key` with a set of `members` (the *STORE commands);
    /// an empty result removes the key.
    pub fn set_replace(&mut self, key: &[u8], members: &[Vec<u8>]) {
        self.drop_rows(key);
        if members.is_empty() {
            return;
        }
        self.put_meta(
            key,
            &Body::Set {
                count: members.len() as u64,
            },
            0,
        );
        for member in members {
            self.member_put(key, TAG_SET, member, Vec::new());
        }
    }

    // ----- sorted sets -----

    pub fn zset_score(&mut self, key: &[u8], member: &[u8]) -> Result<Option<f64>> {
        if self.meta_of(key, Kind::ZSet)?.is_none() {
            return Ok(None);
        }
        self.zset_score_raw(key, member)
    }

    /// The score of `member` without the type check (META already read).
    pub fn zset_score_raw(&mut self, key: &[u8], member: &[u8]) -> Result<Option<f64>> {
        match self.member_get(key, TAG_ZMEMBER, member)? {
            Some(raw) => Ok(Some(decode_score(key, &raw)?)),
            None => Ok(None),
        }
    }

    fn zindex_suffix(score: f64, member: &[u8]) -> Vec<u8> {
        let mut suffix = sortable_f64(score).to_vec();
        suffix.extend_from_slice(member);
        suffix
    }

    /// Writes `member` with `score`, replacing its old index row; the
    /// caller keeps the count.
    pub fn zset_put_raw(&mut self, key: &[u8], member: &[u8], old: Option<f64>, score: f64) {
        if let Some(old) = old {
            self.member_delete(key, TAG_ZINDEX, &Self::zindex_suffix(old, member));
        }
        self.member_put(
            key,
            TAG_ZMEMBER,
            member,
            score.to_bits().to_be_bytes().to_vec(),
        );
        self.member_put(
            key,
            TAG_ZINDEX,
            &Self::zindex_suffix(score, member),
            Vec::new(),
        );
    }

    /// Removes `member` (known to have `score`); the caller keeps the count.
    pub fn zset_delete_raw(&mut self, key: &[u8], member: &[u8], score: f64) {
        self.member_delete(key, TAG_ZMEMBER, member);
        self.member_delete(key, TAG_ZINDEX, &Self::zindex_suffix(score, member));
    }

    /// Members in score order from the index: (member, score), skipping
    /// `offset` rows first, at most `limit`, in `direction`, restricted to
    /// index suffixes in `[from, to)`.
    pub fn zset_index_scan(
        &mut self,
        key: &[u8],
        from: Option<&[u8]>,
        to: Option<&[u8]>,
        offset: usize,
        limit: usize,
        direction: Direction,
    ) -> Result<Vec<(Vec<u8>, f64)>> {
        let want = offset.saturating_add(limit);
        let rows = self.member_scan(key, TAG_ZINDEX, from, to, want, direction)?;
        let mut out = Vec::with_capacity(rows.len().saturating_sub(offset));
        for (suffix, _) in rows.into_iter().skip(offset) {
            if suffix.len() < 8 {
                return Err(ModelError::corrupt(
                    key,
                    "sorted-set index row shorter than its score",
                ));
            }
            let mut raw = [0u8; 8];
            raw.copy_from_slice(&suffix[..8]);
            out.push((suffix[8..].to_vec(), unsortable_f64(raw)));
        }
        Ok(out)
    }

    /// The index position bound for a score: every index row of a score
    /// `>= score` sorts at or above it.
    pub fn zindex_bound(score: f64) -> Vec<u8> {
        sortable_f64(score).to_vec()
    }

    /// The index position just above every row with exactly `score`.
    pub fn zindex_bound_after(score: f64) -> Option<Vec<u8>> {
        let bytes = u64::from_be_bytes(sortable_f64(score));
        bytes.checked_add(1).map(|b| b.to_be_bytes().to_vec())
    }

    /// Rank of `member` (ascending) given its score: counts index rows
    /// before it.
    pub fn zset_rank_raw(&mut self, key: &[u8], member: &[u8], score: f64) -> Result<u64> {
        let end = Self::zindex_suffix(score, member);
        let rows = self.member_scan(
            key,
            TAG_ZINDEX,
            None,
            Some(&end),
            usize::MAX,
            Direction::Forward,
        )?;
        Ok(rows.len() as u64)
    }

    /// All (member, score) pairs in score order.
    pub fn zset_all(&mut self, key: &[u8]) -> Result<Vec<(Vec<u8>, f64)>> {
        if self.meta_of(key, Kind::ZSet)?.is_none() {
            return Ok(Vec::new());
        }
        self.zset_index_scan(key, None, None, 0, usize::MAX, Direction::Forward)
    }
}
