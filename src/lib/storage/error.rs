//! The storage layer's error type. Every failure names what went wrong and,
//! for bad bytes found in the database, the column family and the key (hex)
//! where they were found, so an operator can locate the damage.

use crate::clock::Timestamp;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("rocksdb error during {op}: {source}")]
    Rocks {
        op: &'static str,
        #[source]
        source: rocksdb::Error,
    },
    /// Undecodable bytes in the database.
    #[error("corrupt record in column family `{cf}` at key {key}: {reason}")]
    Corrupt {
        cf: &'static str,
        key: String,
        reason: String,
    },
    /// The durable applied-index record exists but does not verify; callers
    /// must fall back to a full restore instead of trusting it.
    #[error("corrupt applied index record: {reason}")]
    CorruptAppliedIndex { reason: String },
    #[error("read timestamp {read_ts} has been compacted (retention watermark {watermark})")]
    ReadTimestampCompacted {
        read_ts: Timestamp,
        watermark: Timestamp,
    },
    #[error("column family `{0}` is missing from the database")]
    MissingColumnFamily(&'static str),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl StorageError {
    pub(crate) fn rocks(op: &'static str) -> impl FnOnce(rocksdb::Error) -> StorageError {
        move |source| StorageError::Rocks { op, source }
    }

    pub(crate) fn corrupt(cf: &'static str, key: &[u8], reason: impl Into<String>) -> StorageError {
        StorageError::Corrupt {
            cf,
            key: hex::encode(key),
            reason: reason.into(),
        }
    }
}
