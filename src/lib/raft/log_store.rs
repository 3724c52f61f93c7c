//! The Raft log and hard state of one group, kept in the group's RocksDB
//! column families `raft_log` and `raft_state`, served to raft-rs through
//! [`::raft::Storage`].
//!
//! Layout:
//! - `raft_log`: key `u64be(index)` → protobuf `Entry`;
//! - `raft_state`: `hard_state` → protobuf `HardState`; `snapshot` →
//!   protobuf `Snapshot` (metadata of the newest snapshot, `data` = our
//!   snapshot token); `truncated` → `u64be(index) ‖ u64be(term)` of the last
//!   entry removed by compaction; `peers` → the address book (see `peers`).
//!
//! Invariants: every write is one RocksDB batch, synced unless all it
//! changes is the commit index (raft does not need that durable: after a
//! crash the group re-learns it, and an entry applied above it is replayed
//! as already applied; the write-ahead log keeps it ahead of the apply that
//! follows it); the log holds exactly
//! the indexes `truncated.index + 1 ..= last_index` with no gaps; the
//! snapshot index is never above `last_index` and never below
//! `truncated.index` minus the configured tail.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ::raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use ::raft::{GetEntriesContext, RaftState, StorageError};
use protobuf::Message as _;
use rocksdb::{DB, WriteBatch, WriteOptions};

use crate::raft::error::RaftError;
use crate::raft::peers::AddressBook;
use crate::storage::Cf;

const KEY_HARD_STATE: &[u8] = b"hard_state";
const KEY_SNAPSHOT: &[u8] = b"snapshot";
const KEY_TRUNCATED: &[u8] = b"truncated";
const KEY_PEERS: &[u8] = b"peers";

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// RocksDB-backed Raft log storage of one group.
pub struct LogStore {
    db: Arc<DB>,
    hard_state: HardState,
    snapshot: Snapshot,
    truncated_index: u64,
    truncated_term: u64,
    last_index: u64,
    /// Set when raft-rs asked for a snapshot we could not give (none yet, or
    /// the newest one predates a peer's membership): the driver makes one.
    snapshot_wanted: AtomicBool,
}

fn storage_err(e: impl std::fmt::Display) -> ::raft::Error {
    ::raft::Error::Store(StorageError::Other(Box::new(std::io::Error::other(
        e.to_string(),
    ))))
}

impl LogStore {
    /// Opens the log of a group; the column families must exist.
    pub fn open(db: Arc<DB>) -> Result<LogStore, RaftError> {
        for cf in [Cf::RaftLog, Cf::RaftState] {
            if db.cf_handle(cf.name()).is_none() {
                return Err(RaftError::Storage(format!(
                    "column family {} is missing",
                    cf.name()
                )));
            }
        }
        let mut store = LogStore {
            db,
            hard_state: HardState::default(),
            snapshot: Snapshot::default(),
            truncated_index: 0,
            truncated_term: 0,
            last_index: 0,
            snapshot_wanted: AtomicBool::new(false),
        };
        if let Some(bytes) = store.get_state(KEY_HARD_STATE)? {
            store.hard_state = HardState::parse_from_bytes(&bytes)
                .map_err(|e| RaftError::Storage(format!("corrupt hard state: {e}")))?;
        }
        if let Some(bytes) = store.get_state(KEY_SNAPSHOT)? {
            store.snapshot = Snapshot::parse_from_bytes(&bytes)
                .map_err(|e| RaftError::Storage(format!("corrupt snapshot metadata: {e}")))?;
        }
        if let Some(bytes) = store.get_state(KEY_TRUNCATED)? {
            if bytes.len() != 16 {
                return Err(RaftError::Storage(format!(
                    "corrupt truncated state: {} bytes, expected 16",
                    bytes.len()
                )));
            }
            store.truncated_index = u64::from_be_bytes(bytes[..8].try_into().unwrap_or([0; 8]));
            store.truncated_term = u64::from_be_bytes(bytes[8..].try_into().unwrap_or([0; 8]));
        }
        store.last_index = store.truncated_index.max(store.last_log_key()?);
        Ok(store)
    }

