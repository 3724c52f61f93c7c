//! Redis records → `redis/db_<n>/` files, one record at a time.
//!
//! Strings and HLLs become raw `.bin` files with their expiry in
//! `strings_ttl.jsonl` / `hll_ttl.jsonl`; collections become one JSON (or,
//! for streams, JSONL) file each with `expire_at_ms` inside. Names go
//! through `encode_segment`; a SHA-fallback name gets a KEYMAP record.
//!
//! Sidecar line order: TTL lines in the order records arrive; KEYMAP lines
//! grouped by type in the order the Go decoder produces them (hll, strings,
//! hashes, lists, sets, zsets, streams), each group in arrival order —
//! so a producer that pushes keys in ascending order per type gets the
//! bytes the Go tools would write. Each group is spooled in an unnamed
//! temporary file, so memory stays bounded by one record.
//!
//! A key may appear once: writing it again, under any type, is refused.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use super::files::{render_value, ttl_line};
use super::record::{RedisKind, RedisRecord, RedisValue};
use super::{KEYMAP_FILE, RedisError, SERVICE_NAME, db_dir, describe_key};
use crate::backup::filename::{encode_segment, is_sha_fallback};
use crate::backup::keymap::{KIND_SHA_FALLBACK, KeymapRecord, record_line};
use crate::backup::service::{ServiceSummary, ServiceWriter};
use crate::backup::tree::{TreeError, TreeFile, TreeWriter};

/// KEYMAP group order of the Go decoder (scan order of its key prefixes).
const KEYMAP_ORDER: [RedisKind; 7] = [
    RedisKind::Hll,
    RedisKind::String,
    RedisKind::Hash,
    RedisKind::List,
    RedisKind::Set,
    RedisKind::ZSet,
    RedisKind::Stream,
];

/// Writes one Redis database's records into a tree.
pub struct RedisTreeWriter<'t> {
    tree: &'t TreeWriter,
    db: u32,
    strings_ttl: Option<TreeFile<'t>>,
    hll_ttl: Option<TreeFile<'t>>,
    keymap_spool: [Option<File>; 7],
    summary: ServiceSummary,
    finished: bool,
    /// Stems written so far, as a Bloom filter: a key is looked for under
    /// the other types' directories only when the filter says it may have
    /// been written (a handful of `lstat`s per record otherwise).
    seen: StemFilter,
}

/// A fixed 1 MiB Bloom filter over file-name stems (4 probes): about 2 %
/// false positives at a million keys, which only cost a few extra `lstat`s.
struct StemFilter {
    bits: Vec<u64>,
}

impl StemFilter {
    const BITS: u64 = 1 << 23;

    fn new() -> StemFilter {
        StemFilter {
            bits: vec![0; (Self::BITS / 64) as usize],
        }
    }

    fn probes(stem: &str) -> [u64; 4] {
        use std::hash::{BuildHasher, Hasher};
        // Fixed keys: the filter must behave the same on every run.
        let mut first =
            std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
                .build_hasher();
        first.write(stem.as_bytes());
        let a = first.finish();
        let b = a.rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15;
        std::array::from_fn(|i| a.wrapping_add((i as u64).wrapping_mul(b)) % Self::BITS)
    }

    /// Records `stem`; true when it may have been recorded before.
    fn insert(&mut self, stem: &str) -> bool {
        let mut present = true;
        for bit in Self::probes(stem) {
            let (word, mask) = ((bit / 64) as usize, 1u64 << (bit % 64));
            present &= self.bits[word] & mask != 0;
            self.bits[word] |= mask;
        }
        present
    }
}

