//! Offline decode: one or more `.fsm` snapshot files (one per Raft group)
//! → one logical backup tree (format "phase 0", docs/backup-format.md
//! § "Decode").
//!
//! Flow: [`DecodePlan::open`] opens every input and verifies its header
//! (magic, version, header CRC), refuses two snapshots of one group and
//! snapshots of different clusters (or of another cluster than
//! `--cluster-id`); [`DecodePlan::decode`] then streams each file's data
//! column family once, in group order, through [`VersionSelector`] (the
//! newest visible version as of the header's `last_commit_ts`) and the
//! group's ownership table, and hands each visible row to the service
//! decoder of its route namespace ([`ServiceDecoder`], implemented beside
//! each service's model and wired by the CLI, so this layer never imports
//! a model). Lock (transaction state) and meta records are read, counted
//! and checked but never decoded. MANIFEST.json and CHECKSUMS are written by
//! [`TreeWriter::finish`], which publishes the tree by one rename.
//!
//! Invariants:
//! - all or nothing: the tree is built in a staging directory, and any
//!   failure — a corrupt, truncated or foreign input, whose footer CRC is
//!   only known at its end; a corrupt row; a key present in two groups; an
//!   I/O error — drops the staging directory, leaving the output as it was
//!   (absent or empty);
//! - bounded memory: one input is read at a time through a fixed buffer,
//!   values are never held beyond their row, and service decoders hold at
//!   most one key's rows;
//! - deterministic: inputs are processed in group-id order, so the tree does
//!   not depend on the order the files were named in.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::BackupError;
use super::manifest::{
    Adapters, DynamoDbScope, Manifest, RedisScope, S3Scope, SourceGroup, SqsScope,
};
use super::tree::{TreeError, TreeWriter};
use super::visible::{VersionCounts, VersionSelector, VisibleRow, decode_key};
use crate::fsm::OwnershipTable;
use crate::raft::snapfile;
use crate::snapshot::{SnapshotError, SnapshotHeader, SnapshotReader};
use crate::storage::{Cf, NS_DYNAMODB, NS_REDIS, NS_S3, NS_SQS, NS_SYSTEM, StorageError};

/// Read buffer of the snapshot stream: large sequential reads.
const READ_BUFFER: usize = 1 << 20;
/// Read buffer of the header pass (the header is small; the ownership table
/// rarely more than a few KiB).
const HEADER_BUFFER: usize = 64 << 10;
/// Progress is reported every this many records (and at each input's end).
const PROGRESS_EVERY: u64 = 4096;
/// How many times `--data-dir` discovery is retried when a running node
/// removes a snapshot between listing and opening it.
const DISCOVERY_ATTEMPTS: usize = 3;