    fn last_log_key(&self) -> Result<u64, RaftError> {
        let mut iter = self.db.raw_iterator_cf(self.cf(Cf::RaftLog)?);
        iter.seek_to_last();
        let mut last = 0;
        if iter.valid()
            && let Some(key) = iter.key()
        {
            let key: [u8; 8] = key.try_into().map_err(|_| {
                RaftError::Storage(format!("corrupt raft log key of {} bytes", key.len()))
            })?;
            last = u64::from_be_bytes(key);
        }
        iter.status()?;
        Ok(last)
    }

    fn cf(&self, cf: Cf) -> Result<&rocksdb::ColumnFamily, RaftError> {
        self.db
            .cf_handle(cf.name())
            .ok_or_else(|| RaftError::Storage(format!("column family {} is missing", cf.name())))
    }

    fn get_state(&self, key: &[u8]) -> Result<Option<Vec<u8>>, RaftError> {
        Ok(self.db.get_cf(self.cf(Cf::RaftState)?, key)?)
    }

    fn write(&self, batch: WriteBatch) -> Result<(), RaftError> {
        self.write_with(batch, true)
    }

    fn write_with(&self, batch: WriteBatch, sync: bool) -> Result<(), RaftError> {
        let mut opts = WriteOptions::default();
        opts.set_sync(sync);
        self.db.write_opt(batch, &opts)?;
        Ok(())
    }

    /// True when nothing was ever persisted for this group (a fresh node).
    pub fn is_empty(&self) -> bool {
        self.hard_state == HardState::default()
            && self.last_index == 0
            && self.snapshot.get_metadata().get_conf_state() == &ConfState::default()
    }

    pub fn hard_state(&self) -> &HardState {
        &self.hard_state
    }

    /// The newest snapshot's metadata and token (`data`).
    pub fn snapshot_record(&self) -> &Snapshot {
        &self.snapshot
    }

    pub fn last_index_now(&self) -> u64 {
        self.last_index
    }

    pub fn first_index_now(&self) -> u64 {
        self.truncated_index + 1
    }

    /// Takes (and clears) the "raft-rs asked for a snapshot" flag.
    pub fn take_snapshot_wanted(&self) -> bool {
        self.snapshot_wanted.swap(false, Ordering::SeqCst)
    }

    /// Writes the initial membership of a new cluster (index 0, term 0).
    pub fn bootstrap(&mut self, conf_state: ConfState) -> Result<(), RaftError> {
        let mut snap = Snapshot::default();
        snap.mut_metadata().set_conf_state(conf_state);
        self.put_snapshot_record(snap)
    }

    /// Appends entries (truncating any conflicting suffix) and stores the
    /// hard state, in one batch: synced, unless it only moves the commit
    /// index (term and vote must be durable before any message depending
    /// on them leaves; the commit index need not be, see the module docs).
    /// The leader of a single-node group used to fsync twice per round:
    /// once for its entries, once for the commit they reached.
    pub fn append(&mut self, entries: &[Entry], hs: Option<&HardState>) -> Result<(), RaftError> {
        let sync = !entries.is_empty()
            || hs.is_some_and(|hs| {
                hs.term != self.hard_state.term || hs.vote != self.hard_state.vote
            });
        let mut batch = WriteBatch::default();
        let log = self.cf(Cf::RaftLog)?;
        let mut new_last = self.last_index;
        if let Some(first) = entries.first() {
            let first_index = first.get_index();
            if first_index <= self.truncated_index {
                return Err(RaftError::Storage(format!(
                    "append at {first_index} overlaps the compacted log (truncated at {})",
                    self.truncated_index
                )));
            }
            if first_index > self.last_index + 1 {
                return Err(RaftError::Storage(format!(
                    "append at {first_index} leaves a gap after last index {}",
                    self.last_index
                )));
            }
            if first_index <= self.last_index {
                batch.delete_range_cf(log, index_key(first_index), index_key(self.last_index + 1));
            }
            for e in entries {
                let bytes = e
                    .write_to_bytes()
                    .map_err(|err| RaftError::Storage(format!("encode entry: {err}")))?;
                batch.put_cf(log, index_key(e.get_index()), bytes);
            }
            new_last = entries.last().map(|e| e.get_index()).unwrap_or(new_last);
        }
        if let Some(hs) = hs {
            let bytes = hs
                .write_to_bytes()
                .map_err(|err| RaftError::Storage(format!("encode hard state: {err}")))?;
            batch.put_cf(self.cf(Cf::RaftState)?, KEY_HARD_STATE, bytes);
        }
        self.write_with(batch, sync)?;
        self.last_index = new_last;
        if let Some(hs) = hs {
            self.hard_state = hs.clone();
        }
        Ok(())
    }

