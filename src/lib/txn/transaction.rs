//! One optimistic transaction: snapshot reads at `start_ts`, buffered writes
//! that later reads see, and a single validated commit.
//!
//! Invariants: every key read and every range scanned is recorded, so the
//! group can refuse the commit if any of them changed after `start_ts`;
//! range deletes are emitted before point writes, and a point write made
//! before a range delete that covers it is dropped, so the committed batch
//! means exactly what the sequence of calls meant.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::backend::{KvBackend, TxnError};
use super::range_set::RangeSet;
use crate::clock::Timestamp;
use crate::fsm::{ApplyOutcome, Command};
use crate::storage::{Direction, Mutation, ScanRequest};

/// A buffered write of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    Put {
        value: Vec<u8>,
        expire_at: Timestamp,
    },
    Delete,
}

/// A value as a transaction sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnValue {
    pub value: Vec<u8>,
    /// HLC timestamp at which the value expires (0 = never).
    pub expire_at: Timestamp,
    /// Commit timestamp of the version read; 0 for this transaction's own
    /// uncommitted write.
    pub commit_ts: Timestamp,
}

/// An optimistic transaction over one [`KvBackend`].
pub struct Txn<'a, B: KvBackend> {
    backend: &'a B,
    start_ts: Timestamp,
    read_keys: Vec<Vec<u8>>,
    read_ranges: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    writes: BTreeMap<Vec<u8>, Pending>,
    range_deletes: RangeSet,
    meta: Vec<Mutation>,
}

impl<'a, B: KvBackend> Txn<'a, B> {
    /// Starts a transaction at a fresh, freshness-checked timestamp.
    pub async fn begin(backend: &'a B) -> Result<Txn<'a, B>, TxnError> {
        let start_ts = backend.read_ts().await?;
        Ok(Self::at(backend, start_ts))
    }

    /// A transaction reading at an already obtained timestamp.
    pub fn at(backend: &'a B, start_ts: Timestamp) -> Txn<'a, B> {
        Txn {
            backend,
            start_ts,
            read_keys: Vec::new(),
            read_ranges: Vec::new(),
            writes: BTreeMap::new(),
            range_deletes: RangeSet::default(),
            meta: Vec::new(),
        }
    }

    pub fn start_ts(&self) -> Timestamp {
        self.start_ts
    }

    pub fn backend(&self) -> &'a B {
        self.backend
    }

    /// True when nothing was written: committing proposes nothing.
    pub fn is_read_only(&self) -> bool {
        self.writes.is_empty() && self.range_deletes.is_empty() && self.meta.is_empty()
    }

    fn deleted_by_range(&self, key: &[u8]) -> bool {
        self.range_deletes.contains(key)
    }

    /// Reads one key (own writes first), recording it for validation.
    pub fn get(&mut self, key: &[u8]) -> Result<Option<TxnValue>, TxnError> {
        if let Some(pending) = self.writes.get(key) {
            return Ok(match pending {
                Pending::Put { value, expire_at } => Some(TxnValue {
                    value: value.clone(),
                    expire_at: *expire_at,
                    commit_ts: 0,
                }),
                Pending::Delete => None,
            });
        }
        if self.deleted_by_range(key) {
            return Ok(None);
        }
        self.read_keys.push(key.to_vec());
        Ok(self.backend.get(key, self.start_ts)?.map(|v| TxnValue {
            value: v.value,
            expire_at: v.expire_at,
            commit_ts: v.commit_ts,
        }))
    }

    /// Reads several keys (results in input order).
    pub fn multi_get(&mut self, keys: &[Vec<u8>]) -> Result<Vec<Option<TxnValue>>, TxnError> {
        let mut out: Vec<Option<TxnValue>> = vec![None; keys.len()];
        let mut remote_idx = Vec::new();
        let mut remote_keys = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            if let Some(pending) = self.writes.get(key) {
                if let Pending::Put { value, expire_at } = pending {
                    out[i] = Some(TxnValue {
                        value: value.clone(),
                        expire_at: *expire_at,
                        commit_ts: 0,
                    });
                }
            } else if !self.deleted_by_range(key) {
                remote_idx.push(i);
                remote_keys.push(key.clone());
            }
        }
        if !remote_keys.is_empty() {
            let found = self.backend.multi_get(&remote_keys, self.start_ts)?;
            for (slot, value) in remote_idx.into_iter().zip(found) {
                out[slot] = value.map(|v| TxnValue {
                    value: v.value,
                    expire_at: v.expire_at,
                    commit_ts: v.commit_ts,
                });
            }
            self.read_keys.extend(remote_keys);
        }
        Ok(out)
    }

