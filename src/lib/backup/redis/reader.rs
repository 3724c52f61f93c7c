//! `redis/db_<n>/` files → Redis records, one key at a time, from a tree
//! already verified by `TreeReader::open`.
//!
//! At start: only known entries may exist in the database directory;
//! KEYMAP must be truthful (every record a SHA-fallback name whose
//! original encodes back to it); TTL sidecar lines must be well formed,
//! unique, and name an existing `.bin` file. Then, per type directory in
//! [`RedisKind::ALL`] order and per file in name order: the name must be
//! the canonical encoding of its key (so two files never mean one key),
//! the key must not also exist under another type, and the body must
//! parse. Memory: one key's data plus the TTL and KEYMAP indexes.

use std::collections::HashMap;
use std::io::BufReader;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::files::{parse_collection, parse_stream, parse_ttl_line};
use super::record::{RedisKind, RedisRecord, RedisValue};
use super::{HLL_TTL_FILE, KEYMAP_FILE, MAX_VALUE_BYTES, RedisError, STRINGS_TTL_FILE, db_dir};
use crate::backup::filename::{FilenameError, decode_segment, encode_segment, is_sha_fallback};
use crate::backup::keymap::{KIND_SHA_FALLBACK, KeymapReader, MAX_LINE_BYTES, read_bounded_line};
use crate::backup::tree::{TreeEntry, TreeReader};

/// Iterates the records of one Redis database of a verified tree.
pub struct RedisTreeReader<'t> {
    tree: &'t TreeReader,
    db_dir: PathBuf,
    keymap: HashMap<String, Vec<u8>>,
    ttls: [HashMap<String, u64>; 2],
    kind_index: usize,
    files: Vec<TreeEntry>,
    file_index: usize,
    failed: bool,
}

fn invalid(path: &Path, line: Option<u64>, reason: impl Into<String>) -> RedisError {
    RedisError::InvalidFile {
        path: path.display().to_string(),
        line,
        reason: reason.into(),
    }
}

