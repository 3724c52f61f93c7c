//! `elastickv snapshot-decode`: `.fsm` snapshot files → the logical backup
//! tree, offline (no cluster needed). Wires the service decoders into
//! [`crate::backup::decode`], shows a progress bar (input bytes) when
//! stderr is a terminal, prints per-service counts, and maps every failure
//! to a documented exit code (docs/cli.md): 2 usage, 3 corrupt, truncated
//! or foreign input, 4 output exists, 5 I/O; the output is left as it was.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::SystemTime;

use clap::{Args, ValueEnum};
use serde_json::{Map, Value, json};

use super::args::OutputFormat;
use super::exit::{CliError, ExitCode};
use crate::backup::decode::{DecodeError, DecodePlan, DecodeSummary, FailureClass, ServiceDecoder};
use crate::model::redis::backup_decode::RedisSnapshotDecoder;

/// Services this build decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum DecodeService {
    Redis,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 success; 1 other failure; 2 usage error; 3 corrupt, \
        truncated or foreign input (or inputs that contradict each other); 4 the output \
        exists and is not an empty directory; 5 I/O error. On failure the output is left \
        as it was."
)]
pub struct SnapshotDecodeArgs {
    /// A .fsm snapshot file; repeat with one file per Raft group to merge
    /// the groups into one tree.
    #[arg(
        long = "input",
        value_name = "FILE",
        required_unless_present = "data_dir",
        conflicts_with = "data_dir"
    )]
    pub inputs: Vec<PathBuf>,
    /// Decode the newest finished snapshot of every group under
    /// DIR/groups/<id>/snap/ (the data dir of a stopped or running node).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Directory to create the tree in; must not exist or be empty.
    #[arg(long, value_name = "DIR")]
    pub output: PathBuf,
    /// Every snapshot must belong to this cluster; recorded in MANIFEST.json
    /// (default: the cluster id in the snapshot headers).
    #[arg(long, value_name = "ID")]
    pub cluster_id: Option<String>,
    /// Decode only this service (repeatable) [default: every service].
    #[arg(long = "service", value_enum, value_name = "SERVICE")]
    pub services: Vec<DecodeService>,
    /// Format of the summary printed on stdout.
    #[arg(long, value_enum, default_value = "text")]
    pub output_format: OutputFormat,
}

/// Turns a decode failure into the error `cli::main` prints and classifies.
fn cli_error(err: &DecodeError) -> anyhow::Error {
    let message = err.to_string();
    match err.class() {
        FailureClass::Usage => CliError::Usage(message).into(),
        FailureClass::CorruptInput => CliError::CorruptInput(message).into(),
        FailureClass::OutputExists => CliError::OutputExists(message).into(),
        FailureClass::Io => std::io::Error::other(message).into(),
        FailureClass::Other => anyhow::anyhow!(message),
    }
}

fn progress_bar(total: u64) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    let style = indicatif::ProgressStyle::with_template(
        "decoding [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .map(|style| style.progress_chars("=> "))
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    Some(bar)
}

pub fn run(args: &SnapshotDecodeArgs) -> anyhow::Result<ExitCode> {
    // Decoder warnings (counts that disagree with rows) go to stderr.
    super::init_logging();
    let cluster_id = args.cluster_id.as_deref();
    let plan = match &args.data_dir {
        Some(dir) => DecodePlan::open_data_dir(dir, cluster_id),
        None => DecodePlan::open(&args.inputs, cluster_id),
    }
    .map_err(|err| cli_error(&err))?;
    let mut selected = args.services.clone();
    selected.sort();
    selected.dedup();
    if selected.is_empty() {
        selected.push(DecodeService::Redis);
    }
    let redis = RedisSnapshotDecoder;
    let decoders: Vec<&dyn ServiceDecoder> = selected
        .iter()
        .map(|service| match service {
            DecodeService::Redis => &redis as &dyn ServiceDecoder,
        })
        .collect();
    let bar = progress_bar(plan.total_bytes());
    let result = plan.decode(&args.output, &decoders, SystemTime::now(), &mut |done| {
        if let Some(bar) = &bar {
            bar.set_position(done);
        }
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let summary = result.map_err(|err| cli_error(&err))?;
    let text = match args.output_format {
        OutputFormat::Json => format!("{:#}\n", summary_json(&summary)),
        OutputFormat::Text => summary_text(&summary),
    };
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(ExitCode::Ok)
}

fn counts_object<'a>(pairs: impl IntoIterator<Item = (&'a str, u64)>) -> Value {
    Value::Object(
        pairs
            .into_iter()
            .map(|(name, n)| (name.to_owned(), json!(n)))
            .collect::<Map<_, _>>(),
    )
}

