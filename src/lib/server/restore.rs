//! `serve --restore-from FILE`: a new cluster whose first state is the
//! contents of a `.fsm` snapshot (from `snapshot-encode`, or `snapshot
//! create` of another cluster) instead of the empty state.
//!
//! Order, so that a refusal touches nothing: the data dir must be absent or
//! empty; the whole file is verified (header CRC, structure, footer
//! CRC-32C) and its header must be for this node's group; only then is the
//! data dir created. The file's data, lock and meta records are installed
//! into the group's store before the Raft group starts, then the normal
//! new-cluster bootstrap writes its index-1 snapshot from that state, so
//! followers and later joiners receive it like any snapshot.
//!
//! Invariants: the cluster id and the ownership table come from the file's
//! header; the store's last commit timestamp is the header's, so the clock
//! of the new cluster starts above every restored version; the file's own
//! applied index (from another cluster's log) is never installed. A crash
//! during the install leaves the store's restore marker; the node then
//! refuses to start until the data dir is removed (see `check_restore_complete`).

use std::path::{Path, PathBuf};

use crate::fsm::ownership::OWNERSHIP_META_KEY;
use crate::fsm::{FsmError, Group, OwnershipTable};
use crate::snapshot::{SnapshotError, SnapshotHeader, SnapshotReader, verify_file};
use crate::storage::meta::{
    APPLIED_INDEX_KEY, LAST_COMMIT_TS_KEY, RESTORE_MARKER_KEY, state_machine_key,
};
use crate::storage::{Cf, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(
        "data dir {path:?} is not empty: a restore starts a new cluster in an absent or empty data dir (move the old one aside first)"
    )]
    DataDirNotEmpty { path: PathBuf },
    #[error(
        "data dir {path:?} holds an interrupted --restore-from (the store's restore marker is set): remove the data dir and run the restore again"
    )]
    Interrupted { path: PathBuf },
    #[error("{path:?}: {source}")]
    Snapshot {
        path: PathBuf,
        #[source]
        source: SnapshotError,
    },
    #[error("{path:?}: {reason}")]
    Foreign { path: PathBuf, reason: String },
    #[error("{path:?}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("installing the snapshot: {0}")]
    Storage(#[from] StorageError),
    #[error("installing the snapshot: {0}")]
    Fsm(#[from] FsmError),
}

/// The classes of [`RestoreError`] the command line maps to exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreErrorKind {
    DataDirNotEmpty,
    CorruptInput,
    Io,
    Failure,
}

impl RestoreError {
    pub fn kind(&self) -> RestoreErrorKind {
        match self {
            RestoreError::DataDirNotEmpty { .. } | RestoreError::Interrupted { .. } => {
                RestoreErrorKind::DataDirNotEmpty
            }
            RestoreError::Snapshot {
                source: SnapshotError::Io(_) | SnapshotError::File { .. },
                ..
            }
            | RestoreError::Io { .. } => RestoreErrorKind::Io,
            RestoreError::Snapshot { .. } | RestoreError::Foreign { .. } => {
                RestoreErrorKind::CorruptInput
            }
            RestoreError::Storage(_) | RestoreError::Fsm(_) => RestoreErrorKind::Failure,
        }
    }
}

/// Refuses a data dir that exists and is not an empty directory; reads
/// only.
///
/// # Errors
/// [`RestoreError::DataDirNotEmpty`]; I/O errors listing it.
pub fn check_fresh_data_dir(data_dir: &Path) -> Result<(), RestoreError> {
    let io = |source| RestoreError::Io {
        path: data_dir.to_path_buf(),
        source,
    };
    match std::fs::symlink_metadata(data_dir) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(io(err)),
        Ok(meta) if meta.is_dir() => {
            if std::fs::read_dir(data_dir).map_err(io)?.next().is_none() {
                Ok(())
            } else {
                Err(RestoreError::DataDirNotEmpty {
                    path: data_dir.to_path_buf(),
                })
            }
        }
        Ok(_) => Err(RestoreError::DataDirNotEmpty {
            path: data_dir.to_path_buf(),
        }),
    }
}

/// Reads the whole file at `path` (every structure and the footer
/// CRC-32C) and checks that its header is for `group_id` and carries a
/// valid ownership table. Returns the header.
///
/// # Errors
/// [`RestoreError::Snapshot`] for a damaged, truncated or foreign file,
/// [`RestoreError::Foreign`] for another group or a bad ownership table.
pub fn verify_seed(path: &Path, group_id: u64) -> Result<SnapshotHeader, RestoreError> {
    let summary = verify_file(path).map_err(|source| RestoreError::Snapshot {
        path: path.to_path_buf(),
        source,
    })?;
    let header = summary.header;
    if header.group_id != group_id {
        return Err(RestoreError::Foreign {
            path: path.to_path_buf(),
            reason: format!(
                "the snapshot is of group {}, this node starts group {group_id}",
                header.group_id
            ),
        });
    }
    if !header.ownership.is_empty() {
        OwnershipTable::decode(&header.ownership).map_err(|e| RestoreError::Foreign {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    }
    Ok(header)
}

/// Replaces the state of `group` (a new, empty store) with the verified
/// snapshot at `path` whose header is `header`.
///
/// # Errors
/// The file changed since it was verified, or the store failed.
pub fn install_seed(
    group: &Group,
    path: &Path,
    header: &SnapshotHeader,
) -> Result<(), RestoreError> {
    let snapshot_err = |source| RestoreError::Snapshot {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = SnapshotReader::open(path).map_err(snapshot_err)?;
    let ownership_key = state_machine_key(OWNERSHIP_META_KEY);
    let ownership = if header.ownership.is_empty() {
        OwnershipTable::everything().encode()
    } else {
        header.ownership.clone()
    };
    // The header decides ownership and the last commit ts; the applied
    // index belongs to the source cluster's log and is not installed.
    let replaced = |cf: Cf, key: &[u8]| {
        cf == Cf::Meta
            && (key == APPLIED_INDEX_KEY
                || key == RESTORE_MARKER_KEY
                || key == LAST_COMMIT_TS_KEY
                || key == ownership_key.as_slice())
    };
    let from_file = std::iter::from_fn(|| match reader.next_record() {
        Ok(Some(r)) => Some(Ok((r.cf, r.key, r.value))),
        Ok(None) => None,
        Err(e) => Some(Err(StorageError::InvalidArgument(format!(
            "snapshot file {}: {e}",
            path.display()
        )))),
    })
    .filter(|record| !matches!(record, Ok((cf, key, _)) if replaced(*cf, key)));
    let from_header = [
        Ok((
            Cf::Meta,
            LAST_COMMIT_TS_KEY.to_vec(),
            header.last_commit_ts.to_be_bytes().to_vec(),
        )),
        Ok((Cf::Meta, ownership_key.clone(), ownership)),
    ];
    group.store().restore_from(from_file.chain(from_header))?;
    group.reload_derived_state()?;
    group.hlc().set_ceiling_ms(header.hlc_ceiling_ms);
    group.hlc().observe(header.last_commit_ts);
    Ok(())
}

/// Refuses a store left by an interrupted restore on a node that never
/// finished its first start (no identity file yet): its contents are a
/// partial image that must not become a cluster's first state.
///
/// # Errors
/// [`RestoreError::Interrupted`].
pub fn check_restore_complete(group: &Group, data_dir: &Path) -> Result<(), RestoreError> {
    if group.store().restore_incomplete() {
        return Err(RestoreError::Interrupted {
            path: data_dir.to_path_buf(),
        });
    }
    Ok(())
}
