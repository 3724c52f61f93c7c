//! `Group`: one Raft group's state machine over its RocksDB store — the
//! handle the Raft layer applies entries to and the front ends read from.
//!
//! Apply is deterministic: its only inputs are the entry and the store. Wall
//! clocks are never read here; the hybrid logical clock is only *informed*
//! (observe, ceiling), never consulted for a decision.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::RwLock;

use super::command::{ApplyOutcome, Command, CommandError};
use super::ownership::{OWNERSHIP_META_KEY, OwnershipError, OwnershipTable};
use crate::clock::{Hlc, Timestamp};
use crate::storage::{
    Chain, GroupStore, Mutation, Outcome, PointValue, ScanPage, ScanRequest, StorageError,
    StoreOptions, WriteIntent,
};

/// The Meta record holding the highest HLC ceiling applied (u64be ms).
pub const HLC_CEILING_META_KEY: &[u8] = b"hlc_ceiling";

#[derive(Debug, thiserror::Error)]
pub enum FsmError {
    /// A committed entry cannot be decoded: the group's apply must halt.
    #[error("raft entry {index} cannot be applied: {source}")]
    Undecodable {
        index: u64,
        #[source]
        source: CommandError,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("key {} is not owned by group {group}", hex::encode(key))]
    NotOwned { group: u64, key: Vec<u8> },
    #[error("group {group}: {source}")]
    Ownership {
        group: u64,
        #[source]
        source: OwnershipError,
    },
    #[error("group {group}: meta record {record} is corrupt: {detail}")]
    CorruptMeta {
        group: u64,
        record: &'static str,
        detail: String,
    },
}

/// How to open a group.
#[derive(Debug, Clone)]
pub struct GroupOptions {
    pub group_id: u64,
    pub store: StoreOptions,
}

/// One group's state machine.
pub struct Group {
    id: u64,
    store: Arc<GroupStore>,
    hlc: Arc<Hlc>,
    ownership: RwLock<OwnershipTable>,
    /// `ownership` is the table of every key (a single-group node, the
    /// common case): the per-key checks of every read and applied write
    /// then need neither the lock nor a comparison. Stored under the write
    /// lock whenever the table changes.
    owns_everything: AtomicBool,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("id", &self.id)
            .field("applied_index", &self.store.applied_index())
            .finish()
    }
}

impl Group {
    /// Opens (creating if needed) the group's store at `db_dir`.
    pub fn open(db_dir: &Path, opts: GroupOptions, hlc: Arc<Hlc>) -> Result<Group, FsmError> {
        let store = Arc::new(GroupStore::open(db_dir, opts.store)?);
        Group::from_store(opts.group_id, store, hlc)
    }

    /// Wraps an already opened store (shared with the Raft log store).
    pub fn from_store(id: u64, store: Arc<GroupStore>, hlc: Arc<Hlc>) -> Result<Group, FsmError> {
        let group = Group {
            id,
            store,
            hlc,
            ownership: RwLock::new(OwnershipTable::everything()),
            owns_everything: AtomicBool::new(true),
        };
        group.reload_derived_state()?;
        Ok(group)
    }