impl<'t> RedisTreeWriter<'t> {
    /// Starts writing database `db` (`redis/db_<db>/`).
    pub fn new(tree: &'t TreeWriter, db: u32) -> RedisTreeWriter<'t> {
        tree.begin_service(SERVICE_NAME);
        RedisTreeWriter {
            tree,
            db,
            strings_ttl: None,
            hll_ttl: None,
            keymap_spool: Default::default(),
            summary: ServiceSummary::default(),
            finished: false,
            seen: StemFilter::new(),
        }
    }

    fn rel(&self, parts: &[&str]) -> PathBuf {
        let mut path = db_dir(self.db);
        path.extend(parts);
        path
    }

    fn io(&self, err: std::io::Error) -> RedisError {
        RedisError::Io {
            path: db_dir(self.db).display().to_string(),
            source: err,
        }
    }

    fn append_ttl(&mut self, kind: RedisKind, stem: &str, ms: u64) -> Result<(), RedisError> {
        let name = if kind == RedisKind::Hll {
            super::HLL_TTL_FILE
        } else {
            super::STRINGS_TTL_FILE
        };
        let rel = self.rel(&[name]);
        let slot = if kind == RedisKind::Hll {
            &mut self.hll_ttl
        } else {
            &mut self.strings_ttl
        };
        if slot.is_none() {
            *slot = Some(self.tree.create_file(&rel)?);
            self.summary.files += 1;
        }
        let line = ttl_line(stem, ms).map_err(|reason| RedisError::InvalidRecord {
            key: stem.to_owned(),
            reason,
        })?;
        if let Some(file) = slot.as_mut() {
            file.write_all(&line)?;
        }
        Ok(())
    }

    fn spool_keymap(&mut self, kind: RedisKind, stem: &str, key: &[u8]) -> Result<(), RedisError> {
        let line = record_line(&KeymapRecord {
            encoded: stem.to_owned(),
            original: key.to_vec(),
            kind: KIND_SHA_FALLBACK.to_owned(),
        })?;
        let index = kind as usize;
        if self.keymap_spool[index].is_none() {
            let dir = self.tree.ensure_dir(&db_dir(self.db))?;
            self.keymap_spool[index] = Some(tempfile::tempfile_in(dir).map_err(|e| self.io(e))?);
        }
        if let Some(spool) = self.keymap_spool[index].as_mut() {
            spool.write_all(&line).map_err(|err| RedisError::Io {
                path: KEYMAP_FILE.into(),
                source: err,
            })?;
        }
        Ok(())
    }

    /// Writes one record.
    ///
    /// # Errors
    /// [`RedisError::InvalidRecord`] for values Redis cannot hold,
    /// [`RedisError::DuplicateKey`] for a key already written, tree errors.
    pub fn write(&mut self, record: &RedisRecord) -> Result<(), RedisError> {
        if self.finished {
            return Err(RedisError::InvalidRecord {
                key: describe_key(&record.key),
                reason: "writer already finished".into(),
            });
        }
        let record = record
            .canonical()
            .map_err(|reason| RedisError::InvalidRecord {
                key: describe_key(&record.key),
                reason: reason.into(),
            })?;
        let kind = record.value.kind();
        let stem = encode_segment(&record.key);
        // A key of the same type is refused by the exclusive create below;
        // one of another type only if the filter allows that it exists.
        if self.seen.insert(&stem) {
            for other in RedisKind::ALL.into_iter().filter(|other| *other != kind) {
                let rel = self.rel(&[other.dir(), &format!("{stem}{}", other.extension())]);
                if self.tree.exists(&rel)? {
                    return Err(RedisError::DuplicateKey {
                        path: rel.display().to_string(),
                    });
                }
            }
        }
        let rel = self.rel(&[kind.dir(), &format!("{stem}{}", kind.extension())]);
        let duplicate = |err: TreeError| match err {
            TreeError::AlreadyExists { path } => RedisError::DuplicateKey {
                path: path.display().to_string(),
            },
            other => other.into(),
        };
        match &record.value {
            RedisValue::String(bytes) | RedisValue::Hll(bytes) => {
                self.tree.write_file(&rel, bytes).map_err(duplicate)?;
                if let Some(ms) = record.expire_at_ms {
                    self.append_ttl(kind, &stem, ms)?;
                }
            }
            value => {
                let body = render_value(value, record.expire_at_ms).map_err(|reason| {
                    RedisError::InvalidRecord {
                        key: describe_key(&record.key),
                        reason,
                    }
                })?;
                self.tree.write_file(&rel, &body).map_err(duplicate)?;
            }
        }
        if is_sha_fallback(&stem) {
            self.spool_keymap(kind, &stem, &record.key)?;
        }
        self.summary.records += 1;
        self.summary.files += 1;
        Ok(())
    }

    /// Commits the TTL sidecars and KEYMAP; releases the tree.
    ///
    /// # Errors
    /// I/O and tree errors.
    pub fn close(mut self) -> Result<ServiceSummary, RedisError> {
        self.finished = true;
        for file in [self.strings_ttl.take(), self.hll_ttl.take()]
            .into_iter()
            .flatten()
        {
            file.commit()?;
        }
        let mut keymap: Option<TreeFile> = None;
        for kind in KEYMAP_ORDER {
            let Some(mut spool) = self.keymap_spool[kind as usize].take() else {
                continue;
            };
            if keymap.is_none() {
                keymap = Some(self.tree.create_file(&self.rel(&[KEYMAP_FILE]))?);
                self.summary.files += 1;
            }
            spool.seek(SeekFrom::Start(0)).map_err(|e| self.io(e))?;
            let mut buf = vec![0u8; 64 << 10];
            loop {
                let n = spool.read(&mut buf).map_err(|e| self.io(e))?;
                if n == 0 {
                    break;
                }
                if let Some(out) = keymap.as_mut() {
                    out.write_all(&buf[..n])?;
                }
            }
        }
        if let Some(file) = keymap {
            file.commit()?;
        }
        self.tree.end_service();
        Ok(self.summary)
    }
}

impl ServiceWriter for RedisTreeWriter<'_> {
    type Record = RedisRecord;

    fn write_record(&mut self, record: &RedisRecord) -> Result<(), crate::backup::BackupError> {
        Ok(self.write(record)?)
    }

    fn finish(self) -> Result<ServiceSummary, crate::backup::BackupError> {
        Ok(self.close()?)
    }
}