/// A failure of one service decoder.
#[derive(Debug, thiserror::Error)]
pub enum ServiceDecodeError {
    /// A row that does not decode, or rows that contradict each other.
    #[error("corrupt {service} record of key {key}: {detail}")]
    Corrupt {
        service: &'static str,
        key: String,
        detail: String,
    },
    /// The key was already written by another group's snapshot.
    #[error("{service} key {key} is present in more than one group's snapshot")]
    DuplicateKey { service: &'static str, key: String },
    /// Writing the tree failed.
    #[error(transparent)]
    Output(#[from] BackupError),
}

/// Keys written and rows left out by one service decoder.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceCounts {
    /// The service (`"redis"`).
    pub service: &'static str,
    /// Keys written per type, in the service's type order.
    pub keys: Vec<(&'static str, u64)>,
    /// Visible rows not dumped, per reason.
    pub skipped: Vec<(&'static str, u64)>,
    /// Inconsistencies tolerated (logged), such as a count in a META row
    /// that disagrees with the rows present.
    pub warnings: u64,
}

impl ServiceCounts {
    /// Keys written, all types together.
    pub fn total_keys(&self) -> u64 {
        self.keys.iter().map(|(_, n)| n).sum()
    }
}

/// Receives one service's visible rows, writes its records into the tree.
pub trait ServiceRowSink {
    /// One visible row of the service's namespace. Within a group, rows
    /// arrive in ascending user-key order.
    ///
    /// # Errors
    /// Corrupt rows, a key already written, tree errors.
    fn push(&mut self, row: &VisibleRow<'_>) -> Result<(), ServiceDecodeError>;

    /// The current group's rows ended (flush whatever is pending).
    ///
    /// # Errors
    /// As [`ServiceRowSink::push`].
    fn end_group(&mut self) -> Result<(), ServiceDecodeError>;

    /// All groups ended: closes the service's sidecars.
    ///
    /// # Errors
    /// Tree errors.
    fn finish(self: Box<Self>) -> Result<ServiceCounts, ServiceDecodeError>;
}

/// A service's decoder, as the CLI wires it in.
pub trait ServiceDecoder {
    /// Top-level directory and `MANIFEST.adapters` key (`"redis"`).
    fn service(&self) -> &'static str;

    /// The route-key namespace byte of the service's rows (ARCHITECTURE
    /// §4): the first byte of every user key it owns.
    fn namespace(&self) -> u8;

    /// Starts writing the service's records into `tree`.
    ///
    /// # Errors
    /// Tree errors preparing the service's directory.
    fn start<'t>(
        &self,
        tree: &'t TreeWriter,
    ) -> Result<Box<dyn ServiceRowSink + 't>, ServiceDecodeError>;
}

/// How a decode failure should be reported (the CLI maps it to an exit code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// The request itself is wrong (no input, the same group twice).
    Usage,
    /// An input is corrupt, truncated, tampered with or foreign.
    CorruptInput,
    /// The output exists and is not an empty directory.
    OutputExists,
    /// Reading or writing files failed.
    Io,
    /// Anything else.
    Other,
}

/// Why a decode failed. Every variant names the input (and group) at fault.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("no input snapshot (give --input FILE or --data-dir DIR)")]
    NoInput,
    #[error("data dir {}: no finished snapshot file under groups/<id>/snap/", path.display())]
    NoSnapshots { path: PathBuf },
    #[error("data dir {}: {source}", path.display())]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Snapshot {
        path: PathBuf,
        #[source]
        source: SnapshotError,
    },
    #[error("{}: snapshot of cluster {found:?}, expected cluster {expected:?} ({why})", path.display())]
    ForeignCluster {
        path: PathBuf,
        found: String,
        expected: String,
        why: &'static str,
    },
    #[error("{} is a snapshot of group {group}, but it lies under {}", path.display(), dir.display())]
    MisplacedGroup {
        path: PathBuf,
        group: u64,
        dir: PathBuf,
    },
    #[error("{} and {} are both snapshots of group {group}: give one file per group", first.display(), second.display())]
    DuplicateGroup {
        first: PathBuf,
        second: PathBuf,
        group: u64,
    },
    #[error("{}: the snapshot header's ownership table does not decode: {detail}", path.display())]
    Ownership { path: PathBuf, detail: String },
    #[error("{}: the header changed between the two reads (the file was replaced)", path.display())]
    Changed { path: PathBuf },
    #[error("{} (group {group}): {source}", path.display())]
    Record {
        path: PathBuf,
        group: u64,
        #[source]
        source: StorageError,
    },
    #[error("{} (group {group}): {source}", path.display())]
    Service {
        path: PathBuf,
        group: u64,
        #[source]
        source: ServiceDecodeError,
    },
    #[error("{service}: {source}")]
    ServiceFinish {
        service: &'static str,
        #[source]
        source: ServiceDecodeError,
    },
    #[error("unknown service {0:?} (this build decodes: redis)")]
    UnknownService(String),
    #[error(transparent)]
    Tree(#[from] TreeError),
}

fn classify_tree(err: &TreeError) -> FailureClass {
    match err {
        TreeError::OutputNotEmpty { .. } => FailureClass::OutputExists,
        TreeError::Io { .. } => FailureClass::Io,
        TreeError::Checksums(super::checksums::ChecksumError::Io { .. }) => FailureClass::Io,
        _ => FailureClass::Other,
    }
}

fn classify_service(err: &ServiceDecodeError) -> FailureClass {
    match err {
        ServiceDecodeError::Corrupt { .. } | ServiceDecodeError::DuplicateKey { .. } => {
            FailureClass::CorruptInput
        }
        ServiceDecodeError::Output(BackupError::Tree(tree)) => classify_tree(tree),
        ServiceDecodeError::Output(BackupError::Redis(super::redis::RedisError::Tree(tree))) => {
            classify_tree(tree)
        }
        ServiceDecodeError::Output(BackupError::Redis(super::redis::RedisError::Io { .. })) => {
            FailureClass::Io
        }
        ServiceDecodeError::Output(_) => FailureClass::Other,
    }
}

impl DecodeError {
    /// The kind of failure, for exit codes.
    pub fn class(&self) -> FailureClass {
        match self {
            DecodeError::NoInput
            | DecodeError::DuplicateGroup { .. }
            | DecodeError::UnknownService(_) => FailureClass::Usage,
            DecodeError::NoSnapshots { .. } => FailureClass::Other,
            DecodeError::DataDir { .. } => FailureClass::Io,
            DecodeError::Snapshot { source, .. } => match source {
                SnapshotError::File { .. } | SnapshotError::Io(_) => FailureClass::Io,
                _ => FailureClass::CorruptInput,
            },
            DecodeError::ForeignCluster { .. }
            | DecodeError::MisplacedGroup { .. }
            | DecodeError::Ownership { .. }
            | DecodeError::Changed { .. }
            | DecodeError::Record { .. } => FailureClass::CorruptInput,
            DecodeError::Service { source, .. } | DecodeError::ServiceFinish { source, .. } => {
                classify_service(source)
            }
            DecodeError::Tree(tree) => classify_tree(tree),
        }
    }
}

/// One input of a decode, header verified.
#[derive(Debug)]
struct PlannedInput {
    /// The path as given (or as found under `--data-dir`).
    path: PathBuf,
    /// Kept open from the header check to the decode, so a running node
    /// removing the file meanwhile does not matter.
    file: File,
    len: u64,
    header: SnapshotHeader,
    ownership: OwnershipTable,
}

/// What one group's snapshot contributed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSummary {
    pub path: PathBuf,
    pub group_id: u64,
    pub snapshot_index: u64,
    pub snapshot_term: u64,
    pub last_commit_ts: u64,
    pub bytes: u64,
    pub data_records: u64,
    pub lock_records: u64,
    pub meta_records: u64,
}