    /// Re-reads what the group caches from its store (after open or a
    /// snapshot restore): ownership, and the clock's lower bounds.
    pub fn reload_derived_state(&self) -> Result<(), FsmError> {
        let table = match self.store.meta_get(OWNERSHIP_META_KEY)? {
            Some(bytes) => {
                OwnershipTable::decode(&bytes).map_err(|source| FsmError::Ownership {
                    group: self.id,
                    source,
                })?
            }
            None => OwnershipTable::everything(),
        };
        let mut ownership = self.ownership.write();
        self.owns_everything
            .store(table.owns_everything(), Ordering::Release);
        *ownership = table;
        drop(ownership);
        self.hlc.observe(self.store.last_commit_ts());
        if let Some(ceiling) = self.stored_hlc_ceiling()? {
            self.hlc.set_ceiling_ms(ceiling);
        }
        Ok(())
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn store(&self) -> &Arc<GroupStore> {
        &self.store
    }

    pub fn hlc(&self) -> &Arc<Hlc> {
        &self.hlc
    }

    pub fn applied_index(&self) -> u64 {
        self.store.applied_index()
    }

    pub fn last_commit_ts(&self) -> Timestamp {
        self.store.last_commit_ts()
    }

    pub fn ownership(&self) -> OwnershipTable {
        self.ownership.read().clone()
    }

    /// The highest HLC ceiling this group has applied.
    pub fn stored_hlc_ceiling(&self) -> Result<Option<u64>, FsmError> {
        match self.store.meta_get(HLC_CEILING_META_KEY)? {
            None => Ok(None),
            Some(bytes) => {
                let arr: [u8; 8] =
                    bytes
                        .as_slice()
                        .try_into()
                        .map_err(|_| FsmError::CorruptMeta {
                            group: self.id,
                            record: "hlc_ceiling",
                            detail: format!("expected 8 bytes, found {}", bytes.len()),
                        })?;
                Ok(Some(u64::from_be_bytes(arr)))
            }
        }
    }

    /// Applies one committed entry. `Ok(None)`: the entry was already
    /// applied (a replay after restart) and nothing changed. An `Err` must
    /// stop the group's apply loop: the entry is not applied.
    pub fn apply_entry(
        &self,
        index: u64,
        payload: &[u8],
    ) -> Result<Option<ApplyOutcome>, FsmError> {
        if index <= self.store.applied_index() {
            return Ok(None);
        }
        let command =
            Command::decode(payload).map_err(|source| FsmError::Undecodable { index, source })?;
        match command {
            Command::Raw {
                commit_ts,
                mutations,
            } => self.apply_write(
                index,
                0,
                commit_ts,
                false,
                vec![],
                vec![],
                mutations,
                Chain::default(),
            ),
            Command::Txn {
                start_ts,
                commit_ts,
                read_keys,
                read_ranges,
                mutations,
                chain,
            } => self.apply_write(
                index,
                start_ts,
                commit_ts,
                true,
                read_keys,
                read_ranges,
                mutations,
                chain,
            ),
            Command::HlcLease { ceiling_ms } => {
                let stored = self.stored_hlc_ceiling()?.unwrap_or(0);
                let ceiling = stored.max(ceiling_ms);
                self.hlc.set_ceiling_ms(ceiling);
                let intent = self.meta_only_intent(
                    index,
                    vec![Mutation::MetaPut {
                        key: HLC_CEILING_META_KEY.to_vec(),
                        value: ceiling.to_be_bytes().to_vec(),
                    }],
                );
                self.finish_meta(self.store.apply(&intent)?)
            }
            Command::Pin {
                id,
                ts,
                deadline_ms,
                remove,
            } => {
                let mutation = if remove {
                    Mutation::Unpin { id }
                } else {
                    Mutation::Pin {
                        id,
                        ts,
                        deadline_ms,
                    }
                };
                let intent = self.meta_only_intent(index, vec![mutation]);
                self.finish_meta(self.store.apply(&intent)?)
            }
        }
    }

    /// Re-applies the in-memory effect of an entry at or below the durable
    /// applied index (after a restart that skipped the snapshot body).
    pub fn apply_volatile(&self, payload: &[u8]) {
        if let Ok(Command::HlcLease { ceiling_ms }) = Command::decode(payload) {
            self.hlc.set_ceiling_ms(ceiling_ms);
        }
    }

    fn meta_only_intent(&self, index: u64, mutations: Vec<Mutation>) -> WriteIntent {
        let ts = self.store.last_commit_ts();
        WriteIntent {
            start_ts: ts,
            commit_ts: ts,
            validate: false,
            read_keys: vec![],
            read_ranges: vec![],
            mutations,
            applied_index: Some(index),
            chain: Chain::default(),
        }
    }

    fn finish_meta(&self, outcome: Outcome) -> Result<Option<ApplyOutcome>, FsmError> {
        match outcome {
            Outcome::AlreadyApplied => Ok(None),
            Outcome::Committed | Outcome::Conflict { .. } => Ok(Some(ApplyOutcome::Committed {
                commit_ts: self.store.last_commit_ts(),
            })),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_write(
        &self,
        index: u64,
        start_ts: Timestamp,
        proposed_commit_ts: Timestamp,
        validate: bool,
        read_keys: Vec<Vec<u8>>,
        read_ranges: Vec<(Vec<u8>, Option<Vec<u8>>)>,
        mutations: Vec<Mutation>,
        chain: Chain,
    ) -> Result<Option<ApplyOutcome>, FsmError> {
        let unowned = if self.owns_everything.load(Ordering::Acquire) {
            None
        } else {
            let table = self.ownership.read();
            mutations
                .iter()
                .find_map(|m| table.first_unowned(m).map(<[u8]>::to_vec))
        };
        if let Some(key) = unowned {
            // Refused writes still consume the entry: record the index only.
            let outcome = self.store.apply(&self.meta_only_intent(index, vec![]))?;
            return Ok(match outcome {
                Outcome::AlreadyApplied => None,
                _ => Some(ApplyOutcome::Refused {
                    reason: format!("key not owned by group {}", self.id),
                    key,
                }),
            });
        }
        let touches_ownership = mutations.iter().any(|m| {
            matches!(m, Mutation::MetaPut { key, .. } | Mutation::MetaDelete { key } if key == OWNERSHIP_META_KEY)
        });
        // Commit timestamps within a group only rise, whatever was proposed:
        // a late write is moved up, a strict one refused (by the store).
        let commit_ts = if chain.strict {
            proposed_commit_ts
        } else {
            proposed_commit_ts.max(self.store.last_commit_ts().saturating_add(1))
        };
        let intent = WriteIntent {
            start_ts,
            commit_ts,
            validate,
            read_keys,
            read_ranges,
            mutations,
            applied_index: Some(index),
            chain,
        };
        match self.store.apply(&intent)? {
            Outcome::AlreadyApplied => Ok(None),
            Outcome::Conflict { key } => Ok(Some(ApplyOutcome::Conflict { key })),
            Outcome::Committed => {
                self.hlc.observe(commit_ts);
                if touches_ownership {
                    self.reload_derived_state()?;
                }
                Ok(Some(ApplyOutcome::Committed { commit_ts }))
            }
        }
    }

    fn check_owned(&self, key: &[u8]) -> Result<(), FsmError> {
        if self.owns_everything.load(Ordering::Acquire) || self.ownership.read().owns(key) {
            Ok(())
        } else {
            Err(FsmError::NotOwned {
                group: self.id,
                key: key.to_vec(),
            })
        }
    }

    /// Point read at `read_ts`, refused for keys the group does not own.
    pub fn get(&self, key: &[u8], read_ts: Timestamp) -> Result<Option<PointValue>, FsmError> {
        self.check_owned(key)?;
        Ok(self.store.get(key, read_ts)?)
    }

    /// [`GroupStore::never_written`], refused for keys the group does not own.
    pub fn never_written(&self, key: &[u8]) -> Result<bool, FsmError> {
        self.check_owned(key)?;
        Ok(self.store.never_written(key)?)
    }

    /// Batched point reads (results in input order).
    pub fn multi_get(
        &self,
        keys: &[Vec<u8>],
        read_ts: Timestamp,
    ) -> Result<Vec<Option<PointValue>>, FsmError> {
        for key in keys {
            self.check_owned(key)?;
        }
        Ok(self.store.multi_get(keys, read_ts)?)
    }

    /// A page of a range scan; the whole range must be owned.
    pub fn scan(&self, req: &ScanRequest) -> Result<ScanPage, FsmError> {
        if !self
            .ownership
            .read()
            .owns_range(&req.start, req.end.as_deref())
        {
            return Err(FsmError::NotOwned {
                group: self.id,
                key: req.start.clone(),
            });
        }
        Ok(self.store.scan(req)?)
    }
}
