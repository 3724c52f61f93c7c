//! The production Raft state machine: `fsm::Group` plus `.fsm` snapshot
//! files (ARCHITECTURE.md §5).
//!
//! Snapshot capture uses a RocksDB checkpoint (hard links of the live files,
//! consistent at the applied index because it is taken on the apply
//! thread); the job that streams it into a `.fsm` file runs elsewhere and
//! removes the checkpoint when done. Restores verify the whole file (CRC
//! footer) before the store is touched, stream records with bounded memory,
//! then pin the durable applied index to the snapshot's index.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::fsm::{ApplyOutcome, FsmError, Group};
use crate::raft::{ApplyHalt, SmError, SnapshotJob, StateMachine};
use crate::snapshot::{SnapshotHeader, SnapshotReader, SnapshotWriter, verify_file};
use crate::storage::{Cf, StorageError};

/// Called after every applied data entry with the entry's payload, so the
/// node can wake waiters (blocking commands, watchers) on any replica.
pub type ApplyObserver = Arc<dyn Fn(&[u8]) + Send + Sync>;

/// `fsm::Group` driven by the Raft layer.
pub struct GroupStateMachine {
    group: Arc<Group>,
    cluster_id: String,
    checkpoint_root: PathBuf,
    observer: Option<ApplyObserver>,
}

impl GroupStateMachine {
    /// `scratch_dir` holds transient checkpoints (same filesystem as the
    /// store, so they are hard links).
    pub fn new(group: Arc<Group>, cluster_id: String, scratch_dir: PathBuf) -> Self {
        Self {
            group,
            cluster_id,
            checkpoint_root: scratch_dir,
            observer: None,
        }
    }

    pub fn with_observer(mut self, observer: ApplyObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    pub fn group(&self) -> &Arc<Group> {
        &self.group
    }

    fn header(&self, index: u64, term: u64) -> Result<SnapshotHeader, SmError> {
        Ok(SnapshotHeader {
            cluster_id: self.cluster_id.clone(),
            group_id: self.group.id(),
            index,
            term,
            last_commit_ts: self.group.last_commit_ts(),
            hlc_ceiling_ms: self
                .group
                .stored_hlc_ceiling()
                .map_err(sm_err)?
                .unwrap_or(0),
            ownership: self.group.ownership().encode(),
            created_unix_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
        })
    }

    fn check_header(&self, header: &SnapshotHeader) -> Result<(), SmError> {
        if header.group_id != self.group.id() {
            return Err(SmError::new(format!(
                "snapshot belongs to group {}, not group {}",
                header.group_id,
                self.group.id()
            )));
        }
        if !self.cluster_id.is_empty()
            && !header.cluster_id.is_empty()
            && header.cluster_id != self.cluster_id
        {
            return Err(SmError::new(format!(
                "snapshot belongs to cluster {:?}, not {:?}",
                header.cluster_id, self.cluster_id
            )));
        }
        Ok(())
    }
}

fn sm_err(e: impl std::fmt::Display) -> SmError {
    SmError::new(e.to_string())
}

impl StateMachine for GroupStateMachine {
    fn apply(&mut self, index: u64, _term: u64, payload: &[u8]) -> Result<Vec<u8>, ApplyHalt> {
        match self.group.apply_entry(index, payload) {
            Ok(Some(outcome)) => {
                if let Some(observer) = &self.observer {
                    observer(payload);
                }
                Ok(outcome.encode())
            }
            // Already applied before a restart: answer like the original.
            Ok(None) => Ok(ApplyOutcome::Committed {
                commit_ts: self.group.last_commit_ts(),
            }
            .encode()),
            Err(err @ FsmError::Undecodable { .. }) => Err(ApplyHalt {
                index,
                message: err.to_string(),
            }),
            Err(err) => Err(ApplyHalt {
                index,
                message: format!("storage failure while applying: {err}"),
            }),
        }
    }

    fn apply_volatile(&mut self, _index: u64, payload: &[u8]) {
        self.group.apply_volatile(payload);
    }

    fn applied_index(&self) -> u64 {
        self.group.applied_index()
    }