/// What a finished decode did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeSummary {
    /// Where the tree was published.
    pub output: PathBuf,
    /// The cluster the snapshots belong to ("" when no header names one).
    pub cluster_id: String,
    /// One per input, in group-id order.
    pub groups: Vec<GroupSummary>,
    /// Version selection over the decoded services' rows.
    pub versions: VersionCounts,
    /// Data records outside the group's ownership table (leftovers of a
    /// range that moved to another group and is not purged yet).
    pub not_owned: u64,
    /// Data records of namespaces not dumped, by namespace: `system`, `kv`,
    /// services this build does not decode or that were not selected.
    pub other_namespaces: BTreeMap<&'static str, u64>,
    /// Per decoded service, in the order they were given.
    pub services: Vec<ServiceCounts>,
    /// Files and bytes listed in CHECKSUMS.
    pub files: u64,
    pub bytes: u64,
}

/// The label of a route namespace for the summary.
fn namespace_label(namespace: u8) -> &'static str {
    match namespace {
        NS_SYSTEM => "system",
        NS_REDIS => "redis",
        NS_DYNAMODB => "dynamodb",
        NS_S3 => "s3",
        NS_SQS => "sqs",
        b'k' => "kv",
        _ => "unknown",
    }
}

/// Marks `service` in scope in the manifest's `adapters`.
fn enable_adapter(adapters: &mut Adapters, service: &'static str) -> Result<(), DecodeError> {
    match service {
        "redis" => adapters.redis = Some(RedisScope::default()),
        "dynamodb" => adapters.dynamodb = Some(DynamoDbScope::default()),
        "s3" => adapters.s3 = Some(S3Scope::default()),
        "sqs" => adapters.sqs = Some(SqsScope::default()),
        other => return Err(DecodeError::UnknownService(other.to_owned())),
    }
    Ok(())
}