    /// Persists a commit index learned outside a `Ready`'s hard state (a
    /// `LightReady`, which is how a single-node group learns its commits):
    /// without it a restart would see applied > committed.
    pub fn set_commit(&mut self, commit: u64) -> Result<(), RaftError> {
        if commit <= self.hard_state.commit {
            return Ok(());
        }
        let mut hs = self.hard_state.clone();
        hs.commit = commit;
        self.append(&[], Some(&hs))
    }

    /// Installs a snapshot received from the leader: the log is emptied and
    /// restarts after the snapshot index.
    pub fn install_snapshot(&mut self, snap: &Snapshot) -> Result<(), RaftError> {
        let meta = snap.get_metadata();
        let mut batch = WriteBatch::default();
        let log = self.cf(Cf::RaftLog)?;
        batch.delete_range_cf(
            log,
            index_key(0),
            index_key(self.last_index.max(meta.index) + 1),
        );
        let mut trunc = Vec::with_capacity(16);
        trunc.extend_from_slice(&meta.index.to_be_bytes());
        trunc.extend_from_slice(&meta.term.to_be_bytes());
        let state = self.cf(Cf::RaftState)?;
        batch.put_cf(state, KEY_TRUNCATED, trunc);
        let mut hs = self.hard_state.clone();
        hs.commit = hs.commit.max(meta.index);
        hs.term = hs.term.max(meta.term);
        batch.put_cf(
            state,
            KEY_HARD_STATE,
            hs.write_to_bytes()
                .map_err(|e| RaftError::Storage(format!("encode hard state: {e}")))?,
        );
        batch.put_cf(
            state,
            KEY_SNAPSHOT,
            snap.write_to_bytes()
                .map_err(|e| RaftError::Storage(format!("encode snapshot: {e}")))?,
        );
        self.write(batch)?;
        self.hard_state = hs;
        self.snapshot = snap.clone();
        self.truncated_index = meta.index;
        self.truncated_term = meta.term;
        self.last_index = meta.index;
        Ok(())
    }

    /// Records a locally created snapshot as the newest one.
    pub fn put_snapshot_record(&mut self, snap: Snapshot) -> Result<(), RaftError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(Cf::RaftState)?,
            KEY_SNAPSHOT,
            snap.write_to_bytes()
                .map_err(|e| RaftError::Storage(format!("encode snapshot: {e}")))?,
        );
        self.write(batch)?;
        self.snapshot = snap;
        Ok(())
    }

    /// Removes every entry below `compact_to` (which must be applied and
    /// covered by a snapshot); `compact_to - 1` becomes the truncated entry.
    pub fn compact(&mut self, compact_to: u64) -> Result<(), RaftError> {
        if compact_to <= self.truncated_index + 1 {
            return Ok(());
        }
        if compact_to > self.last_index + 1 {
            return Err(RaftError::Storage(format!(
                "compact to {compact_to} beyond last index {}",
                self.last_index
            )));
        }
        let new_truncated = compact_to - 1;
        let term = ::raft::Storage::term(self, new_truncated)
            .map_err(|e| RaftError::Storage(format!("term of {new_truncated}: {e}")))?;
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(self.cf(Cf::RaftLog)?, index_key(0), index_key(compact_to));
        let mut trunc = Vec::with_capacity(16);
        trunc.extend_from_slice(&new_truncated.to_be_bytes());
        trunc.extend_from_slice(&term.to_be_bytes());
        batch.put_cf(self.cf(Cf::RaftState)?, KEY_TRUNCATED, trunc);
        self.write(batch)?;
        self.truncated_index = new_truncated;
        self.truncated_term = term;
        Ok(())
    }

    pub fn load_peers(&self) -> Result<AddressBook, RaftError> {
        match self.get_state(KEY_PEERS)? {
            Some(bytes) => AddressBook::decode(&bytes),
            None => Ok(AddressBook::default()),
        }
    }

    pub fn save_peers(&self, book: &AddressBook) -> Result<(), RaftError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(Cf::RaftState)?, KEY_PEERS, book.encode());
        self.write(batch)
    }

    fn read_entry(&self, index: u64) -> ::raft::Result<Entry> {
        let log = self.cf(Cf::RaftLog).map_err(storage_err)?;
        match self.db.get_cf(log, index_key(index)).map_err(storage_err)? {
            Some(bytes) => Entry::parse_from_bytes(&bytes)
                .map_err(|e| storage_err(format!("corrupt raft log entry {index}: {e}"))),
            None => Err(storage_err(format!("raft log entry {index} is missing"))),
        }
    }
}

