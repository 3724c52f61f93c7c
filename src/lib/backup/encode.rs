//! Tree → `.fsm` (`snapshot-encode`): turns a verified logical backup tree
//! into a snapshot file a fresh node can bootstrap from
//! (`serve --restore-from`), ARCHITECTURE §5 and §7, docs/backup-format.md §9.
//!
//! Flow: refuse an existing output; open the tree with [`TreeReader::open`]
//! (MANIFEST version gate and every CHECKSUMS line verified before any
//! record is read); refuse content no encoder can restore; let each
//! [`ServiceEncoder`] turn its records into storage rows (validating every
//! record and rebuilding derived indexes) pushed into a [`RowSink`], which
//! sorts them by MVCC key within a memory budget, spilling sorted runs to
//! files beside the output when the budget is exceeded; merge the runs into
//! a snapshot written to a temporary file beside the output, fsync it,
//! optionally decode it again and compare it with the tree (`--self-test`),
//! and only then link it to the output path (never replacing anything) and
//! fsync the directory.
//!
//! Invariants: nothing exists at the output path unless the whole file was
//! written, fsynced and (when asked) self-tested; every row carries the same
//! commit timestamp (the header's `last_commit_ts`); no two rows share a
//! storage key; memory is the budget plus one record, whatever the tree size.
//!
//! This layer knows nothing of any service's storage layout: the services'
//! models implement [`ServiceEncoder`] and the command line wires them in.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::checksums::{CHECKSUMS_FILE, ChecksumError};
use super::error::BackupError;
use super::manifest::MANIFEST_FILE;
use super::tree::{TreeError, TreeReader};
use crate::clock::{Hlc, Timestamp, physical_ms};
use crate::fsm::OwnershipTable;
use crate::fsm::ownership::OWNERSHIP_META_KEY;
use crate::snapshot::{KEY_CAP, SnapshotError, SnapshotHeader, SnapshotWriter, VALUE_CAP};
use crate::storage::Cf;
use crate::storage::keys::encode_data_key;
use crate::storage::meta::{LAST_COMMIT_TS_KEY, state_machine_key};
use crate::storage::value::encode_put;

/// Default bound on the rows held in memory before a sorted run is spilled.
pub const DEFAULT_MEMORY_BUDGET: usize = 128 << 20;
/// Raft index written in the header: the index every new cluster's first
/// snapshot has, so `serve --restore-from` can use the file as that snapshot.
pub const BOOTSTRAP_INDEX: u64 = 1;
/// Raft term written in the header (the bootstrap snapshot's term).
pub const BOOTSTRAP_TERM: u64 = 1;
/// Memory charged per buffered row beyond its bytes (two vectors).
const ROW_OVERHEAD: usize = 48;
/// Top-level service directories of the format that no encoder handles yet.
const KNOWN_SERVICES: [&str; 4] = ["redis", "dynamodb", "s3", "sqs"];

/// Why encoding failed. [`EncodeError::kind`] tells the command line which
/// exit code applies.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("output {path:?} already exists (snapshot-encode never replaces a file)")]
    OutputExists { path: PathBuf },
    #[error("invalid option: {0}")]
    InvalidOption(String),
    #[error("input tree: {0}")]
    Tree(#[from] TreeError),
    #[error("input tree: {0}")]
    Backup(#[from] BackupError),
    #[error("input tree: {service} key {key}: {reason}")]
    InvalidRecord {
        service: &'static str,
        key: String,
        reason: String,
    },
    #[error("input tree: {path}: {reason}")]
    Unsupported { path: String, reason: String },
    #[error("input tree: two records produce the same storage row {key}")]
    DuplicateRow { key: String },
    #[error(
        "input tree: a storage row of {len} bytes exceeds the snapshot's {cap}-byte {field} cap"
    )]
    RowTooLarge {
        field: &'static str,
        len: usize,
        cap: u64,
    },
    #[error("snapshot: {0}")]
    Snapshot(#[from] SnapshotError),
    #[error("{path:?}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("spill file {path:?} is damaged: {reason}")]
    SpillCorrupt { path: PathBuf, reason: String },
    #[error("self-test failed: {0}")]
    SelfTest(String),
}