/// The newest finished snapshot file of every group under
/// `<data_dir>/groups/<id>/snap/` (names `<index:016x>-<term:016x>.fsm`;
/// temporaries and spools never match), in group-id order.
///
/// # Errors
/// [`DecodeError::DataDir`] when the directories cannot be read,
/// [`DecodeError::NoSnapshots`] when no group has a snapshot.
pub fn find_newest_snapshots(data_dir: &Path) -> Result<Vec<PathBuf>, DecodeError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DecodeError::DataDir { path, source }
    };
    let groups_dir = data_dir.join("groups");
    let mut groups: Vec<(u64, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(&groups_dir).map_err(io(&groups_dir))? {
        let entry = entry.map_err(io(&groups_dir))?;
        let Some(group) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        if entry.file_type().map_err(io(&entry.path()))?.is_dir() {
            groups.push((group, entry.path()));
        }
    }
    groups.sort();
    let mut found = Vec::new();
    for (_, group_dir) in groups {
        let snap = snapfile::snap_dir(&group_dir);
        let entries = match std::fs::read_dir(&snap) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => return Err(io(&snap)(err)),
        };
        let mut newest: Option<((u64, u64), PathBuf)> = None;
        for entry in entries {
            let entry = entry.map_err(io(&snap))?;
            let Some(position) = entry
                .file_name()
                .to_str()
                .and_then(snapfile::parse_file_name)
            else {
                continue;
            };
            if !entry.file_type().map_err(io(&entry.path()))?.is_file() {
                continue;
            }
            if newest.as_ref().is_none_or(|(best, _)| position > *best) {
                newest = Some((position, entry.path()));
            }
        }
        if let Some((_, path)) = newest {
            found.push(path);
        }
    }
    if found.is_empty() {
        return Err(DecodeError::NoSnapshots {
            path: data_dir.to_path_buf(),
        });
    }
    Ok(found)
}

/// Verified inputs, ready to decode.
#[derive(Debug)]
pub struct DecodePlan {
    inputs: Vec<PlannedInput>,
    cluster_id: String,
}

