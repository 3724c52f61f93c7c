//! The seam between the tree and each service's data: a [`ServiceMapping`]
//! turns a service's logical records into files under its top-level
//! directory (`redis/`, later `dynamodb/`, `s3/`, `sqs/`) and back.
//!
//! Contract every mapping keeps: the writer takes one record at a time and
//! holds at most one record's data plus small per-key indexes; `finish`
//! closes its sidecars and must be called before [`TreeWriter::finish`]
//! (which refuses to publish otherwise); the reader only runs on a
//! [`TreeReader`] (so on a verified tree), yields one record at a time, and
//! reports every malformed file with its path (and line, for JSONL).

use super::error::BackupError;
use super::tree::{TreeReader, TreeWriter};

/// What a finished service writer wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServiceSummary {
    pub records: u64,
    pub files: u64,
}

/// Writes one service's records into a tree being built.
pub trait ServiceWriter {
    type Record;

    /// Writes one record.
    ///
    /// # Errors
    /// An invalid record, a key written twice, or an I/O failure.
    fn write_record(&mut self, record: &Self::Record) -> Result<(), BackupError>;

    /// Closes sidecars (TTL, KEYMAP) and releases the tree.
    ///
    /// # Errors
    /// I/O failures.
    fn finish(self) -> Result<ServiceSummary, BackupError>;
}

/// A service's mapping to and from the tree.
pub trait ServiceMapping {
    type Record;
    type Writer<'t>: ServiceWriter<Record = Self::Record>;
    type Reader<'t>: Iterator<Item = Result<Self::Record, BackupError>>;

    /// The top-level directory and `MANIFEST.adapters` key (`"redis"`).
    fn name(&self) -> &'static str;

    /// Starts writing records into `tree`.
    ///
    /// # Errors
    /// I/O failures preparing the service's directory.
    fn writer<'t>(&self, tree: &'t TreeWriter) -> Result<Self::Writer<'t>, BackupError>;

    /// Starts reading records from a verified tree.
    ///
    /// # Errors
    /// The service is not enabled in the manifest, or its sidecars are invalid.
    fn reader<'t>(&self, tree: &'t TreeReader) -> Result<Self::Reader<'t>, BackupError>;
}