impl<'t> RedisTreeReader<'t> {
    /// Prepares to read database `db`.
    ///
    /// # Errors
    /// [`RedisError::NotInManifest`], unexpected entries, invalid KEYMAP
    /// or TTL sidecars.
    pub fn new(tree: &'t TreeReader, db: u32) -> Result<RedisTreeReader<'t>, RedisError> {
        if tree.manifest().adapters.redis.is_none() {
            return Err(RedisError::NotInManifest);
        }
        let dir = db_dir(db);
        let mut reader = RedisTreeReader {
            tree,
            db_dir: dir.clone(),
            keymap: HashMap::new(),
            ttls: [HashMap::new(), HashMap::new()],
            kind_index: 0,
            files: Vec::new(),
            file_index: 0,
            failed: false,
        };
        let Some(entries) = tree.list_dir(&dir)? else {
            reader.kind_index = RedisKind::ALL.len();
            return Ok(reader);
        };
        for entry in &entries {
            let name = entry.name.as_bytes();
            let known_dir = RedisKind::ALL.iter().any(|k| k.dir().as_bytes() == name);
            let known_file = [KEYMAP_FILE, STRINGS_TTL_FILE, HLL_TTL_FILE]
                .iter()
                .any(|f| f.as_bytes() == name);
            if (entry.is_dir && !known_dir) || (!entry.is_dir && !known_file) {
                return Err(RedisError::UnexpectedEntry {
                    path: dir.join(&entry.name).display().to_string(),
                });
            }
        }
        reader.load_keymap()?;
        for (slot, (name, kind)) in [
            (STRINGS_TTL_FILE, RedisKind::String),
            (HLL_TTL_FILE, RedisKind::Hll),
        ]
        .into_iter()
        .enumerate()
        {
            reader.ttls[slot] = reader.load_ttls(name, kind)?;
        }
        reader.load_kind()?;
        Ok(reader)
    }

    fn load_keymap(&mut self) -> Result<(), RedisError> {
        let path = self.db_dir.join(KEYMAP_FILE);
        let Some(file) = self.tree.open_file(&path)? else {
            return Ok(());
        };
        let mut records = KeymapReader::new(BufReader::new(file));
        let mut line = 0;
        while let Some(record) = records.next_record()? {
            line += 1;
            if record.kind != KIND_SHA_FALLBACK {
                return Err(invalid(
                    &path,
                    Some(line),
                    format!("kind {:?} has no meaning for Redis", record.kind),
                ));
            }
            if !is_sha_fallback(&record.encoded)
                || encode_segment(&record.original) != record.encoded
            {
                return Err(invalid(
                    &path,
                    Some(line),
                    "encoded name is not the SHA fallback of original",
                ));
            }
            self.keymap.insert(record.encoded, record.original);
        }
        Ok(())
    }

    fn load_ttls(&self, name: &str, kind: RedisKind) -> Result<HashMap<String, u64>, RedisError> {
        let path = self.db_dir.join(name);
        let mut map = HashMap::new();
        let Some(file) = self.tree.open_file(&path)? else {
            return Ok(map);
        };
        let mut input = BufReader::new(file);
        let mut buf = Vec::new();
        let mut line_no = 0u64;
        loop {
            line_no += 1;
            let consumed = read_bounded_line(&mut input, &mut buf, MAX_LINE_BYTES)
                .map_err(|source| RedisError::Io {
                    path: path.display().to_string(),
                    source,
                })?
                .ok_or_else(|| invalid(&path, Some(line_no), "line too long"))?;
            if consumed == 0 {
                break;
            }
            let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
            let ttl =
                parse_ttl_line(line, line_no).map_err(|f| invalid(&path, f.line, f.reason))?;
            let target =
                self.db_dir
                    .join(kind.dir())
                    .join(format!("{}{}", ttl.key, kind.extension()));
            if let Err(FilenameError::InvalidEncodedSegment { reason, .. }) =
                decode_segment(&ttl.key)
            {
                return Err(invalid(
                    &path,
                    Some(line_no),
                    format!("key {:?}: {reason}", ttl.key),
                ));
            }
            if self.tree.open_file(&target)?.is_none() {
                return Err(invalid(
                    &path,
                    Some(line_no),
                    format!("TTL for {:?}, which has no {} file", ttl.key, kind.dir()),
                ));
            }
            if map.insert(ttl.key.clone(), ttl.expire_at_ms).is_some() {
                return Err(invalid(
                    &path,
                    Some(line_no),
                    format!("second TTL for {:?}", ttl.key),
                ));
            }
        }
        Ok(map)
    }

    fn load_kind(&mut self) -> Result<(), RedisError> {
        while let Some(kind) = RedisKind::ALL.get(self.kind_index) {
            let dir = self.db_dir.join(kind.dir());
            match self.tree.list_dir(&dir)? {
                Some(files) if !files.is_empty() => {
                    self.files = files;
                    self.file_index = 0;
                    return Ok(());
                }
                _ => self.kind_index += 1,
            }
        }
        Ok(())
    }

    fn resolve_key(&self, path: &Path, stem: &str) -> Result<Vec<u8>, RedisError> {
        let key = match decode_segment(stem) {
            Ok(key) => key,
            Err(FilenameError::ShaFallbackNeedsKeymap { .. }) => self
                .keymap
                .get(stem)
                .cloned()
                .ok_or_else(|| RedisError::MissingKeymap {
                    path: path.display().to_string(),
                })?,
            Err(err) => return Err(invalid(path, None, err.to_string())),
        };
        if encode_segment(&key) != stem {
            return Err(invalid(
                path,
                None,
                "file name is not the canonical encoding of its key",
            ));
        }
        Ok(key)
    }

    fn read_one(&mut self, kind: RedisKind, entry: &TreeEntry) -> Result<RedisRecord, RedisError> {
        let path = self.db_dir.join(kind.dir()).join(&entry.name);
        let name = std::str::from_utf8(entry.name.as_bytes())
            .map_err(|_| invalid(&path, None, "file name is not UTF-8"))?;
        let stem = match name.strip_suffix(kind.extension()) {
            Some(stem) if !entry.is_dir => stem,
            _ => {
                return Err(RedisError::UnexpectedEntry {
                    path: path.display().to_string(),
                });
            }
        };
        let key = self.resolve_key(&path, stem)?;
        for other in RedisKind::ALL.into_iter().filter(|k| *k != kind) {
            let twin = self
                .db_dir
                .join(other.dir())
                .join(format!("{stem}{}", other.extension()));
            if self.tree.open_file(&twin)?.is_some() {
                return Err(RedisError::DuplicateKey {
                    path: twin.display().to_string(),
                });
            }
        }
        let bytes = self.tree.read_file(&path, MAX_VALUE_BYTES)?;
        let (value, expire_at_ms) = match kind {
            RedisKind::String => (RedisValue::String(bytes), self.ttls[0].get(stem).copied()),
            RedisKind::Hll => (RedisValue::Hll(bytes), self.ttls[1].get(stem).copied()),
            RedisKind::Stream => {
                parse_stream(&bytes).map_err(|f| invalid(&path, f.line, f.reason))?
            }
            collection => parse_collection(collection, &bytes)
                .map_err(|f| invalid(&path, f.line, f.reason))?,
        };
        let record = RedisRecord {
            key,
            expire_at_ms,
            value,
        };
        let canonical = record
            .canonical()
            .map_err(|reason| invalid(&path, None, reason))?;
        if canonical.value != record.value {
            return Err(invalid(
                &path,
                None,
                "members or fields not sorted by raw bytes",
            ));
        }
        Ok(record)
    }
}

impl Iterator for RedisTreeReader<'_> {
    type Item = Result<RedisRecord, RedisError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let kind = *RedisKind::ALL.get(self.kind_index)?;
        let entry = self.files.get(self.file_index)?.clone();
        let result = self.read_one(kind, &entry);
        self.file_index += 1;
        if self.file_index >= self.files.len() {
            self.kind_index += 1;
            self.files.clear();
            if let Err(err) = self.load_kind() {
                self.failed = true;
                return Some(result.and(Err(err)));
            }
        }
        if result.is_err() {
            self.failed = true;
        }
        Some(result)
    }
}