/// The classes of failure the command line maps to exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeErrorKind {
    /// A bad option value.
    Usage,
    /// The tree is corrupt, tampered, incomplete or holds invalid records.
    CorruptInput,
    /// The output path exists.
    OutputExists,
    /// Reading or writing files failed.
    Io,
    /// Anything else (a self-test mismatch, our own file unreadable).
    Failure,
}

impl EncodeError {
    pub fn kind(&self) -> EncodeErrorKind {
        match self {
            EncodeError::OutputExists { .. } => EncodeErrorKind::OutputExists,
            EncodeError::InvalidOption(_) => EncodeErrorKind::Usage,
            EncodeError::Tree(TreeError::Io { .. })
            | EncodeError::Tree(TreeError::Checksums(ChecksumError::Io { .. })) => {
                EncodeErrorKind::Io
            }
            EncodeError::Tree(_)
            | EncodeError::Backup(_)
            | EncodeError::InvalidRecord { .. }
            | EncodeError::Unsupported { .. }
            | EncodeError::DuplicateRow { .. }
            | EncodeError::RowTooLarge { .. } => EncodeErrorKind::CorruptInput,
            EncodeError::Io { .. } => EncodeErrorKind::Io,
            EncodeError::Snapshot(SnapshotError::Io(_) | SnapshotError::File { .. }) => {
                EncodeErrorKind::Io
            }
            EncodeError::Snapshot(_)
            | EncodeError::SpillCorrupt { .. }
            | EncodeError::SelfTest(_) => EncodeErrorKind::Failure,
        }
    }
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> EncodeError + '_ {
    move |source| EncodeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A key for messages: printable when it is, hex otherwise, cut after 48 bytes.
pub fn describe_bytes(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(48)];
    let text = if shown.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        String::from_utf8_lossy(shown).into_owned()
    } else {
        format!("0x{}", hex::encode(shown))
    };
    if bytes.len() > shown.len() {
        format!("{text}… ({} bytes)", bytes.len())
    } else {
        text
    }
}

/// One row of the data column family before its MVCC framing: the model's
/// user key, the row's body and its expiry (HLC, 0 = none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogicalRow {
    pub user_key: Vec<u8>,
    pub body: Vec<u8>,
    pub expire_at: Timestamp,
}

/// Why a record of the tree produced no rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skipped {
    /// Its expiry is at or before the commit timestamp: no reader of the
    /// restored cluster could ever see it.
    Expired,
    /// An empty collection: the store (like Redis) has no empty collections.
    Empty,
}

/// What a finished self-test compared.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SelfTestReport {
    /// Records decoded from the file and found equal to the tree's.
    pub compared: u64,
    /// One line per difference (capped by the service).
    pub mismatches: Vec<String>,
}

/// A service's half of the encoder: reads its records from the verified
/// tree, validates them and pushes their storage rows; and, for the
/// self-test, decodes a written snapshot and compares it with the tree.
pub trait ServiceEncoder {
    /// The top-level directory and `MANIFEST.adapters` key (`"redis"`).
    fn name(&self) -> &'static str;

    /// Pushes the rows of every record of this service into `sink`.
    ///
    /// # Errors
    /// Invalid files or records (with the path or key at fault), content the
    /// store cannot hold, and the sink's I/O errors.
    fn encode(&self, tree: &TreeReader, sink: &mut RowSink<'_>) -> Result<(), EncodeError>;

    /// Decodes this service's records from the snapshot at `fsm` and
    /// compares them with the tree's, record by record.
    ///
    /// # Errors
    /// The snapshot or the tree cannot be read.
    fn self_test(
        &self,
        tree: &TreeReader,
        fsm: &Path,
        commit_ts: Timestamp,
    ) -> Result<SelfTestReport, EncodeError>;
}

/// What the encoder reports while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressEvent {
    /// The tree verified: files and bytes covered by CHECKSUMS.
    Verified { files: u64, bytes: u64 },
    /// Records read so far.
    Records(u64),
    /// Sorting finished; the snapshot is being written.
    Writing,
    /// The written snapshot is being decoded and compared.
    SelfTest,
}

