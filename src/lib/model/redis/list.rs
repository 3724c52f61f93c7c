//! Lists over [`Db`]: items at consecutive sequence numbers `[head, tail)`
//! (order-preserving i64 keys), so pushes and pops at either end and
//! indexing are single-row operations.
//!
//! Invariants: exactly the seqs in `[head, tail)` have item rows; a list
//! that becomes empty is removed; middle edits (LINSERT, LREM) rewrite the
//! items from the edit point on, keeping the invariant.

use super::db::{Db, Result};
use super::error::ModelError;
use super::layout::{TAG_LIST, sortable_i64};
use super::meta::Body;
use crate::clock::Timestamp;
use crate::storage::Direction;
use crate::txn::KvBackend;

/// A list's META as loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListMeta {
    pub head: i64,
    pub tail: i64,
    pub expire_at: Timestamp,
    pub existed: bool,
}

impl ListMeta {
    pub fn len(&self) -> i64 {
        self.tail - self.head
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Which end of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Left,
    Right,
}

impl<B: KvBackend> Db<'_, '_, B> {
    pub fn list_meta(&mut self, key: &[u8]) -> Result<ListMeta> {
        Ok(match self.meta(key)? {
            Some(meta) => match meta.body {
                Body::List { head, tail } => ListMeta {
                    head,
                    tail,
                    expire_at: meta.expire_at,
                    existed: true,
                },
                _ => return Err(ModelError::WrongType),
            },
            None => ListMeta {
                head: 0,
                tail: 0,
                expire_at: 0,
                existed: false,
            },
        })
    }

    fn list_save(&mut self, key: &[u8], meta: &ListMeta) {
        self.store_collection(
            key,
            &Body::List {
                head: meta.head,
                tail: meta.tail,
            },
            meta.expire_at,
        );
    }

    fn item_put(&mut self, key: &[u8], seq: i64, value: Vec<u8>) {
        self.member_put(key, TAG_LIST, &sortable_i64(seq), value);
    }

    /// Pushes `items` one by one at `end`; returns the new length. With
    /// `only_existing` (LPUSHX/RPUSHX) a missing key stays missing.
    pub fn list_push(
        &mut self,
        key: &[u8],
        items: &[&[u8]],
        end: End,
        only_existing: bool,
    ) -> Result<i64> {
        let mut meta = self.list_meta(key)?;
        if !meta.existed {
            if only_existing {
                return Ok(0);
            }
            self.clear_for_creation(key);
        }
        for item in items {
            match end {
                End::Left => {
                    meta.head -= 1;
                    self.item_put(key, meta.head, item.to_vec());
                }
                End::Right => {
                    self.item_put(key, meta.tail, item.to_vec());
                    meta.tail += 1;
                }
            }
        }
        self.list_save(key, &meta);
        Ok(meta.len())
    }

    /// Pops up to `count` items from `end`.
    pub fn list_pop(&mut self, key: &[u8], end: End, count: usize) -> Result<Vec<Vec<u8>>> {
        let mut meta = self.list_meta(key)?;
        if !meta.existed || count == 0 {
            return Ok(Vec::new());
        }
        let take = count.min(meta.len() as usize) as i64;
        let (from, to, direction) = match end {
            End::Left => (meta.head, meta.head + take, Direction::Forward),
            End::Right => (meta.tail - take, meta.tail, Direction::Reverse),
        };
        let rows = self.member_scan(
            key,
            TAG_LIST,
            Some(&sortable_i64(from)),
            Some(&sortable_i64(to)),
            take as usize,
            direction,
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for (suffix, value) in rows {
            self.member_delete(key, TAG_LIST, &suffix);
            out.push(value);
        }
        match end {
            End::Left => meta.head += take,
            End::Right => meta.tail -= take,
        }
        self.list_save(key, &meta);
        Ok(out)
    }

    /// Items at indexes `[start, stop]` (already clamped, non-negative).
    pub fn list_slice(
        &mut self,
        key: &[u8],
        meta: &ListMeta,
        start: i64,
        stop: i64,
    ) -> Result<Vec<Vec<u8>>> {
        if start > stop || start >= meta.len() {
            return Ok(Vec::new());
        }
        let from = meta.head + start;
        let to = meta.head + stop + 1;
        Ok(self
            .member_scan(
                key,
                TAG_LIST,
                Some(&sortable_i64(from)),
                Some(&sortable_i64(to)),
                (to - from) as usize,
                Direction::Forward,
            )?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    pub fn list_all(&mut self, key: &[u8], meta: &ListMeta) -> Result<Vec<Vec<u8>>> {
        self.list_slice(key, meta, 0, meta.len() - 1)
    }

    /// The item at a non-negative index `< len`.
    pub fn list_get(&mut self, key: &[u8], meta: &ListMeta, index: i64) -> Result<Option<Vec<u8>>> {
        self.member_get(key, TAG_LIST, &sortable_i64(meta.head + index))
    }

    pub fn list_set(&mut self, key: &[u8], meta: &ListMeta, index: i64, value: Vec<u8>) {
        self.item_put(key, meta.head + index, value);
        self.list_save(key, meta);
    }

    /// Replaces the whole content of an existing list (middle edits).
    pub fn list_rewrite(&mut self, key: &[u8], meta: &ListMeta, items: Vec<Vec<u8>>) {
        let new = ListMeta {
            head: meta.head,
            tail: meta.head + items.len() as i64,
            ..*meta
        };
        for seq in new.tail..meta.tail {
            self.member_delete(key, TAG_LIST, &sortable_i64(seq));
        }
        for (i, item) in items.into_iter().enumerate() {
            self.item_put(key, meta.head + i as i64, item);
        }
        self.list_save(key, &new);
    }

    /// Keeps indexes `[start, stop]` (clamped, may be empty).
    pub fn list_trim(&mut self, key: &[u8], meta: &ListMeta, start: i64, stop: i64) {
        let len = meta.len();
        let (keep_from, keep_to) = if start > stop || start >= len {
            (meta.head, meta.head)
        } else {
            (meta.head + start, meta.head + stop.min(len - 1) + 1)
        };
        for seq in (meta.head..keep_from).chain(keep_to..meta.tail) {
            self.member_delete(key, TAG_LIST, &sortable_i64(seq));
        }
        let new = ListMeta {
            head: keep_from,
            tail: keep_to,
            ..*meta
        };
        if new.is_empty() {
            self.drop_rows(key);
        } else {
            self.list_save(key, &new);
        }
    }
}
