//! The one error type of the `.fsm` snapshot file layer. Every variant that
//! comes from reading names where in the file the problem was found, so an
//! operator holding a damaged file can tell a foreign file, a cut-off copy and
//! a flipped bit apart.

use std::path::PathBuf;

use super::format::{MAGIC, SUPPORTED_VERSION};

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The file does not start with our magic: it is not an elastickv `.fsm`
    /// snapshot at all (or its first bytes are destroyed).
    #[error(
        "not an elastickv snapshot file: it starts with \"{found}\" instead of the magic \"{}\"",
        MAGIC.escape_ascii()
    )]
    BadMagic { found: String },

    /// Our magic, but a format version this build cannot read.
    #[error(
        "unsupported snapshot format version {found} (this build reads version {SUPPORTED_VERSION})"
    )]
    UnsupportedVersion { found: u16 },

    /// The data ended before the structure did.
    #[error("snapshot truncated: data ends at offset {offset} while reading {what}")]
    Truncated { offset: u64, what: &'static str },

    /// The footer CRC-32C does not match the bytes before it.
    #[error(
        "snapshot checksum mismatch: footer records {expected:#010x}, contents hash to {actual:#010x}"
    )]
    ChecksumMismatch { expected: u32, actual: u32 },

    /// The header CRC-32C does not match the header bytes; nothing after the
    /// header was read.
    #[error(
        "snapshot header corrupt: header CRC records {expected:#010x}, header bytes hash to {actual:#010x}"
    )]
    HeaderCorrupt { expected: u32, actual: u32 },

    /// A length prefix (or a length the writer was asked to write) is larger
    /// than the hard cap for its field; checked before any allocation.
    #[error("snapshot {field} length {len} exceeds the cap of {cap} bytes (at offset {offset})")]
    CapExceeded {
        field: &'static str,
        len: u64,
        cap: u64,
        offset: u64,
    },

    /// The bytes are framed wrongly: unknown tag, sections out of order, keys
    /// not ascending, counts that disagree, bytes after the footer.
    #[error("malformed snapshot at offset {offset}: {what}")]
    Malformed { offset: u64, what: String },

    /// The writer was asked to write something the format cannot hold (a
    /// Raft column family, records out of key order, a use after failure).
    #[error("invalid snapshot write: {0}")]
    InvalidWrite(String),

    /// Opening, creating, renaming or syncing a named file failed.
    #[error("snapshot file {}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Reading or writing the byte stream failed.
    #[error("snapshot I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl SnapshotError {
    pub(crate) fn file(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SnapshotError::File {
            path: path.into(),
            source,
        }
    }
}