/// What to encode, where, and how.
#[derive(Debug, Clone)]
pub struct EncodeOptions {
    pub input: PathBuf,
    pub output: PathBuf,
    /// Overrides `MANIFEST.cluster_id`.
    pub cluster_id: Option<String>,
    pub group_id: u64,
    /// Bytes of rows held in memory before a sorted run is spilled.
    pub memory_budget: usize,
    pub self_test: bool,
}

impl EncodeOptions {
    pub fn new(input: impl Into<PathBuf>, output: impl Into<PathBuf>) -> EncodeOptions {
        EncodeOptions {
            input: input.into(),
            output: output.into(),
            cluster_id: None,
            group_id: 1,
            memory_budget: DEFAULT_MEMORY_BUDGET,
            self_test: false,
        }
    }
}

/// What a successful encode produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeSummary {
    pub output: PathBuf,
    pub header: SnapshotHeader,
    /// Files and bytes of the input tree covered by CHECKSUMS.
    pub input_files: u64,
    pub input_bytes: u64,
    /// Records encoded, per service and kind (`"redis"`, `"hash"`).
    pub records: BTreeMap<(String, String), u64>,
    pub skipped_expired: u64,
    pub skipped_empty: u64,
    /// Data rows written (derived index rows included).
    pub rows: u64,
    /// Sorted runs spilled to disk (0 when everything fit the budget).
    pub spilled_runs: u64,
    pub bytes_written: u64,
    /// Records compared by the self-test, when it ran.
    pub self_test_compared: Option<u64>,
}

/// Encodes the tree at `options.input` into the snapshot `options.output`.
///
/// # Errors
/// See [`EncodeError`]; on every error nothing is left at the output path
/// and the spill files are removed.
pub fn encode(
    options: &EncodeOptions,
    services: &[&dyn ServiceEncoder],
    progress: &dyn Fn(ProgressEvent),
) -> Result<EncodeSummary, EncodeError> {
    let output = &options.output;
    if fs::symlink_metadata(output).is_ok() {
        return Err(EncodeError::OutputExists {
            path: output.clone(),
        });
    }
    let file_name = output
        .file_name()
        .ok_or_else(|| EncodeError::InvalidOption(format!("output {output:?} names no file")))?
        .to_string_lossy()
        .into_owned();
    let tree = TreeReader::open(&options.input)?;
    let checked = tree.checksums();
    progress(ProgressEvent::Verified {
        files: checked.files,
        bytes: checked.bytes,
    });
    check_top_level(&tree, services)?;

    let manifest = tree.manifest();
    let cluster_id = options
        .cluster_id
        .clone()
        .unwrap_or_else(|| manifest.cluster_id.clone());
    if cluster_id.len() as u64 > crate::snapshot::CLUSTER_ID_CAP {
        return Err(EncodeError::InvalidOption(format!(
            "cluster id is {} bytes, over the {}-byte limit",
            cluster_id.len(),
            crate::snapshot::CLUSTER_ID_CAP
        )));
    }
    if options.group_id == 0 {
        return Err(EncodeError::InvalidOption("group id 0 is reserved".into()));
    }
    let commit_ts = if manifest.last_commit_ts > 0 {
        manifest.last_commit_ts
    } else {
        Hlc::default().next()
    };

    let parent = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(io_at(&parent))?;
    let mut sink = RowSink::new(
        commit_ts,
        options.memory_budget,
        &parent,
        &file_name,
        progress,
    );
    for service in services {
        if tree.manifest().adapters.is_enabled(service.name()) {
            sink.service = service.name();
            service.encode(&tree, &mut sink)?;
        }
    }
    progress(ProgressEvent::Writing);
    let header = SnapshotHeader {
        cluster_id,
        group_id: options.group_id,
        index: BOOTSTRAP_INDEX,
        term: BOOTSTRAP_TERM,
        last_commit_ts: commit_ts,
        hlc_ceiling_ms: 0,
        ownership: OwnershipTable::everything().encode(),
        created_unix_ms: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
    };
    let temp = tempfile::Builder::new()
        .prefix(&format!(".{file_name}."))
        .suffix(crate::snapshot::TEMP_SUFFIX)
        .tempfile_in(&parent)
        .map_err(io_at(&parent))?;
    let stats = sink.finish_into(temp.as_file(), temp.path(), &header)?;

    let mut self_test_compared = None;
    if options.self_test {
        progress(ProgressEvent::SelfTest);
        let mut compared = 0;
        let mut mismatches = Vec::new();
        for service in services {
            if tree.manifest().adapters.is_enabled(service.name()) {
                let report = service.self_test(&tree, temp.path(), commit_ts)?;
                compared += report.compared;
                mismatches.extend(report.mismatches);
            }
        }
        if !mismatches.is_empty() {
            return Err(EncodeError::SelfTest(mismatches.join("; ")));
        }
        self_test_compared = Some(compared);
    }

    temp.persist_noclobber(output).map_err(|err| {
        if err.error.kind() == io::ErrorKind::AlreadyExists {
            EncodeError::OutputExists {
                path: output.clone(),
            }
        } else {
            EncodeError::Io {
                path: output.clone(),
                source: err.error,
            }
        }
    })?;
    File::open(&parent)
        .and_then(|dir| dir.sync_all())
        .map_err(io_at(&parent))?;
    Ok(EncodeSummary {
        output: output.clone(),
        header,
        input_files: checked.files,
        input_bytes: checked.bytes,
        records: stats.records,
        skipped_expired: stats.skipped_expired,
        skipped_empty: stats.skipped_empty,
        rows: stats.rows,
        spilled_runs: stats.spilled_runs,
        bytes_written: stats.bytes_written,
        self_test_compared,
    })
}

