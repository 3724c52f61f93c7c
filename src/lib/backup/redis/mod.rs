//! Redis ⇄ `redis/db_<n>/` (format §5.9): the logical record type, the
//! file formats, a streaming writer and a validating reader, tied together
//! as a [`ServiceMapping`].
//!
//! ```text
//! redis/db_<n>/
//!   KEYMAP.jsonl            only if some key took the SHA fallback
//!   strings/<enc(key)>.bin  raw value      strings_ttl.jsonl  {"key","expire_at_ms"}
//!   hll/<enc(key)>.bin      raw sketch     hll_ttl.jsonl
//!   hashes/ lists/ sets/ zsets/ <enc(key)>.json   {"format_version":1, ..., "expire_at_ms"}
//!   streams/<enc(key)>.jsonl  entry lines, then one {"_meta":true,...} line
//! ```

mod files;
mod reader;
mod record;
mod writer;

use std::path::PathBuf;

pub use files::{FILE_FORMAT_VERSION, ParseFailure, TtlLine};
pub use reader::RedisTreeReader;
pub use record::{RedisKind, RedisRecord, RedisValue, StreamEntry, StreamId};
pub use writer::RedisTreeWriter;

use super::BackupError;
use super::keymap::KeymapError;
use super::service::ServiceMapping;
use super::tree::{TreeError, TreeReader, TreeWriter};

/// Top-level directory and `MANIFEST.adapters` key.
pub const SERVICE_NAME: &str = "redis";
pub const KEYMAP_FILE: &str = "KEYMAP.jsonl";
pub const STRINGS_TTL_FILE: &str = "strings_ttl.jsonl";
pub const HLL_TTL_FILE: &str = "hll_ttl.jsonl";
/// Largest value file read (Redis's own limit for a string is 512 MiB;
/// collections of one key stay well under a few GiB in practice).
pub const MAX_VALUE_BYTES: u64 = 4 << 30;

/// `redis/db_<db>` relative to the tree root.
pub fn db_dir(db: u32) -> PathBuf {
    PathBuf::from(SERVICE_NAME).join(format!("db_{db}"))
}

/// A short, printable rendering of a key for error messages.
pub(crate) fn describe_key(key: &[u8]) -> String {
    let shown: String = String::from_utf8_lossy(&key[..key.len().min(64)]).into_owned();
    if key.len() > 64 {
        format!("{shown}… ({} bytes)", key.len())
    } else {
        shown
    }
}

/// Why Redis records could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("Redis key {key:?}: {reason}")]
    InvalidRecord { key: String, reason: String },
    #[error("{path}{}: {reason}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
    InvalidFile {
        path: String,
        line: Option<u64>,
        reason: String,
    },
    #[error("{path}: the same key is already in the tree (a key has one value)")]
    DuplicateKey { path: String },
    #[error("{path}: SHA-fallback name without a KEYMAP.jsonl record")]
    MissingKeymap { path: String },
    #[error("{path}: unexpected entry in a Redis database directory")]
    UnexpectedEntry { path: String },
    #[error("the tree's MANIFEST.adapters has no \"redis\" entry")]
    NotInManifest,
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error(transparent)]
    Keymap(#[from] KeymapError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// The Redis mapping of one database index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RedisMapping {
    pub db: u32,
}

/// Adapts the Redis reader to the layer's error type.
pub struct MappedReader<'t>(RedisTreeReader<'t>);

impl Iterator for MappedReader<'_> {
    type Item = Result<RedisRecord, BackupError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|r| r.map_err(BackupError::from))
    }
}

impl ServiceMapping for RedisMapping {
    type Record = RedisRecord;
    type Writer<'t> = RedisTreeWriter<'t>;
    type Reader<'t> = MappedReader<'t>;

    fn name(&self) -> &'static str {
        SERVICE_NAME
    }

    fn writer<'t>(&self, tree: &'t TreeWriter) -> Result<RedisTreeWriter<'t>, BackupError> {
        Ok(RedisTreeWriter::new(tree, self.db))
    }

    fn reader<'t>(&self, tree: &'t TreeReader) -> Result<MappedReader<'t>, BackupError> {
        Ok(MappedReader(RedisTreeReader::new(tree, self.db)?))
    }
}