    /// Scans `[start, end)` in `direction`, merging own writes, returning at
    /// most `limit` visible entries. The range actually covered is recorded
    /// for validation (up to the last returned key when the limit was hit).
    pub fn scan(
        &mut self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
        direction: Direction,
    ) -> Result<Vec<(Vec<u8>, TxnValue)>, TxnError> {
        let mut out: Vec<(Vec<u8>, TxnValue)> = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        // Own writes in range, in scan order.
        let lower = Bound::Included(start.to_vec());
        let upper = match end {
            Some(end) => Bound::Excluded(end.to_vec()),
            None => Bound::Unbounded,
        };
        let mut local: Vec<(Vec<u8>, Pending)> = self
            .writes
            .range((lower, upper))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if direction == Direction::Reverse {
            local.reverse();
        }
        let mut local = local.into_iter().peekable();
        let mut resume: Option<Vec<u8>> = None;
        let mut store_done = false;
        let mut page: std::vec::IntoIter<crate::storage::VersionedValue> = Vec::new().into_iter();
        let before = |a: &[u8], b: &[u8]| match direction {
            Direction::Forward => a < b,
            Direction::Reverse => a > b,
        };
        loop {
            if out.len() >= limit {
                break;
            }
            // Refill the store page when empty.
            if page.len() == 0 && !store_done {
                let req = ScanRequest {
                    start: start.to_vec(),
                    end: end.map(<[u8]>::to_vec),
                    read_ts: self.start_ts,
                    limit: limit.max(16),
                    direction,
                    resume: resume.clone(),
                    keys_only: false,
                };
                let got = self.backend.scan(&req)?;
                store_done = got.resume.is_none();
                resume = got.resume;
                page = got.rows.into_iter();
                if page.len() == 0 {
                    store_done = true;
                }
            }
            let mut store_page = page.as_slice().iter().peekable();
            let next_store = store_page.peek().map(|v| v.key.clone());
            let next_local = local.peek().map(|(k, _)| k.clone());
            let take_local = match (&next_store, &next_local) {
                (None, None) => break,
                (None, Some(_)) => true,
                (Some(_), None) => false,
                (Some(s), Some(l)) => !before(s, l),
            };
            if take_local {
                let Some((key, pending)) = local.next() else {
                    break;
                };
                if next_store.as_deref() == Some(key.as_slice()) {
                    page.next(); // shadowed by our own write
                }
                if let Pending::Put { value, expire_at } = pending {
                    out.push((
                        key,
                        TxnValue {
                            value,
                            expire_at,
                            commit_ts: 0,
                        },
                    ));
                }
            } else {
                let Some(row) = page.next() else { break };
                if !self.deleted_by_range(&row.key) {
                    out.push((
                        row.key,
                        TxnValue {
                            value: row.value,
                            expire_at: row.expire_at,
                            commit_ts: row.commit_ts,
                        },
                    ));
                }
            }
        }
        // Record what was observed for validation.
        let limit_hit = out.len() >= limit;
        let covered = match (direction, limit_hit, out.last()) {
            (Direction::Forward, true, Some((last, _))) => {
                let mut end = last.clone();
                end.push(0);
                (start.to_vec(), Some(end))
            }
            (Direction::Reverse, true, Some((last, _))) => (last.clone(), end.map(<[u8]>::to_vec)),
            _ => (start.to_vec(), end.map(<[u8]>::to_vec)),
        };
        self.read_ranges.push(covered);
        Ok(out)
    }