/// Refuses top-level entries that no encoder restores: a service directory
/// of the format without an encoder here, or anything unknown.
fn check_top_level(tree: &TreeReader, services: &[&dyn ServiceEncoder]) -> Result<(), EncodeError> {
    // The verified tree holds only regular files and directories.
    let root = tree.root();
    let mut entries = Vec::new();
    for entry in fs::read_dir(root).map_err(io_at(root))? {
        let entry = entry.map_err(io_at(root))?;
        let is_dir = entry.file_type().map_err(io_at(&entry.path()))?.is_dir();
        entries.push((entry.file_name().to_string_lossy().into_owned(), is_dir));
    }
    entries.sort();
    for (name, is_dir) in entries {
        if !is_dir && (name == MANIFEST_FILE || name == CHECKSUMS_FILE) {
            continue;
        }
        let handled = services.iter().any(|s| s.name() == name);
        if is_dir && handled {
            if !tree.manifest().adapters.is_enabled(&name) {
                return Err(EncodeError::Unsupported {
                    path: name.clone(),
                    reason: format!("present, but MANIFEST.adapters has no {name:?} entry"),
                });
            }
            continue;
        }
        let reason = if is_dir && KNOWN_SERVICES.contains(&name.as_str()) {
            "this build cannot restore this service yet".to_string()
        } else {
            "not part of the backup format".to_string()
        };
        return Err(EncodeError::Unsupported { path: name, reason });
    }
    Ok(())
}

/// Counters kept while rows are collected and written.
#[derive(Debug, Default)]
struct SinkStats {
    records: BTreeMap<(String, String), u64>,
    records_total: u64,
    skipped_expired: u64,
    skipped_empty: u64,
    rows: u64,
    spilled_runs: u64,
    bytes_written: u64,
}

/// Collects rows in any order and writes them sorted by MVCC key, spilling
/// sorted runs under a hidden directory beside the output when the buffered
/// rows exceed the memory budget.
pub struct RowSink<'p> {
    commit_ts: Timestamp,
    budget: usize,
    buffer: Vec<EncodedRow>,
    buffered_bytes: usize,
    spill_parent: PathBuf,
    spill_prefix: String,
    spill_dir: Option<tempfile::TempDir>,
    runs: Vec<PathBuf>,
    service: &'static str,
    stats: SinkStats,
    progress: &'p dyn Fn(ProgressEvent),
}

