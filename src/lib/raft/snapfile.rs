//! Snapshot files of a group on disk and the token that names one inside a
//! raft-rs `Snapshot.data`.
//!
//! Files: `<group_dir>/snap/<index:016x>-<term:016x>.fsm`, written by the
//! state machine to `<name>.tmp`, fsynced, renamed, directory fsynced.
//! Receiver spools: `<group_dir>/snap/spool/<index:016x>-<term:016x>.spool`.
//!
//! Token (`Snapshot.data`):
//! `"EKVS" ‖ 0x01 ‖ u64be(index) ‖ u64be(term) ‖ u64be(file length) ‖
//! u32be(CRC-32C of the file) ‖ address book bytes`. A receiver accepts a
//! streamed file only if its length and CRC match the token.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::raft::error::RaftError;
use crate::raft::peers::AddressBook;

const MAGIC: &[u8; 4] = b"EKVS";
const VERSION: u8 = 1;
const FIXED: usize = 4 + 1 + 8 + 8 + 8 + 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotToken {
    pub index: u64,
    pub term: u64,
    pub len: u64,
    pub crc: u32,
    pub peers: AddressBook,
}

impl SnapshotToken {
    pub fn encode(&self) -> Vec<u8> {
        let peers = self.peers.encode();
        let mut out = Vec::with_capacity(FIXED + peers.len());
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.index.to_be_bytes());
        out.extend_from_slice(&self.term.to_be_bytes());
        out.extend_from_slice(&self.len.to_be_bytes());
        out.extend_from_slice(&self.crc.to_be_bytes());
        out.extend_from_slice(&peers);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<SnapshotToken, RaftError> {
        if bytes.len() < FIXED || &bytes[..4] != MAGIC {
            return Err(RaftError::Invalid(format!(
                "not a snapshot token ({} bytes)",
                bytes.len()
            )));
        }
        if bytes[4] != VERSION {
            return Err(RaftError::Invalid(format!(
                "snapshot token version {} is not supported (expected {VERSION})",
                bytes[4]
            )));
        }
        let u64_at = |at: usize| u64::from_be_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
        let peers = if bytes.len() > FIXED {
            AddressBook::decode(&bytes[FIXED..])?
        } else {
            AddressBook::default()
        };
        Ok(SnapshotToken {
            index: u64_at(5),
            term: u64_at(13),
            len: u64_at(21),
            crc: u32::from_be_bytes(bytes[29..33].try_into().unwrap_or([0; 4])),
            peers,
        })
    }
}

pub fn snap_dir(group_dir: &Path) -> PathBuf {
    group_dir.join("snap")
}

pub fn spool_dir(group_dir: &Path) -> PathBuf {
    snap_dir(group_dir).join("spool")
}

pub fn file_name(index: u64, term: u64) -> String {
    format!("{index:016x}-{term:016x}.fsm")
}

pub fn snapshot_path(group_dir: &Path, index: u64, term: u64) -> PathBuf {
    snap_dir(group_dir).join(file_name(index, term))
}

pub fn spool_path(group_dir: &Path, index: u64, term: u64) -> PathBuf {
    spool_dir(group_dir).join(format!("{index:016x}-{term:016x}.spool"))
}

/// Parses `<index:016x>-<term:016x>.fsm`.
pub fn parse_file_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(".fsm")?;
    let (i, t) = stem.split_once('-')?;
    if i.len() != 16 || t.len() != 16 {
        return None;
    }
    Some((
        u64::from_str_radix(i, 16).ok()?,
        u64::from_str_radix(t, 16).ok()?,
    ))
}

/// Length and CRC-32C of a file.
pub fn checksum_file(path: &Path) -> Result<(u64, u32), RaftError> {
    let mut f = File::open(path)
        .map_err(|e| RaftError::Storage(format!("open {}: {e}", path.display())))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut crc = 0u32;
    let mut len = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| RaftError::Storage(format!("read {}: {e}", path.display())))?;
        if n == 0 {
            break;
        }
        crc = crc32c::crc32c_append(crc, &buf[..n]);
        len += n as u64;
    }
    Ok((len, crc))
}

pub fn fsync_dir(dir: &Path) -> Result<(), RaftError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| RaftError::Storage(format!("fsync {}: {e}", dir.display())))
}

/// Deletes every `.fsm` file other than those whose index is in `keep`,
/// plus leftover `.tmp` files.
pub fn purge(group_dir: &Path, keep: &[u64]) -> Result<(), RaftError> {
    let dir = snap_dir(group_dir);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(RaftError::Storage(format!("list {}: {e}", dir.display()))),
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let stale = match parse_file_name(&name) {
            Some((index, _)) => !keep.contains(&index),
            None => name.ends_with(".fsm.tmp"),
        };
        if stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn token_round_trip(index: u64, term: u64, len: u64, crc: u32,
                            peers in proptest::collection::btree_map(any::<u64>(), "[a-z0-9:.]{1,20}", 0..4)) {
            let t = SnapshotToken { index, term, len, crc, peers: AddressBook { peers } };
            prop_assert_eq!(SnapshotToken::decode(&t.encode()).unwrap(), t);
        }

        #[test]
        fn file_name_round_trip(index: u64, term: u64) {
            prop_assert_eq!(parse_file_name(&file_name(index, term)), Some((index, term)));
        }

        #[test]
        fn token_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = SnapshotToken::decode(&bytes);
        }
    }

    #[test]
    fn rejects_other_names_and_versions() {
        assert_eq!(parse_file_name("foo.fsm"), None);
        assert_eq!(
            parse_file_name("0000000000000001-0000000000000002.fsm.tmp"),
            None
        );
        let mut bytes = SnapshotToken {
            index: 1,
            term: 1,
            len: 0,
            crc: 0,
            peers: AddressBook::default(),
        }
        .encode();
        bytes[4] = 9;
        assert!(SnapshotToken::decode(&bytes).is_err());
    }
}