fn open_input(path: &Path) -> Result<PlannedInput, DecodeError> {
    let snapshot = |source| DecodeError::Snapshot {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(|err| {
        snapshot(SnapshotError::File {
            path: path.to_path_buf(),
            source: err,
        })
    })?;
    let len = file
        .metadata()
        .map_err(|err| {
            snapshot(SnapshotError::File {
                path: path.to_path_buf(),
                source: err,
            })
        })?
        .len();
    let header = SnapshotReader::new(BufReader::with_capacity(HEADER_BUFFER, &file))
        .map_err(snapshot)?
        .header()
        .clone();
    let ownership = if header.ownership.is_empty() {
        OwnershipTable::everything()
    } else {
        OwnershipTable::decode(&header.ownership).map_err(|err| DecodeError::Ownership {
            path: path.to_path_buf(),
            detail: err.to_string(),
        })?
    };
    Ok(PlannedInput {
        path: path.to_path_buf(),
        file,
        len,
        header,
        ownership,
    })
}

impl DecodePlan {
    /// Opens `inputs` and verifies their headers and that they form one
    /// cluster (`cluster_id`, when given, must match every header that
    /// names a cluster) with at most one snapshot per group.
    ///
    /// # Errors
    /// [`DecodeError::NoInput`], snapshot errors naming the file (bad
    /// magic, unsupported version, truncated or corrupt header),
    /// [`DecodeError::ForeignCluster`], [`DecodeError::DuplicateGroup`].
    pub fn open(inputs: &[PathBuf], cluster_id: Option<&str>) -> Result<DecodePlan, DecodeError> {
        if inputs.is_empty() {
            return Err(DecodeError::NoInput);
        }
        let mut planned = Vec::with_capacity(inputs.len());
        for path in inputs {
            planned.push(open_input(path)?);
        }
        DecodePlan::check(planned, cluster_id)
    }

    /// Like [`DecodePlan::open`] over the newest snapshot of every group of
    /// a node's data dir, stopped or running: only finished files are
    /// considered, and a file the node removes between listing and opening
    /// is looked up again. Each file must lie under its own group's
    /// directory.
    ///
    /// # Errors
    /// As [`find_newest_snapshots`] and [`DecodePlan::open`];
    /// [`DecodeError::MisplacedGroup`].
    pub fn open_data_dir(
        data_dir: &Path,
        cluster_id: Option<&str>,
    ) -> Result<DecodePlan, DecodeError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let paths = find_newest_snapshots(data_dir)?;
            let mut planned = Vec::with_capacity(paths.len());
            let mut vanished = false;
            for path in &paths {
                match open_input(path) {
                    Ok(input) => planned.push(input),
                    Err(DecodeError::Snapshot {
                        source: SnapshotError::File { source, .. },
                        ..
                    }) if source.kind() == std::io::ErrorKind::NotFound
                        && attempt < DISCOVERY_ATTEMPTS =>
                    {
                        vanished = true;
                        break;
                    }
                    Err(err) => return Err(err),
                }
            }
            if vanished {
                continue;
            }
            for input in &planned {
                let group_dir = input
                    .path
                    .parent()
                    .and_then(Path::parent)
                    .map(Path::to_path_buf)
                    .unwrap_or_default();
                let dir_group = group_dir
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.parse::<u64>().ok());
                if dir_group != Some(input.header.group_id) {
                    return Err(DecodeError::MisplacedGroup {
                        path: input.path.clone(),
                        group: input.header.group_id,
                        dir: group_dir,
                    });
                }
            }
            return DecodePlan::check(planned, cluster_id);
        }
    }

    fn check(
        mut planned: Vec<PlannedInput>,
        cluster_id: Option<&str>,
    ) -> Result<DecodePlan, DecodeError> {
        planned.sort_by_key(|input| input.header.group_id);
        for pair in planned.windows(2) {
            if pair[0].header.group_id == pair[1].header.group_id {
                return Err(DecodeError::DuplicateGroup {
                    first: pair[0].path.clone(),
                    second: pair[1].path.clone(),
                    group: pair[0].header.group_id,
                });
            }
        }
        let mut cluster: Option<(String, &Path, &'static str)> = cluster_id
            .filter(|id| !id.is_empty())
            .map(|id| (id.to_owned(), Path::new(""), "given by --cluster-id"));
        for input in &planned {
            let found = &input.header.cluster_id;
            if found.is_empty() {
                continue;
            }
            match &cluster {
                None => cluster = Some((found.clone(), &input.path, "the first input's")),
                Some((expected, _, why)) if expected != found => {
                    return Err(DecodeError::ForeignCluster {
                        path: input.path.clone(),
                        found: found.clone(),
                        expected: expected.clone(),
                        why,
                    });
                }
                Some(_) => {}
            }
        }
        let cluster_id = cluster.map(|(id, _, _)| id).unwrap_or_default();
        Ok(DecodePlan {
            inputs: planned,
            cluster_id,
        })
    }

    /// Bytes of all inputs (for a progress bar).
    pub fn total_bytes(&self) -> u64 {
        self.inputs.iter().map(|input| input.len).sum()
    }

    /// The verified headers, in group-id order.
    pub fn headers(&self) -> impl Iterator<Item = (&Path, &SnapshotHeader)> {
        self.inputs
            .iter()
            .map(|input| (input.path.as_path(), &input.header))
    }

    /// The cluster the inputs belong to ("" when none names one).
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// Decodes every input into a new tree at `output` (which must not
    /// exist or be an empty directory) with `services`, publishing it only
    /// when every input verified to its footer. `progress` receives the
    /// bytes of input consumed so far.
    ///
    /// # Errors
    /// Any [`DecodeError`]; the output is then left as it was.
    pub fn decode(
        self,
        output: &Path,
        services: &[&dyn ServiceDecoder],
        wall_time: SystemTime,
        progress: &mut dyn FnMut(u64),
    ) -> Result<DecodeSummary, DecodeError> {
        let tree = TreeWriter::create(output)?;
        let mut manifest = Manifest::new_snapshot_decode(
            wall_time,
            self.inputs[0].path.to_string_lossy().into_owned(),
        );
        manifest.cluster_id = self.cluster_id.clone();
        let mut sinks: Vec<(u8, &'static str, Box<dyn ServiceRowSink + '_>)> = Vec::new();
        for service in services {
            enable_adapter(&mut manifest.adapters, service.service())?;
            let sink = service
                .start(&tree)
                .map_err(|source| DecodeError::ServiceFinish {
                    service: service.service(),
                    source,
                })?;
            sinks.push((service.namespace(), service.service(), sink));
        }
        let mut summary = DecodeSummary {
            output: output.to_path_buf(),
            cluster_id: self.cluster_id.clone(),
            groups: Vec::new(),
            versions: VersionCounts::default(),
            not_owned: 0,
            other_namespaces: BTreeMap::new(),
            services: Vec::new(),
            files: 0,
            bytes: 0,
        };
        let mut done_bytes = 0u64;
        for input in &self.inputs {
            let group = decode_input(input, &mut sinks, &mut summary, &mut |read| {
                progress(done_bytes + read)
            })?;
            done_bytes += input.len;
            progress(done_bytes);
            summary.groups.push(group);
        }
        for (_, service, sink) in sinks {
            let counts = sink
                .finish()
                .map_err(|source| DecodeError::ServiceFinish { service, source })?;
            summary.services.push(counts);
        }
        manifest.set_source_groups(
            summary
                .groups
                .iter()
                .map(|group| SourceGroup {
                    group_id: group.group_id,
                    fsm_path: group.path.to_string_lossy().into_owned(),
                    snapshot_index: group.snapshot_index,
                    snapshot_term: group.snapshot_term,
                    last_commit_ts: group.last_commit_ts,
                })
                .collect(),
        );
        let published = tree.finish(&manifest)?;
        summary.files = published.checksums.files;
        summary.bytes = published.checksums.bytes;
        Ok(summary)
    }
}