    fn durable_applied_index(&self) -> Result<Option<u64>, SmError> {
        self.group
            .store()
            .read_durable_applied_index()
            .map_err(sm_err)
    }

    fn raise_applied_index(&mut self, index: u64) -> Result<(), SmError> {
        self.group
            .store()
            .raise_applied_index(index)
            .map_err(sm_err)
    }

    fn begin_snapshot(&self, index: u64, term: u64) -> Result<Box<dyn SnapshotJob>, SmError> {
        let header = self.header(index, term)?;
        std::fs::create_dir_all(&self.checkpoint_root)?;
        let dir = self
            .checkpoint_root
            .join(format!("checkpoint-{index:016x}-{term:016x}"));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        let checkpoint =
            rocksdb::checkpoint::Checkpoint::new(self.group.store().db()).map_err(sm_err)?;
        checkpoint.create_checkpoint(&dir).map_err(sm_err)?;
        Ok(Box::new(CheckpointJob { dir, header }))
    }

    fn verify_and_apply_header(&mut self, path: &Path) -> Result<(), SmError> {
        let summary = verify_file(path).map_err(sm_err)?;
        self.check_header(&summary.header)?;
        let hlc = self.group.hlc();
        hlc.set_ceiling_ms(summary.header.hlc_ceiling_ms);
        hlc.observe(summary.header.last_commit_ts);
        Ok(())
    }

    fn restore_snapshot(&mut self, path: &Path) -> Result<(), SmError> {
        // A full pass first: nothing is touched unless the file is intact.
        let summary = verify_file(path).map_err(sm_err)?;
        self.check_header(&summary.header)?;
        let mut reader = SnapshotReader::open(path).map_err(sm_err)?;
        let records = std::iter::from_fn(|| match reader.next_record() {
            Ok(Some(r)) => Some(Ok((r.cf, r.key, r.value))),
            Ok(None) => None,
            Err(e) => Some(Err(StorageError::InvalidArgument(format!(
                "snapshot file: {e}"
            )))),
        });
        self.group.store().restore_from(records).map_err(sm_err)?;
        self.group
            .store()
            .raise_applied_index(summary.header.index)
            .map_err(sm_err)?;
        self.group.reload_derived_state().map_err(sm_err)?;
        self.group
            .hlc()
            .set_ceiling_ms(summary.header.hlc_ceiling_ms);
        self.group.hlc().observe(summary.header.last_commit_ts);
        Ok(())
    }
}

/// Streams a checkpoint's state-machine column families into a `.fsm` file.
struct CheckpointJob {
    dir: PathBuf,
    header: SnapshotHeader,
}

impl CheckpointJob {
    fn write(&self, path: &Path) -> Result<u64, SmError> {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(false);
        let names = rocksdb::DB::list_cf(&opts, &self.dir).map_err(sm_err)?;
        let db =
            rocksdb::DB::open_cf_for_read_only(&opts, &self.dir, names, false).map_err(sm_err)?;
        let file = std::fs::File::create(path)?;
        let out = std::io::BufWriter::with_capacity(1 << 20, file);
        let mut writer = SnapshotWriter::new(out, &self.header).map_err(sm_err)?;
        for cf in Cf::STATE_MACHINE {
            let handle = db.cf_handle(cf.name()).ok_or_else(|| {
                SmError::new(format!("checkpoint lacks column family {}", cf.name()))
            })?;
            let mut it = db.raw_iterator_cf(handle);
            it.seek_to_first();
            while let (Some(k), Some(v)) = (it.key(), it.value()) {
                writer.write_record(cf, k, v).map_err(sm_err)?;
                it.next();
            }
            it.status().map_err(sm_err)?;
        }
        let (out, summary) = writer.finish().map_err(sm_err)?;
        let file = out
            .into_inner()
            .map_err(|e| SmError::new(format!("flush snapshot: {}", e.error())))?;
        file.sync_all()?;
        Ok(summary.total_len)
    }
}

impl SnapshotJob for CheckpointJob {
    fn write_to(self: Box<Self>, path: &Path) -> Result<u64, SmError> {
        let result = self.write(path);
        // The checkpoint is transient whatever happened.
        let _ = std::fs::remove_dir_all(&self.dir);
        result
    }
}