/// The `--output-format json` summary.
pub fn summary_json(summary: &DecodeSummary) -> Value {
    let groups: Vec<Value> = summary
        .groups
        .iter()
        .map(|g| {
            json!({
                "group_id": g.group_id,
                "path": g.path.to_string_lossy(),
                "snapshot_index": g.snapshot_index,
                "snapshot_term": g.snapshot_term,
                "last_commit_ts": g.last_commit_ts,
                "bytes": g.bytes,
                "data_records": g.data_records,
                "lock_records": g.lock_records,
                "meta_records": g.meta_records,
            })
        })
        .collect();
    let services: Map<String, Value> = summary
        .services
        .iter()
        .map(|s| {
            (
                s.service.to_owned(),
                json!({
                    "keys": counts_object(s.keys.iter().copied()),
                    "total_keys": s.total_keys(),
                    "skipped": counts_object(s.skipped.iter().copied()),
                    "warnings": s.warnings,
                }),
            )
        })
        .collect();
    let v = &summary.versions;
    json!({
        "output": summary.output.to_string_lossy(),
        "cluster_id": summary.cluster_id,
        "groups": groups,
        "services": services,
        "versions": {
            "visible": v.visible,
            "superseded": v.superseded,
            "tombstones": v.tombstones,
            "expired": v.expired,
            "newer_than_snapshot": v.newer_than_snapshot,
        },
        "not_owned_records": summary.not_owned,
        "other_namespaces": counts_object(summary.other_namespaces.iter().map(|(k, n)| (*k, *n))),
        "files": summary.files,
        "bytes": summary.bytes,
    })
}

/// The human-readable summary.
pub fn summary_text(summary: &DecodeSummary) -> String {
    let mut out = format!(
        "decoded {} snapshot{} of cluster {:?} into {}\n",
        summary.groups.len(),
        if summary.groups.len() == 1 { "" } else { "s" },
        summary.cluster_id,
        summary.output.display()
    );
    for g in &summary.groups {
        out.push_str(&format!(
            "  group {}: index {} term {} last_commit_ts {} ({} bytes) {}\n",
            g.group_id,
            g.snapshot_index,
            g.snapshot_term,
            g.last_commit_ts,
            g.bytes,
            g.path.display()
        ));
    }
    for s in &summary.services {
        let types: Vec<String> = s.keys.iter().map(|(t, n)| format!("{t} {n}")).collect();
        out.push_str(&format!(
            "{}: {} keys ({})\n",
            s.service,
            s.total_keys(),
            types.join(", ")
        ));
        let skipped: Vec<String> = s.skipped.iter().map(|(t, n)| format!("{t} {n}")).collect();
        out.push_str(&format!(
            "  not dumped: {}; warnings {}\n",
            skipped.join(", "),
            s.warnings
        ));
    }
    let v = &summary.versions;
    out.push_str(&format!(
        "versions: {} visible, {} superseded, {} tombstones, {} expired, {} newer than the snapshot\n",
        v.visible, v.superseded, v.tombstones, v.expired, v.newer_than_snapshot
    ));
    if summary.not_owned > 0 {
        out.push_str(&format!(
            "records outside the groups' ownership: {}\n",
            summary.not_owned
        ));
    }
    if !summary.other_namespaces.is_empty() {
        let other: Vec<String> = summary
            .other_namespaces
            .iter()
            .map(|(ns, n)| format!("{ns} {n}"))
            .collect();
        out.push_str(&format!(
            "records not dumped by namespace: {}\n",
            other.join(", ")
        ));
    }
    out.push_str(&format!(
        "tree: {} files, {} bytes, listed in CHECKSUMS\n",
        summary.files, summary.bytes
    ));
    out
}