/// Streams one input's data records through version selection into the
/// sinks; verifies the rest of the file to its footer.
fn decode_input(
    input: &PlannedInput,
    sinks: &mut [(u8, &'static str, Box<dyn ServiceRowSink + '_>)],
    summary: &mut DecodeSummary,
    progress: &mut dyn FnMut(u64),
) -> Result<GroupSummary, DecodeError> {
    let group = input.header.group_id;
    let snapshot = |source| DecodeError::Snapshot {
        path: input.path.clone(),
        source,
    };
    let record_error = |source| DecodeError::Record {
        path: input.path.clone(),
        group,
        source,
    };
    let service_error = |source| DecodeError::Service {
        path: input.path.clone(),
        group,
        source,
    };
    let mut file = &input.file;
    file.seek(SeekFrom::Start(0))
        .map_err(|err| snapshot(SnapshotError::Io(err)))?;
    let mut reader =
        SnapshotReader::new(BufReader::with_capacity(READ_BUFFER, file)).map_err(snapshot)?;
    if reader.header() != &input.header {
        return Err(DecodeError::Changed {
            path: input.path.clone(),
        });
    }
    reader.skip_cf(Cf::Lock);
    reader.skip_cf(Cf::Meta);
    let mut selector = VersionSelector::new(input.header.last_commit_ts);
    let mut seen = 0u64;
    while let Some(record) = reader.next_record().map_err(snapshot)? {
        seen += 1;
        if seen % PROGRESS_EVERY == 0 {
            progress(reader.bytes_read());
        }
        let key = decode_key(&record.key).map_err(record_error)?;
        let namespace = key.user_key.first().copied().unwrap_or(NS_SYSTEM);
        let Some(sink) = sinks.iter_mut().find(|(ns, _, _)| *ns == namespace) else {
            *summary
                .other_namespaces
                .entry(namespace_label(namespace))
                .or_default() += 1;
            continue;
        };
        if !input.ownership.owns(&key.user_key) {
            summary.not_owned += 1;
            continue;
        }
        if let Some(row) = selector
            .select(&key, &record.key, &record.value)
            .map_err(record_error)?
        {
            sink.2.push(&row).map_err(service_error)?;
        }
    }
    for (_, _, sink) in sinks.iter_mut() {
        sink.end_group().map_err(service_error)?;
    }
    summary.versions.add(selector.counts());
    let counts = reader.summary().map(|s| s.counts).ok_or_else(|| {
        snapshot(SnapshotError::Malformed {
            offset: reader.bytes_read(),
            what: "the reader ended without a summary".to_string(),
        })
    })?;
    Ok(GroupSummary {
        path: input.path.clone(),
        group_id: group,
        snapshot_index: input.header.index,
        snapshot_term: input.header.term,
        last_commit_ts: input.header.last_commit_ts,
        bytes: input.len,
        data_records: counts.data,
        lock_records: counts.lock,
        meta_records: counts.meta,
    })
}