impl<'p> RowSink<'p> {
    fn new(
        commit_ts: Timestamp,
        budget: usize,
        spill_parent: &Path,
        output_name: &str,
        progress: &'p dyn Fn(ProgressEvent),
    ) -> RowSink<'p> {
        RowSink {
            commit_ts,
            budget: budget.max(1),
            buffer: Vec::new(),
            buffered_bytes: 0,
            spill_parent: spill_parent.to_path_buf(),
            spill_prefix: format!(".{output_name}.encode-spill-"),
            spill_dir: None,
            runs: Vec::new(),
            service: "",
            stats: SinkStats::default(),
            progress,
        }
    }

    /// The commit timestamp every row gets (the header's last commit ts).
    pub fn commit_ts(&self) -> Timestamp {
        self.commit_ts
    }

    /// The physical milliseconds of the commit timestamp: a record whose
    /// expiry is at or before this is already expired in the snapshot.
    pub fn commit_ms(&self) -> u64 {
        physical_ms(self.commit_ts)
    }

    /// Adds one row.
    ///
    /// # Errors
    /// [`EncodeError::RowTooLarge`]; I/O errors while spilling.
    pub fn push(&mut self, row: LogicalRow) -> Result<(), EncodeError> {
        let key = encode_data_key(&row.user_key, self.commit_ts);
        if key.len() as u64 > KEY_CAP {
            return Err(EncodeError::RowTooLarge {
                field: "key",
                len: key.len(),
                cap: KEY_CAP,
            });
        }
        let value = encode_put(&row.body, row.expire_at, self.commit_ts);
        if value.len() as u64 > VALUE_CAP {
            return Err(EncodeError::RowTooLarge {
                field: "value",
                len: value.len(),
                cap: VALUE_CAP,
            });
        }
        self.buffered_bytes += key.len() + value.len() + ROW_OVERHEAD;
        self.buffer.push((key, value));
        self.stats.rows += 1;
        if self.buffered_bytes > self.budget {
            self.spill()?;
        }
        Ok(())
    }

    /// Counts one encoded record of `kind` (`"string"`, `"hash"`, ...).
    pub fn note_record(&mut self, kind: &str) {
        *self
            .stats
            .records
            .entry((self.service.to_string(), kind.to_string()))
            .or_default() += 1;
        self.count_read();
    }

    /// Counts one record that produced no rows.
    pub fn note_skipped(&mut self, why: Skipped) {
        match why {
            Skipped::Expired => self.stats.skipped_expired += 1,
            Skipped::Empty => self.stats.skipped_empty += 1,
        }
        self.count_read();
    }

    fn count_read(&mut self) {
        self.stats.records_total += 1;
        if self.stats.records_total.is_multiple_of(1024) {
            (self.progress)(ProgressEvent::Records(self.stats.records_total));
        }
    }

    /// Sorts the buffer, refusing two rows with one key.
    fn sort_buffer(buffer: &mut [EncodedRow]) -> Result<(), EncodeError> {
        buffer.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if let Some(pair) = buffer.windows(2).find(|pair| pair[0].0 == pair[1].0) {
            return Err(EncodeError::DuplicateRow {
                key: describe_bytes(&pair[0].0),
            });
        }
        Ok(())
    }

    fn spill(&mut self) -> Result<(), EncodeError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        Self::sort_buffer(&mut self.buffer)?;
        if self.spill_dir.is_none() {
            let dir = tempfile::Builder::new()
                .prefix(&self.spill_prefix)
                .tempdir_in(&self.spill_parent)
                .map_err(io_at(&self.spill_parent))?;
            self.spill_dir = Some(dir);
        }
        let Some(dir) = self.spill_dir.as_ref() else {
            return Ok(());
        };
        let path = dir.path().join(format!("run-{:06}", self.runs.len()));
        let file = File::create(&path).map_err(io_at(&path))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        for (key, value) in self.buffer.drain(..) {
            write_framed(&mut out, &key).map_err(io_at(&path))?;
            write_framed(&mut out, &value).map_err(io_at(&path))?;
        }
        out.flush().map_err(io_at(&path))?;
        self.buffered_bytes = 0;
        self.runs.push(path);
        self.stats.spilled_runs += 1;
        Ok(())
    }

    /// Writes every row, in key order, into a snapshot in `file` (at
    /// `path`, for messages) and fsyncs it.
    fn finish_into(
        mut self,
        file: &File,
        path: &Path,
        header: &SnapshotHeader,
    ) -> Result<SinkStats, EncodeError> {
        let out = BufWriter::with_capacity(1 << 20, file);
        let mut writer = SnapshotWriter::new(out, header)?;
        if self.runs.is_empty() {
            Self::sort_buffer(&mut self.buffer)?;
            for (key, value) in self.buffer.drain(..) {
                writer.write_record(Cf::Data, &key, &value)?;
            }
        } else {
            self.spill()?;
            let mut merge = RunMerge::open(&self.runs)?;
            let mut last: Option<Vec<u8>> = None;
            while let Some((key, value)) = merge.next_row()? {
                if last.as_deref() == Some(key.as_slice()) {
                    return Err(EncodeError::DuplicateRow {
                        key: describe_bytes(&key),
                    });
                }
                writer.write_record(Cf::Data, &key, &value)?;
                last = Some(key);
            }
        }
        writer.write_record(Cf::Meta, &LAST_COMMIT_TS_KEY, &self.commit_ts.to_be_bytes())?;
        writer.write_record(
            Cf::Meta,
            &state_machine_key(OWNERSHIP_META_KEY),
            &header.ownership,
        )?;
        let (out, summary) = writer.finish()?;
        out.into_inner()
            .map_err(|err| EncodeError::Io {
                path: path.to_path_buf(),
                source: err.into_error(),
            })?
            .sync_all()
            .map_err(io_at(path))?;
        self.stats.bytes_written = summary.total_len;
        Ok(std::mem::take(&mut self.stats))
    }
}

