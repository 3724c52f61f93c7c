//! The `.fsm` snapshot file: a consistent point-in-time copy of one group's
//! state-machine column families (data, lock, meta) with a header saying
//! what it is a copy of. One format serves the file a node keeps under
//! `groups/<gid>/snap/`, the file streamed to a lagging follower, and the file
//! `snapshot-decode` reads offline (ARCHITECTURE.md §5,
//! `docs/snapshot-format.md`).
//!
//! Invariants kept here:
//! - writing and reading stream with bounded memory; no length read from a
//!   file is trusted before it is checked against its cap;
//! - a reader reports end-of-records only after the whole-file CRC-32C,
//!   length and counts verified, so an install commits nothing unverified;
//! - a file at its final path is always complete (temp + fsync + rename).

mod atomic;
mod error;
mod format;
mod reader;
mod writer;

pub use atomic::{AtomicSnapshotWriter, clean_stale_temps};
pub use error::SnapshotError;
pub use format::{
    CLUSTER_ID_CAP, END_TAG, FOOTER_LEN, HEADER_CAP, KEY_CAP, MAGIC, PREAMBLE_LEN, RecordCounts,
    SECTION_TAG, SECTIONS, SUPPORTED_VERSION, SnapshotHeader, SnapshotRecord, SnapshotSummary,
    TEMP_SUFFIX, VALUE_CAP, file_name,
};
pub use reader::{SnapshotReader, read_header, verify_file};
pub use writer::SnapshotWriter;