/// Hands rows to a callback; `None` marks the end of the file's rows.
struct CallbackSink<'f, 'g> {
    each: &'f mut (dyn FnMut(Option<&VisibleRow<'_>>) -> Result<(), ServiceDecodeError> + 'g),
}

impl ServiceRowSink for CallbackSink<'_, '_> {
    fn push(&mut self, row: &VisibleRow<'_>) -> Result<(), ServiceDecodeError> {
        (self.each)(Some(row))
    }

    fn end_group(&mut self) -> Result<(), ServiceDecodeError> {
        (self.each)(None)
    }

    fn finish(self: Box<Self>) -> Result<ServiceCounts, ServiceDecodeError> {
        Ok(ServiceCounts::default())
    }
}

/// Streams the visible rows of route namespace `namespace` of one snapshot
/// file to `each` (the same selection, ownership filter and checks as
/// [`DecodePlan::decode`]), then calls `each(None)` once the rows ended.
/// The footer CRC is verified at the end of the file: what `each` saw is
/// provisional until this returns `Ok` with the file's header.
///
/// # Errors
/// As [`DecodePlan::decode`] for one input, and whatever `each` returns.
pub fn for_each_visible_row(
    path: &Path,
    namespace: u8,
    each: &mut dyn FnMut(Option<&VisibleRow<'_>>) -> Result<(), ServiceDecodeError>,
) -> Result<SnapshotHeader, DecodeError> {
    let input = open_input(path)?;
    let mut summary = DecodeSummary {
        output: PathBuf::new(),
        cluster_id: input.header.cluster_id.clone(),
        groups: Vec::new(),
        versions: VersionCounts::default(),
        not_owned: 0,
        other_namespaces: BTreeMap::new(),
        services: Vec::new(),
        files: 0,
        bytes: 0,
    };
    let sink: Box<dyn ServiceRowSink + '_> = Box::new(CallbackSink { each });
    let mut sinks = [(namespace, "", sink)];
    decode_input(&input, &mut sinks, &mut summary, &mut |_| {})?;
    Ok(input.header)
}