fn write_framed(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    out.write_all(&(bytes.len() as u32).to_le_bytes())?;
    out.write_all(bytes)
}

/// An encoded data row: (MVCC key, version bytes).
type EncodedRow = (Vec<u8>, Vec<u8>);

/// A k-way merge of sorted spill runs.
struct RunMerge {
    runs: Vec<(PathBuf, BufReader<File>)>,
    heads: BinaryHeap<Reverse<(Vec<u8>, usize)>>,
    values: Vec<Vec<u8>>,
}

impl RunMerge {
    fn open(paths: &[PathBuf]) -> Result<RunMerge, EncodeError> {
        let mut merge = RunMerge {
            runs: Vec::with_capacity(paths.len()),
            heads: BinaryHeap::with_capacity(paths.len()),
            values: vec![Vec::new(); paths.len()],
        };
        for (index, path) in paths.iter().enumerate() {
            let file = File::open(path).map_err(io_at(path))?;
            merge
                .runs
                .push((path.clone(), BufReader::with_capacity(256 << 10, file)));
            merge.advance(index)?;
        }
        Ok(merge)
    }

    /// Reads the next row of run `index` into the heap.
    fn advance(&mut self, index: usize) -> Result<(), EncodeError> {
        let (path, reader) = &mut self.runs[index];
        let Some(key) = read_framed(reader, path, KEY_CAP)? else {
            return Ok(());
        };
        let Some(value) = read_framed(reader, path, VALUE_CAP)? else {
            return Err(EncodeError::SpillCorrupt {
                path: path.clone(),
                reason: "a key without its value".into(),
            });
        };
        self.values[index] = value;
        self.heads.push(Reverse((key, index)));
        Ok(())
    }

    fn next_row(&mut self) -> Result<Option<EncodedRow>, EncodeError> {
        let Some(Reverse((key, index))) = self.heads.pop() else {
            return Ok(None);
        };
        let value = std::mem::take(&mut self.values[index]);
        self.advance(index)?;
        Ok(Some((key, value)))
    }
}

