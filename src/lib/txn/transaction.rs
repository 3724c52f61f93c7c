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
use std::sync::Arc;

use super::backend::{KvBackend, StampHook, TxnError};
use super::range_set::RangeSet;
use crate::clock::Timestamp;
use crate::fsm::{ApplyOutcome, Command};
use crate::storage::{Chain, ChainAfter, Direction, Mutation, ScanRequest};

/// A buffered write of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    Put {
        value: Vec<u8>,
        expire_at: Timestamp,
    },
    Delete,
}

/// A buffered write as a read sees it.
fn pending_value(pending: &Pending) -> Option<TxnValue> {
    match pending {
        Pending::Put { value, expire_at } => Some(TxnValue {
            value: value.clone(),
            expire_at: *expire_at,
            commit_ts: 0,
        }),
        Pending::Delete => None,
    }
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

/// The writes of a transaction that is proposed but not yet applied, as a
/// transaction chained after it sees them (see [`Txn::chained`]).
#[derive(Debug)]
pub struct ChainLink {
    /// The predecessor's (strict) commit timestamp.
    ts: Timestamp,
    /// A key the predecessor wrote: its version at `ts` proves the commit.
    guard: Vec<u8>,
    writes: BTreeMap<Vec<u8>, Pending>,
    range_deletes: RangeSet,
}

/// A transaction's writes, copied before its commit to become a
/// [`ChainLink`] once the backend stamps it.
#[derive(Debug)]
pub struct ChainSeed {
    guard: Vec<u8>,
    writes: BTreeMap<Vec<u8>, Pending>,
    range_deletes: RangeSet,
}

impl ChainSeed {
    pub fn stamped(self, ts: Timestamp) -> ChainLink {
        ChainLink {
            ts,
            guard: self.guard,
            writes: self.writes,
            range_deletes: self.range_deletes,
        }
    }
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
    /// The predecessor whose writes this transaction reads through.
    after: Option<Arc<ChainLink>>,
    /// Commit at the stamped timestamp or not at all.
    strict: bool,
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
            after: None,
            strict: false,
        }
    }

    /// Starts a transaction that reads `link`'s writes as if they were
    /// applied: it sees the store at a fresh read timestamp with the
    /// predecessor's writes on top. Its commit is strict and names the
    /// predecessor, so it applies only if the predecessor committed at
    /// exactly its stamp and nothing else changed what was read (see
    /// `storage::Chain`). The predecessor must have been proposed on this
    /// node before this transaction is.
    pub async fn chained(backend: &'a B, link: Arc<ChainLink>) -> Result<Txn<'a, B>, TxnError> {
        let start_ts = backend.read_ts().await?;
        Ok(Self::chained_at(backend, start_ts, link))
    }

    /// [`Txn::chained`] at an already obtained read timestamp (the
    /// predecessor is read through only if it lies above it).
    pub fn chained_at(backend: &'a B, start_ts: Timestamp, link: Arc<ChainLink>) -> Txn<'a, B> {
        let mut txn = Self::at(backend, start_ts);
        if start_ts < link.ts {
            txn.after = Some(link);
        }
        txn.strict = true;
        txn
    }

    /// Makes the commit strict: at the stamped timestamp or not at all, so
    /// a later transaction may chain after it.
    pub fn set_strict(&mut self) {
        self.strict = true;
    }

    /// A copy of this transaction's writes for a successor to chain after,
    /// or `None` when it writes no single key (nothing to prove its commit).
    pub fn chain_seed(&self) -> Option<ChainSeed> {
        let guard = self.writes.keys().next()?.clone();
        Some(ChainSeed {
            guard,
            writes: self.writes.clone(),
            range_deletes: self.range_deletes.clone(),
        })
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

    /// What the predecessor's writes say of `key`: `Some(None)` deleted,
    /// `Some(Some(value))` written, `None` untouched.
    fn inherited(&self, key: &[u8]) -> Option<Option<TxnValue>> {
        let link = self.after.as_ref()?;
        if let Some(pending) = link.writes.get(key) {
            return Some(pending_value(pending));
        }
        link.range_deletes.contains(key).then_some(None)
    }

    /// Reads one key (own writes first, then a predecessor's), recording
    /// it for validation unless this transaction wrote it.
    pub fn get(&mut self, key: &[u8]) -> Result<Option<TxnValue>, TxnError> {
        if let Some(pending) = self.writes.get(key) {
            return Ok(pending_value(pending));
        }
        if self.deleted_by_range(key) {
            return Ok(None);
        }
        self.read_keys.push(key.to_vec());
        if let Some(inherited) = self.inherited(key) {
            return Ok(inherited);
        }
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
                out[i] = pending_value(pending);
            } else if self.deleted_by_range(key) {
            } else if let Some(inherited) = self.inherited(key) {
                self.read_keys.push(key.clone());
                out[i] = inherited;
            } else {
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
        // Own writes in range, then the predecessor's that own writes and
        // own range deletes leave visible, in scan order.
        let lower = Bound::Included(start.to_vec());
        let upper = match end {
            Some(end) => Bound::Excluded(end.to_vec()),
            None => Bound::Unbounded,
        };
        let mut local: Vec<(Vec<u8>, Pending)> = self
            .writes
            .range((lower.clone(), upper.clone()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(link) = &self.after {
            let before = local.len();
            local.extend(
                link.writes
                    .range((lower, upper))
                    .filter(|(k, _)| !self.writes.contains_key(*k) && !self.deleted_by_range(k))
                    .map(|(k, v)| (k.clone(), v.clone())),
            );
            if local.len() > before {
                local.sort_by(|a, b| a.0.cmp(&b.0));
            }
        }
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
                let hidden = self.deleted_by_range(&row.key)
                    || self
                        .after
                        .as_ref()
                        .is_some_and(|link| link.range_deletes.contains(&row.key));
                if !hidden {
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
        self.drop_own_writes(&start, end.as_deref());
        self.range_deletes.insert(start, end);
    }

    /// Forgets the buffered writes of keys in `[start, end)`.
    fn drop_own_writes(&mut self, start: &[u8], end: Option<&[u8]>) {
        let upper = end.map_or(Bound::Unbounded, Bound::Excluded);
        let covered: Vec<Vec<u8>> = self
            .writes
            .range::<[u8], _>((Bound::Included(start), upper))
            .map(|(k, _)| k.clone())
            .collect();
        for key in covered {
            self.writes.remove(&key);
        }
    }

    /// Deletes every row in `[start, end)` as [`Txn::delete_range`] does,
    /// but proposes no range delete when no committed or inherited row can
    /// be there: `guard` provably never had a version on this replica
    /// ([`KvBackend::never_written`]) and the predecessor (if chained)
    /// wrote nothing in the range. The apply of a range delete scans the
    /// range, one seek in every memtable and level-0 file; for a key that
    /// is being created that scan found nothing, at half the Raft thread's
    /// time (`bench/RESULTS.md`, session 12). Own buffered writes in the
    /// range are dropped either way, and a failed proof falls back to the
    /// range delete. Returns whether the range delete was proposed.
    ///
    /// Sound only when rows of the range are never written without `guard`
    /// in the same commit, and this transaction validates `guard` (it read
    /// or writes it): a row committed after the start would come with a
    /// newer `guard` and fail that validation.
    pub fn delete_range_guarded(
        &mut self,
        guard: &[u8],
        start: Vec<u8>,
        end: Option<Vec<u8>>,
    ) -> bool {
        let upper = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        let inherited_rows = self.after.as_ref().is_some_and(|link| {
            link.writes.contains_key(guard)
                || link
                    .writes
                    .range::<[u8], _>((Bound::Included(start.as_slice()), upper))
                    .next()
                    .is_some()
        });
        let provably_empty =
            !inherited_rows && matches!(self.backend.never_written(guard), Ok(true));
        if provably_empty {
            self.drop_own_writes(&start, end.as_deref());
            false
        } else {
            self.delete_range(start, end);
            true
        }
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
            chain: Chain {
                strict: self.strict,
                after: self.after.map(|link| ChainAfter {
                    ts: link.ts,
                    guard: link.guard.clone(),
                }),
            },
        })
    }

    /// Commits: `Ok(None)` for a read-only transaction, `Ok(Some(commit_ts))`
    /// once applied, `Err(Conflict)` when validation failed.
    pub async fn commit(self) -> Result<Option<Timestamp>, TxnError> {
        self.commit_observed(Box::new(|_| {})).await
    }

    /// [`Txn::commit`], calling `on_stamped` with the commit timestamp as
    /// soon as the proposal is on its way, before it is applied, when the
    /// backend stamps it on this node (never otherwise).
    pub async fn commit_observed(
        self,
        on_stamped: StampHook,
    ) -> Result<Option<Timestamp>, TxnError> {
        let backend = self.backend;
        let Some(command) = self.into_command() else {
            return Ok(None);
        };
        match backend.commit_observed(command, on_stamped).await? {
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
            chain,
        }) = txn.into_command()
        else {
            panic!("a transaction with writes commits a Txn command");
        };
        assert_eq!((start_ts, commit_ts), (100, 101));
        assert_eq!(chain, Chain::default());
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

    fn value(v: Option<TxnValue>) -> Option<Vec<u8>> {
        v.map(|v| v.value)
    }

    /// A predecessor that writes a, deletes b and range-deletes [r, s)
    /// except r2, started before `reader_ts` was taken and committed
    /// strictly; its link, and the commit ts.
    async fn predecessor(backend: &LocalBackend) -> (Arc<ChainLink>, Timestamp) {
        let mut p = Txn::begin(backend).await.expect("begin");
        p.put(b"a".to_vec(), b"pa".to_vec(), 0);
        p.delete(b"b".to_vec());
        p.delete_range(b"r".to_vec(), Some(b"s".to_vec()));
        p.put(b"r2".to_vec(), b"pr2".to_vec(), 0);
        p.set_strict();
        let seed = p.chain_seed().expect("writes a key");
        let ts = p.commit().await.expect("commit").expect("writes");
        (Arc::new(seed.stamped(ts)), ts)
    }

    /// A backend holding `old-<k>` at a, b, c, r1 and r3, and the read ts
    /// just after that seed (the start of the chain tests' transactions).
    async fn seeded() -> (tempfile::TempDir, LocalBackend, Timestamp) {
        let dir = tempfile::tempdir().expect("tempdir");
        let backend = backend(dir.path());
        let mut t = Txn::begin(&backend).await.expect("begin");
        for k in ["a", "b", "c", "r1", "r3"] {
            t.put(k.as_bytes().to_vec(), format!("old-{k}").into_bytes(), 0);
        }
        t.commit().await.expect("seed");
        let before = backend.read_ts().await.expect("ts");
        (dir, backend, before)
    }

    #[tokio::test]
    async fn a_chained_transaction_reads_through_its_predecessor_and_commits_after_it() {
        let (_dir, backend, before) = seeded().await;
        let (link, p_ts) = predecessor(&backend).await;
        let mut c = Txn::chained_at(&backend, before, link);
        assert_eq!(value(c.get(b"a").expect("a")), Some(b"pa".to_vec()));
        assert_eq!(value(c.get(b"b").expect("b")), None);
        assert_eq!(value(c.get(b"c").expect("c")), Some(b"old-c".to_vec()));
        let many = c
            .multi_get(&[b"a".to_vec(), b"r1".to_vec(), b"c".to_vec()])
            .expect("multi");
        let many: Vec<_> = many.into_iter().map(value).collect();
        assert_eq!(many, [Some(b"pa".to_vec()), None, Some(b"old-c".to_vec())]);
        let scanned: Vec<Vec<u8>> = c
            .scan(b"a", None, 10, Direction::Forward)
            .expect("scan")
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(scanned, [b"a".to_vec(), b"c".to_vec(), b"r2".to_vec()]);
        c.put(b"a".to_vec(), b"ca".to_vec(), 0);
        let c_ts = c.commit().await.expect("chained commit").expect("writes");
        assert!(c_ts > p_ts);
        let after = Txn::begin(&backend).await.expect("begin");
        let mut after = after;
        assert_eq!(value(after.get(b"a").expect("a")), Some(b"ca".to_vec()));
        assert_eq!(value(after.get(b"r3").expect("r3")), None);
    }

    #[tokio::test]
    async fn a_chained_transaction_fails_when_its_predecessor_did_not_commit() {
        let (_dir, backend, before) = seeded().await;
        let mut p = Txn::at(&backend, before);
        p.put(b"a".to_vec(), b"pa".to_vec(), 0);
        let seed = p.chain_seed().expect("writes a key");
        // Never committed: its stamp is a timestamp nobody wrote at.
        let link = Arc::new(seed.stamped(backend.read_ts().await.expect("ts")));
        let mut c = Txn::chained_at(&backend, before, link);
        assert_eq!(value(c.get(b"a").expect("a")), Some(b"pa".to_vec()));
        c.put(b"c".to_vec(), b"cc".to_vec(), 0);
        assert!(matches!(c.commit().await, Err(TxnError::Conflict { .. })));
    }

    #[tokio::test]
    async fn a_chained_transaction_fails_when_a_key_it_read_changed_after_its_predecessor() {
        let (_dir, backend, before) = seeded().await;
        let (link, _) = predecessor(&backend).await;
        // Someone else rewrites b (which the predecessor deleted).
        let mut other = Txn::begin(&backend).await.expect("begin");
        other.put(b"b".to_vec(), b"other".to_vec(), 0);
        other.commit().await.expect("other");
        let mut c = Txn::chained_at(&backend, before, link);
        assert_eq!(value(c.get(b"b").expect("b")), None);
        c.put(b"c".to_vec(), b"cc".to_vec(), 0);
        assert!(matches!(c.commit().await, Err(TxnError::Conflict { .. })));
    }

    fn mutations_of(txn: Txn<'_, LocalBackend>) -> Vec<Mutation> {
        match txn.into_command() {
            Some(Command::Txn { mutations, .. }) => mutations,
            other => panic!("expected a Txn command, got {other:?}"),
        }
    }

    fn has_range_delete(mutations: &[Mutation]) -> bool {
        mutations
            .iter()
            .any(|m| matches!(m, Mutation::DeleteRange { .. }))
    }

    #[tokio::test]
    async fn a_guarded_range_delete_of_a_never_written_key_proposes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let backend = backend(dir.path());
        let mut txn = Txn::begin(&backend).await.expect("begin");
        txn.put(b"k/1".to_vec(), b"own row".to_vec(), 0);
        assert!(!txn.delete_range_guarded(b"k/", b"k/".to_vec(), Some(b"k0".to_vec())));
        assert_eq!(txn.get(b"k/1").expect("read"), None, "own row dropped");
        txn.put(b"k/".to_vec(), b"meta".to_vec(), 0);
        assert_eq!(
            mutations_of(txn),
            vec![Mutation::Put {
                key: b"k/".to_vec(),
                value: b"meta".to_vec(),
                expire_at: 0,
            }]
        );
    }

    #[tokio::test]
    async fn a_guarded_range_delete_falls_back_when_the_guard_has_a_past() {
        let dir = tempfile::tempdir().expect("tempdir");
        let backend = backend(dir.path());
        let mut t = Txn::begin(&backend).await.expect("begin");
        t.put(b"k/".to_vec(), b"meta".to_vec(), 0);
        t.put(b"k/1".to_vec(), b"row".to_vec(), 0);
        t.commit().await.expect("create");
        let mut t = Txn::begin(&backend).await.expect("begin");
        t.delete(b"k/".to_vec());
        t.commit().await.expect("delete only the guard");
        // The guard is a tombstone now, and its row is still there.
        let mut txn = Txn::begin(&backend).await.expect("begin");
        assert!(txn.delete_range_guarded(b"k/", b"k/".to_vec(), Some(b"k0".to_vec())));
        assert_eq!(txn.get(b"k/1").expect("read"), None);
        txn.put(b"k/".to_vec(), b"meta2".to_vec(), 0);
        assert!(has_range_delete(&mutations_of(txn)));
    }

    #[tokio::test]
    async fn a_guarded_range_delete_falls_back_on_rows_its_predecessor_wrote() {
        let (_dir, backend, before) = seeded().await;
        let (link, _) = predecessor(&backend).await;
        // The predecessor wrote r2 inside [r, s); q never existed.
        let mut c = Txn::chained_at(&backend, before, Arc::clone(&link));
        assert!(c.delete_range_guarded(b"q", b"r".to_vec(), Some(b"s".to_vec())));
        c.put(b"q".to_vec(), b"cq".to_vec(), 0);
        assert!(has_range_delete(&mutations_of(c)));
        // ... and when the predecessor wrote the guard itself.
        let mut c = Txn::chained_at(&backend, before, link);
        assert!(c.delete_range_guarded(b"r2", b"t".to_vec(), Some(b"u".to_vec())));
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