impl ::raft::Storage for LogStore {
    fn initial_state(&self) -> ::raft::Result<RaftState> {
        Ok(RaftState::new(
            self.hard_state.clone(),
            self.snapshot.get_metadata().get_conf_state().clone(),
        ))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> ::raft::Result<Vec<Entry>> {
        if low <= self.truncated_index {
            return Err(::raft::Error::Store(StorageError::Compacted));
        }
        if high > self.last_index + 1 {
            return Err(::raft::Error::Store(StorageError::Unavailable));
        }
        let max_size = max_size.into();
        let log = self.cf(Cf::RaftLog).map_err(storage_err)?;
        let mut out = Vec::with_capacity((high - low).min(1024) as usize);
        let mut iter = self.db.raw_iterator_cf(log);
        iter.seek(index_key(low));
        let mut size = 0u64;
        let mut expected = low;
        while expected < high && iter.valid() {
            let value = iter.value().unwrap_or_default();
            let entry = Entry::parse_from_bytes(value)
                .map_err(|e| storage_err(format!("corrupt raft log entry {expected}: {e}")))?;
            if entry.get_index() != expected {
                return Err(storage_err(format!(
                    "raft log gap: expected entry {expected}, found {}",
                    entry.get_index()
                )));
            }
            size += u64::from(entry.compute_size());
            if let Some(max) = max_size
                && !out.is_empty()
                && size > max
            {
                break;
            }
            out.push(entry);
            expected += 1;
            iter.next();
        }
        iter.status().map_err(storage_err)?;
        if out.is_empty() && low < high {
            return Err(storage_err(format!(
                "raft log entries {low}..{high} missing"
            )));
        }
        Ok(out)
    }

    fn term(&self, idx: u64) -> ::raft::Result<u64> {
        if idx == self.truncated_index {
            return Ok(self.truncated_term);
        }
        if idx < self.truncated_index {
            return Err(::raft::Error::Store(StorageError::Compacted));
        }
        if idx > self.last_index {
            return Err(::raft::Error::Store(StorageError::Unavailable));
        }
        Ok(self.read_entry(idx)?.get_term())
    }

    fn first_index(&self) -> ::raft::Result<u64> {
        Ok(self.truncated_index + 1)
    }

    fn last_index(&self) -> ::raft::Result<u64> {
        Ok(self.last_index)
    }

    fn snapshot(&self, request_index: u64, to: u64) -> ::raft::Result<Snapshot> {
        let meta = self.snapshot.get_metadata();
        let cs = meta.get_conf_state();
        let includes_peer = cs.voters.contains(&to) || cs.learners.contains(&to);
        if meta.index == 0 || meta.index < request_index || !includes_peer {
            self.snapshot_wanted.store(true, Ordering::SeqCst);
            return Err(::raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        Ok(self.snapshot.clone())
    }
}