/// One length-prefixed field of a spill run; `None` at a clean end.
fn read_framed(
    reader: &mut BufReader<File>,
    path: &Path,
    cap: u64,
) -> Result<Option<Vec<u8>>, EncodeError> {
    let mut len = [0u8; 4];
    match reader.read_exact(&mut len) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(err) => return Err(io_at(path)(err)),
    }
    let len = u64::from(u32::from_le_bytes(len));
    if len > cap {
        return Err(EncodeError::SpillCorrupt {
            path: path.to_path_buf(),
            reason: format!("field length {len} over its cap {cap}"),
        });
    }
    let mut bytes = Vec::with_capacity(len as usize);
    reader
        .by_ref()
        .take(len)
        .read_to_end(&mut bytes)
        .map_err(io_at(path))?;
    if bytes.len() as u64 != len {
        return Err(EncodeError::SpillCorrupt {
            path: path.to_path_buf(),
            reason: "truncated field".into(),
        });
    }
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::snapshot::SnapshotReader;

    fn header() -> SnapshotHeader {
        SnapshotHeader {
            group_id: 1,
            index: BOOTSTRAP_INDEX,
            term: BOOTSTRAP_TERM,
            last_commit_ts: 7 << 16,
            ownership: OwnershipTable::everything().encode(),
            ..SnapshotHeader::default()
        }
    }

    /// Pushes `keys` (in the given order) through a sink with `budget` and
    /// returns the data keys of the written file and the spill count.
    fn write(keys: &[Vec<u8>], budget: usize) -> Result<(Vec<Vec<u8>>, u64), EncodeError> {
        let dir = tempfile::tempdir().unwrap();
        let no_progress = |_: ProgressEvent| {};
        let mut sink = RowSink::new(7 << 16, budget, dir.path(), "out.fsm", &no_progress);
        for key in keys {
            sink.push(LogicalRow {
                user_key: key.clone(),
                body: key.clone(),
                expire_at: 0,
            })?;
        }
        let path = dir.path().join("out.fsm");
        let file = File::create(&path).unwrap();
        let stats = sink.finish_into(&file, &path, &header())?;
        let mut reader = SnapshotReader::open(&path).unwrap();
        let mut out = Vec::new();
        while let Some(record) = reader.next_record().unwrap() {
            if record.cf == Cf::Data {
                out.push(crate::storage::decode_data_key(&record.key).unwrap().0);
            }
        }
        assert!(
            fs::read_dir(dir.path()).unwrap().count() == 1,
            "spill directory removed"
        );
        Ok((out, stats.spilled_runs))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

        #[test]
        fn rows_come_out_sorted_with_or_without_spilling(
            keys in prop::collection::btree_set(prop::collection::vec(any::<u8>(), 0..12), 0..200),
            seed in any::<u64>(),
        ) {
            let mut shuffled: Vec<Vec<u8>> = keys.iter().cloned().collect();
            let len = shuffled.len().max(1);
            for i in 0..shuffled.len() {
                let j = (seed.wrapping_mul(i as u64 + 7) % len as u64) as usize;
                shuffled.swap(i, j);
            }
            let sorted: Vec<Vec<u8>> = keys.into_iter().collect();
            let (in_memory, runs) = write(&shuffled, DEFAULT_MEMORY_BUDGET).unwrap();
            prop_assert_eq!(runs, 0);
            prop_assert_eq!(&in_memory, &sorted);
            let (spilled, runs) = write(&shuffled, 400).unwrap();
            prop_assert!(sorted.len() < 10 || runs > 1);
            prop_assert_eq!(&spilled, &sorted);
        }
    }

    #[test]
    fn a_repeated_row_is_refused_in_memory_and_across_runs() {
        let mut keys: Vec<Vec<u8>> = (0u8..100).map(|i| vec![i]).collect();
        keys.push(vec![42]);
        for budget in [DEFAULT_MEMORY_BUDGET, 200] {
            match write(&keys, budget) {
                Err(EncodeError::DuplicateRow { key }) => assert!(key.contains("2a"), "{key}"),
                other => panic!("expected a duplicate row error, got {other:?}"),
            }
        }
    }

    #[test]
    fn error_kinds_choose_exit_classes() {
        let exists = EncodeError::OutputExists {
            path: PathBuf::from("x"),
        };
        assert_eq!(exists.kind(), EncodeErrorKind::OutputExists);
        let missing = EncodeError::Tree(TreeError::Incomplete { name: "CHECKSUMS" });
        assert_eq!(missing.kind(), EncodeErrorKind::CorruptInput);
        let io = EncodeError::Tree(TreeError::Io {
            path: PathBuf::from("x"),
            source: io::ErrorKind::NotFound.into(),
        });
        assert_eq!(io.kind(), EncodeErrorKind::Io);
        assert_eq!(
            EncodeError::SelfTest("x".into()).kind(),
            EncodeErrorKind::Failure
        );
    }
}