    /// Buffers a write of `key`.
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>, expire_at: Timestamp) {
        self.writes.insert(key, Pending::Put { value, expire_at });
    }

    /// Buffers a deletion of `key`.
    pub fn delete(&mut self, key: Vec<u8>) {
        self.writes.insert(key, Pending::Delete);
    }

    /// Buffers the deletion of every key in `[start, end)`.
    pub fn delete_range(&mut self, start: Vec<u8>, end: Option<Vec<u8>>) {
        let upper = match &end {
            Some(end) => Bound::Excluded(end.as_slice()),
            None => Bound::Unbounded,
        };
        let covered: Vec<Vec<u8>> = self
            .writes
            .range::<[u8], _>((Bound::Included(start.as_slice()), upper))
            .map(|(k, _)| k.clone())
            .collect();
        for key in covered {
            self.writes.remove(&key);
        }
        self.range_deletes.insert(start, end);
    }

    /// Buffers a group metadata record write.
    pub fn meta_put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.meta.push(Mutation::MetaPut { key, value });
    }

    /// The command this transaction commits (None when read-only): range
    /// deletes first, then the writes in key order, then the metadata
    /// mutations; read keys sorted and deduplicated. The keys and values
    /// move into the command, they are not copied.
    fn into_command(self) -> Option<Command> {
        if self.is_read_only() {
            return None;
        }
        let mut mutations: Vec<Mutation> = self
            .range_deletes
            .iter()
            .map(|(start, end)| Mutation::DeleteRange {
                start: start.to_vec(),
                end: end.map(<[u8]>::to_vec),
            })
            .collect();
        mutations.extend(self.writes.into_iter().map(|(key, pending)| match pending {
            Pending::Put { value, expire_at } => Mutation::Put {
                key,
                value,
                expire_at,
            },
            Pending::Delete => Mutation::Delete { key },
        }));
        mutations.extend(self.meta);
        let mut read_keys = self.read_keys;
        read_keys.sort_unstable();
        read_keys.dedup();
        Some(Command::Txn {
            start_ts: self.start_ts,
            // Stamped by the backend at commit.
            commit_ts: self.start_ts.saturating_add(1),
            read_keys,
            read_ranges: self.read_ranges,
            mutations,
        })
    }

    /// Commits: `Ok(None)` for a read-only transaction, `Ok(Some(commit_ts))`
    /// once applied, `Err(Conflict)` when validation failed.
    pub async fn commit(self) -> Result<Option<Timestamp>, TxnError> {
        let backend = self.backend;
        let Some(command) = self.into_command() else {
            return Ok(None);
        };
        match backend.commit(command).await? {
            ApplyOutcome::Committed { commit_ts } => Ok(Some(commit_ts)),
            ApplyOutcome::Conflict { key } => Err(TxnError::Conflict { key }),
            ApplyOutcome::Refused { reason, key } => Err(TxnError::Refused { reason, key }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::Hlc;
    use crate::fsm::{Group, GroupOptions};
    use crate::storage::StoreOptions;
    use crate::txn::LocalBackend;

    fn backend(dir: &std::path::Path) -> LocalBackend {
        let options = GroupOptions {
            group_id: 1,
            store: StoreOptions {
                sync_writes: false,
                ..StoreOptions::default()
            },
        };
        let group = Group::open(dir, options, Arc::new(Hlc::default())).expect("open group");
        LocalBackend::new(Arc::new(group))
    }

    /// Apply relies on this order: a range delete removes only what
    /// precedes it, so the writes that follow it in the command survive.
    #[test]
    fn command_holds_range_deletes_then_writes_in_key_order_then_meta() {
        let dir = tempfile::tempdir().expect("tempdir");
        let backend = backend(dir.path());
        let mut txn = Txn::at(&backend, 100);
        assert!(txn.get(b"b").expect("read").is_none());
        assert!(txn.get(b"a").expect("read").is_none());
        assert!(txn.get(b"b").expect("read again").is_none());
        txn.put(b"k2".to_vec(), b"v2".to_vec(), 7);
        txn.delete(b"k1".to_vec());
        txn.delete_range(b"r".to_vec(), Some(b"s".to_vec()));
        txn.meta_put(b"m".to_vec(), b"mv".to_vec());
        let Some(Command::Txn {
            start_ts,
            commit_ts,
            read_keys,
            read_ranges,
            mutations,
        }) = txn.into_command()
        else {
            panic!("a transaction with writes commits a Txn command");
        };
        assert_eq!((start_ts, commit_ts), (100, 101));
        assert_eq!(read_keys, vec![b"a".to_vec(), b"b".to_vec()]);
        assert!(read_ranges.is_empty());
        assert_eq!(
            mutations,
            vec![
                Mutation::DeleteRange {
                    start: b"r".to_vec(),
                    end: Some(b"s".to_vec()),
                },
                Mutation::Delete {
                    key: b"k1".to_vec()
                },
                Mutation::Put {
                    key: b"k2".to_vec(),
                    value: b"v2".to_vec(),
                    expire_at: 7,
                },
                Mutation::MetaPut {
                    key: b"m".to_vec(),
                    value: b"mv".to_vec(),
                },
            ]
        );
    }

    #[test]
    fn read_only_transaction_has_no_command() {
        let dir = tempfile::tempdir().expect("tempdir");
        let backend = backend(dir.path());
        let mut txn = Txn::at(&backend, 100);
        assert!(txn.get(b"a").expect("read").is_none());
        assert!(txn.into_command().is_none());
    }
}
